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
    var stopped = false;
    var timer = null;
    var baseTitle = document.title.replace(/^\(\d+\) /, "");

    // The open count, from the rows response's X-Open-Count: the nav badge and the tab title.
    function showCount(raw) {
      var n = parseInt(raw, 10);
      if (isNaN(n)) return;
      var badge = document.getElementById("open-count");
      if (badge) {
        badge.textContent = String(n);
        badge.setAttribute("aria-label", n + " open");
        badge.hidden = n === 0;
      }
      document.title = (n ? "(" + n + ") " : "") + baseTitle;
    }

    // The session ended (idle too long, the day's cap, signed out elsewhere, disabled):
    // say so instead of leaving a list that silently stopped changing.
    function signedOut() {
      stopped = true;
      if (timer) clearInterval(timer);
      var banner = document.getElementById("signed-out");
      if (banner) banner.hidden = false;
      table.classList.add("stale");
    }

    function ids(root) {
      var out = {};
      root.querySelectorAll("tr[data-item]").forEach(function (tr) { out[tr.getAttribute("data-item")] = true; });
      return out;
    }

    function poll() {
      if (busy || stopped || document.hidden) return;
      busy = true;
      fetch(url, { credentials: "same-origin", headers: { "Accept": "text/html" } })
        .then(function (r) {
          if ((r.redirected && r.url.indexOf("/console/login") !== -1) || r.status === 401) {
            signedOut();
            throw new Error("signed out");
          }
          if (!r.ok) throw new Error("unavailable");
          showCount(r.headers.get("X-Open-Count"));
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
    timer = setInterval(poll, every);
    document.addEventListener("visibilitychange", poll);
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
