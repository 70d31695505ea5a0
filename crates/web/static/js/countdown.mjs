// The live back-off countdown on a crash-looping pod's page: each `time[data-countdown]`
// (its `datetime` the kubelet's next start) says how long is left, every second, until it
// is due.

/**
 * What is left until a moment `ms` milliseconds away, in words.
 * @param {number} ms
 */
export function left(ms) {
  if (!(ms > 0)) return "due now";
  const s = Math.ceil(ms / 1000);
  if (s < 60) return `in ${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `in ${m}m${String(s % 60).padStart(2, "0")}s`;
  return `in ${Math.floor(m / 60)}h${String(m % 60).padStart(2, "0")}m`;
}

if (typeof document !== "undefined" && document.querySelectorAll) {
  const all = () => Array.from(document.querySelectorAll("time[data-countdown]"));
  const tick = () => {
    for (const el of all()) {
      const at = Date.parse(el.getAttribute("datetime") || "");
      if (Number.isFinite(at)) el.textContent = left(at - Date.now());
    }
  };
  tick();
  if (all().length) setInterval(tick, 1000);
}
