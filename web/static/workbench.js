// Live character counters for the evidence workbench's fields: each
// textarea[data-max] updates the count named by its aria-describedby. The
// server checks the limits again on save; this only shows them as you type.
"use strict";
document.querySelectorAll("textarea[data-max]").forEach(function (ta) {
  var max = parseInt(ta.getAttribute("data-max"), 10);
  var out = document.getElementById("c-" + ta.id.replace(/^f-/, ""));
  if (!out || !max) { return; }
  var chars = out.querySelector(".chars");
  function update() {
    // Code points, as Stripe and the server count them (not UTF-16 units).
    var n = Array.from(ta.value).length;
    chars.textContent = String(n);
    out.classList.toggle("over", n > max);
  }
  ta.addEventListener("input", update);
  update();
});
