/* The deal list's bulk bar: tick all on the page, count what is ticked, show only the inputs the
   chosen action needs, and save views with the filters the page shows now (htmx keeps the
   address bar up to date). Without JavaScript every input is simply shown. */
(function () {
  "use strict";

  function boxes() { return document.querySelectorAll("input[type=checkbox][name=deal][form=bulk]"); }

  function refresh() {
    var form = document.getElementById("bulk");
    if (!form) { return; }
    var ticked = Array.prototype.filter.call(boxes(), function (b) { return b.checked; }).length;
    var count = form.querySelector("[data-bulk-count]");
    if (count) {
      var template = ticked ? count.getAttribute("data-some") : count.getAttribute("data-none");
      if (template) { count.textContent = template.replace("%(n)s", ticked); }
    }
    var pageBox = document.querySelector("[data-bulk-page]");
    if (pageBox) {
      var n = boxes().length;
      pageBox.checked = n > 0 && ticked === n;
      pageBox.indeterminate = ticked > 0 && ticked < n;
    }
    var action = form.querySelector("[data-bulk-action]");
    var value = action ? action.value : "";
    form.querySelectorAll("[data-bulk-for]").forEach(function (field) {
      var wanted = field.getAttribute("data-bulk-for").split(" ");
      field.hidden = !wanted.some(function (w) {
        return w === value || (w === "move:*" && value.indexOf("move:") === 0);
      });
    });
  }

  document.addEventListener("change", function (event) {
    var target = event.target;
    if (target.matches && target.matches("[data-bulk-page]")) {
      boxes().forEach(function (b) { b.checked = target.checked; });
    }
    if (target.closest && (target.closest("#bulk") || target.matches("[form=bulk]"))) { refresh(); }
  });
  document.addEventListener("click", function (event) {
    // "x" on a row and clicks on checkboxes both end here.
    if (event.target.matches && event.target.matches("[form=bulk]")) { window.setTimeout(refresh, 0); }
  });
  document.addEventListener("DOMContentLoaded", refresh);
  document.addEventListener("htmx:afterSettle", refresh);

  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (form.matches("[data-views-save]")) {
      var query = form.querySelector("[data-current-query]");
      if (query) { query.value = window.location.search.replace(/^\?/, ""); }
    }
  });
})();
