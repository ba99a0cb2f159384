// Site-wide behaviour: no inline handlers in the templates (the Content-Security-Policy allows
// scripts from our own files only).
(function () {
  "use strict";
  // <select data-autosubmit> submits its form on change (the language switch, page size).
  // An element with data-shown-for="<field name>=<value>" shows only while that field of its
  // form has that value (the follow-up date of "follow up later").
  document.addEventListener("change", function (event) {
    var el = event.target;
    if (el && el.form && el.name) {
      el.form.querySelectorAll('[data-shown-for^="' + el.name + '="]').forEach(function (box) {
        box.hidden = box.getAttribute("data-shown-for") !== el.name + "=" + el.value;
      });
    }
    if (el && el.matches && el.matches("select[data-autosubmit]") && el.form) {
      if (el.form.requestSubmit) { el.form.requestSubmit(); } else { el.form.submit(); }
    }
  });
  // <form data-confirm="question"> asks before it submits (cancel a campaign, delete).
  document.addEventListener("submit", function (event) {
    var form = event.target;
    var question = form && form.getAttribute && form.getAttribute("data-confirm");
    if (question && !window.confirm(question)) { event.preventDefault(); }
  });
})();

// Helpers shared by the chart scripts. ECharts puts a function formatter's return value into
// the tooltip with innerHTML, so every piece of data in it (names of segments, products, tiers;
// labels) goes through escapeHtml first. Tooltip markup uses classes, never style attributes
// (the policy's style-src has no 'unsafe-inline').
(function () {
  "use strict";
  var ENTITIES = { "&": "&amp;", "<": "&lt;", ">": "&gt;", "\"": "&quot;", "'": "&#39;",
                   "`": "&#96;" };

  function escapeHtml(value) {
    return String(value === null || value === undefined ? "" : value)
      .replace(/[&<>"'`]/g, function (c) { return ENTITIES[c]; });
  }

  // A tooltip: an optional title line, then "label: value" lines. Every part is escaped.
  function tooltip(title, rows) {
    var out = title === null || title === undefined || title === "" ? "" :
      '<div class="chart-tip-title">' + escapeHtml(title) + "</div>";
    (rows || []).forEach(function (row) {
      out += '<div class="chart-tip-row">' +
        (row[0] === null || row[0] === undefined || row[0] === "" ? "" :
          '<span class="chart-tip-label">' + escapeHtml(row[0]) + "</span> ") +
        '<span class="chart-tip-value">' + escapeHtml(row[1]) + "</span></div>";
    });
    return out;
  }

  // The formatter of an axis tooltip: the category, then each series' name and value.
  function axisTooltip(format) {
    return function (items) {
      items = Array.isArray(items) ? items : [items];
      var title = items.length ? items[0].axisValueLabel || items[0].name : "";
      return tooltip(title, items.map(function (p) {
        var v = Array.isArray(p.value) ? p.value[p.value.length - 1] : p.value;
        // ECharts names an unnamed series "series\u00000": show no label for it.
        var named = p.seriesName && String(p.seriesName).indexOf("series\u0000") !== 0;
        return [named ? p.seriesName + ":" : "", format ? format(v) : v];
      }));
    };
  }

  window.CRM = window.CRM || {};
  window.CRM.escapeHtml = escapeHtml;
  window.CRM.tooltip = tooltip;
  window.CRM.axisTooltip = axisTooltip;
})();
