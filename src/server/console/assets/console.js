// Live updates for the console's lists. The pages work without this script: it only adds
// new rows to the event list as they are recorded, from the server's event stream.
"use strict";
document.addEventListener("DOMContentLoaded", function () {
  var table = document.getElementById("events");
  if (!table || !window.EventSource) {
    return;
  }
  var body = table.querySelector("tbody");
  var url = table.getAttribute("data-live");
  var after = table.getAttribute("data-after") || "0";
  var source = new EventSource(url + (url.indexOf("?") < 0 ? "?" : "&") + "after=" + encodeURIComponent(after));
  source.addEventListener("rows", function (event) {
    var holder = document.createElement("tbody");
    holder.innerHTML = event.data;
    var rows = Array.prototype.slice.call(holder.children);
    for (var i = rows.length - 1; i >= 0; i--) {
      var seq = rows[i].getAttribute("data-seq");
      if (!body.querySelector('tr[data-seq="' + seq + '"]')) {
        body.insertBefore(rows[i], body.firstChild);
      }
    }
  });
});
