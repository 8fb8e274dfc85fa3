// Deadlines in the viewer's own time zone, and a live countdown to the claim
// deadline. The page says the same in UTC without JavaScript.
(function () {
  "use strict";

  function localTime(date) {
    var sameDay = date.toDateString() === new Date().toDateString();
    var options = { hour: "2-digit", minute: "2-digit" };
    if (!sameDay) {
      options.weekday = "short";
      options.day = "numeric";
      options.month = "short";
    }
    return date.toLocaleString(undefined, options);
  }

  function remaining(ms) {
    var total = Math.max(0, Math.floor(ms / 1000));
    var h = Math.floor(total / 3600);
    var m = Math.floor((total % 3600) / 60);
    var s = total % 60;
    var mm = (h && m < 10 ? "0" : "") + m;
    var ss = (s < 10 ? "0" : "") + s;
    return (h ? h + ":" : "") + mm + ":" + ss;
  }

  document.querySelectorAll("time[data-local-time]").forEach(function (el) {
    var when = new Date(el.getAttribute("datetime"));
    if (!isNaN(when)) {
      el.textContent = localTime(when);
      el.title = when.toISOString();
    }
  });

  var counters = document.querySelectorAll("[data-countdown]");
  if (!counters.length) return;

  function tick() {
    var expired = false;
    counters.forEach(function (el) {
      var left = new Date(el.getAttribute("data-countdown")) - Date.now();
      if (left > 0) {
        el.textContent = remaining(left) + " left";
      } else {
        el.textContent = "time is up";
        expired = true;
      }
    });
    if (expired) {
      document.querySelectorAll("[data-claim-button]").forEach(function (button) {
        button.disabled = true;
        button.textContent = "Too late to claim";
      });
      clearInterval(timer);
    }
  }
  var timer = setInterval(tick, 1000);
  tick();
})();
