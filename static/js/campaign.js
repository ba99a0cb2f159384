// The campaign results charts: the funnel per arm and each variant's uplift against the
// holdout with its 95% interval. Data comes from a json_script block; labels are escaped
// (CRM.axisTooltip) before ECharts puts them into a tooltip.
(function () {
  "use strict";
  var node = document.getElementById("campaign-results-data");
  if (!node || !window.echarts) { return; }
  var data = JSON.parse(node.textContent);
  var labels = data.labels;
  var funnelBox = document.getElementById("funnel-chart");
  if (funnelBox) {
    var keys = ["members", "contacted", "delivered", "responded", "converted"];
    var funnel = echarts.init(funnelBox);
    funnel.setOption({
      tooltip: { trigger: "axis", formatter: CRM.axisTooltip() },
      legend: { top: 0 },
      grid: { left: 48, right: 16, top: 32, bottom: 28 },
      xAxis: { type: "category", data: keys.map(function (k) { return labels[k]; }) },
      yAxis: { type: "value" },
      toolbox: { feature: { saveAsImage: {} } },
      series: data.arms.map(function (arm, i) {
        return { name: arm, type: "bar", data: keys.map(function (k) { return data.funnel[k][i]; }) };
      })
    });
    window.addEventListener("resize", function () { funnel.resize(); });
  }
  var upliftBox = document.getElementById("uplift-chart");
  if (upliftBox) {
    var rows = data.uplift.filter(function (u) { return u.absolute !== null; });
    var chart = echarts.init(upliftBox);
    chart.setOption({
      tooltip: { trigger: "axis", formatter: CRM.axisTooltip(function (v) { return Number(v).toFixed(4); }) },
      grid: { left: 56, right: 16, top: 16, bottom: 28 },
      toolbox: { feature: { saveAsImage: {} } },
      xAxis: { type: "category", data: rows.map(function (u) { return u.variant; }) },
      yAxis: { type: "value" },
      series: [
        { name: labels.uplift, type: "scatter", symbolSize: 12, data: rows.map(function (u) { return u.absolute; }),
          markLine: { silent: true, symbol: "none", data: [{ yAxis: 0 }] } },
        { name: "95% CI", type: "custom", data: rows.map(function (u, i) { return [i, u.low, u.high]; }),
          renderItem: function (params, api) {
            var low = api.coord([api.value(0), api.value(1)]);
            var high = api.coord([api.value(0), api.value(2)]);
            return { type: "group", children: [
              { type: "line", shape: { x1: low[0], y1: low[1], x2: high[0], y2: high[1] }, style: { stroke: "#0d6efd", lineWidth: 2 } },
              { type: "line", shape: { x1: low[0] - 8, y1: low[1], x2: low[0] + 8, y2: low[1] }, style: { stroke: "#0d6efd", lineWidth: 2 } },
              { type: "line", shape: { x1: high[0] - 8, y1: high[1], x2: high[0] + 8, y2: high[1] }, style: { stroke: "#0d6efd", lineWidth: 2 } }
            ] };
          } }
      ]
    });
    window.addEventListener("resize", function () { chart.resize(); });
  }
})();
