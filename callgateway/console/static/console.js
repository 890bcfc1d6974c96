// Keeps the queue current without a reload: polls the rows every few seconds and swaps
// them in only when they changed, announcing new work to screen readers. Served from
// this origin (the CSP allows no other script); the page works without it.
(function () {
  "use strict";
  function start() {
    var table = document.getElementById("queue");
    if (!table || !window.fetch) return;
    var body = document.getElementById("queue-rows");
    var announce = document.getElementById("queue-announce");
    var url = table.getAttribute("data-poll");
    var every = Math.max(2, parseInt(table.getAttribute("data-poll-seconds"), 10) || 5) * 1000;
    var busy = false;

    function ids(root) {
      var out = {};
      root.querySelectorAll("tr[data-item]").forEach(function (tr) { out[tr.getAttribute("data-item")] = true; });
      return out;
    }

    function poll() {
      if (busy || document.hidden) return;
      busy = true;
      fetch(url, { credentials: "same-origin", headers: { "Accept": "text/html" } })
        .then(function (r) {
          if (r.redirected || !r.ok) throw new Error("signed out or unavailable");
          return r.text();
        })
        .then(function (html) {
          if (html.trim() === body.innerHTML.trim()) return;
          // Do not pull a form away from under someone pressing a button in it.
          if (body.contains(document.activeElement) && document.activeElement.tagName === "BUTTON") return;
          var before = ids(body);
          var probe = document.createElement("tbody");
          probe.innerHTML = html;
          var added = 0;
          probe.querySelectorAll("tr[data-item]").forEach(function (tr) {
            if (!before[tr.getAttribute("data-item")]) { tr.classList.add("fresh"); added += 1; }
          });
          body.replaceChildren.apply(body, Array.prototype.slice.call(probe.childNodes));
          if (added && announce) {
            announce.textContent = added === 1 ? "1 new item in the queue" : added + " new items in the queue";
          }
        })
        .catch(function () { /* try again at the next tick */ })
        .then(function () { busy = false; });
    }
    setInterval(poll, every);
    document.addEventListener("visibilitychange", poll);
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
