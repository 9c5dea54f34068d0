/* Varde: the little JavaScript the shell needs. Everything works without it; this only helps. */
(function () {
  "use strict";

  // Move focus to what asked for it: the error summary on a failed form, or a swapped-in
  // message, so keyboard and screen reader users land where the change is.
  function focusRequested() {
    var el = document.querySelector("[data-focus-on-load]");
    if (el) {
      el.removeAttribute("data-focus-on-load");
      el.focus();
    }
  }

  document.addEventListener("DOMContentLoaded", focusRequested);
  document.addEventListener("htmx:afterSettle", focusRequested);

  // A request that never reached the server: say so in the live region instead of doing nothing.
  document.addEventListener("htmx:sendError", function () {
    var live = document.getElementById("live");
    if (live) live.textContent = live.getAttribute("data-offline-message") || "";
  });

  // Warn two minutes before the idle timeout, offer to stay logged in, and when the time is up
  // leave the page (so health data does not stay on an unattended screen).
  function sessionWarning() {
    var box = document.getElementById("session-warning");
    if (!box) return;
    var idle = parseInt(box.getAttribute("data-idle-seconds"), 10) * 1000;
    var warn = parseInt(box.getAttribute("data-warn-seconds"), 10) * 1000;
    var warnTimer, endTimer;
    function start() {
      clearTimeout(warnTimer);
      clearTimeout(endTimer);
      box.hidden = true;
      warnTimer = setTimeout(function () {
        box.hidden = false;
        var button = box.querySelector("button");
        if (button) button.focus();
      }, Math.max(idle - warn, 0));
      endTimer = setTimeout(function () {
        window.location.assign(box.getAttribute("data-expired-url"));
      }, idle);
    }
    // Any answered htmx request counts as activity on the server too, except the page's own polls
    // (which the server does not count either).
    document.addEventListener("htmx:afterRequest", function (event) {
      var elt = event.detail.elt;
      if (event.detail.successful && !(elt && elt.hasAttribute && elt.hasAttribute("data-poll"))) start();
    });
    start();
  }
  document.addEventListener("DOMContentLoaded", sessionWarning);

  // Once a day, a device with push on tells Varde it still holds its subscription (devices not
  // seen for two months are forgotten: some push services accept pushes for dead ones). If Varde
  // no longer knows it as this account's (removed in settings, or someone else's browser), push
  // is turned off in the browser too, so the settings page tells the truth.
  function refreshPushSubscription(reg) {
    var body = document.body;
    if (!reg.pushManager || !("Notification" in window) || Notification.permission !== "granted") return;
    if (!body.hasAttribute("data-push-url")) return;
    var last = Number(window.localStorage.getItem("varde-push-seen") || 0);
    if (Date.now() - last < 86400000) return;
    reg.pushManager.getSubscription().then(function (sub) {
      if (!sub) return;
      var token = JSON.parse(body.getAttribute("hx-headers") || "{}")["X-CSRFToken"];
      return fetch(body.getAttribute("data-push-url"), {
        method: "POST",
        credentials: "same-origin",
        headers: { "Content-Type": "application/json", "X-CSRFToken": token },
        body: JSON.stringify({ endpoint: sub.endpoint, refresh: true }),
      }).then(function (response) {
        if (!response.ok) return;
        return response.json().then(function (data) {
          window.localStorage.setItem("varde-push-seen", String(Date.now()));
          if (data && data.known === false) return sub.unsubscribe();
        });
      });
    }).catch(function () { /* next visit */ });
  }

  // An earlier-time offer's countdown: the page says until when and how long is left; this keeps
  // "how long" true while the page stays open (once a minute, so a screen reader is not flooded).
  var countdownTimer = null;
  function countdowns() {
    clearInterval(countdownTimer);
    var boxes = document.querySelectorAll("[data-countdown]");
    if (!boxes.length) return;
    function tick() {
      Array.prototype.forEach.call(boxes, function (box) {
        var left = box.querySelector("[data-countdown-left]");
        if (!left) return;
        var minutes = Math.floor((Date.parse(box.getAttribute("data-countdown")) - Date.now()) / 60000);
        var text;
        if (minutes <= 0) text = box.getAttribute("data-countdown-ended");
        else if (minutes >= 60) text = box.getAttribute("data-countdown-hours")
          .replace("{h}", String(Math.floor(minutes / 60))).replace("{m}", String(minutes % 60));
        else text = box.getAttribute("data-countdown-minutes").replace("{m}", String(minutes));
        if (left.textContent !== text) left.textContent = text;
      });
    }
    tick();
    countdownTimer = setInterval(tick, 60000);
  }
  document.addEventListener("DOMContentLoaded", countdowns);
  document.addEventListener("htmx:afterSettle", countdowns);

  // A text box with a length limit says how many characters are used, politely, as one types.
  // Without JavaScript the hint says the limit and the server says when it is passed.
  function counters() {
    Array.prototype.forEach.call(document.querySelectorAll("textarea[data-count-max]"), function (box) {
      if (box.hasAttribute("data-count-ready")) return;
      box.setAttribute("data-count-ready", "");
      var out = document.getElementById(box.getAttribute("data-count-target"));
      if (!out) return;
      var max = parseInt(box.getAttribute("data-count-max"), 10);
      var timer = null;
      function update() {
        // As the server counts: characters (not UTF-16 units) of the text without surrounding space.
        var used = Array.from(box.value.replace(/\r\n/g, "\n").trim()).length;
        var text = (used > max ? box.getAttribute("data-count-over") : box.getAttribute("data-count-text"))
          .replace("{n}", String(used)).replace("{max}", String(max)).replace("{over}", String(used - max));
        out.textContent = text;
        out.classList.toggle("error-message", used > max);
      }
      box.addEventListener("input", function () {
        clearTimeout(timer);
        timer = setTimeout(update, 400);
      });
      update();
    });
  }
  document.addEventListener("DOMContentLoaded", counters);
  document.addEventListener("htmx:afterSettle", counters);

  // Files over the limits are refused when chosen, before anything is sent: a message with too
  // many or too large files would otherwise be stopped at the door (413) with the text lost.
  document.addEventListener("change", function (event) {
    var input = event.target;
    if (!input.matches || !input.matches("input[type=file][data-files-max]")) return;
    var out = document.getElementById(input.getAttribute("data-files-target"));
    if (!out) return;
    var max = parseInt(input.getAttribute("data-files-max"), 10);
    var maxBytes = parseInt(input.getAttribute("data-files-max-bytes"), 10);
    var text = "";
    if (input.files.length > max) {
      text = input.getAttribute("data-files-too-many")
        .replace("{n}", String(input.files.length)).replace("{max}", String(max));
    } else {
      for (var i = 0; i < input.files.length; i++) {
        if (input.files[i].size > maxBytes) {
          text = input.getAttribute("data-files-too-large")
            .replace("{name}", input.files[i].name).replace("{mb}", String(Math.round(maxBytes / 1048576)));
          break;
        }
      }
    }
    out.textContent = text;
    out.hidden = !text;
    if (text) {
      input.value = "";
      input.setAttribute("aria-invalid", "true");
    } else {
      input.removeAttribute("aria-invalid");
    }
  });

  // A form that ends something for someone else (a proxy, a guardianship) asks first: one tap on a
  // phone is easy to make by mistake. Without JavaScript the form works as it is.
  document.addEventListener("submit", function (event) {
    var form = event.target;
    var question = form && form.getAttribute && form.getAttribute("data-confirm");
    if (question && !window.confirm(question)) event.preventDefault();
  }, true);

  if ("serviceWorker" in navigator) {
    window.addEventListener("load", function () {
      navigator.serviceWorker.register("/sw.js", { scope: "/" })
        .then(function (reg) {
          try {
            refreshPushSubscription(reg);
          } catch (e) { /* storage may be off */ }
        })
        .catch(function () {
          /* The portal works without it; only installing and offline need it. */
        });
    });
  }
})();
