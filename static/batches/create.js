// The create page: drag and drop, endpoint from the file's first line, more metadata rows, upload
// progress. Wired with listeners on document (strict CSP: no inline handlers), so it keeps working
// after htmx swaps the form. Without JavaScript the form still posts and works.
(function () {
  "use strict";

  var FORM_ID = "batch-create-form";

  function form() { return document.getElementById(FORM_ID); }
  function fileInput() { var f = form(); return f && f.querySelector("input[type=file]"); }

  function formatBytes(n) {
    if (n >= 1048576) { return (n / 1048576).toFixed(1) + " MB"; }
    if (n >= 1024) { return (n / 1024).toFixed(1) + " kB"; }
    return n + " bytes";
  }

  function setText(id, text) {
    var el = document.getElementById(id);
    if (el) { el.textContent = text; }
  }

  // Read only the first line (a slice of the file, never the whole of it) to preselect the endpoint.
  function inspect(file) {
    setText("file-summary", file.name + " (" + formatBytes(file.size) + ")");
    var select = document.getElementById("id_endpoint");
    if (!select || !file.slice) { return; }
    file.slice(0, 1048576).text().then(function (text) {
      var first = text.split("\n", 1)[0].replace(/\r$/, "");
      var url = null;
      try { url = JSON.parse(first).url; } catch (e) { url = null; }
      var known = Array.prototype.some.call(select.options, function (o) { return o.value === url; });
      if (known) {
        select.value = url;
        setText("endpoint-hint", "Taken from the file's first line.");
      } else {
        setText("endpoint-hint", "");
      }
    }).catch(function () { /* the server checks the file anyway */ });
  }

  document.addEventListener("change", function (evt) {
    var input = fileInput();
    if (evt.target === input && input.files && input.files[0]) { inspect(input.files[0]); }
  });

  document.addEventListener("dragover", function (evt) {
    var zone = evt.target.closest && evt.target.closest("#dropzone");
    if (!zone) { return; }
    evt.preventDefault();
    zone.classList.add("dragging");
  });
  document.addEventListener("dragleave", function (evt) {
    var zone = evt.target.closest && evt.target.closest("#dropzone");
    if (zone) { zone.classList.remove("dragging"); }
  });
  document.addEventListener("drop", function (evt) {
    var zone = evt.target.closest && evt.target.closest("#dropzone");
    var input = fileInput();
    if (!zone || !input) { return; }
    evt.preventDefault();
    zone.classList.remove("dragging");
    if (evt.dataTransfer && evt.dataTransfer.files && evt.dataTransfer.files.length) {
      input.files = evt.dataTransfer.files;
      inspect(input.files[0]);
    }
  });

  // One more metadata row per click, up to the API's limit.
  function showAddButton() {
    var button = document.getElementById("metadata-add");
    if (button) { button.hidden = false; }
  }
  document.addEventListener("click", function (evt) {
    if (!evt.target || evt.target.id !== "metadata-add") { return; }
    var rows = document.getElementById("metadata-rows");
    var max = parseInt(rows.getAttribute("data-max"), 10) || 16;
    var all = rows.querySelectorAll(".metadata-row");
    if (all.length >= max) { return; }
    var row = all[all.length - 1].cloneNode(true);
    Array.prototype.forEach.call(row.querySelectorAll("input"), function (input) {
      input.value = "";
      input.setAttribute("aria-label", input.getAttribute("aria-label").replace(/\d+$/, String(all.length + 1)));
    });
    rows.appendChild(row);
    if (all.length + 1 >= max) { evt.target.hidden = true; }
  });

  // Upload progress: htmx relays the XMLHttpRequest upload progress events.
  function progressBox() { return document.getElementById("create-progress"); }

  document.addEventListener("htmx:beforeRequest", function (evt) {
    if (evt.target.id !== FORM_ID) { return; }
    var box = progressBox();
    if (box) { box.hidden = false; }
    var input = fileInput();
    setText("create-state", input && input.files && input.files.length ? "Sending the file to the dashboard…" : "Creating the batch…");
  });
  document.addEventListener("htmx:xhr:progress", function (evt) {
    if (evt.target.id !== FORM_ID || !evt.detail.lengthComputable) { return; }
    var bar = document.getElementById("upload-progress");
    var pct = Math.floor((100 * evt.detail.loaded) / evt.detail.total);
    if (bar) { bar.value = pct; }
    if (evt.detail.loaded >= evt.detail.total) {
      setText("create-state", "Received. Checking every line, then uploading to the Batch API and creating the batch…");
    } else {
      setText("create-state", "Sending the file to the dashboard: " + pct + "% of " + formatBytes(evt.detail.total));
    }
  });

  // Our error answers (400 invalid file, 409 already submitted, 5xx upstream) carry the page to show:
  // let htmx swap them in instead of treating them as failures.
  document.addEventListener("htmx:beforeSwap", function (evt) {
    if (evt.detail.requestConfig && evt.detail.requestConfig.elt && evt.detail.requestConfig.elt.id === FORM_ID
        && evt.detail.xhr.status >= 400) {
      evt.detail.shouldSwap = true;
      evt.detail.isError = false;
    }
  });
  document.addEventListener("htmx:afterSwap", showAddButton);
  document.addEventListener("htmx:sendError", function (evt) {
    if (evt.target.id === FORM_ID) { setText("create-state", "The dashboard could not be reached. Try again."); }
  });

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", showAddButton);
  } else {
    showAddButton();
  }
})();
