/* Closing CRM: the little JavaScript the pages need (htmx does the rest). No inline scripts. */
(function () {
  "use strict";
  // Translations from Django's JavaScript catalogue (/jsi18n/); English when it is missing.
  function gettext(text) { return typeof window.gettext === "function" ? window.gettext(text) : text; }
  function interpolate(text, values) {
    return typeof window.interpolate === "function" ? window.interpolate(text, values) : text.replace("%s", values[0]);
  }
  var modal = function () { return document.getElementById("modal"); };

  // Business refusals (4xx with a plain-words message) are shown, not swallowed: htmx does not
  // swap error responses by default, so let the ones meant for people through.
  document.addEventListener("htmx:beforeSwap", function (event) {
    var status = event.detail.xhr.status;
    if ([400, 403, 404, 409, 422].indexOf(status) !== -1) {
      event.detail.shouldSwap = true;
      event.detail.isError = false;
    }
  });

  // A server error (5xx) or no answer at all: say so where the user is looking, keep the page.
  // With DEBUG on (body[data-debug-pages]) a server error shows Django's error page instead.
  function sayFailed(text) {
    var box = document.getElementById("request-failed");
    if (!box) {
      box = document.createElement("p");
      box.id = "request-failed";
      box.className = "msg msg-error request-failed";
      box.setAttribute("role", "alert");
      document.body.appendChild(box);
    }
    box.textContent = text;
  }
  document.addEventListener("htmx:responseError", function (event) {
    var xhr = event.detail.xhr;
    if (xhr.status < 500) { return; }
    if (document.body.hasAttribute("data-debug-pages")) {
      document.open(); document.write(xhr.responseText); document.close();
      return;
    }
    sayFailed(interpolate(gettext("Something went wrong on our side (error %s). Reload the page to see " +
      "what was saved, then try again."), [xhr.status]));
  });
  document.addEventListener("htmx:sendError", function () {
    sayFailed(gettext("The server could not be reached. Check your connection and try again."));
  });

  // Date fields: the browser draws them in its own locale (12/13/2026); beside each one the
  // date is repeated in the product's one format ("Sun 13 Dec 2026") so nobody misreads it.
  // The page's language (German: "So., 13. Dez. 2026"); English keeps the day-first British style.
  var pageLang = document.documentElement.lang || "en";
  var dayFormat = new Intl.DateTimeFormat(pageLang.indexOf("en") === 0 ? "en-GB" : pageLang, { weekday: "short", day: "numeric", month: "short", year: "numeric", timeZone: "UTC" });
  function echoDate(input) {
    var echo = input.parentNode.querySelector(".date-echo");
    if (!echo) {
      echo = document.createElement("small");
      echo.className = "muted date-echo";
      echo.setAttribute("aria-hidden", "true");
      input.insertAdjacentElement("afterend", echo);
    }
    echo.textContent = input.value ? dayFormat.format(new Date(input.value + "T00:00:00Z")) : "";
  }
  function echoDates(root) {
    (root || document).querySelectorAll("input[type=date]").forEach(echoDate);
  }
  document.addEventListener("DOMContentLoaded", function () { echoDates(document); });
  document.addEventListener("htmx:afterSettle", function (event) { echoDates(event.detail.elt); });
  document.addEventListener("input", function (event) {
    if (event.target.matches && event.target.matches("input[type=date]")) { echoDate(event.target); }
  });

  // Anything swapped into the modal body opens the modal; the first field gets the focus.
  document.addEventListener("htmx:afterSwap", function (event) {
    var dialog = modal();
    if (!dialog) { return; }
    if (event.detail.target && event.detail.target.id === "modal-body") {
      if (!event.detail.target.innerHTML.trim()) { dialog.close(); return; }
      if (!dialog.open) { dialog.showModal(); }
      var first = dialog.querySelector("textarea, select, input:not([type=hidden]), button");
      if (first) { first.focus(); }
    }
  });

  // On the board a successful move re-draws the board (columns, totals and all).
  document.addEventListener("htmx:afterRequest", function (event) {
    var board = document.querySelector("[data-board]");
    var detail = event.detail;
    if (!board || !detail.successful || !detail.requestConfig) { return; }
    if (String(detail.requestConfig.verb).toLowerCase() !== "post") { return; }
    var xhr = detail.xhr;
    if (xhr.status < 200 || xhr.status >= 300) { return; }
    if (xhr.getResponseHeader("HX-Redirect") || xhr.getResponseHeader("HX-Location")) { return; }
    window.location.reload();
  });

  document.addEventListener("click", function (event) {
    var closer = event.target.closest("[data-close-modal]");
    if (closer) {
      event.preventDefault();
      var dialog = modal();
      if (dialog && dialog.open) { dialog.close(); }
    }
    // Close any open menu when clicking elsewhere.
    document.querySelectorAll("details.menu[open], details.usermenu[open]").forEach(function (d) {
      if (!d.contains(event.target)) { d.removeAttribute("open"); }
    });
  });

  document.addEventListener("keydown", function (event) {
    if (event.key !== "Escape") { return; }
    document.querySelectorAll("details.menu[open], details.usermenu[open]").forEach(function (d) {
      d.removeAttribute("open");
      var summary = d.querySelector("summary");
      if (summary) { summary.focus(); }
    });
  });

  // Filter forms marked data-autosubmit apply as soon as a select or month changes.
  document.addEventListener("change", function (event) {
    var form = event.target.closest("form[data-autosubmit]");
    if (form && event.target.matches("select, input[type=month]")) { form.requestSubmit(); }
  });

  document.addEventListener("htmx:afterSettle", function () {
    var dialog = modal();
    if (dialog) {
      dialog.addEventListener("close", function () {
        document.getElementById("modal-body").innerHTML = "";
      }, { once: true });
    }
  });
})();

