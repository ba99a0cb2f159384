// Newsletter pages: the preview's phone-width toggle, confirmations on sending buttons, and the
// statistics charts (ECharts, from <script type="application/json" id="newsletter-stats-data">).
(function () {
  "use strict";

  document.addEventListener("click", function (event) {
    var toggle = event.target.closest("[data-preview-width]");
    if (toggle) {
      var frame = document.getElementById("preview-frame");
      if (frame) { frame.style.width = toggle.dataset.previewWidth; }
      document.querySelectorAll("[data-preview-width]").forEach(function (b) {
        b.classList.toggle("active", b === toggle);
      });
    }
  });

  document.addEventListener("submit", function (event) {
    var button = event.submitter;
    if (button && button.dataset.confirm && !window.confirm(button.dataset.confirm)) {
      event.preventDefault();
    }
  });

  function initCharts() {
    var dataEl = document.getElementById("newsletter-stats-data");
    if (!dataEl || typeof echarts === "undefined") { return; }
    var data = JSON.parse(dataEl.textContent);
    var charts = [];
    var funnelEl = document.getElementById("funnel-chart");
    if (funnelEl) {
      var funnel = echarts.init(funnelEl, null, { renderer: "svg" });
      funnel.setOption({
        animation: false,
        title: { text: data.labels.funnel_title, left: "center", textStyle: { fontSize: 13 } },
        tooltip: { trigger: "axis", axisPointer: { type: "shadow" }, confine: true,
                   formatter: CRM.axisTooltip() },
        grid: { left: 90, right: 40, top: 36, bottom: 20 },
        xAxis: { type: "value", minInterval: 1 },
        yAxis: { type: "category", inverse: true,
                 data: data.funnel.map(function (s) { return s.name; }) },
        series: [{ type: "bar", data: data.funnel.map(function (s) { return s.value; }),
                   itemStyle: { color: "#1f4e79" }, label: { show: true, position: "right" } }]
      });
      charts.push(funnel);
    }
    var ratingEl = document.getElementById("rating-chart");
    if (ratingEl) {
      var ratings = echarts.init(ratingEl, null, { renderer: "svg" });
      ratings.setOption({
        animation: false,
        title: { text: data.labels.ratings_title, left: "center", textStyle: { fontSize: 13 } },
        tooltip: { trigger: "axis", axisPointer: { type: "shadow" }, confine: true,
                   formatter: CRM.axisTooltip() },
        grid: { left: 40, right: 20, top: 36, bottom: 40 },
        xAxis: { type: "category", name: data.labels.rating, nameLocation: "middle", nameGap: 26,
                 data: ["1", "2", "3", "4", "5"] },
        yAxis: { type: "value", minInterval: 1 },
        series: [{ type: "bar", data: data.ratings, label: { show: true, position: "top" },
                   itemStyle: { color: function (p) {
                     return ["#c0392b", "#e67e22", "#f1c40f", "#7dcea0", "#1e8449"][p.dataIndex];
                   } } }]
      });
      charts.push(ratings);
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
