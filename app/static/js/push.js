/* Varde: turning web push on and off for this device (the notification settings page only).
 * Permission is asked only after the user taps the button. subscribe() can hang for ever on
 * some devices (no push service answers), so every step has a time limit and a message. */
(function () {
  "use strict";

  var box = document.getElementById("push-device");
  if (!box) return;
  var enable = box.querySelector("[data-push-enable]");
  var disable = box.querySelector("[data-push-disable]");
  var status = box.querySelector("[data-push-status]");
  var DEFAULT_TIMEOUT_MS = 15000;

  // Read at each use (data-timeout-ms on #push-device), so a page or a test can shorten it.
  function timeoutMs() {
    var ms = parseInt(box.getAttribute("data-timeout-ms"), 10);
    return ms > 0 ? ms : DEFAULT_TIMEOUT_MS;
  }

  function say(name) {
    status.textContent = box.getAttribute("data-msg-" + name) || "";
  }

  function csrfToken() {
    var headers = document.body.getAttribute("hx-headers");
    try {
      return JSON.parse(headers)["X-CSRFToken"];
    } catch (e) {
      return "";
    }
  }

  function withTimeout(promise, ms) {
    return new Promise(function (resolve, reject) {
      var timer = setTimeout(function () {
        reject(new Error("timeout"));
      }, ms);
      promise.then(
        function (value) {
          clearTimeout(timer);
          resolve(value);
        },
        function (error) {
          clearTimeout(timer);
          reject(error);
        }
      );
    });
  }

  function keyBytes(base64url) {
    var padded = (base64url + "===".slice((base64url.length + 3) % 4)).replace(/-/g, "+").replace(/_/g, "/");
    var raw = atob(padded);
    var out = new Uint8Array(raw.length);
    for (var i = 0; i < raw.length; i++) out[i] = raw.charCodeAt(i);
    return out;
  }

  function post(url, body) {
    return fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRFToken": csrfToken() },
      body: JSON.stringify(body),
    }).then(function (response) {
      if (!response.ok) {
        return response.json().then(
          function (data) {
            throw new Error(data && data.error ? data.error : "HTTP " + response.status);
          },
          function () {
            throw new Error("HTTP " + response.status);
          }
        );
      }
      return response.json();
    });
  }

  function show(on) {
    enable.hidden = on;
    disable.hidden = !on;
    enable.disabled = false;
    disable.disabled = false;
    say(on ? "on" : "off");
  }

  function done(message) {
    window.location.assign(box.getAttribute("data-done-url") + "?enhet=" + message);
  }

  if (!("serviceWorker" in navigator) || !("PushManager" in window) || !("Notification" in window)) {
    say("unsupported");
    return;
  }

  function registration() {
    return withTimeout(navigator.serviceWorker.ready, timeoutMs());
  }

  registration()
    .then(function (reg) {
      return reg.pushManager.getSubscription();
    })
    .then(function (sub) {
      if (!sub || Notification.permission !== "granted") return show(false);
      // "On" only if Varde still sends to it for this account (it may have been removed in the
      // device list, or belong to someone who used this browser before): else turn it off here too.
      return post(box.getAttribute("data-subscribe-url"), { endpoint: sub.endpoint, refresh: true }).then(
        function (data) {
          if (data && data.known) return show(true);
          return sub.unsubscribe().then(function () {
            show(false);
          });
        }
      );
    })
    .catch(function () {
      show(false);
    });

  enable.addEventListener("click", function () {
    enable.disabled = true;
    say("waiting");
    // Asked here, in the tap's own handler: iOS allows the question only after a user gesture.
    Promise.resolve(Notification.requestPermission())
      .then(function (permission) {
        if (permission !== "granted") {
          enable.disabled = false;
          say(permission === "denied" ? "denied" : "dismissed");
          return null;
        }
        return registration()
          .then(function (reg) {
            return withTimeout(
              reg.pushManager.subscribe({
                userVisibleOnly: true,
                applicationServerKey: keyBytes(box.getAttribute("data-vapid-key")),
              }),
              timeoutMs()
            );
          })
          .then(function (sub) {
            return post(box.getAttribute("data-subscribe-url"), sub.toJSON());
          })
          .then(function () {
            done("paa");
          });
      })
      .catch(function (error) {
        enable.disabled = false;
        if (error && error.message === "timeout") say("timeout");
        else if (error && error.message && error.message.indexOf("HTTP") !== 0) status.textContent = error.message;
        else say("failed");
      });
  });

  disable.addEventListener("click", function () {
    disable.disabled = true;
    registration()
      .then(function (reg) {
        return reg.pushManager.getSubscription();
      })
      .then(function (sub) {
        if (!sub) return null;
        var endpoint = sub.endpoint;
        return sub.unsubscribe().then(function () {
          return post(box.getAttribute("data-unsubscribe-url"), { endpoint: endpoint });
        });
      })
      .then(function () {
        done("av");
      })
      .catch(function () {
        disable.disabled = false;
        say("failed");
      });
  });
})();
