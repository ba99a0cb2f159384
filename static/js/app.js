// Site-wide behaviour: no inline handlers in the templates (CSP-friendly).
(function () {
  "use strict";
  // <select data-autosubmit> submits its form on change (the language switch, page size).
  document.addEventListener("change", function (event) {
    var el = event.target;
    if (el && el.matches && el.matches("select[data-autosubmit]") && el.form) {
      if (el.form.requestSubmit) { el.form.requestSubmit(); } else { el.form.submit(); }
    }
  });
})();
