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

  // ---- Cost estimate before upload ------------------------------------------------------------
  // The rule of batches/oversight/pricing.py estimate_jsonl, so browser and server agree: for each
  // line with a "body", the UTF-8 bytes of the request's text (messages, input, prompt, instructions,
  // through content/text parts) divided by bytes-per-token, rounded up, plus tokens-per-message for
  // each object with a "role". The file is read in slices (never one string of the whole file).
  var CHUNK = 4 * 1048576;
  var TEXT_KEYS = ["content", "text", "input", "prompt", "instructions"];
  var BODY_KEYS = ["messages", "input", "prompt", "instructions"];
  var estimateRun = 0;

  function utf8Length(text) {
    var n = 0;
    for (var i = 0; i < text.length; i++) {
      var c = text.charCodeAt(i);
      if (c < 0x80) { n += 1; }
      else if (c < 0x800) { n += 2; }
      else if (c >= 0xd800 && c < 0xdc00 && i + 1 < text.length) {
        var next = text.charCodeAt(i + 1);
        if (next >= 0xdc00 && next < 0xe000) { n += 4; i++; } else { n += 3; }
      } else { n += 3; }
    }
    return n;
  }

  function textBytes(value, acc) {
    if (typeof value === "string") { acc.bytes += utf8Length(value); return; }
    if (Array.isArray(value)) { value.forEach(function (item) { textBytes(item, acc); }); return; }
    if (value && typeof value === "object") {
      if (Object.prototype.hasOwnProperty.call(value, "role")) { acc.messages += 1; }
      TEXT_KEYS.forEach(function (key) {
        if (Object.prototype.hasOwnProperty.call(value, key)) { textBytes(value[key], acc); }
      });
    }
  }

  function countLine(line, state) {
    if (!line.trim()) { return; }
    var parsed;
    try { parsed = JSON.parse(line); } catch (e) { return; }
    var body = parsed && typeof parsed === "object" && !Array.isArray(parsed) ? parsed.body : null;
    if (!body || typeof body !== "object" || Array.isArray(body)) { return; }
    state.requests += 1;
    if (state.model === null && typeof body.model === "string") { state.model = body.model; }
    var acc = { bytes: 0, messages: 0 };
    BODY_KEYS.forEach(function (key) {
      if (Object.prototype.hasOwnProperty.call(body, key)) { textBytes(body[key], acc); }
    });
    state.tokens += Math.ceil(acc.bytes / state.bytesPerToken) + state.tokensPerMessage * acc.messages;
  }

  function readSlice(blob) {
    if (blob.arrayBuffer) { return blob.arrayBuffer(); }
    return new Promise(function (resolve, reject) {
      var reader = new FileReader();
      reader.onload = function () { resolve(reader.result); };
      reader.onerror = function () { reject(reader.error); };
      reader.readAsArrayBuffer(blob);
    });
  }

  function countFile(file, state, run, onProgress) {
    var decoder = new TextDecoder("utf-8");
    var rest = "";
    function step(offset) {
      if (run !== estimateRun) { return Promise.reject(new Error("superseded")); }
      if (offset >= file.size) {
        countLine(rest + decoder.decode(), state);
        return Promise.resolve(state);
      }
      return readSlice(file.slice(offset, offset + CHUNK)).then(function (buffer) {
        var lines = (rest + decoder.decode(buffer, { stream: true })).split("\n");
        rest = lines.pop();
        lines.forEach(function (line) { countLine(line, state); });
        onProgress(Math.min(offset + CHUNK, file.size));
        return step(offset + CHUNK);
      });
    }
    return step(0);
  }

  function formatMoney(amount) {
    if (amount > 0 && amount < 0.01) { return "$" + String(Number(amount.toFixed(6))); }
    return "$" + amount.toLocaleString("en-US", { minimumFractionDigits: 2, maximumFractionDigits: 2 });
  }

  // The project's budget (batches/costs/): say before anything is uploaded that this file would cross it.
  function budgetNote(budget, amount) {
    if (!budget) { return ""; }
    var monthly = parseFloat(budget.monthly_usd), total = parseFloat(budget.spend_usd) + amount;
    if (total <= monthly) { return ""; }
    return " With it, this month's spend would be " + formatMoney(total) + ", over the budget of " + formatMoney(monthly)
      + (budget.block_at_limit ? ": the dashboard will refuse to create this batch." : ".");
  }

  function estimate(file) {
    var panel = document.getElementById("cost-estimate");
    if (!panel || !window.TextDecoder || !window.fetch) { return; }
    var run = ++estimateRun;
    var state = {
      requests: 0, tokens: 0, model: null,
      bytesPerToken: parseInt(panel.getAttribute("data-bytes-per-token"), 10) || 4,
      tokensPerMessage: parseInt(panel.getAttribute("data-tokens-per-message"), 10) || 3
    };
    setText("estimate-result", "Estimating the cost…");
    countFile(file, state, run, function (done) {
      if (run === estimateRun && file.size) {
        setText("estimate-result", "Estimating the cost… " + Math.floor((100 * done) / file.size) + "% read");
      }
    }).then(function () {
      if (!state.requests) {
        setText("estimate-result", "No estimate: no line of this file has a request body.");
        return null;
      }
      var url = panel.getAttribute("data-price-url") + "?model=" + encodeURIComponent(state.model || "");
      return fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(function (response) { return response.json(); })
        .then(function (price) {
          if (run !== estimateRun) { return; }
          var about = "about " + state.tokens.toLocaleString("en-US") + " input tokens in "
            + state.requests.toLocaleString("en-US") + " request" + (state.requests === 1 ? "" : "s");
          if (!price.known) {
            setText("estimate-result", "Estimated input cost: no price (" + about + "). " + price.reason);
            return;
          }
          var amount = state.tokens * parseFloat(price.rates.input) / price.per_tokens;
          setText("estimate-result", "Estimated input cost: " + formatMoney(amount) + " (" + about + " for "
            + (state.model || "the model") + " at $" + price.rates.input + " per 1M input tokens, batch rate, "
            + price.price_data + "; estimate; OpenAI's bill is authoritative). Output tokens are billed on top."
            + budgetNote(price.budget, amount));
        });
    }).catch(function (err) {
      if (run === estimateRun && (!err || err.message !== "superseded")) {
        setText("estimate-result", "No estimate: the file could not be read in the browser. The server still checks it.");
      }
    });
  }

  function readyEstimate() {
    var el = document.getElementById("estimate-result");
    if (el && el.getAttribute("data-ready") !== "1" && window.TextDecoder && window.fetch) {
      el.setAttribute("data-ready", "1");
      el.textContent = "Choose a file to see an estimate of its input cost, before anything is uploaded.";
    }
  }

  document.addEventListener("change", function (evt) {
    var input = fileInput();
    if (evt.target === input && input.files && input.files[0]) { inspect(input.files[0]); estimate(input.files[0]); }
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
      estimate(input.files[0]);
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
  document.addEventListener("htmx:afterSwap", readyEstimate);
  document.addEventListener("htmx:sendError", function (evt) {
    if (evt.target.id === FORM_ID) { setText("create-state", "The dashboard could not be reached. Try again."); }
  });

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", showAddButton);
    document.addEventListener("DOMContentLoaded", readyEstimate);
  } else {
    showAddButton();
    readyEstimate();
  }
})();
