// Reloads the live part of the dashboard every 5 s. The page works without
// it (it is fully rendered by the server); this only keeps it current.
(function () {
  var live = document.getElementById("live");
  var stale = document.getElementById("stale");
  if (!live || !window.fetch) return;
  var count = 0;
  function refresh() {
    fetch("dashboard/live", { credentials: "same-origin", cache: "no-store" })
      .then(function (r) {
        if (!r.ok) throw new Error("HTTP " + r.status);
        return r.text();
      })
      .then(function (html) {
        live.innerHTML = html;
        count += 1;
        live.setAttribute("data-refreshed", String(count));
        if (stale) stale.hidden = true;
      })
      .catch(function (err) {
        if (stale) {
          stale.textContent = "Not updating: " + err.message;
          stale.hidden = false;
        }
      });
  }
  setInterval(refresh, 5000);
})();
