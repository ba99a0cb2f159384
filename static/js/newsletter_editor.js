// Edition editor: the add / move / remove buttons post the whole form (the server reorders, so
// it works without JavaScript); here we only keep the scroll position across that round trip,
// ask before removing a section, and warn before leaving with unsaved changes.
(function () {
  "use strict";
  var KEY = "newsletter-editor-scroll";
  var form = document.querySelector("form[data-editor]");
  if (!form) { return; }
  var dirty = false;
  var saved = sessionStorage.getItem(KEY);
  if (saved !== null) {
    sessionStorage.removeItem(KEY);
    window.scrollTo(0, parseInt(saved, 10) || 0);
  }
  form.addEventListener("input", function () { dirty = true; });
  form.addEventListener("change", function () { dirty = true; });
  form.addEventListener("submit", function (event) {
    var button = event.submitter;
    if (button && button.dataset.confirm && !window.confirm(button.dataset.confirm)) {
      event.preventDefault();
      return;
    }
    if (button && button.name === "op") {
      sessionStorage.setItem(KEY, String(window.scrollY));
    }
    dirty = false;
  });
  window.addEventListener("beforeunload", function (event) {
    if (dirty) { event.preventDefault(); event.returnValue = ""; }
  });
})();
