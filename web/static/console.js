// Recourse console: live SLA countdowns, relative times, the viewer's time
// zone and keyboard shortcuts. Loaded with defer from layout.html; no inline
// script (the CSP forbids it). Every page works without it.
(function () {
  "use strict";

  // The viewer's time zone, for the server to render times in (recourse_tz;
  // validated there with time.LoadLocation, UTC when unknown).
  try {
    var tz = Intl.DateTimeFormat().resolvedOptions().timeZone;
    if (tz && document.cookie.indexOf("recourse_tz=" + encodeURIComponent(tz)) < 0) {
      document.cookie = "recourse_tz=" + encodeURIComponent(tz) + "; path=/; max-age=31536000; SameSite=Lax";
    }
  } catch (e) { /* no Intl: times stay in UTC */ }

  function pad(n) { return (n < 10 ? "0" : "") + n; }

  // span writes a duration in seconds as the console does ("3d 4h",
  // "2h 05m 09s", "4m 09s"): seconds under a day, so a countdown visibly runs.
  function span(s) {
    s = Math.max(0, Math.floor(s));
    var d = Math.floor(s / 86400), h = Math.floor(s / 3600) % 24, m = Math.floor(s / 60) % 60, sec = s % 60;
    if (d > 0) return d + "d " + h + "h";
    if (h > 0) return h + "h " + pad(m) + "m " + pad(sec) + "s";
    return m + "m " + pad(sec) + "s";
  }

  // Countdowns: [data-due] elements say how long is left, and get the
  // class "breached" (and their cell "sla-breached") once it is past.
  function tickCountdowns() {
    var now = Date.now();
    document.querySelectorAll("[data-due]").forEach(function (el) {
      var due = Date.parse(el.getAttribute("data-due"));
      if (isNaN(due)) return;
      var left = (due - now) / 1000;
      var past = left < 0 || (el.parentElement && el.parentElement.classList.contains("sla-breached"));
      el.textContent = left < 0 ? "breached " + span(-left) + " ago" : (past ? "breached · " : "") + span(left) + " left";
      el.classList.toggle("breached", past);
      if (past && el.parentElement) el.parentElement.classList.add("sla-breached");
    });
  }

  // Relative times: <time datetime> shows "3 min ago" (or "in 2 h"), with
  // the absolute time in the viewer's zone as its title.
  var absolute;
  try {
    absolute = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short", timeZoneName: "short" });
  } catch (e) { absolute = null; }

  function relative(ms) {
    var s = Math.round(Math.abs(ms) / 1000), v, unit;
    if (s < 45) return "just now";
    if (s < 3600) { v = Math.round(s / 60); unit = "min"; }
    else if (s < 86400) { v = Math.round(s / 3600); unit = "h"; }
    else { v = Math.round(s / 86400); unit = v === 1 ? "day" : "days"; }
    return ms < 0 ? "in " + v + " " + unit : v + " " + unit + " ago";
  }

  function tickTimes() {
    var now = Date.now();
    document.querySelectorAll("time[datetime]").forEach(function (el) {
      var t = Date.parse(el.getAttribute("datetime"));
      if (isNaN(t)) return;
      if (!el.hasAttribute("data-abs")) {
        el.setAttribute("data-abs", el.textContent);
        el.title = absolute ? absolute.format(new Date(t)) : el.textContent;
      }
      el.textContent = relative(now - t);
    });
  }

  function tick() { tickCountdowns(); tickTimes(); }
  tick();
  setInterval(tick, 1000);
  // htmx swaps in fresh markup (the case page poll): render it at once.
  document.body.addEventListener("htmx:afterSwap", tick);

  // Select all on page.
  var all = document.getElementById("select-all");
  if (all) {
    all.addEventListener("change", function () {
      document.querySelectorAll('#cases input[name="case"]').forEach(function (cb) { cb.checked = all.checked; });
    });
  }

  // Keyboard shortcuts (listed in the #shortcuts dialog, opened with ?).
  var dialog = document.getElementById("shortcuts");
  function typing(el) {
    if (!el) return false;
    var tag = el.tagName;
    return tag === "INPUT" || tag === "TEXTAREA" || tag === "SELECT" || el.isContentEditable;
  }
  function rows() { return Array.prototype.slice.call(document.querySelectorAll("#cases tbody tr[data-url]")); }
  function focusRow(delta) {
    var rs = rows();
    if (!rs.length) return;
    var i = rs.indexOf(document.activeElement && document.activeElement.closest ? document.activeElement.closest("tr") : null);
    i = i < 0 ? (delta > 0 ? 0 : rs.length - 1) : Math.min(rs.length - 1, Math.max(0, i + delta));
    rs.forEach(function (r) { r.classList.remove("focused"); });
    rs[i].classList.add("focused");
    rs[i].focus();
  }
  function openRow() {
    var r = document.activeElement && document.activeElement.closest ? document.activeElement.closest("tr[data-url]") : null;
    if (r) { window.location.href = r.getAttribute("data-url"); return true; }
    return false;
  }

  document.addEventListener("keydown", function (ev) {
    if (ev.ctrlKey || ev.metaKey || ev.altKey) return;
    if (dialog && dialog.open) return; // the dialog handles its own keys (Esc closes it)
    if (typing(ev.target)) return;
    var el;
    switch (ev.key) {
      case "?":
        if (dialog && dialog.showModal) { dialog.showModal(); ev.preventDefault(); }
        return;
      case "j": focusRow(1); ev.preventDefault(); return;
      case "k": focusRow(-1); ev.preventDefault(); return;
      case "Enter":
      case "o":
        // Enter on a link or button keeps its own meaning.
        if (ev.key === "Enter" && ev.target.closest && ev.target.closest("a, button")) return;
        if (openRow()) ev.preventDefault();
        return;
      case "n":
        el = document.querySelector("[data-next-url]");
        if (el) { window.location.href = el.getAttribute("data-next-url"); ev.preventDefault(); }
        return;
      case "a":
        el = document.getElementById("assign-me");
        if (el && el.form) { el.form.requestSubmit ? el.form.requestSubmit(el) : el.form.submit(); ev.preventDefault(); }
        return;
      case "c":
        el = document.getElementById("note-body");
        if (el) { el.focus(); ev.preventDefault(); }
        return;
      case "t":
        el = document.querySelector("#transition-form button, #transition-form textarea");
        if (el) { el.focus(); ev.preventDefault(); }
        return;
    }
  });
})();
