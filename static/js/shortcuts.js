/* Keyboard shortcuts: "/" search, "g d" My day, "g b" board, "g l" deal list, "j"/"k" move through
   the rows of the deal list and My day, Enter opens the selected row, "x" ticks it, "?" lists them.
   Nothing fires while typing in a field or with Ctrl, Alt or Meta held. No inline script (CSP). */
(function () {
  "use strict";
  var GO = { d: "home", b: "board", l: "deals" };
  var pendingG = 0;
  var ROWS = "#deal-results tbody tr, .worklist > li";

  function typing(target) {
    if (!target || !target.closest) { return false; }
    if (target.isContentEditable) { return true; }
    return Boolean(target.closest("input, textarea, select, [contenteditable]:not([contenteditable=false])"));
  }

  function rows() {
    return Array.prototype.filter.call(document.querySelectorAll(ROWS), function (row) {
      return row.querySelector("a[href]") && row.offsetParent !== null;
    });
  }

  function move(step) {
    var list = rows();
    if (!list.length) { return; }
    var index = list.findIndex(function (row) { return row.classList.contains("kbd-current"); });
    if (index !== -1) { list[index].classList.remove("kbd-current"); list[index].removeAttribute("aria-current"); }
    index = index === -1 ? (step > 0 ? 0 : list.length - 1) : Math.min(Math.max(index + step, 0), list.length - 1);
    var row = list[index];
    row.classList.add("kbd-current");
    row.setAttribute("aria-current", "true");
    row.scrollIntoView({ block: "nearest" });
  }

  function current() { return document.querySelector(".kbd-current"); }

  function go(where) {
    var dialog = document.getElementById("shortcuts");
    var url = dialog && dialog.getAttribute("data-go-" + where);
    if (url) { window.location.assign(url); }
  }

  document.addEventListener("keydown", function (event) {
    if (event.defaultPrevented || event.ctrlKey || event.altKey || event.metaKey) { return; }
    if (typing(event.target)) { return; }
    var dialog = document.getElementById("shortcuts");
    if (dialog && dialog.open) { return; }  // the dialog handles Escape itself
    var modal = document.getElementById("modal");
    if (modal && modal.open) { return; }
    var key = event.key;
    if (pendingG && Date.now() - pendingG < 1500 && GO[key]) {
      pendingG = 0;
      event.preventDefault();
      go(GO[key]);
      return;
    }
    pendingG = 0;
    if (key === "g") { pendingG = Date.now(); return; }
    if (key === "/") {
      var search = document.getElementById("topsearch-q");
      if (search) { event.preventDefault(); search.focus(); search.select(); }
      return;
    }
    if (key === "?") {
      if (dialog) { event.preventDefault(); dialog.showModal(); }
      return;
    }
    if (key === "j" || key === "k") { event.preventDefault(); move(key === "j" ? 1 : -1); return; }
    var row = current();
    if (!row) { return; }
    if (key === "Enter" && event.target === document.body) {
      var link = row.querySelector("a.title[href]") || row.querySelector("a[href]");
      if (link) { event.preventDefault(); link.click(); }
      return;
    }
    if (key === "x") {
      var box = row.querySelector("input[type=checkbox]");
      if (box) { event.preventDefault(); box.click(); }
    }
  });

  document.addEventListener("click", function (event) {
    var opener = event.target.closest && event.target.closest("[data-shortcuts-open]");
    var dialog = document.getElementById("shortcuts");
    if (opener && dialog) { event.preventDefault(); dialog.showModal(); }
  });

  // Rows re-drawn by htmx (filters) lose the selection: start again from the top.
  document.addEventListener("htmx:afterSwap", function () { pendingG = 0; });
})();
