// The analytics pages (templates/analytics/*.html): charts drawn with ECharts from
// <script type="application/json" id="analytics-data"> (json_script). Clicking a chart cell opens
// the client list behind it (data.drill: the drill-down URL with the page's filters). Every chart
// has ECharts' "save as image" button. Labels are escaped (CRM.tooltip) before ECharts puts
// them in a tooltip; no inline script or style (the Content-Security-Policy).
(function () {
  "use strict";
  var node = document.getElementById("analytics-data");
  if (!node || typeof echarts === "undefined") { return; }
  var data = JSON.parse(node.textContent);
  var labels = data.labels || {};
  var lang = (document.documentElement.lang || "").indexOf("zh") === 0 ? "ZH" : "EN";
  var charts = {};

  function drillTo(metric, cell) {
    var url = data.drill + (data.drill.indexOf("?") < 0 ? "?" : "") +
      (/[?&]$/.test(data.drill) ? "" : "&") + "metric=" + encodeURIComponent(metric);
    Object.keys(cell).forEach(function (key) {
      url += "&c_" + encodeURIComponent(key) + "=" + encodeURIComponent(cell[key]);
    });
    window.location.assign(url);
  }

  function format(kind, value) {
    if (value === null || value === undefined || value === "") { return "—"; }
    var n = Number(value);
    if (kind === "money") {
      return "¥" + n.toLocaleString(undefined, { minimumFractionDigits: 2, maximumFractionDigits: 2 });
    }
    if (kind === "share") { return (n * 100).toFixed(1) + "%"; }
    if (kind === "rate") { return n.toFixed(4); }
    return n.toLocaleString();
  }

  // Every chart: no animation (a screenshot or a test sees the final figure) and a "save as
  // image" button.
  function finish(id, option) {
    option.animation = false;
    option.toolbox = { right: 8, feature: { saveAsImage: { name: id } } };
    return option;
  }

  function make(id, option, onClick) {
    var box = document.getElementById(id);
    if (!box) { return null; }
    var chart = echarts.init(box, null, { renderer: "svg", locale: lang });
    chart.setOption(finish(id, option));
    if (onClick) {
      chart.on("click", onClick);
      box.classList.add("chart-clickable");
    }
    charts[id] = chart;
    return chart;
  }

  // --- overview ---------------------------------------------------------------------------------
  var KPI_DRILL = { active_clients: "active", new_accounts: "new_accounts", funded_rate: "new_accounts" };

  function kpiChart() {
    var select = document.getElementById("kpi-metric");
    if (!data.kpis || !document.getElementById("kpi-chart")) { return; }
    var series = data.kpis.series || [];
    var previous = data.kpis.previous || [];

    function draw() {
      var key = select ? select.value : "active_clients";
      var kind = data.kpi_kinds[key];
      var option = {
        color: ["#1f4e79", "#adb5bd"],
        legend: { bottom: 0, data: [labels.current, labels.previous] },
        grid: { left: 70, right: 24, top: 36, bottom: 48 },
        tooltip: { trigger: "axis", confine: true, formatter: function (items) {
          items = Array.isArray(items) ? items : [items];
          var i = items.length ? items[0].dataIndex : 0;
          var rows = [[labels.current + " " + (series[i] ? series[i].period : "") + ":",
                       format(kind, series[i] ? series[i][key] : null)]];
          if (previous[i]) {
            rows.push([labels.previous + " " + previous[i].period + ":", format(kind, previous[i][key])]);
          }
          return CRM.tooltip(data.kpi_labels[key], rows);
        } },
        xAxis: { type: "category", data: series.map(function (r) { return r.period; }) },
        yAxis: { type: "value", minInterval: kind === "int" ? 1 : 0, axisLabel: { formatter: function (v) {
          return kind === "share" ? (v * 100).toFixed(0) + "%" : Number(v).toLocaleString();
        } } },
        series: [
          { name: labels.current, type: "line", symbolSize: 8,
            data: series.map(function (r) { return r[key]; }) },
          { name: labels.previous, type: "line", symbolSize: 6, lineStyle: { type: "dashed" },
            data: series.map(function (r, i) { return previous[i] ? previous[i][key] : null; }) }
        ]
      };
      var chart = charts["kpi-chart"];
      if (chart) {
        chart.setOption(finish("kpi-chart", option), true);
      } else {
        make("kpi-chart", option, function (p) {
          var current = select ? select.value : "active_clients";
          var metric = KPI_DRILL[current];
          var rows = p.seriesIndex === 0 ? series : previous;
          if (metric && rows[p.dataIndex]) { drillTo(metric, { period: rows[p.dataIndex].period }); }
        });
      }
    }
    draw();
    if (select) { select.addEventListener("change", draw); }
  }

  function tierChart() {
    if (!data.tiers) { return; }
    var names = data.tiers.map(function (t) { return t.name; });
    var index = {};
    data.tiers.forEach(function (t, i) { index[t.code] = i; });
    var max = 1;
    var cells = (data.matrix || []).filter(function (m) {
      return index[m.from] !== undefined && index[m.to] !== undefined;
    }).map(function (m) {
      max = Math.max(max, m.clients);
      return [index[m.to], index[m.from], m.clients];
    });
    make("tier-chart", {
      tooltip: { confine: true, formatter: function (p) {
        return CRM.tooltip(names[p.value[1]] + " → " + names[p.value[0]], [["", p.value[2]]]);
      } },
      grid: { left: 150, right: 24, top: 48, bottom: 80 },
      xAxis: { type: "category", data: names, name: labels.to_tier, nameLocation: "middle",
               nameGap: 56, axisLabel: { interval: 0, width: 90, overflow: "break" } },
      yAxis: { type: "category", data: names, name: labels.from_tier, nameLocation: "start",
               inverse: true },
      visualMap: { min: 0, max: max, show: false, inRange: { color: ["#f1f5fb", "#1f4e79"] } },
      series: [{ type: "heatmap", data: cells, label: { show: true },
                 itemStyle: { borderColor: "#fff", borderWidth: 1 } }]
    }, function (p) {
      drillTo("tier_migration", { from: data.tiers[p.value[1]].code, to: data.tiers[p.value[0]].code });
    });
  }

  function segmentChart() {
    if (!data.segments) { return; }
    var rows = data.segments;
    make("segment-chart", {
      color: ["#1f4e79", "#48c9b0"],
      legend: { bottom: 0 },
      tooltip: { trigger: "axis", axisPointer: { type: "shadow" }, confine: true,
                 formatter: CRM.axisTooltip() },
      grid: { left: 60, right: 24, top: 36, bottom: rows.length > 5 ? 110 : 70 },
      xAxis: { type: "category", data: rows.map(function (s) { return s.name; }),
               axisLabel: { interval: 0, rotate: rows.length > 5 ? 30 : 0, width: 110,
                            overflow: "truncate" } },
      yAxis: { type: "value", minInterval: 1 },
      series: [
        { name: labels.clients, type: "bar", data: rows.map(function (s) { return s.clients; }) },
        { name: labels.active_clients, type: "bar", data: rows.map(function (s) { return s.active_clients; }) }
      ]
    }, function (p) {
      if (rows[p.dataIndex]) { drillTo("segment", { code: rows[p.dataIndex].code }); }
    });
  }

  // --- retention ------------------------------------------------------------------------------
  function retentionChart() {
    if (!data.cohorts) { return; }
    var cohorts = data.cohorts;
    var width = 0;
    cohorts.forEach(function (c) { width = Math.max(width, c.retention.length); });
    var months = [];
    for (var m = 0; m < width; m += 1) { months.push(String(m)); }
    var cells = [];
    cohorts.forEach(function (c, y) {
      c.retention.forEach(function (share, x) {
        cells.push([x, y, share === null ? null : Math.round(share * 1000) / 10]);
      });
    });
    make("retention-chart", {
      tooltip: { confine: true, formatter: function (p) {
        var cohort = cohorts[p.value[1]];
        return CRM.tooltip(cohort.cohort + " · " + labels.month + " " + p.value[0],
                           [[labels.retention + ":", p.value[2] + "%"], ["n =", cohort.size]]);
      } },
      grid: { left: 80, right: 24, top: 36, bottom: 60 },
      xAxis: { type: "category", data: months, name: labels.month, nameLocation: "middle", nameGap: 30 },
      yAxis: { type: "category", data: cohorts.map(function (c) { return c.cohort; }),
               name: labels.cohort, nameLocation: "start", inverse: true },
      visualMap: { min: 0, max: 100, show: false, inRange: { color: ["#f8f9fa", "#198754"] } },
      series: [{ type: "heatmap", data: cells, itemStyle: { borderColor: "#fff", borderWidth: 1 },
                 label: { show: true, formatter: function (p) {
                   return p.value[2] === null ? "" : p.value[2] + "%";
                 } } }]
    }, function (p) {
      drillTo("retention", { cohort: cohorts[p.value[1]].cohort, month: p.value[0] });
    });
  }

  // --- funnel -----------------------------------------------------------------------------------
  function funnelCharts() {
    if (!data.steps) { return; }
    var steps = data.steps;
    function click(p) { if (steps[p.dataIndex]) { drillTo("funnel", { step: steps[p.dataIndex].step }); } }
    make("funnel-chart", {
      color: ["#1f4e79"],
      tooltip: { trigger: "axis", axisPointer: { type: "shadow" }, confine: true, formatter: function (items) {
        var s = steps[items[0].dataIndex];
        return CRM.tooltip(s.name, [[labels.clients + ":", format("int", s.clients)],
                                    [labels.conversion + ":", format("share", s.conversion_from_previous)]]);
      } },
      grid: { left: 60, right: 24, top: 36, bottom: 40 },
      xAxis: { type: "category", data: steps.map(function (s) { return s.name; }), axisLabel: { interval: 0 } },
      yAxis: { type: "value", minInterval: 1 },
      series: [{ type: "bar", name: labels.clients, data: steps.map(function (s) { return s.clients; }),
                 label: { show: true, position: "top", formatter: function (p) {
                   var s = steps[p.dataIndex];
                   return s.conversion_from_previous === null ? String(s.clients) :
                     s.clients + " (" + format("share", s.conversion_from_previous) + ")";
                 } } }]
    }, click);
    make("funnel-days-chart", {
      color: ["#eb984e"],
      tooltip: { trigger: "axis", axisPointer: { type: "shadow" }, confine: true, formatter: CRM.axisTooltip() },
      grid: { left: 60, right: 24, top: 36, bottom: 40 },
      xAxis: { type: "category", data: steps.map(function (s) { return s.name; }), axisLabel: { interval: 0 } },
      yAxis: { type: "value" },
      series: [{ type: "bar", name: labels.median_days, label: { show: true, position: "top" },
                 data: steps.map(function (s) { return s.median_days_from_previous; }) }]
    }, click);
  }

  // --- channels and newsletters -----------------------------------------------------------------
  // Bars of counts, one series per outcome; a bar drills to the clients of that row and outcome.
  function outcomeBars(id, rows, keys, colors, category, metric, cellOf, axisLabel) {
    make(id, {
      color: colors,
      legend: { bottom: 0 },
      tooltip: { trigger: "axis", axisPointer: { type: "shadow" }, confine: true, formatter: CRM.axisTooltip() },
      grid: { left: 60, right: 24, top: 36, bottom: axisLabel.rotate ? 70 : 50 },
      xAxis: { type: "category", data: rows.map(category), axisLabel: axisLabel },
      yAxis: { type: "value", minInterval: 1 },
      series: keys.map(function (k) {
        return { name: labels[k], type: "bar", data: rows.map(function (r) { return r[k]; }) };
      })
    }, function (p) {
      var row = rows[p.dataIndex];
      if (row && keys[p.seriesIndex]) { drillTo(metric, cellOf(row, keys[p.seriesIndex])); }
    });
  }

  function channelCharts() {
    if (!data.channels) { return; }
    outcomeBars("channel-chart", data.channels, ["attempted", "delivered", "responded", "converted"],
      ["#1f4e79", "#0dcaf0", "#48c9b0", "#198754"], function (c) { return c.name; }, "channel",
      function (row, key) { return { channel: row.channel, outcome: key }; }, { interval: 0 });
    var editions = data.editions || [];
    outcomeBars("edition-chart", editions, ["recipients", "opened", "clicked"],
      ["#adb5bd", "#1f4e79", "#48c9b0"], function (e) { return e.title; }, "newsletter",
      function (row, key) { return { edition: row.edition_id, outcome: key }; },
      { interval: 0, rotate: editions.length > 4 ? 30 : 0, width: 120, overflow: "truncate" });
  }

  // --- campaigns --------------------------------------------------------------------------------
  function campaignCharts() {
    if (!data.campaigns) { return; }
    var rows = data.campaigns.filter(function (c) { return c.uplift !== null && c.uplift !== undefined; });
    make("uplift-chart", {
      tooltip: { trigger: "axis", confine: true, formatter: function (items) {
        var c = rows[items[0].dataIndex];
        return CRM.tooltip(c.name, [[labels.uplift + ":", format("rate", c.uplift)],
                                    [labels.ci + ":", "[" + format("rate", c.ci_low) + ", " + format("rate", c.ci_high) + "]"]]);
      } },
      grid: { left: 60, right: 24, top: 36, bottom: 50 },
      xAxis: { type: "category", data: rows.map(function (c) { return c.name; }), axisLabel: { interval: 0 } },
      yAxis: { type: "value" },
      series: [
        { name: labels.uplift, type: "scatter", symbolSize: 12, data: rows.map(function (c) { return c.uplift; }),
          markLine: { silent: true, symbol: "none", data: [{ yAxis: 0 }] } },
        { name: labels.ci, type: "custom", data: rows.map(function (c, i) { return [i, c.ci_low, c.ci_high]; }),
          renderItem: function (params, api) {
            if (api.value(1) === null || isNaN(api.value(1))) { return null; }
            var low = api.coord([api.value(0), api.value(1)]);
            var high = api.coord([api.value(0), api.value(2)]);
            var line = function (x1, y1, x2, y2) {
              return { type: "line", shape: { x1: x1, y1: y1, x2: x2, y2: y2 }, style: { stroke: "#0d6efd", lineWidth: 2 } };
            };
            return { type: "group", children: [line(low[0], low[1], high[0], high[1]),
              line(low[0] - 8, low[1], low[0] + 8, low[1]), line(high[0] - 8, high[1], high[0] + 8, high[1])] };
          } }
      ]
    });
    outcomeBars("campaign-count-chart", data.campaigns, ["members", "contacted", "converted"],
      ["#adb5bd", "#1f4e79", "#198754"], function (c) { return c.name; }, "campaign",
      function (row, key) { return { code: row.code, outcome: key }; }, { interval: 0 });
    var all = data.campaigns;
    make("campaign-money-chart", {
      color: ["#198754", "#dc3545"],
      legend: { bottom: 0 },
      tooltip: { trigger: "axis", axisPointer: { type: "shadow" }, confine: true,
                 formatter: CRM.axisTooltip(function (v) { return format("money", v); }) },
      grid: { left: 80, right: 24, top: 36, bottom: 50 },
      xAxis: { type: "category", data: all.map(function (c) { return c.name; }), axisLabel: { interval: 0 } },
      yAxis: { type: "value" },
      series: [
        { name: labels.revenue, type: "bar", data: all.map(function (c) { return c.revenue; }) },
        { name: labels.cost, type: "bar", data: all.map(function (c) { return c.contact_cost; }) }
      ]
    });
  }

  kpiChart();
  tierChart();
  segmentChart();
  retentionChart();
  funnelCharts();
  channelCharts();
  campaignCharts();
  window.addEventListener("resize", function () {
    Object.keys(charts).forEach(function (id) { charts[id].resize(); });
  });
  window.CRM = window.CRM || {};
  window.CRM.analyticsCharts = charts;
})();
