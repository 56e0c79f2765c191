// Drift Monitor dashboard: draws each chart with uPlot from the HTML table of its numbers
// (the table is the source: the page works without this script, and nothing is fetched
// twice). A chart section: <section class="chart" data-chart="..."> holding a .chart-plot
// placeholder and a table whose header cells carry data-key and whose cells carry
// data-value; the table's data-plot lists the columns to draw.
"use strict";

(function () {
  function cssVar(name, fallback) {
    var value = getComputedStyle(document.documentElement).getPropertyValue(name).trim();
    return value || fallback;
  }

  function palette() {
    return [
      cssVar("--chart-1", "#c0392b"),
      cssVar("--chart-2", "#1f77b4"),
      cssVar("--chart-3", "#7f7f7f"),
      cssVar("--chart-4", "#d68910"),
      cssVar("--chart-5", "#8e44ad"),
      cssVar("--chart-6", "#16a085"),
    ];
  }

  // A cell's data-value as a number: empty is null, a flag ("true"/"false") is 1/0.
  function cellNumber(raw) {
    if (raw === null || raw === "") return null;
    if (raw === "true") return 1;
    if (raw === "false") return 0;
    var n = Number(raw);
    return isFinite(n) ? n : null;
  }

  // {keys: [...], labels: {...}, x: [...], columns: {key: [...]}} from a table.
  function readTable(table, isTime) {
    var heads = table.querySelectorAll("thead th");
    var keys = [];
    var labels = {};
    heads.forEach(function (th) {
      var key = th.getAttribute("data-key");
      keys.push(key);
      labels[key] = th.textContent.trim();
    });
    var x = [];
    var columns = {};
    keys.forEach(function (k) { columns[k] = []; });
    table.querySelectorAll("tbody tr").forEach(function (tr) {
      var cells = tr.querySelectorAll("th, td");
      cells.forEach(function (cell, i) {
        var raw = cell.getAttribute("data-value");
        var key = keys[i];
        if (i === 0) {
          x.push(isTime ? Date.parse(raw) / 1000 : raw);
        } else if (key) {
          columns[key].push(cellNumber(raw));
        }
      });
    });
    return { keys: keys, labels: labels, x: x, columns: columns };
  }

  function plotKeys(table, data) {
    var wanted = (table.getAttribute("data-plot") || "").split(",");
    return wanted.filter(function (k) {
      return k && data.columns[k] && data.columns[k].some(function (v) { return v !== null; });
    });
  }

  function axes() {
    var fg = cssVar("--muted", "#555");
    var grid = cssVar("--border", "#ccc");
    return [
      { stroke: fg, grid: { stroke: grid, width: 1 }, ticks: { stroke: grid } },
      { stroke: fg, grid: { stroke: grid, width: 1 }, ticks: { stroke: grid } },
    ];
  }

  // The time charts span the window the server charted (a lone bucket would otherwise
  // get an arbitrary range of years), counts start at zero.
  function timeScales(table) {
    var start = Date.parse(table.getAttribute("data-start") || "");
    var end = Date.parse(table.getAttribute("data-end") || "");
    var x = { time: true };
    if (isFinite(start) && isFinite(end) && end > start) {
      x.range = [start / 1000, end / 1000];
    }
    return {
      x: x,
      y: {
        range: function (u, min, max) {
          var top = max > 0 ? max * 1.08 : 1;
          return [Math.min(0, min || 0), top];
        },
      },
    };
  }

  function width(holder) {
    return Math.max(280, holder.clientWidth || holder.parentElement.clientWidth || 600);
  }

  // Runs per bucket as stacked bars: each series is drawn as the running sum of itself and
  // the ones below it, largest first, so the smaller ones cover its lower part.
  function timeline(holder, table) {
    var data = readTable(table, true);
    var keys = plotKeys(table, data);
    var colors = palette();
    var stacked = [];
    var sums = data.x.map(function () { return 0; });
    keys.forEach(function (k) {
      sums = sums.map(function (s, i) { return s + (data.columns[k][i] || 0); });
      stacked.push(sums.slice());
    });
    var series = [{}];
    var rows = [data.x];
    for (var i = keys.length - 1; i >= 0; i--) {
      (function (key, idx) {
        series.push({
          label: data.labels[key],
          fill: colors[idx % colors.length],
          stroke: colors[idx % colors.length],
          paths: uPlot.paths.bars({ size: [0.8, 40] }),
          points: { show: false },
          value: function (u, v, si, at) {
            return at == null ? "" : String(data.columns[key][at] || 0);
          },
        });
        rows.push(stacked[idx]);
      })(keys[i], i);
    }
    return { series: series, data: rows, scales: timeScales(table) };
  }

  function lines(holder, table) {
    var data = readTable(table, true);
    var keys = plotKeys(table, data);
    var colors = palette();
    var series = [{}];
    var rows = [data.x];
    keys.forEach(function (key, idx) {
      var dashed = key === "threshold";
      series.push({
        label: data.labels[key],
        stroke: colors[(idx + 1) % colors.length],
        width: 2,
        dash: dashed ? [6, 4] : undefined,
        spanGaps: dashed,
        points: { show: true, size: 5 },
      });
      rows.push(data.columns[key]);
    });
    return { series: series, data: rows, scales: timeScales(table) };
  }

  // Reference against current on the same bins: two bars per bin, shares of each sample.
  function histogram(holder, table) {
    var data = readTable(table, false);
    var keys = plotKeys(table, data);
    var colors = palette();
    var labels = data.x;
    var xs = labels.map(function (_, i) { return i; });
    var series = [{ label: "Bin", value: function (u, v) { return v == null ? "" : labels[v]; } }];
    var rows = [xs];
    keys.forEach(function (key, idx) {
      series.push({
        label: data.labels[key],
        fill: colors[(idx + 1) % colors.length],
        stroke: colors[(idx + 1) % colors.length],
        paths: uPlot.paths.bars({ size: [0.4, 60], align: idx === 0 ? -1 : 1 }),
        points: { show: false },
        value: function (u, v) { return v == null ? "" : (v * 100).toFixed(1) + " %"; },
      });
      rows.push(data.columns[key]);
    });
    var ax = axes();
    ax[0].values = function (u, splits) {
      return splits.map(function (s) { return Number.isInteger(s) && labels[s] !== undefined ? labels[s] : ""; });
    };
    ax[0].splits = function () { return xs; };
    ax[0].rotate = labels.length > 8 ? -45 : 0;
    ax[0].size = labels.length > 8 ? 80 : 40;
    return {
      series: series,
      data: rows,
      axes: ax,
      scales: { x: { time: false, range: [-0.75, labels.length - 0.25] }, y: { range: [0, null] } },
    };
  }

  // Performance tab (issue 10): one metric per window. Realised values of complete windows
  // are a line; incomplete windows' (provisional) are hollow points only, never joined to
  // the final ones; the estimate is dashed inside its shaded 95 % band; the reference is a
  // dashed level line.
  function performance(holder, table) {
    var data = readTable(table, true);
    var colors = palette();
    var complete = data.columns.complete || [];
    var realised = data.columns.realised || [];
    var has = function (k) {
      return data.columns[k] && data.columns[k].some(function (v) { return v !== null; });
    };
    var series = [{}];
    var rows = [data.x];
    var bands = [];
    var bg = cssVar("--bg", "#fff");
    series.push({ label: "Realised", stroke: colors[1], width: 2, points: { show: true, size: 6 } });
    rows.push(realised.map(function (v, i) { return complete[i] === 1 ? v : null; }));
    if (complete.some(function (c, i) { return c === 0 && realised[i] !== null; })) {
      series.push({
        label: "Realised, provisional (incomplete window)",
        stroke: colors[3],
        width: 2,
        paths: function () { return null; },
        points: { show: true, size: 9, fill: bg, width: 2 },
      });
      rows.push(realised.map(function (v, i) { return complete[i] === 0 ? v : null; }));
    }
    if (has("estimated_low") && has("estimated_high")) {
      var band = cssVar("--chart-band", "rgba(11, 87, 181, 0.16)");
      series.push({ label: "Estimated, high", stroke: band, width: 1, points: { show: false } });
      rows.push(data.columns.estimated_high);
      series.push({ label: "Estimated, low", stroke: band, width: 1, points: { show: false } });
      rows.push(data.columns.estimated_low);
      bands.push({ series: [series.length - 2, series.length - 1], fill: band });
    }
    if (has("estimated")) {
      series.push({
        label: "Estimated",
        stroke: colors[5],
        width: 2,
        dash: [4, 4],
        points: { show: true, size: 4 },
      });
      rows.push(data.columns.estimated);
    }
    if (has("reference")) {
      series.push({
        label: "Reference",
        stroke: colors[2],
        width: 2,
        dash: [8, 5],
        spanGaps: true,
        points: { show: false },
      });
      rows.push(data.columns.reference);
    }
    var scales = timeScales(table);
    scales.y = { auto: true };
    return { series: series, data: rows, scales: scales, bands: bands };
  }

  var KINDS = {
    timeline: timeline,
    feature: lines,
    violations: lines,
    histogram: histogram,
    performance: performance,
    coverage: lines,
  };

  function draw(section) {
    var kind = section.getAttribute("data-chart");
    var make = KINDS[kind];
    var holder = section.querySelector(".chart-plot");
    var table = section.querySelector("table[data-plot]");
    if (!make || !holder || !table || typeof uPlot === "undefined") return;
    var spec = make(holder, table);
    if (spec.data[0].length === 0 || spec.series.length < 2) return;
    holder.textContent = "";
    var heading = section.querySelector("h2, h3");
    var opts = {
      title: "",
      width: width(holder),
      height: 260,
      series: spec.series,
      axes: spec.axes || axes(),
      scales: spec.scales,
      legend: { show: true },
      cursor: { focus: { prox: 16 } },
    };
    if (spec.bands && spec.bands.length) opts.bands = spec.bands;
    var plot = new uPlot(opts, spec.data, holder);
    section.classList.add("drawn");
    holder.setAttribute("data-title", heading ? heading.textContent.trim() : kind);
    var pending = null;
    window.addEventListener("resize", function () {
      clearTimeout(pending);
      pending = setTimeout(function () {
        plot.setSize({ width: width(holder), height: 260 });
      }, 150);
    });
  }

  function drawAll() {
    document.querySelectorAll("section.chart[data-chart]:not(.drawn)").forEach(function (section) {
      try {
        draw(section);
      } catch (err) {
        // A chart that cannot be drawn leaves its table, which holds the same numbers.
        if (window.console) console.warn("chart not drawn:", err);
      }
    });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", drawAll);
  } else {
    drawAll();
  }
  // Content swapped in by htmx (a run's page refreshed when it finishes) gets drawn too.
  document.addEventListener("htmx:afterSettle", drawAll);
})();
