/* The run page's and the compare page's charts: one chart per history key (W&B's default workspace),
 * every run of the page a series on it, drawn by WDCharts.line from the server's downsampled history.
 *
 *   WDRunPage.start({runs: [{id, name, history, system}], system: true|false})
 *
 * Each chart is a <div class="chart" data-key="..."> made in #charts, for every key some run has numbers in. Selecting an x range on a chart fetches
 * that range again (finer buckets); a double click goes back to the whole run. When every chart is drawn,
 * document.body.dataset.chartsDrawn holds their number (the browser tests and the bench wait for it); first
 * from evenly spaced rows, then chartsExact when the exact buckets (with min/max bands) are drawn.
 */
(function (global) {
  "use strict";

  function getJSON(url) {
    return fetch(url, {credentials: "same-origin"}).then(function (r) {
      if (!r.ok) { return r.text().then(function (t) { throw new Error(url + ": " + r.status + " " + t); }); }
      return r.json();
    });
  }

  function historyUrl(run, keys, lo, hi, quick) {
    var q = quick ? ["quick=1"] : [];
    if (keys) { q.push("keys=" + keys.map(encodeURIComponent).join(",")); }
    if (lo !== null && lo !== undefined) { q.push("min_step=" + Math.floor(lo)); }
    if (hi !== null && hi !== undefined) { q.push("max_step=" + Math.ceil(hi)); }
    return run.history + (q.length ? "?" + q.join("&") : "");
  }

  function seriesOf(runs, views, key) {
    var out = [];
    runs.forEach(function (run, i) {
      var s = views[i] && views[i].keys[key];
      if (s && s.x.length) { out.push({name: run.name, x: s.x, y: s.y, min: s.min, max: s.max}); }
    });
    return out;
  }

  var smoothing = 0;  // the page's smoothing slider (#smoothing), as W&B's
  var drawn = [];     // [element, key, runs, views] of every chart, to draw again when smoothing changes

  function draw(element, key, runs, views, xLabel) {
    var spec = {title: key, x_label: xLabel, smoothing: smoothing, series: seriesOf(runs, views, key)};
    element._wdDraw = [element, key, runs, views, xLabel];
    if (drawn.indexOf(element) < 0) { drawn.push(element); }
    spec.onzoom = function (lo, hi) {
      element._wdZoomed = lo !== null;  // the exact view of the whole run must not undo a zoom
      Promise.all(runs.map(function (run) { return getJSON(historyUrl(run, [key], lo, hi)); }))
        .then(function (zoomed) { draw(element, key, runs, zoomed, xLabel); })
        .catch(function (err) { element.dataset.error = String(err); });
    };
    WDCharts.line(element, spec);
  }

  function drawSystem(run) {
    var box = document.getElementById("system-charts");
    if (!box) { return Promise.resolve(); }
    return getJSON(run.system).then(function (view) {
      var keys = Object.keys(view.keys);
      if (!keys.length) { box.outerHTML = '<p class="muted" id="system-charts">No system metrics sampled.</p>'; return; }
      keys.forEach(function (key) {
        var div = document.createElement("div");
        div.className = "chart";
        div.dataset.key = key;
        box.appendChild(div);
        var s = view.keys[key];
        WDCharts.line(div, {title: key, x_label: "_runtime (s)",
                            series: [{name: run.name, x: s.x, y: s.y, min: s.min, max: s.max}]});
      });
    });
  }

  function watchSmoothing() {
    var slider = document.getElementById("smoothing");
    if (!slider) { return; }
    var label = document.getElementById("smoothing-value");
    slider.addEventListener("input", function () {
      smoothing = Math.max(0, Math.min(0.99, parseFloat(slider.value) || 0));
      if (label) { label.textContent = smoothing.toFixed(2); }
      drawn.forEach(function (el) { draw.apply(null, el._wdDraw); });
    });
  }

  function keysOf(views) {
    var keys = {};
    views.forEach(function (view) {
      Object.keys(view.keys).forEach(function (k) { if (view.keys[k].x.length) { keys[k] = true; } });
    });
    return Object.keys(keys).sort();
  }

  function chartFor(box, key) {
    var found = box.querySelector('.chart[data-key="' + CSS.escape(key) + '"]');
    if (found) { return found; }
    var el = document.createElement("div");
    el.className = "chart";
    el.dataset.key = key;
    box.appendChild(el);
    return el;
  }

  function drawAll(box, runs, views) {
    var names = keysOf(views);
    names.forEach(function (key) {
      var el = chartFor(box, key);
      if (!el._wdZoomed) { draw(el, key, runs, views, "_step"); }
    });
    return names.length;
  }

  function nextFrame(value) {
    return new Promise(function (resolve) { requestAnimationFrame(function () { resolve(value); }); });
  }

  // Two passes, as W&B's run page: evenly spaced rows first (the charts are drawn at once, even for a long
  // run), then the exact buckets with each one's min and max, when the server has them (at once when the
  // first pass took every row). chartsDrawn / chartsDrawnMs mark the first, chartsExact / chartsExactMs
  // the second.
  function start(config) {
    watchSmoothing();
    var box = document.getElementById("charts");
    var body = document.body.dataset;
    var fail = function (err) { body.chartsError = String(err); throw err; };
    var first = Promise.all(config.runs.map(function (run) { return getJSON(historyUrl(run, null, null, null, true)); }))
      .then(function (views) {
        var count = drawAll(box, config.runs, views);
        if (!count) { box.innerHTML = '<p class="muted">No numeric history logged.</p>'; }
        return nextFrame([views, count]);
      })
      .then(function (result) {
        body.chartsDrawnMs = String(Math.round(performance.now()));
        body.chartsDrawn = String(result[1]);
        return result[0];
      }, fail);
    var done = first.then(function (views) {
      var exact = views.every(function (v) { return v.exact; });
      var more = exact ? Promise.resolve(null)
        : Promise.all(config.runs.map(function (run) { return getJSON(historyUrl(run, null)); }));
      return more.then(function (full) {
        if (full) { drawAll(box, config.runs, full); }
        return nextFrame();
      }).then(function () {
        body.chartsExactMs = String(Math.round(performance.now()));
        body.chartsExact = String(box.querySelectorAll(".chart").length);
      }, fail);
    });
    if (config.system && config.runs.length === 1) {
      drawSystem(config.runs[0]).catch(function (err) { body.systemError = String(err); });
    }
    return done;
  }

  global.WDRunPage = {start: start};
})(window);
