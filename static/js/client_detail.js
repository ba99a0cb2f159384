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
        trigger: "item",
        formatter: function (p) { return p.name + "<br>" + money.format(p.value) + " (" + p.percent + "%)"; }
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
