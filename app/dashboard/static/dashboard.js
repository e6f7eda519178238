/* Koppel dashboard: selection checkboxes and live updates. No dependencies, no build step.
   Live parts poll the dashboard's JSON (the status API's shapes) every 2 seconds and only
   ever write text (textContent), never HTML. */
(function () {
  "use strict";

  var POLL_MS = 2000;
  var pageData = { explanations: {}, checks: {} };
  try {
    var block = document.getElementById("koppel-data");
    if (block) pageData = JSON.parse(block.textContent);
  } catch (e) { /* keep the defaults */ }
  var tz = document.body.getAttribute("data-tz") || "UTC";
  var minutes, seconds;
  try {
    var base = { timeZone: tz, year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit", hourCycle: "h23" };
    minutes = new Intl.DateTimeFormat("sv-SE", base);
    seconds = new Intl.DateTimeFormat("sv-SE", Object.assign({ second: "2-digit" }, base));
  } catch (e) {
    minutes = seconds = null;
  }

  function when(value, withSeconds) {
    if (!value) return "—";
    var d = new Date(value);
    if (isNaN(d.getTime())) return String(value);
    var f = withSeconds ? seconds : minutes;
    return f ? f.format(d).replace("T", " ") : d.toISOString().slice(0, withSeconds ? 19 : 16).replace("T", " ");
  }

  function text(field, value, el) {
    if (value === null || value === undefined || value === "") {
      return el && el.hasAttribute("data-empty") ? el.getAttribute("data-empty") : (/_at$/.test(field) ? "—" : "");
    }
    if (/_at$/.test(field)) return when(value, false);
    return String(value);
  }

  /* ---- apply one order's JSON to the elements that show it ---- */
  function apply(root, order) {
    root.querySelectorAll("[data-bind]").forEach(function (el) {
      var field = el.getAttribute("data-bind");
      if (field === "explanation") {
        var explanation = pageData.explanations[order.error_code] || "";
        if (el.textContent !== explanation) el.textContent = explanation;
        return;
      }
      if (!(field in order)) return;
      var value = text(field, order[field], el);
      if (el.textContent !== value) el.textContent = value;
      if (field === "state") el.className = "badge state-" + order.state;
    });
    root.querySelectorAll("[data-show-when]").forEach(function (el) {
      var states = el.getAttribute("data-show-when").split(" ");
      el.hidden = states.indexOf(order.state) < 0;
      if (el.hidden && el.type === "checkbox") el.checked = false;
    });
    root.querySelectorAll("[data-show-if]").forEach(function (el) {
      el.hidden = !order[el.getAttribute("data-show-if")];
    });
    root.querySelectorAll("[data-hide-if]").forEach(function (el) {
      el.hidden = !!order[el.getAttribute("data-hide-if")];
    });
    root.setAttribute("data-state", order.state);
  }

  function cell(row, value, className) {
    var td = document.createElement("td");
    if (className) td.className = className;
    if (value instanceof Node) td.appendChild(value); else td.textContent = value;
    row.appendChild(td);
    return td;
  }

  function span(value, className) {
    var s = document.createElement("span");
    s.className = className;
    s.textContent = value;
    return s;
  }

  function renderTimeline(tbody, events) {
    if (!tbody || tbody.children.length === events.length) return;
    var rows = events.map(function (event) {
      var tr = document.createElement("tr");
      cell(tr, when(event.at, true), "nowrap");
      cell(tr, span(event.kind, "event event-" + event.kind));
      cell(tr, event.message);
      return tr;
    });
    tbody.replaceChildren.apply(tbody, rows);
  }

  function renderChecks(tbody, checks) {
    if (!tbody || !checks) return;
    var key = JSON.stringify(checks);
    if (tbody.getAttribute("data-rendered") === key) return;
    tbody.setAttribute("data-rendered", key);
    var rows = checks.map(function (check) {
      var tr = document.createElement("tr");
      cell(tr, pageData.checks[check.check] || String(check.check).replace(/_/g, " "));
      cell(tr, span(check.ok ? "passed" : "failed", "badge " + (check.ok ? "state-booked" : "state-failed")));
      cell(tr, check.message, "small");
      return tr;
    });
    if (rows.length) tbody.replaceChildren.apply(tbody, rows);
  }

  /* ---- polling ---- */
  function poll(url, onData) {
    var stopped = false;
    function tick() {
      if (stopped) return;
      if (document.hidden) { setTimeout(tick, POLL_MS); return; }
      fetch(url(), { credentials: "same-origin", headers: { Accept: "application/json" }, cache: "no-store" })
        .then(function (response) {
          if (response.status === 401) { stopped = true; window.location.reload(); return null; }
          return response.ok ? response.json() : null;
        })
        .then(function (data) { if (data) onData(data); })
        .catch(function () { /* the next tick tries again */ })
        .then(function () { if (!stopped) setTimeout(tick, POLL_MS); });
    }
    setTimeout(tick, POLL_MS);
  }

  function liveOrder(root) {
    var last = "";
    poll(function () { return root.getAttribute("data-url"); }, function (order) {
      var key = JSON.stringify(order);
      if (key === last) return;
      last = key;
      apply(root, order);
      renderTimeline(root.querySelector("[data-timeline]"), order.timeline || []);
      renderChecks(root.querySelector("[data-checks]"), order.checks);
    });
  }

  function liveList(tables) {
    var ids = [];
    tables.forEach(function (table) {
      table.querySelectorAll("tr[data-order-id]").forEach(function (row) {
        var id = row.getAttribute("data-order-id");
        if (ids.indexOf(id) < 0) ids.push(id);
      });
    });
    if (!ids.length) return;
    var query = ids.slice(0, 200).map(function (id) { return "id=" + encodeURIComponent(id); }).join("&");
    poll(function () { return "/dashboard/api/orders?" + query; }, function (data) {
      (data.orders || []).forEach(function (order) {
        document.querySelectorAll('[data-live-list] tr[data-order-id="' + order.id + '"]').forEach(function (row) {
          apply(row, order);
        });
      });
      updateSelection();
    });
  }

  /* ---- selection for "Process selected" ---- */
  var bulkForm = document.querySelector("form[data-selection]");
  function boxes() {
    if (!bulkForm) return [];
    return Array.prototype.slice.call(document.querySelectorAll('input[type="checkbox"][name="order_id"][form="' + bulkForm.id + '"]'))
      .filter(function (box) { return !box.hidden; });
  }
  function updateSelection() {
    if (!bulkForm) return;
    var all = boxes();
    var picked = all.filter(function (box) { return box.checked; }).length;
    var button = document.querySelector("[data-selection-submit]");
    var label = document.querySelector("[data-selection-count]");
    var master = document.querySelector("[data-select-all]");
    if (button) {
      button.disabled = picked === 0;
      button.textContent = picked ? "Process selected (" + picked + ")" : "Process selected";
    }
    if (label) label.textContent = picked ? picked + " of " + all.length + " selected" : "none selected";
    if (master) {
      master.checked = picked > 0 && picked === all.length;
      master.indeterminate = picked > 0 && picked < all.length;
    }
  }
  if (bulkForm) {
    document.addEventListener("change", function (event) {
      var target = event.target;
      if (target.matches && target.matches("[data-select-all]")) {
        boxes().forEach(function (box) { box.checked = target.checked; });
      }
      updateSelection();
    });
    updateSelection();
  }

  /* ---- one submit per click: a double click must not post twice ---- */
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (form.getAttribute("data-submitted")) { event.preventDefault(); return; }
    form.setAttribute("data-submitted", "1");
    setTimeout(function () {
      form.querySelectorAll('button[type="submit"]').forEach(function (button) { button.disabled = true; });
    }, 0);
  });

  window.addEventListener("pageshow", function (event) {
    if (!event.persisted) return;  // back to a page kept in memory: its forms may be used again
    document.querySelectorAll("form[data-submitted]").forEach(function (form) {
      form.removeAttribute("data-submitted");
      form.querySelectorAll('button[type="submit"]').forEach(function (button) { button.disabled = false; });
    });
    updateSelection();
  });

  document.querySelectorAll("[data-live-order]").forEach(liveOrder);
  var lists = document.querySelectorAll("[data-live-list]");
  if (lists.length) liveList(lists);
})();
