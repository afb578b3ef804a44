/* WDCharts: the charts of the web app and of exported reports, drawn with uPlot (static/vendor/uplot/).
 *
 * WDCharts.line(element, spec) draws one line chart into element, where spec is
 *   {title, x_label, y_label, log_x, log_y, range: [lo, hi] | null, smoothing: 0..1,
 *    series: [{name, x: [...], y: [...], min: [...] | null, max: [...] | null}]}
 * (min/max: the band of each downsampled bucket, drawn shaded around the line), and sets
 * element.dataset.series to the number of series drawn (the browser tests read it).
 * Series with different x values are aligned with uPlot.join. Smoothing is W&B's exponential moving average,
 * debiased so the first points are not pulled towards zero.
 */
(function (root) {
  "use strict";
  var COLORS = ["#5b8def", "#e8684a", "#5ad8a6", "#f6bd16", "#9270ca", "#ff9d4d", "#269a99", "#ff99c3",
                "#6dc8ec", "#945fb9"];

  function smooth(ys, factor) {
    if (!factor || factor <= 0) return ys;
    var out = new Array(ys.length), last = 0, n = 0;
    for (var i = 0; i < ys.length; i++) {
      var y = ys[i];
      if (y === null || y === undefined) { out[i] = null; continue; }
      n += 1;
      last = last * factor + (1 - factor) * y;
      out[i] = last / (1 - Math.pow(factor, n));
    }
    return out;
  }

  function line(element, spec) {
    var series = (spec.series || []).filter(function (s) { return s.x && s.x.length; });
    element.innerHTML = "";
    if (!root.uPlot || series.length === 0) {
      element.dataset.series = "0";
      return null;
    }
    var tables = series.map(function (s) {
      var t = [s.x, smooth(s.y, spec.smoothing)];
      if (s.min && s.max) { t.push(s.min, s.max); }
      return t;
    });
    var data = tables.length === 1 ? tables[0] : root.uPlot.join(tables);
    var useries = [{label: spec.x_label || "x"}], bands = [], index = 1;
    series.forEach(function (s, i) {
      var color = COLORS[i % COLORS.length];
      useries.push({label: s.name, stroke: color, width: 1.5, spanGaps: true, points: {show: false}});
      index += 1;
      if (s.min && s.max) {
        useries.push({label: s.name + " (min)", stroke: color + "40", width: 0.5, spanGaps: true,
                      points: {show: false}});
        useries.push({label: s.name + " (max)", stroke: color + "40", width: 0.5, spanGaps: true,
                      points: {show: false}});
        bands.push({series: [index + 1, index], fill: color + "26"});
        index += 2;
      }
    });
    var range = spec.range;
    var yScale = {distr: spec.log_y ? 3 : 1};
    if (range) {
      yScale.range = function (u, lo, hi) {
        return [range[0] === null ? lo : range[0], range[1] === null ? hi : range[1]];
      };
    }
    var opts = {
      width: Math.max(element.clientWidth || 0, 300),
      height: 240,
      series: useries,
      bands: bands,
      scales: {x: {time: false, distr: spec.log_x ? 3 : 1}, y: yScale},
      axes: [{label: spec.x_label || ""}, {label: spec.y_label || ""}],
      legend: {show: true},
    };
    var chart = new root.uPlot(opts, data, element);
    element.dataset.series = String(series.length);
    if (root.addEventListener) {
      root.addEventListener("resize", function () {
        chart.setSize({width: Math.max(element.clientWidth || 0, 300), height: 240});
      });
    }
    return chart;
  }

  root.WDCharts = root.WDCharts || {};
  root.WDCharts.line = line;
})(typeof window !== "undefined" ? window : this);
