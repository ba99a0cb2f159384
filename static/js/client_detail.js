// Client 360: the allocation pie. Data comes from <script type="application/json"
// id="allocation-data"> (Django's json_script), never from inline JS.
(function () {
  "use strict";
  function initAllocation() {
    var holder = document.getElementById("allocation-chart");
    var dataEl = document.getElementById("allocation-data");
    if (!holder || !dataEl || typeof echarts === "undefined") { return; }
    var data = JSON.parse(dataEl.textContent);
    var chart = echarts.init(holder, null, { renderer: "svg" });
    var money = new Intl.NumberFormat(document.documentElement.lang || undefined, {
      style: "currency", currency: "CNY", maximumFractionDigits: 0
    });
    chart.setOption({
      animation: false,
      color: ["#1f4e79", "#2e86c1", "#48c9b0", "#f4d03f", "#eb984e", "#a569bd", "#5d6d7e", "#c0392b"],
      tooltip: {
        trigger: "item", confine: true,  // confined: no arrow (ECharts draws it with a style attribute)
        formatter: function (p) {
          return CRM.tooltip(p.name, [["", money.format(p.value) + " (" + p.percent + "%)"]]);
        }
      },
      legend: { orient: "vertical", left: "62%", top: "middle", textStyle: { fontSize: 12 } },
      series: [{
        type: "pie", radius: ["45%", "75%"], center: ["35%", "50%"],
        avoidLabelOverlap: true, percentPrecision: 1,
        label: { position: "inside", formatter: "{d}%", fontSize: 11, color: "#fff" },
        labelLine: { show: false },
        data: data
      }]
    });
    window.addEventListener("resize", function () { chart.resize(); });
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", initAllocation);
  } else {
    initAllocation();
  }
})();

// Client 360: the value-score history (total score over as-of dates, tier in the tooltip).
(function () {
  "use strict";
  function initHistory() {
    var holder = document.getElementById("score-history-chart");
    var dataEl = document.getElementById("score-history-data");
    var labelsEl = document.getElementById("score-history-labels");
    if (!holder || !dataEl || typeof echarts === "undefined") { return; }
    var points = JSON.parse(dataEl.textContent);
    var labels = labelsEl ? labelsEl.dataset : { total: "Total", tier: "Tier", scheme: "Scheme" };
    var chart = echarts.init(holder, null, { renderer: "svg" });
    chart.setOption({
      animation: false,
      grid: { left: 30, right: 12, top: 12, bottom: 24 },
      tooltip: {
        trigger: "axis", confine: true,
        formatter: function (items) {
          var p = points[items[0].dataIndex];
          return CRM.tooltip(p.as_of, [[labels.total + ":", p.total],
                                       [labels.tier + ":", p.tier_label],
                                       [labels.scheme + ":", "v" + p.version]]);
        }
      },
      xAxis: { type: "category", data: points.map(function (p) { return p.as_of; }),
               axisLabel: { fontSize: 10 } },
      yAxis: { type: "value", min: 3, max: 18, interval: 5, axisLabel: { fontSize: 10 } },
      series: [{ type: "line", data: points.map(function (p) { return p.total; }),
                 symbolSize: 6, lineStyle: { color: "#1f4e79" }, itemStyle: { color: "#1f4e79" } }]
    });
    window.addEventListener("resize", function () { chart.resize(); });
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", initHistory);
  } else {
    initHistory();
  }
})();
