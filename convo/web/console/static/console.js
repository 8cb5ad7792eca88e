// The console's own script (no inline scripts: the Content-Security-Policy allows none).
// 1. Sign-in: /console/signin#token=TOKEN fills the form in and submits it; the fragment
//    never reaches the server, and is removed from the address bar at once.
// 2. The sandbox phone's keypad: a key is added to the keys pressed; when the call waits
//    for N keys and N are pressed, or on '#', they are sent, as a phone would.
// 3. The text box of the sandbox phone empties once its text is sent.
(function () {
  "use strict";

  function signinFromFragment() {
    var form = document.getElementById("signin-form");
    var match = /^#token=(.+)$/.exec(window.location.hash);
    if (!form || !match) return;
    history.replaceState(null, "", window.location.pathname + window.location.search);
    form.querySelector("input[name=token]").value = decodeURIComponent(match[1]);
    form.requestSubmit();
  }

  function pressKey(button) {
    var form = button.closest("form");
    var digits = form.querySelector("input[name=digits]");
    var key = button.getAttribute("data-key");
    var wanted = parseInt(form.getAttribute("data-num-digits") || "0", 10);
    if (key === "#" && !wanted) {
      form.requestSubmit(form.querySelector("#send-keys"));
      return;
    }
    digits.value += key;
    if (wanted && digits.value.length >= wanted) {
      form.requestSubmit(form.querySelector("#send-keys"));
    }
  }

  document.addEventListener("click", function (event) {
    var button = event.target.closest("button.key");
    if (button) pressKey(button);
  });

  document.addEventListener("htmx:afterRequest", function (event) {
    var form = event.target;
    if (form.id === "sms-form" && event.detail.successful) form.reset();
  });

  document.addEventListener("DOMContentLoaded", signinFromFragment);
})();
