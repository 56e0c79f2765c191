// Drift Monitor dashboard: the features x runs heatmap, drawn as a CSS grid of small cells
// from the heatmap's table (rows: features, columns: check runs). Colours come from a few
// classes (hm-0 .. hm-4) the server put on each table cell: no computed colours, no style
// attributes (CSP); only the grid's column count is set through the CSSOM.
"use strict";

(function () {
  function build(section) {
    var table = section.querySelector("table.heatmap-table");
    var holder = section.querySelector(".heatmap-plot");
    if (!table || !holder) return;
    var runs = Array.prototype.map.call(table.querySelectorAll("thead th[data-run]"), function (th) {
      return th.textContent.trim();
    });
    var grid = document.createElement("div");
    grid.className = "hm-grid";
    grid.style.gridTemplateColumns = "minmax(5rem, max-content) repeat(" + runs.length + ", minmax(0.5rem, 1.4rem))";
    table.querySelectorAll("tbody tr").forEach(function (tr) {
      var name = tr.querySelector("th").textContent.trim();
      var label = document.createElement("span");
      label.className = "hm-label";
      label.textContent = name;
      grid.appendChild(label);
      tr.querySelectorAll("td").forEach(function (td, i) {
        var level = td.getAttribute("data-level") || "0";
        var cell = document.createElement("span");
        cell.className = "hm-cell hm-" + level;
        cell.title = name + " · " + (runs[i] || "") + ": " + (td.textContent.trim() || "not tested");
        grid.appendChild(cell);
      });
    });
    holder.textContent = "";
    holder.appendChild(grid);
    section.classList.add("drawn");
  }

  function buildAll() {
    document.querySelectorAll('section.chart[data-chart="heatmap"]').forEach(build);
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", buildAll);
  } else {
    buildAll();
  }
})();
