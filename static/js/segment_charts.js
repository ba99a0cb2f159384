// Charts of the segment pages, drawn with ECharts from json_script data:
// a segment's size after each refresh (line) and the overlap between personas (heatmap).
(function () {
  "use strict";

  function data(id) {
    var el = document.getElementById(id);
    return el ? JSON.parse(el.textContent) : null;
  }

  function history(charts) {
    var el = document.getElementById("segment-history-chart");
    var points = data("segment-history-data");
    if (!el || !points) { return; }
    var labels = data("segment-history-labels") || {};
    var chart = echarts.init(el, null, { renderer: "svg" });
    chart.setOption({
      animation: false,
      color: ["#1f4e79", "#198754", "#adb5bd"],
      tooltip: { trigger: "axis", confine: true, formatter: CRM.axisTooltip() },
      legend: { bottom: 0 },
      grid: { left: 60, right: 20, top: 20, bottom: 60 },
      xAxis: { type: "category", data: points.map(function (p) { return p.at; }) },
      yAxis: { type: "value", minInterval: 1 },
      series: [
        { type: "line", name: labels.size, data: points.map(function (p) { return p.size; }),
          symbolSize: 6, areaStyle: { opacity: 0.08 } },
        { type: "bar", name: labels.joined, data: points.map(function (p) { return p.joined; }),
          barMaxWidth: 12 },
        { type: "bar", name: labels.left, data: points.map(function (p) { return p.left; }),
          barMaxWidth: 12 }
      ]
    });
    charts.push(chart);
  }

  function overlap(charts) {
    var el = document.getElementById("persona-overlap-chart");
    var d = data("persona-overlap-data");
    if (!el || !d) { return; }
    var max = 1;
    d.matrix.forEach(function (c) { if (c[2] > max) { max = c[2]; } });
    var chart = echarts.init(el, null, { renderer: "svg" });
    chart.setOption({
      animation: false,
      // Segment names are data anyone with the API can set: escaped (CRM.tooltip), never HTML.
      // Confined, and no position: "top": ECharts draws a tooltip's arrow with a style attribute.
      tooltip: {
        confine: true,
        formatter: function (p) {
          return CRM.tooltip(d.names[p.value[1]] + " × " + d.names[p.value[0]] + ":",
                             [["", p.value[2]]]);
        }
      },
      grid: { left: 10, right: 30, top: 10, bottom: 60, containLabel: true },
      xAxis: { type: "category", data: d.names, axisLabel: { rotate: 35, interval: 0 },
               splitArea: { show: true } },
      yAxis: { type: "category", data: d.names, axisLabel: { interval: 0 }, inverse: true,
               splitArea: { show: true } },
      visualMap: { min: 0, max: max, calculable: false, orient: "horizontal", left: "center",
                   bottom: 0, itemHeight: 160, inRange: { color: ["#f4f6f9", "#85c1e9", "#1f4e79"] } },
      series: [{ type: "heatmap", name: d.title, data: d.matrix,
                 label: { show: true, fontSize: 11,
                          formatter: function (p) { return p.value[2] ? String(p.value[2]) : ""; } },
                 emphasis: { itemStyle: { borderColor: "#14283d", borderWidth: 1 } } }]
    });
    charts.push(chart);
  }

  function init() {
    if (typeof echarts === "undefined") { return; }
    var charts = [];
    history(charts);
    overlap(charts);
    window.addEventListener("resize", function () {
      charts.forEach(function (c) { c.resize(); });
    });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
})();
