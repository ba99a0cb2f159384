// The branch manager's home page: open and overdue tasks per RM, drawn with ECharts from
// <script type="application/json" id="team-chart-data"> (json_script).
(function () {
  "use strict";

  function initChart() {
    var dataEl = document.getElementById("team-chart-data");
    var el = document.getElementById("team-chart");
    if (!dataEl || !el || typeof echarts === "undefined") { return; }
    var data = JSON.parse(dataEl.textContent);
    if (!data) { return; }
    var chart = echarts.init(el, null, { renderer: "svg" });
    chart.setOption({
      animation: false,
      color: ["#1f4e79", "#c0392b"],
      tooltip: { trigger: "axis", axisPointer: { type: "shadow" }, confine: true,
                 formatter: CRM.axisTooltip() },
      legend: { bottom: 0 },
      grid: { left: 40, right: 16, top: 16, bottom: 56, containLabel: true },
      xAxis: { type: "category", data: data.rms, axisLabel: { interval: 0, rotate: 30 } },
      yAxis: { type: "value", minInterval: 1 },
      series: [
        { type: "bar", name: data.labels.open, data: data.open },
        { type: "bar", name: data.labels.overdue, data: data.overdue }
      ]
    });
    window.addEventListener("resize", function () { chart.resize(); });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", initChart);
  } else {
    initChart();
  }
})();
