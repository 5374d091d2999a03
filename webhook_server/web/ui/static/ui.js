// Podium's page follows an open request: it asks the server every two seconds whether the
// request moved and reloads when it did (unless you are typing a note or a reason: then it
// says so). Everything reads without this script; it only saves pressing reload.
(function () {
  "use strict";
  var live = document.getElementById("live");
  if (!live || !window.fetch) { return; }
  var url = live.getAttribute("data-poll");
  var mark = live.getAttribute("data-mark");
  function typing() {
    var boxes = document.querySelectorAll("textarea");
    for (var i = 0; i < boxes.length; i++) { if (boxes[i].value) { return true; } }
    return false;
  }
  function poll() {
    fetch(url, { credentials: "same-origin", cache: "no-store" })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (data) {
        if (data && data.mark !== mark) {
          if (typing()) { document.getElementById("changed").hidden = false; return; }
          window.location.reload();
          return;
        }
        window.setTimeout(poll, 2000);
      })
      .catch(function () { window.setTimeout(poll, 5000); });
  }
  window.setTimeout(poll, 2000);
}());
