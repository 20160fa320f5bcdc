/* Tollway charts: draws every `.chart` element that is followed by a
   <script type="application/json" class="chart-data">{"label", "x": [unix s], "y": [numbers]}</script>
   with uPlot (vendored). Shared by the portal and the console; runs after each htmx swap. */
(function () {
  "use strict";

  function cssVar(name, fallback) {
    var v = getComputedStyle(document.documentElement).getPropertyValue(name);
    return (v && v.trim()) || fallback;
  }

  function draw(el) {
    var script = el.parentElement && el.parentElement.querySelector("script.chart-data");
    if (!script || el.dataset.drawn === "1" || typeof uPlot === "undefined") return;
    var data = JSON.parse(script.textContent);
    var color = cssVar("--primary", "#0b7285");
    var width = Math.max(200, el.clientWidth || 300);
    var opts = {
      width: width,
      height: 160,
      legend: { show: false },
      cursor: { drag: { x: false, y: false } },
      scales: { x: { time: true, range: function (u, min, max) { return [min - 43200, max + 43200]; } }, y: { range: function (u, min, max) { return [0, Math.max(1, max * 1.1)]; } } },
      axes: [
        { stroke: "#5f6b7a", grid: { show: false }, ticks: { show: false } },
        { stroke: "#5f6b7a", grid: { stroke: "#e6e9ee" }, ticks: { show: false }, size: 56 }
      ],
      series: [
        {},
        {
          label: data.label,
          stroke: color,
          width: 1,
          fill: color + "cc",
          points: { show: false },
          paths: uPlot.paths.bars({ size: [0.6, 28], align: 0 })
        }
      ]
    };
    el.innerHTML = "";
    var plot = new uPlot(opts, [data.x, data.y], el);
    el.dataset.drawn = "1";
    el._plot = plot;
  }

  function drawAll(root) {
    (root || document).querySelectorAll(".chart").forEach(draw);
  }

  window.Tollway = window.Tollway || {};
  window.Tollway.drawCharts = drawAll;

  document.addEventListener("DOMContentLoaded", function () { drawAll(document); });
  document.addEventListener("htmx:afterSettle", function (e) { drawAll(e.target); });
  window.addEventListener("resize", function () {
    document.querySelectorAll(".chart").forEach(function (el) {
      if (el._plot) el._plot.setSize({ width: Math.max(200, el.clientWidth), height: 160 });
    });
  });
})();
