/* simpost report: every figure with a data-series attribute becomes an explorable uPlot chart
   (hover: values in the legend; drag: zoom into a range, double-click: back; legend click: a
   line on or off). The PNG stays in the page for printing and for browsers without scripts.
   Nothing is fetched: the numbers are the figure's own attribute. */
(function () {
  "use strict";
  var COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
                "#7f7f7f", "#bcbd22", "#17becf"];

  function fmt(v) {
    if (v === null || v === undefined || isNaN(v)) return "\u2013";
    var a = Math.abs(v);
    return (a !== 0 && (a >= 1e7 || a < 1e-4)) ? v.toExponential(4) : String(+v.toPrecision(6));
  }

  /* the lines' own x values united, each line's y (and interval) placed on them, null elsewhere */
  function aligned(lines) {
    var seen = {}, xs = [];
    lines.forEach(function (l) {
      l.x.forEach(function (x) { if (x !== null && !seen[x]) { seen[x] = true; xs.push(x); } });
    });
    xs.sort(function (a, b) { return a - b; });
    var at = {};
    xs.forEach(function (x, i) { at[x] = i; });
    function place(l, key) {
      var col = new Array(xs.length).fill(null);
      l.x.forEach(function (x, i) { if (x !== null) col[at[x]] = l[key][i]; });
      return col;
    }
    return {x: xs, y: lines.map(function (l) { return place(l, "y"); }),
            low: lines.map(function (l) { return l.low ? place(l, "low") : null; }),
            high: lines.map(function (l) { return l.high ? place(l, "high") : null; })};
  }

  /* what a chart kind draws, as uPlot lines: {label, x, y, low?, high?, stepped?, dash?} */
  function linesOf(s) {
    if (s.bars && s.bars.length) {
      return s.bars.map(function (b) {
        return {label: b.label, x: b.edges, y: b.counts.concat([null]), stepped: true};
      });
    }
    if (s.band) {
      var b = s.band;
      return [{label: "min", x: b.x, y: b.min}, {label: "median", x: b.x, y: b.median},
              {label: "max", x: b.x, y: b.max}, {label: "mean", x: b.x, y: b.mean, dash: [5, 4]}];
    }
    return s.lines.map(function (l) {
      return {label: l.label, x: l.x, y: l.y, low: l.style === "errorbar" || l.style === "bar" ? l.low : null,
              high: l.style === "errorbar" || l.style === "bar" ? l.high : null,
              stepped: l.style === "steps-post", points: l.style === "points" || l.style === "errorbar"};
    });
  }

  /* the 95% intervals of a study chart as whiskers, for the lines that are shown */
  function whiskers(d) {
    return {hooks: {draw: [function (u) {
      var ctx = u.ctx;
      ctx.save();
      ctx.beginPath();
      ctx.rect(u.bbox.left, u.bbox.top, u.bbox.width, u.bbox.height);
      ctx.clip();
      ctx.lineWidth = 1.2 * devicePixelRatio;
      d.low.forEach(function (low, k) {
        if (!low || !u.series[k + 1].show) return;
        ctx.strokeStyle = COLORS[k % COLORS.length];
        for (var i = 0; i < d.x.length; i++) {
          if (low[i] === null || d.high[k][i] === null) continue;
          var x = u.valToPos(d.x[i], "x", true), cap = 4 * devicePixelRatio;
          var y0 = u.valToPos(low[i], "y", true), y1 = u.valToPos(d.high[k][i], "y", true);
          ctx.beginPath();
          ctx.moveTo(x, y0); ctx.lineTo(x, y1);
          ctx.moveTo(x - cap, y0); ctx.lineTo(x + cap, y0);
          ctx.moveTo(x - cap, y1); ctx.lineTo(x + cap, y1);
          ctx.stroke();
        }
      });
      ctx.restore();
    }]}};
  }

  function build(fig) {
    var s = JSON.parse(fig.getAttribute("data-series"));
    var lines = linesOf(s), d = aligned(lines), cats = s.categories;
    var series = [{label: s.xlabel || (s.kind === "histogram" ? "bin" : "time [s]"),
                   value: function (u, v) { return cats ? (cats[v] || "") : fmt(v); }}];
    lines.forEach(function (l, k) {
      var color = COLORS[k % COLORS.length];
      series.push({
        label: l.label, stroke: color, width: 1.4, dash: l.dash, spanGaps: true,
        points: {show: !!l.points || d.x.length < 40, size: 6, fill: color},
        paths: cats ? uPlot.paths.bars({size: [0.6, 80]}) : (l.stepped ? uPlot.paths.stepped({align: 1}) : undefined),
        fill: cats ? color + "99" : undefined,
        value: function (u, v, si, i) {
          if (i === null || i === undefined) return fmt(v);
          var lo = d.low[k], hi = d.high[k];
          return fmt(v) + (lo && lo[i] !== null ? " [" + fmt(lo[i]) + ", " + fmt(hi[i]) + "]" : "");
        }
      });
    });
    var host = document.createElement("div");
    host.className = "chart-live";
    fig.insertBefore(host, fig.firstChild);
    var opts = {
      width: Math.max(320, host.clientWidth || fig.clientWidth || 900), height: 340,
      series: series, plugins: d.low.some(function (x) { return x; }) ? [whiskers(d)] : [],
      scales: {x: {time: false}, y: {range: function (u, lo, hi) {  /* the intervals shown too */
        d.low.forEach(function (col, k) {
          if (!col || !u.series[k + 1].show) return;
          col.forEach(function (v) { if (v !== null && v < lo) lo = v; });
          d.high[k].forEach(function (v) { if (v !== null && v > hi) hi = v; });
        });
        return uPlot.rangeNum(lo, hi, 0.1, true);
      }}},
      cursor: {drag: {x: true, y: false}},
      axes: [{label: series[0].label, values: cats ? function (u, vals) {
               return vals.map(function (v) { return cats[v] || ""; }); } : undefined,
              splits: cats ? function () { return cats.map(function (c, i) { return i; }); } : undefined},
             {label: s.ylabel || "", size: 70}]
    };
    var data = [d.x].concat(d.y);
    var chart = new uPlot(opts, data, host);
    fig.classList.add("live");
    return chart;
  }

  function start() {
    var figs = document.querySelectorAll("figure[data-series]");
    for (var i = 0; i < figs.length; i++) {
      try { build(figs[i]); } catch (e) { figs[i].classList.add("static"); }
    }
    document.documentElement.setAttribute("data-charts", String(figs.length));
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
