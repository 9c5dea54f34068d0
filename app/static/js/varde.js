/* Varde: the little JavaScript the shell needs. Everything works without it; this only helps. */
(function () {
  "use strict";

  // Move focus to the error summary so screen readers and keyboards start there.
  function focusErrorSummary(root) {
    var summary = (root || document).querySelector("[data-focus-on-load]");
    if (summary) summary.focus();
  }

  document.addEventListener("DOMContentLoaded", function () {
    focusErrorSummary(document);
  });

  // After an htmx swap, focus a new error summary too.
  document.addEventListener("htmx:afterSwap", function (event) {
    focusErrorSummary(event.detail.target);
  });

  // A request that never reached the server: say so in the live region instead of doing nothing.
  document.addEventListener("htmx:sendError", function () {
    var live = document.getElementById("live");
    if (live) live.textContent = live.getAttribute("data-offline-message") || "";
  });

  if ("serviceWorker" in navigator) {
    window.addEventListener("load", function () {
      navigator.serviceWorker.register("/sw.js", { scope: "/" }).catch(function () {
        /* The portal works without it; only installing and offline need it. */
      });
    });
  }
})();
