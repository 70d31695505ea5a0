// Brushing a time strip (`svg[data-brush]`: the feed's events-over-time bars, a capture's
// activity timeline): dragging across it chooses a stretch of time, and the page reloads with
// that stretch as its absolute range (`from`/`to` in the URL), so the back button (or `[`)
// undoes it. A click without a drag follows the bar's own link; keyboard users tab to bars.

/** Pixels a pointer must move before a press is a drag rather than a click. */
export const DRAG_PX = 4;

/**
 * The times (Unix ms) under pixels `x0`..`x1` of a strip `width` pixels wide spanning
 * `startMs`..`endMs`, in order and clamped to the strip; the end rounded up so the last
 * millisecond's events stay in.
 * @param {number} x0 @param {number} x1 @param {number} width
 * @param {number} startMs @param {number} endMs
 * @returns {[number, number]}
 */
export function spanOf(x0, x1, width, startMs, endMs) {
  const clamp = (/** @type {number} */ x) => Math.min(width, Math.max(0, x));
  const [a, b] = x0 <= x1 ? [clamp(x0), clamp(x1)] : [clamp(x1), clamp(x0)];
  const per = width > 0 ? (endMs - startMs) / width : 0;
  return [Math.floor(startMs + a * per), Math.ceil(startMs + b * per)];
}

/**
 * `href` with its range set to `fromMs`..`toMs` (RFC 3339, UTC): `from` and `to` replaced,
 * a preset (`last`) and paging (`cursor`, `after`) dropped, every other field kept.
 * @param {string} href @param {number} fromMs @param {number} toMs
 */
export function withRange(href, fromMs, toMs) {
  const url = new URL(href);
  for (const k of ["last", "cursor", "after"]) url.searchParams.delete(k);
  url.searchParams.set("from", new Date(fromMs).toISOString());
  url.searchParams.set("to", new Date(toMs).toISOString());
  return url.toString();
}

/** @param {SVGSVGElement} svg */
function brushable(svg) {
  const startMs = Number(svg.dataset.startMs);
  const endMs = Number(svg.dataset.endMs);
  if (!(endMs > startMs)) return;
  const box = /** @type {HTMLElement} */ (svg.parentElement);
  /** @type {number | null} */
  let x0 = null;
  let dragged = false;
  const sel = document.createElement("div");
  sel.className = "brush-sel";
  sel.hidden = true;
  box.append(sel);
  const x = (/** @type {PointerEvent} */ e) => e.clientX - svg.getBoundingClientRect().left;
  svg.addEventListener("pointerdown", (e) => {
    if (e.button !== 0) return;
    x0 = x(e);
    dragged = false;
  });
  svg.addEventListener("pointermove", (e) => {
    if (x0 === null) return;
    const x1 = x(e);
    if (!dragged && Math.abs(x1 - x0) < DRAG_PX) return;
    if (!dragged) svg.setPointerCapture(e.pointerId);
    dragged = true;
    sel.hidden = false;
    sel.style.left = `${svg.offsetLeft + Math.min(x0, x1)}px`;
    sel.style.width = `${Math.abs(x1 - x0)}px`;
  });
  svg.addEventListener("pointerup", (e) => {
    if (x0 === null) return;
    const start = x0;
    x0 = null;
    if (!dragged) return;
    const [from, to] = spanOf(start, x(e), svg.getBoundingClientRect().width, startMs, endMs);
    location.assign(withRange(location.href, from, to));
  });
  // The press that ended a drag is not also a click on the bar under it.
  svg.addEventListener(
    "click",
    (e) => {
      if (dragged) {
        e.preventDefault();
        dragged = false;
      }
    },
    true,
  );
}

if (typeof document !== "undefined" && document.querySelectorAll) {
  const all = () =>
    document.querySelectorAll("svg[data-brush]").forEach((el) => {
      const svg = /** @type {SVGSVGElement} */ (/** @type {unknown} */ (el));
      if (svg.dataset.brushReady) return;
      svg.dataset.brushReady = "true";
      brushable(svg);
    });
  all();
  // The feed is swapped in place by htmx: its new strip needs the brush too.
  document.body?.addEventListener("htmx:afterSwap", all);
}
