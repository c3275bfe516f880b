// The status page's own script and stylesheet, as text served by maild (no build step): the script
// reads /status/data.json and draws the DMARC and TLSRPT history with uPlot; everything else on the
// page is rendered by the server. Plain ES2020, no modules, so any current browser runs it as is.

/** Series colours; the browser test looks for them on the canvases. */
export const CHART_COLOURS = { pass: "#2e7d32", fail: "#c62828", tlsOk: "#1565c0", tlsFail: "#ef6c00" };

export const STATUS_CLIENT_JS = `"use strict";
(function () {
  var colours = ${JSON.stringify(CHART_COLOURS)};
  function days(daily) {
    return daily.map(function (d) { return Date.parse(d.date + "T00:00:00Z") / 1000; });
  }
  function chart(el, title, daily, series) {
    if (!el) return;
    if (daily.length === 0) {
      el.textContent = "No reports in the last 30 days.";
      el.setAttribute("data-rendered", "empty");
      return;
    }
    var data = [days(daily)].concat(series.map(function (s) { return daily.map(function (d) { return d[s.key]; }); }));
    var opts = {
      title: title,
      width: Math.max(320, el.clientWidth || 640),
      height: 240,
      series: [{}].concat(series.map(function (s) {
        return { label: s.label, stroke: s.colour, fill: s.colour + "33", width: 2, points: { show: true, size: 7, fill: s.colour } };
      })),
      // the whole 30-day window, counts from zero: one report is a point in its month, not a decade
      scales: {
        x: { time: true, range: function () { var end = Math.ceil(Date.now() / 86400000) * 86400; return [end - 30 * 86400, end]; } },
        y: { range: function (u, min, max) { return [0, Math.max(1, Math.ceil(max * 1.15))]; } },
      },
      axes: [{}, { label: s0(series) }],
    };
    new uPlot(opts, data, el);
    el.setAttribute("data-rendered", "chart");
  }
  function s0(series) { return series[0].unit; }
  fetch("/status/data.json", { credentials: "same-origin" })
    .then(function (r) { if (!r.ok) throw new Error("status data: " + r.status); return r.json(); })
    .then(function (d) {
      chart(document.getElementById("dmarc-chart"), "DMARC results reported (messages per day)", d.history.dmarc.daily, [
        { key: "pass", label: "pass", colour: colours.pass, unit: "messages" },
        { key: "fail", label: "fail", colour: colours.fail, unit: "messages" },
      ]);
      chart(document.getElementById("tls-chart"), "TLS sessions reported (per day)", d.history.tlsrpt.daily, [
        { key: "successful", label: "successful", colour: colours.tlsOk, unit: "sessions" },
        { key: "failed", label: "failed", colour: colours.tlsFail, unit: "sessions" },
      ]);
    })
    .catch(function (e) {
      var m = document.getElementById("chart-error");
      if (m) m.textContent = String(e.message || e);
    });
})();
`;

export const STATUS_CSS = `body { font-family: system-ui, sans-serif; margin: 0 auto; max-width: 72rem; padding: 1rem 1.5rem; color: #1b1b1b; }
h1 { font-size: 1.4rem; } h2 { font-size: 1.1rem; margin-top: 2rem; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; width: 100%; font-size: 0.9rem; }
th, td { text-align: left; padding: 0.25rem 0.5rem; border-bottom: 1px solid #eee; vertical-align: top; }
.listed, .critical, .fail { color: #b00020; font-weight: 600; } .warning { color: #a15c00; font-weight: 600; }
.clear, .ok { color: #1b5e20; } .error { color: #6d4c41; }
.charts { display: grid; grid-template-columns: repeat(auto-fit, minmax(22rem, 1fr)); gap: 1rem; }
form.inline { display: inline; } button { margin-right: 0.5rem; }
.login { max-width: 22rem; margin: 4rem auto; } .login label { display: block; margin: 0.5rem 0; } .login input { width: 100%; }
.note { color: #555; font-size: 0.85rem; }
`;
