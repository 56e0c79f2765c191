// Drift Monitor dashboard: the little script our pages need (no inline scripts: CSP).
"use strict";

// htmx requests carry the session's CSRF token (the server refuses state changes without it).
document.addEventListener("htmx:configRequest", function (event) {
  var meta = document.querySelector('meta[name="csrf-token"]');
  if (meta && meta.content) {
    event.detail.headers["X-CSRF-Token"] = meta.content;
  }
});
