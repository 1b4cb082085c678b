// sessionmon dashboard: the live alert list. Data from the server is only
// ever written with textContent, never parsed as HTML.
"use strict";

(function () {
  var table = document.getElementById("live-alerts");
  if (!table || !window.EventSource) {
    return;
  }
  var body = table.tBodies[0];
  var status = document.getElementById("live-status");
  var maxRows = 500;

  function setStatus(text) {
    if (status) {
      status.textContent = text;
    }
  }

  function cell(row, text, className) {
    var td = row.insertCell(-1);
    if (className) {
      var span = document.createElement("span");
      span.className = className;
      span.textContent = text;
      td.appendChild(span);
    } else {
      td.textContent = text;
    }
    return td;
  }

  var severities = { low: 1, medium: 1, high: 1, critical: 1 };

  function addAlert(a) {
    if (typeof a.id !== "string" || !/^[0-9a-f]{32}$/.test(a.id)) {
      return;
    }
    if (document.getElementById("alert-" + a.id)) {
      return;
    }
    var empty = body.querySelector("td.empty");
    if (empty) {
      body.removeChild(empty.parentNode);
    }
    var row = body.insertRow(0);
    row.id = "alert-" + a.id;
    row.className = "new";
    var first = row.insertCell(-1);
    var link = document.createElement("a");
    link.href = "/alerts/" + a.id;
    link.textContent = a.time_text || a.time;
    first.appendChild(link);
    cell(row, a.severity, severities[a.severity] ? "sev sev-" + a.severity : "sev");
    cell(row, a.detector);
    cell(row, a.app);
    cell(row, a.summary);
    cell(row, a.status, "status status-open");
    while (body.rows.length > maxRows) {
      body.deleteRow(-1);
    }
  }

  var source = new EventSource("/alerts/live" + window.location.search);
  source.addEventListener("open", function () {
    setStatus("live");
  });
  source.addEventListener("alert", function (ev) {
    try {
      addAlert(JSON.parse(ev.data));
    } catch (e) {
      // A malformed message is skipped; the next one may be fine.
    }
  });
  source.addEventListener("error", function () {
    setStatus("reconnecting…");
  });
})();
