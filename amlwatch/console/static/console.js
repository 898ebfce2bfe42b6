/* The console's only script: the token price chart (Chart.js) and the linked-accounts graph
   (Cytoscape). Data comes from a JSON block in the page or from the console's own API. */
(function () {
  "use strict";

  function priceChart() {
    var canvas = document.getElementById("price-chart");
    var data = document.getElementById("price-data");
    if (!canvas || !data || typeof Chart === "undefined") return;
    var series = JSON.parse(data.textContent);
    var colours = ["#1f6feb", "#d1242f", "#1a7f37", "#9a6700", "#8250df", "#bf3989", "#0969da", "#57606a"];
    var fmt = function (ms) { return new Date(ms).toISOString().slice(0, 16).replace("T", " "); };
    new Chart(canvas, {
      type: "line",
      data: {
        datasets: series.map(function (s, i) {
          var colour = colours[i % colours.length];
          return { label: s.label, data: s.data, borderColor: colour, backgroundColor: colour, tension: 0,
                   pointRadius: function (c) { return c.raw && c.raw.listed ? 7 : 4; },
                   pointBackgroundColor: function (c) { return c.raw && c.raw.listed ? "#d1242f" : colour; } };
        })
      },
      options: {
        responsive: true, maintainAspectRatio: false, animation: false, parsing: { xAxisKey: "x", yAxisKey: "y" },
        scales: {
          x: { type: "linear", ticks: { callback: function (v) { return fmt(v).slice(5); }, maxTicksLimit: 8 },
               title: { display: true, text: "event time (UTC)" } },
          y: { beginAtZero: true, title: { display: true, text: "price (CNY)" } }
        },
        plugins: {
          tooltip: { callbacks: { title: function (items) { return fmt(items[0].raw.x) + " UTC"; },
                                  label: function (item) { return item.raw.trade + " " + item.raw.kind + ": " + item.raw.y + " CNY" +
                                                                 (item.raw.listed ? " (listed by this alert)" : ""); } } }
        }
      }
    });
  }

  function accountGraph() {
    var box = document.getElementById("graph");
    if (!box || typeof cytoscape === "undefined") return;
    var status = document.getElementById("graph-status");
    var expanded = {};
    var center = box.getAttribute("data-account");
    var cy = cytoscape({
      container: box,
      style: [
        { selector: "node", style: { "label": "data(label)", "font-size": 10, "background-color": "#8c959f",
                                     "width": 18, "height": 18, "text-valign": "bottom", "text-margin-y": 3 } },
        { selector: "node[?flagged]", style: { "background-color": "#d1242f" } },
        { selector: "node.center", style: { "width": 28, "height": 28, "border-width": 3, "border-color": "#1f6feb" } },
        { selector: "node.expanded", style: { "border-width": 2, "border-color": "#24292f" } },
        { selector: "edge", style: { "width": 2, "line-color": "#8c959f", "curve-style": "bezier", "label": "data(label)",
                                     "font-size": 9, "text-rotation": "autorotate", "color": "#57606a",
                                     "text-background-color": "#fbfcfd", "text-background-opacity": 0.9,
                                     "text-background-padding": 1 } },
        { selector: "edge[kind = 'national_id']", style: { "line-color": "#d1242f", "width": 3 } },
        { selector: "edge[kind = 'card']", style: { "line-color": "#bf3989" } },
        { selector: "edge[kind = 'phone']", style: { "line-color": "#9a6700" } },
        { selector: "edge[kind = 'device']", style: { "line-color": "#8250df" } },
        { selector: "edge[kind = 'trade']", style: { "line-color": "#1f6feb", "line-style": "dashed" } }
      ],
      minZoom: 0.2, maxZoom: 1.4
    });

    /* Force-directed, so an account settles next to the accounts that link it; new accounts start beside
       the one that was expanded, and the rest keep their places. */
    function layout() {
      cy.layout({ name: "cose", animate: false, fit: true, padding: 40, randomize: false,
                  idealEdgeLength: function () { return 140; },
                  nodeRepulsion: function () { return 400000; },
                  nodeOverlap: 20, gravity: 40, numIter: 1500 }).run();
    }

    function expand(id) {
      if (expanded[id]) return Promise.resolve();
      expanded[id] = true;
      status.textContent = "loading " + id + "…";
      return fetch("/api/accounts/" + encodeURIComponent(id) + "/graph", { credentials: "same-origin" })
        .then(function (r) { if (!r.ok) throw new Error("HTTP " + r.status); return r.json(); })
        .then(function (g) {
          var from = cy.getElementById(id), at = from.empty() ? { x: 0, y: 0 } : from.position();
          var fresh = g.elements.filter(function (el) { return cy.getElementById(el.data.id).empty(); });
          fresh.forEach(function (el, i) {
            if (!el.data.source) {
              var angle = 2 * Math.PI * i / Math.max(fresh.length, 1);
              el.position = { x: at.x + 120 * Math.cos(angle), y: at.y + 120 * Math.sin(angle) };
            }
          });
          cy.add(fresh);
          cy.getElementById(id).addClass("expanded");
          layout();
          status.textContent = cy.nodes().length + " accounts, " + cy.edges().length + " links" +
            (g.truncated ? " (some links of " + id + " left out: too many)" : "") +
            ". Click a grey node to expand it, double-click to open it.";
        })
        .catch(function (e) { expanded[id] = false; status.textContent = "could not load the graph: " + e.message; });
    }

    expand(center).then(function () { cy.getElementById(center).addClass("center"); });
    cy.on("tap", "node", function (evt) { expand(evt.target.id()); });
    cy.on("dbltap", "node", function (evt) { window.location = "/accounts/" + encodeURIComponent(evt.target.id()); });
    window.amlwatchGraph = cy;
  }

  document.addEventListener("DOMContentLoaded", function () { priceChart(); accountGraph(); });
})();
