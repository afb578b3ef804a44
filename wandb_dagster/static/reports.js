/* The line plots of a report (the app's report page and report.to_html's file): each [data-wd-chart] element
 * is drawn by WDCharts.line from the spec of the same id in the JSON of #wd-report-data. When that JSON has
 * "zoom" (the app's chart endpoint), selecting an x range fetches the range again at the finer resolution
 * (element.dataset.zoomed = "lo,hi" once drawn); a double click goes back to the whole chart.
 */
(function () {
  "use strict";
  var holder = document.getElementById("wd-report-data");
  if (!holder || !window.WDCharts) { return; }
  var data = JSON.parse(holder.textContent);

  function draw(node, id, spec) {
    if (data.zoom) {
      spec.onzoom = function (lo, hi) {
        if (lo === null || hi === null) { draw(node, id, data.charts[id]); return; }
        fetch(data.zoom + "/" + encodeURIComponent(id) + "?min=" + lo + "&max=" + hi, {credentials: "same-origin"})
          .then(function (r) { if (!r.ok) { throw new Error(r.status + " " + r.statusText); } return r.json(); })
          .then(function (zoomed) { node.dataset.zoomed = lo + "," + hi; draw(node, id, zoomed); })
          .catch(function (err) { node.dataset.error = String(err); });
      };
    }
    window.WDCharts.line(node, spec);
  }

  document.querySelectorAll("[data-wd-chart]").forEach(function (node) {
    var id = node.getAttribute("data-wd-chart");
    if (data.charts[id]) { draw(node, id, data.charts[id]); }
  });
})();
