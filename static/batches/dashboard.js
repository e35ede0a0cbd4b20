// Small progressive enhancements. No inline handlers (strict CSP): everything is wired here.
(function () {
  "use strict";

  // Polled regions are replaced wholesale every few seconds. Keep any <details>
  // the operator opened (e.g. the raw JSON) open across the swap, and mark a region as stale while
  // its refresh fails (htmx does not swap error answers, so the last good state stays visible).
  var openDetails = [];
  document.addEventListener("htmx:beforeSwap", function (event) {
    var target = event.detail.target;
    openDetails = target ? Array.prototype.map.call(target.querySelectorAll("details[id][open]"), function (el) {
      return el.id;
    }) : [];
  });
  document.addEventListener("htmx:afterSwap", function () {
    openDetails.forEach(function (id) {
      var el = document.getElementById(id);
      if (el) { el.open = true; }
    });
    openDetails = [];
  });
  function markStale(event, stale) {
    var elt = event.detail.elt;
    if (elt && elt.hasAttribute && elt.hasAttribute("data-poll")) {
      elt.classList.toggle("is-stale", stale);
    }
  }
  document.addEventListener("htmx:responseError", function (event) { markStale(event, true); });
  document.addEventListener("htmx:sendError", function (event) { markStale(event, true); });

  // A filter form submits only what is set: empty fields, and selects left at their default
  // (data-default), are disabled for the moment the form is read, by the browser or by htmx, so the
  // URL an operator pastes holds only the filters in force. Without JavaScript the server redirects
  // such a URL to its short form.
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!form.matches || !form.matches("form[data-compact]")) { return; }
    var disabled = [];
    Array.prototype.forEach.call(form.elements, function (el) {
      if (!el.name || el.disabled || el.type === "checkbox" || el.type === "submit") { return; }
      var preset = el.getAttribute("data-default");
      if (el.value.trim() === "" || (preset !== null && el.value === preset)) {
        el.disabled = true;
        disabled.push(el);
      }
    });
    setTimeout(function () { disabled.forEach(function (el) { el.disabled = false; }); }, 0);
  }, true);

  // The project switcher is a <details> dropdown: close it on a click elsewhere or on Escape, as a
  // menu would (without JavaScript it still opens and closes from its own summary).
  function closeSwitchers(except) {
    document.querySelectorAll("details.switcher[open]").forEach(function (el) {
      if (el !== except) { el.open = false; }
    });
  }
  document.addEventListener("click", function (event) {
    closeSwitchers(event.target.closest ? event.target.closest("details.switcher") : null);
  });
  document.addEventListener("keydown", function (event) {
    if (event.key !== "Escape") { return; }
    var open = document.querySelector("details.switcher[open]");
    if (open) {
      open.open = false;
      open.querySelector("summary").focus();
    }
  });
})();
