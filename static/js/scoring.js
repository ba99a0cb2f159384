// Scoring page: clients per score (three bar series) and per value tier (pie), drawn with
// ECharts from <script type="application/json" id="scoring-charts-data"> (json_script).
(function () {
  "use strict";
  var TIER_COLORS = { guiding: "#0d6efd", development: "#198754", potential: "#0dcaf0",
                      long_tail: "#6c757d" };

  function initCharts() {
    var dataEl = document.getElementById("scoring-charts-data");
    if (!dataEl || typeof echarts === "undefined") { return; }
    var data = JSON.parse(dataEl.textContent);
    var charts = [];
    var scoreEl = document.getElementById("score-chart");
    if (scoreEl) {
      var scoreChart = echarts.init(scoreEl, null, { renderer: "svg" });
      scoreChart.setOption({
        animation: false,
        color: ["#1f4e79", "#48c9b0", "#eb984e"],
        title: { text: data.labels.scores_title, left: "center", textStyle: { fontSize: 13 } },
        tooltip: { trigger: "axis", axisPointer: { type: "shadow" }, confine: true,
                   formatter: CRM.axisTooltip() },
        legend: { bottom: 0 },
        grid: { left: 50, right: 20, top: 40, bottom: 60 },
        xAxis: { type: "category", name: data.labels.score, nameLocation: "middle", nameGap: 24,
                 data: data.scores },
        yAxis: { type: "value", name: data.labels.clients, minInterval: 1 },
        series: data.series.map(function (s) {
          return { type: "bar", name: s.name, data: s.data };
        })
      });
      charts.push(scoreChart);
    }
    var tierEl = document.getElementById("tier-chart");
    if (tierEl) {
      var tierChart = echarts.init(tierEl, null, { renderer: "svg" });
      tierChart.setOption({
        animation: false,
        title: { text: data.labels.tiers_title, left: "center", textStyle: { fontSize: 13 } },
        tooltip: { trigger: "item", confine: true, formatter: function (p) {
          return CRM.tooltip(p.name + ":", [["", p.value + " (" + p.percent + "%)"]]);
        } },
        // Every tier in the legend; empty ones get no slice (and no "0" label on top of another).
        legend: { bottom: 0, data: data.tiers.map(function (t) { return t.name; }) },
        color: data.tiers.map(function (t) { return TIER_COLORS[t.key]; }),
        series: [{
          type: "pie", radius: ["35%", "65%"], center: ["50%", "48%"],
          label: { formatter: "{c}" },
          data: data.tiers.filter(function (t) { return t.value > 0; }).map(function (t) {
            return { name: t.name, value: t.value, itemStyle: { color: TIER_COLORS[t.key] } };
          })
        }]
      });
      charts.push(tierChart);
    }
    window.addEventListener("resize", function () {
      charts.forEach(function (c) { c.resize(); });
    });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", initCharts);
  } else {
    initCharts();
  }
})();
