/* Tollway console: every htmx request carries the session's CSRF token (from the page's
   <meta name="csrf-token">), so fragment posts are protected like the forms. */
(function () {
  "use strict";
  document.addEventListener("htmx:configRequest", function (e) {
    var meta = document.querySelector('meta[name="csrf-token"]');
    if (meta && meta.content) e.detail.headers["X-CSRF-Token"] = meta.content;
  });
  // A form whose submit button (or the form) has data-confirm asks first: plain form posts,
  // where htmx's hx-confirm does not apply.
  document.addEventListener("submit", function (e) {
    var btn = e.submitter;
    var message = (btn && btn.dataset.confirm) || e.target.dataset.confirm;
    if (message && !window.confirm(message)) e.preventDefault();
  });
  // Buttons that insert an example into a textarea (the plan editor's charge models).
  document.addEventListener("click", function (e) {
    var btn = e.target.closest("[data-insert-into]");
    if (!btn) return;
    e.preventDefault();
    var area = document.getElementById(btn.dataset.insertInto);
    var tpl = document.getElementById(btn.dataset.template);
    if (!area || !tpl) return;
    area.value = tpl.textContent.trim();
    area.dispatchEvent(new Event("input", { bubbles: true }));
  });
})();