/* Board drag and drop: dropping a card on another column fires the one transition that joins the
   two states (the "Move to…" menu does the same from the keyboard). The server has the last word:
   refusals come back in plain words in the dialog. */
(function () {
  "use strict";
  var dragged = null;

  function edges() {
    var data = document.getElementById("board-edges");
    return data ? JSON.parse(data.textContent) : {};
  }

  function say(card, text) {
    var box = card.querySelector(".card-msg");
    if (box) { box.innerHTML = ""; var p = document.createElement("p"); p.className = "form-error"; p.setAttribute("role", "alert"); p.textContent = text; box.appendChild(p); }
  }

  document.addEventListener("dragstart", function (event) {
    var card = event.target.closest && event.target.closest(".deal-card[draggable=true]");
    if (!card) { return; }
    dragged = card;
    card.classList.add("dragging");
    event.dataTransfer.effectAllowed = "move";
    event.dataTransfer.setData("text/plain", card.id);
  });

  document.addEventListener("dragend", function () {
    if (dragged) { dragged.classList.remove("dragging"); }
    document.querySelectorAll(".column.drop-target").forEach(function (c) { c.classList.remove("drop-target"); });
  });

  document.addEventListener("dragover", function (event) {
    var column = dragged && event.target.closest && event.target.closest(".column[data-state]");
    if (!column) { return; }
    event.preventDefault();
    document.querySelectorAll(".column.drop-target").forEach(function (c) {
      if (c !== column) { c.classList.remove("drop-target"); }
    });
    column.classList.add("drop-target");
  });

  document.addEventListener("drop", function (event) {
    var column = dragged && event.target.closest && event.target.closest(".column[data-state]");
    if (!column) { return; }
    event.preventDefault();
    column.classList.remove("drop-target");
    var card = dragged;
    dragged = null;
    var from = card.dataset.state, to = column.dataset.state;
    if (from === to) { return; }
    var name = (edges()[from] || {})[to];
    if (!name) {
      var source = document.querySelector(".column[data-state='" + from + "']");
      say(card, "A deal in “" + (source ? source.dataset.label : from) + "” cannot move straight to “" +
        column.dataset.label + "”. Open “Move to…” to see the moves it can make.");
      return;
    }
    var url = card.dataset.moveUrl.replace(/ask\/$/, name + "/");
    window.htmx.ajax("POST", url, { source: card, target: "#modal-body", values: { expected_state: from } });
  });
})();
