/* The portal page: takes the session token from the URL fragment (#token=pt_...), removes it from
   the address bar, and sends it as a bearer header on every htmx request and PDF download.
   The fragment never reaches a server (not in requests, logs or Referer headers). */
(function () {
  "use strict";
  var KEY = "tollway.portal.token";

  function takeToken() {
    var hash = window.location.hash.replace(/^#/, "");
    var params = new URLSearchParams(hash);
    var token = params.get("token");
    if (token) {
      try { sessionStorage.setItem(KEY, token); } catch (e) { /* storage off: keep it in memory */ }
      history.replaceState(null, "", window.location.pathname + window.location.search);
      return token;
    }
    try { return sessionStorage.getItem(KEY); } catch (e) { return null; }
  }

  var token = takeToken();

  function showNoSession() {
    try { sessionStorage.removeItem(KEY); } catch (e) { /* ignore */ }
    var box = document.getElementById("portal");
    if (box) { box.hidden = true; box.setAttribute("aria-busy", "false"); }
    var note = document.getElementById("portal-no-session");
    if (note) note.hidden = false;
  }

  document.addEventListener("htmx:configRequest", function (e) {
    if (token) e.detail.headers["Authorization"] = "Bearer " + token;
  });
  document.addEventListener("htmx:responseError", function (e) {
    var status = e.detail.xhr.status;
    if (status === 401) { showNoSession(); return; }
    var box = document.getElementById("portal");
    var msg = document.createElement("div");
    msg.className = "flash err";
    msg.setAttribute("role", "alert");
    msg.textContent = status === 403
      ? "This link does not allow that action."
      : "Something went wrong (HTTP " + status + "). Please try again.";
    if (box) box.prepend(msg);
  });
  document.addEventListener("htmx:afterSettle", function (e) {
    if (e.target && e.target.id === "portal") e.target.setAttribute("aria-busy", "false");
  });

  document.addEventListener("click", function (e) {
    var link = e.target.closest && e.target.closest("a[data-pdf]");
    if (!link) return;
    e.preventDefault();
    fetch(link.dataset.pdf, { headers: { Authorization: "Bearer " + token }, referrerPolicy: "no-referrer" })
      .then(function (r) {
        if (r.status === 401) { showNoSession(); throw new Error("expired"); }
        if (!r.ok) throw new Error("HTTP " + r.status);
        return r.blob();
      })
      .then(function (blob) {
        var url = URL.createObjectURL(blob);
        var a = document.createElement("a");
        a.href = url;
        a.download = link.dataset.filename || "invoice.pdf";
        document.body.appendChild(a);
        a.click();
        a.remove();
        setTimeout(function () { URL.revokeObjectURL(url); }, 10000);
      })
      .catch(function () { /* shown above when the session ended */ });
  });

  document.addEventListener("DOMContentLoaded", function () {
    if (!token) showNoSession();  /* else htmx loads the dashboard (hx-trigger="load") */
  });
})();
