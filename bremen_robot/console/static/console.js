// bremen console: polls the read-only JSON endpoints and writes every value as text
// (textContent, setAttribute of numbers); no value from the workspace is ever parsed as HTML.
"use strict";
(function () {
  var SVG = "http://www.w3.org/2000/svg";
  var lastKey = null;
  var lastView = 0;

  function text(id, value) {
    var el = document.getElementById(id);
    if (el) el.textContent = value === null || value === undefined ? "" : String(value);
  }

  function showStatus(s) {
    text("st-stage", String(s.stage || "").replace(/_/g, " "));
    text("st-deployment", s.deployment ? s.deployment + (s.deployments ? " of " + s.deployments : "") : "");
    text("st-policy", s.policy_id);
    text("st-episodes", s.episodes);
    text("st-steps", s.steps);
    text("st-target", s.steps_target);
    text("st-interventions", s.interventions);
    text("st-estop", s.estop);
    text("st-message", s.message);
    // a failure is the one stage the operator must not miss
    ["st-stage", "st-message"].forEach(function (id) {
      var el = document.getElementById(id);
      if (el) el.className = s.stage === "failed" ? "error" : "";
    });
    text("st-warning", s.warning);
    text("liveness", s.liveness);
    var live = document.getElementById("liveness");
    if (live) live.className = s.stale ? "stale" : (s.running ? "live" : "ended");
    var bar = document.getElementById("st-progress");
    if (bar) {
      bar.max = Number(s.steps_target) || 1;
      bar.value = Number(s.steps) || 0;
    }
  }

  function cell(value) {
    var td = document.createElement("td");
    if (value && typeof value === "object") {
      var href = String(value.href || "");
      var inner = document.createElement(/^reviews\/[0-9a-f]+$/.test(href) ? "a" : "code");
      if (inner.tagName === "A") inner.setAttribute("href", href);
      inner.textContent = String(value.text || "");
      td.appendChild(inner);
    } else {
      td.textContent = value === null || value === undefined ? "" : String(value);
    }
    return td;
  }

  function fillTable(id, rows) {
    var table = document.getElementById(id);
    if (!table) return;
    var heads = Array.prototype.slice.call(table.querySelectorAll("thead th"));
    var body = document.createElement("tbody");
    rows.forEach(function (row) {
      var tr = document.createElement("tr");
      heads.forEach(function (th) {
        var td = cell(row[th.getAttribute("data-key")]);
        td.className = th.className;  // a column's class (nowrap) holds for its cells
        tr.appendChild(td);
      });
      body.appendChild(tr);
    });
    table.replaceChild(body, table.tBodies[0]);
  }

  function svgEl(name, attrs) {
    var el = document.createElementNS(SVG, name);
    Object.keys(attrs).forEach(function (k) { el.setAttribute(k, String(attrs[k])); });
    return el;
  }

  function chart(c) {
    var fig = document.createElement("figure");
    fig.className = "chart";
    var cap = document.createElement("figcaption");
    cap.textContent = c.title;
    fig.appendChild(cap);
    if (c.empty) {
      var p = document.createElement("p");
      p.className = "muted";
      p.textContent = "nothing evaluated yet";
      fig.appendChild(p);
      return fig;
    }
    var svg = svgEl("svg", { width: c.width, height: c.height, viewBox: "0 0 " + c.width + " " + c.height, role: "img" });
    c.lines.forEach(function (l) { svg.appendChild(svgEl("line", { "class": l.cls, x1: l.x1, y1: l.y1, x2: l.x2, y2: l.y2 })); });
    c.rects.forEach(function (r) { svg.appendChild(svgEl("rect", { "class": "bar", x: r.x, y: r.y, width: r.w, height: r.h })); });
    if (c.path) svg.appendChild(svgEl("path", { "class": "series", d: c.path }));
    c.circles.forEach(function (m) { svg.appendChild(svgEl("circle", { "class": m.cls, cx: m.cx, cy: m.cy, r: m.r })); });
    c.texts.forEach(function (t) {
      var el = svgEl("text", { x: t.x, y: t.y, "text-anchor": t.anchor });
      el.textContent = t.text;
      svg.appendChild(el);
    });
    var label = svgEl("text", { "class": "label", x: Math.floor((c.width + 48) / 2), y: c.height - 4, "text-anchor": "middle" });
    label.textContent = c.x_label;
    svg.appendChild(label);
    fig.appendChild(svg);
    return fig;
  }

  function showView(v) {
    text("campaign-name", v.campaign);
    fillTable("timeline", v.timeline);
    fillTable("pending", v.pending);
    text("pending-heading", v.pending_heading);
    text("pending-note", v.pending_note);
    fillTable("audit", v.audit);
    text("registry-error", v.registry_error);
    var empty = document.getElementById("pending-empty");
    if (empty) empty.hidden = v.pending.length > 0;
    var charts = document.getElementById("charts");
    if (charts) {
      while (charts.firstChild) charts.removeChild(charts.firstChild);
      v.charts.forEach(function (c) { charts.appendChild(chart(c)); });
    }
  }

  function getJSON(url) {
    return fetch(url, { cache: "no-store" }).then(function (r) {
      if (!r.ok) throw new Error(url + ": HTTP " + r.status);
      return r.json();
    });
  }

  function tick() {
    getJSON("api/status").then(function (s) {
      showStatus(s);
      var key = [s.stage, s.deployment, s.updated_at && s.stage !== "collecting" ? s.updated_at : ""].join("|");
      var now = Date.now();
      if (key !== lastKey || now - lastView > 5000) {
        lastKey = key;
        lastView = now;
        return getJSON("api/view").then(showView);
      }
    }).catch(function () {
      text("liveness", "console server not reachable; retrying");
    }).then(function () { setTimeout(tick, 1000); });
  }

  tick();
})();
