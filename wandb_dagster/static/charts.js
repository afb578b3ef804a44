/* WDCharts: the app's and exported reports' line charts, drawn with the vendored uPlot.
 *
 *   WDCharts.line(element, spec) -> {plot, spec, destroy()}
 *
 * spec = {title, x_label, y_label, log_x, log_y, range: [lo, hi] | null, smoothing: 0..1,
 *         series: [{name, x: [...], y: [...], min: [...] | null, max: [...] | null}],
 *         onzoom: function(lo, hi) | undefined}
 *
 * Each series may have its own x values (runs log at different steps); they are joined on one x axis.
 * min/max (the server's downsampling keeps each bucket's extremes) are drawn as a band around the line.
 * smoothing > 0 draws the exponential moving average over a faint raw line, as W&B does.
 * After drawing, element.dataset.series is the number of spec series drawn (browser tests read it), and
 * element.dataset.points the number of points. onzoom(lo, hi) is called when the user selects an x range
 * (lo = hi = null on double click: back to the whole run); the page fetches finer data and draws again.
 */
(function (global) {
  "use strict";

  var PALETTE = ["#5387dd", "#da4c4c", "#479a5f", "#e07040", "#7d54b2", "#229487", "#c565c7", "#a0a0a0",
                 "#f0b899", "#87ceeb"];

  function color(i, alpha) {
    var hex = PALETTE[i % PALETTE.length];
    if (alpha === undefined) { return hex; }
    var r = parseInt(hex.slice(1, 3), 16), g = parseInt(hex.slice(3, 5), 16), b = parseInt(hex.slice(5, 7), 16);
    return "rgba(" + r + "," + g + "," + b + "," + alpha + ")";
  }

  // Exponential moving average with W&B's debiasing (the first points are not pulled towards 0).
  function ema(values, smoothing) {
    var out = new Array(values.length), last = 0, weight = 0;
    for (var i = 0; i < values.length; i++) {
      var v = values[i];
      if (v === null || v === undefined || !isFinite(v)) { out[i] = null; continue; }
      last = last * smoothing + (1 - smoothing) * v;
      weight = weight * smoothing + (1 - smoothing);
      out[i] = last / weight;
    }
    return out;
  }

  function clean(values) {
    // uPlot draws numbers; anything else (a NaN logged as text, a missing value) is a gap.
    var out = new Array(values.length);
    for (var i = 0; i < values.length; i++) {
      var v = values[i];
      out[i] = (typeof v === "number" && isFinite(v)) ? v : null;
    }
    return out;
  }

  function legend(element, spec) {
    var box = document.createElement("div");
    box.className = "wd-legend";
    spec.series.forEach(function (s, i) {
      var item = document.createElement("span");
      item.className = "wd-legend-item";
      var swatch = document.createElement("i");
      swatch.style.background = color(i);
      item.appendChild(swatch);
      item.appendChild(document.createTextNode(String(s.name)));  // text, never HTML: names come from users
      box.appendChild(item);
    });
    element.appendChild(box);
  }

  function line(element, spec) {
    if (element._wdChart) { element._wdChart.destroy(); }
    element.innerHTML = "";
    var smoothing = Math.max(0, Math.min(0.999, +spec.smoothing || 0));
    var series = spec.series || [];
    // One table per spec series: [x, y, (min, max), (raw y when smoothed)], joined on x below.
    var tables = [], opts = [{label: spec.x_label || "x"}], bands = [], column = 1, points = 0;
    series.forEach(function (s, i) {
      var x = clean(s.x), y = clean(s.y), table = [x];
      points += x.length;
      var hasBand = s.min && s.max && s.min.length === x.length && s.max.length === x.length;
      if (hasBand) {
        table.push(clean(s.max), clean(s.min));
        opts.push({label: s.name + " max", stroke: color(i, 0.25), width: 1, points: {show: false}});
        opts.push({label: s.name + " min", stroke: color(i, 0.25), width: 1, points: {show: false}});
        bands.push({series: [column, column + 1], fill: color(i, 0.15)});
        column += 2;
      }
      if (smoothing > 0) {
        table.push(y);
        opts.push({label: s.name + " raw", stroke: color(i, 0.3), width: 1, points: {show: false}});
        column += 1;
        y = ema(y, smoothing);
      }
      table.push(y);
      opts.push({label: String(s.name), stroke: color(i), width: 1.5});
      column += 1;
      tables.push(table);
    });
    var data = tables.length ? global.uPlot.join(tables) : [[]];

    if (spec.title) {
      var title = document.createElement("div");
      title.className = "wd-chart-title";
      title.textContent = spec.title;
      element.appendChild(title);
    }
    var holder = document.createElement("div");
    element.appendChild(holder);
    legend(element, spec);

    var yScale = {distr: spec.log_y ? 3 : 1};
    if (spec.range && spec.range.length === 2 && spec.range[0] !== null && spec.range[1] !== null) {
      yScale.range = [spec.range[0], spec.range[1]];
      yScale.auto = false;
    }
    var drawn = function () {
      element.dataset.series = String(series.length);
      element.dataset.points = String(points);
    };
    var options = {
      width: Math.max(200, element.clientWidth || 600),
      height: spec.height || 220,
      legend: {show: false},
      cursor: {drag: {x: true, y: false}},
      scales: {x: {time: false, distr: spec.log_x ? 3 : 1}, y: yScale},
      axes: [{label: spec.x_label || null}, {label: spec.y_label || null}],
      series: opts.map(function (o, i) { if (i > 0) { o.spanGaps = true; } return o; }),
      bands: bands,
      hooks: {
        draw: [drawn],
        setSelect: [function (u) {
          if (!spec.onzoom || u.select.width < 2) { return; }
          spec.onzoom(u.posToVal(u.select.left, "x"), u.posToVal(u.select.left + u.select.width, "x"));
        }],
      },
    };
    var plot = new global.uPlot(options, data, holder);
    if (spec.onzoom) {
      holder.addEventListener("dblclick", function () { spec.onzoom(null, null); });
    }
    var handle = {plot: plot, spec: spec, destroy: function () { plot.destroy(); }};
    element._wdChart = handle;
    return handle;
  }

  global.WDCharts = {line: line, ema: ema, palette: PALETTE};
})(window);
