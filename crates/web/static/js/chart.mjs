// Restart charts: each `[data-chart]` element fetches its series and events (`data-src`,
// with the element's width in pixels, so the server sends at most 2 points per pixel) and
// draws the series with uPlot, and the events in a lane below it — one mark per pixel
// bucket with "+N" for the others there, so a crash loop's thousand BackOff events stay a
// readable row instead of a wall. Dragging across the plot zooms: the data is fetched again
// for the chosen stretch (at the new resolution) and the page's URL takes it as `from`/`to`,
// so the back button zooms out. `data-mark` (Unix seconds) draws a line at one moment — the
// event "show on chart" came from.

/** The mark of each kind of event: shape as well as colour. */
export const SYMBOLS = { change: "▲", backoff: "■", oom: "✖", kill: "◆", capture: "●", other: "•" };

/**
 * Groups markers into buckets of `px` pixels across `width` pixels spanning `from`..`to`
 * (unix seconds; a bucket is wide enough for its mark and "+N" to stand apart). Returns buckets left to right: {x, kind, count, labels}; a bucket's
 * kind is the one most of its markers have (the first such in `SYMBOLS` order on a tie).
 * @param {{t: number, kind: string, label: string}[]} markers
 * @param {number} from @param {number} to @param {number} width @param {number} [px]
 */
export function bucket(markers, from, to, width, px = 36) {
  if (width <= 0 || to <= from) return [];
  const n = Math.max(1, Math.floor(width / px));
  /** @type {Map<number, {t: number, kind: string, label: string}[]>} */
  const groups = new Map();
  for (const m of markers) {
    if (m.t < from || m.t > to) continue;
    const i = Math.min(n - 1, Math.floor(((m.t - from) / (to - from)) * n));
    const g = groups.get(i);
    if (g) g.push(m);
    else groups.set(i, [m]);
  }
  const order = Object.keys(SYMBOLS);
  return [...groups.entries()]
    .sort((a, b) => a[0] - b[0])
    .map(([i, ms]) => {
      const counts = new Map();
      for (const m of ms) counts.set(m.kind, (counts.get(m.kind) || 0) + 1);
      const kind = [...counts.entries()].sort(
        (a, b) => b[1] - a[1] || order.indexOf(a[0]) - order.indexOf(b[0]),
      )[0][0];
      return {
        x: Math.round((i + 0.5) * (width / n)),
        kind,
        count: ms.length,
        labels: ms.slice(0, 10).map((m) => m.label),
      };
    });
}

/**
 * `href` (the pod page) zoomed to `fromSec`..`toSec`: absolute `from`/`to` (RFC 3339), the
 * preset `range` and the marked moment `at` dropped.
 * @param {string} href @param {number} fromSec @param {number} toSec
 */
export function zoomed(href, fromSec, toSec) {
  const url = new URL(href);
  url.searchParams.delete("range");
  url.searchParams.delete("at");
  url.searchParams.set("from", new Date(Math.floor(fromSec) * 1000).toISOString());
  url.searchParams.set("to", new Date(Math.ceil(toSec) * 1000).toISOString());
  return url.toString();
}

/**
 * The data URL for `src` (the element's `data-src`) with the page URL's zoom, when it has
 * one, in place of the preset range.
 * @param {string} src @param {string} page
 */
export function dataUrl(src, page) {
  const p = new URL(page).searchParams;
  if (!p.get("from") || !p.get("to")) return src;
  const url = new URL(src, page);
  url.searchParams.delete("range");
  url.searchParams.set("from", /** @type {string} */ (p.get("from")));
  url.searchParams.set("to", /** @type {string} */ (p.get("to")));
  return url.pathname + url.search;
}

/**
 * A hatched fill for silences (drawn, not only coloured: a silence reads as "muted").
 * @param {CanvasRenderingContext2D} ctx
 */
function hatch(ctx) {
  const tile = document.createElement("canvas");
  tile.width = tile.height = 8;
  const t = tile.getContext("2d");
  if (t) {
    t.strokeStyle = "rgba(110, 119, 129, 0.45)";
    t.lineWidth = 1;
    t.beginPath();
    t.moveTo(0, 8);
    t.lineTo(8, 0);
    t.stroke();
  }
  return ctx.createPattern(tile, "repeat") || "rgba(110, 119, 129, 0.15)";
}

/** Band fills by kind: translucent, so the series stays readable over them. */
const BAND_FILL = { alert: "rgba(207, 34, 46, 0.12)", incident: "rgba(188, 76, 0, 0.10)" };

/**
 * The chart as rows for its table view: the bands, then each step with restarts, in time
 * order — [time (unix s), what, detail].
 * @param {{series: {label: string, points: [number, number][]}[], bands?: {from: number, to: number, kind: string, label: string}[]}} data
 * @returns {[number, string, string][]}
 */
export function tableRows(data) {
  /** @type {[number, string, string][]} */
  const rows = [];
  for (const b of data.bands || []) rows.push([b.from, b.kind, `${b.label} (until ${new Date(b.to * 1000).toISOString()})`]);
  for (const s of data.series) {
    for (const [t, v] of s.points) if (v > 0) rows.push([t, "restarts", `${s.label}: ${v}`]);
  }
  return rows.sort((a, b) => a[0] - b[0]);
}

/** @param {HTMLElement} el @param {any} data */
function table(el, data) {
  const details = document.createElement("details");
  details.className = "chart-table";
  const summary = document.createElement("summary");
  summary.textContent = "The chart as a table";
  details.append(summary);
  const t = document.createElement("table");
  t.className = "feed";
  const head = t.createTHead().insertRow();
  for (const h of ["Time (UTC)", "What", "Detail"]) {
    const th = document.createElement("th");
    th.scope = "col";
    th.textContent = h;
    head.append(th);
  }
  const body = t.createTBody();
  for (const [time, what, detail] of tableRows(data)) {
    const r = body.insertRow();
    r.insertCell().textContent = new Date(time * 1000).toISOString().replace("T", " ").slice(0, 19);
    r.insertCell().textContent = what;
    r.insertCell().textContent = detail;
  }
  details.append(t);
  // Beside the chart, not in it: the chart is an image to assistive technology.
  const old = el.nextElementSibling;
  if (old && old.classList.contains("chart-table")) old.remove();
  el.after(details);
}

const COLOURS = ["#0969da", "#cf222e", "#1a7f37", "#8250df", "#bc4c00", "#1b7c83"];

/** @param {HTMLElement} el @param {string} source */
async function draw(el, source) {
  const width = Math.max(200, el.clientWidth);
  const src = `${source}${source.includes("?") ? "&" : "?"}width=${width}`;
  const res = await fetch(src, { credentials: "same-origin" });
  if (!res.ok) {
    el.textContent = `The chart could not be loaded (${res.status}).`;
    return;
  }
  const data = await res.json();
  const started = performance.now();
  el.replaceChildren();
  const mark = Number(el.dataset.mark);
  const xs = data.series.length ? data.series[0].points.map((p) => p[0]) : [data.from, data.to];
  const ys = data.series.map((s) => s.points.map((p) => p[1]));
  // @ts-ignore uPlot is the vendored script's global.
  const u = new uPlot(
    {
      width,
      height: 200,
      scales: { x: { time: true, range: [data.from, data.to] } },
      series: [{}, ...data.series.map((s, i) => ({ label: s.label, stroke: COLOURS[i % COLOURS.length], width: 2 }))],
      axes: [{}, { label: "restarts" }],
      cursor: { drag: { x: true, y: false, setScale: false } },
      hooks: {
        // A drag picks a stretch: fetch it at the new resolution, and keep it in the URL.
        setSelect: [
          (/** @type {any} */ u) => {
            if (u.select.width < 4) return;
            const a = u.posToVal(u.select.left, "x");
            const b = u.posToVal(u.select.left + u.select.width, "x");
            if (!(b > a)) return;
            const next = zoomed(location.href, a, b);
            history.pushState(null, "", next);
            el.dataset.drawn = "false";
            draw(el, dataUrl(/** @type {string} */ (el.dataset.src), next));
          },
        ],
        // Alert firing and crash-loop stretches, behind the series.
        drawClear: [
          (/** @type {any} */ u) => {
            const ctx = u.ctx;
            for (const b of data.bands || []) {
              const x0 = u.valToPos(b.from, "x", true);
              const x1 = u.valToPos(b.to, "x", true);
              ctx.save();
              ctx.fillStyle = b.kind === "silence" ? hatch(ctx) : BAND_FILL[b.kind] || BAND_FILL.incident;
              ctx.fillRect(x0, u.bbox.top, Math.max(x1 - x0, 2), u.bbox.height);
              ctx.restore();
            }
          },
        ],
        draw: [
          (/** @type {any} */ u) => {
            if (!Number.isFinite(mark)) return;
            const x = u.valToPos(mark, "x", true);
            const ctx = u.ctx;
            ctx.save();
            ctx.strokeStyle = "#8250df";
            ctx.lineWidth = 2 * (devicePixelRatio || 1);
            ctx.setLineDash([6, 4]);
            ctx.beginPath();
            ctx.moveTo(x, u.bbox.top);
            ctx.lineTo(x, u.bbox.top + u.bbox.height);
            ctx.stroke();
            ctx.restore();
          },
        ],
      },
    },
    [xs, ...ys],
    el,
  );
  const lane = document.createElement("div");
  lane.className = "lane";
  lane.setAttribute("role", "list");
  lane.setAttribute("aria-label", "Events on the time axis");
  // The plotting area, in CSS pixels (uPlot lays out its elements after this call).
  // @ts-ignore uPlot is the vendored script's global.
  const ratio = uPlot.pxRatio || 1;
  const left = u.bbox.left / ratio;
  const plotWidth = u.bbox.width / ratio;
  lane.style.marginLeft = `${left}px`;
  lane.style.width = `${plotWidth}px`;
  for (const b of bucket(data.markers, data.from, data.to, plotWidth)) {
    const m = document.createElement("span");
    m.className = `marker kind-${b.kind}`;
    m.setAttribute("role", "listitem");
    m.style.left = `${b.x}px`;
    m.title = b.labels.join("\n") + (b.count > b.labels.length ? `\n… ${b.count - b.labels.length} more` : "");
    m.textContent = SYMBOLS[b.kind] + (b.count > 1 ? `+${b.count - 1}` : "");
    m.setAttribute("aria-label", `${b.count} event${b.count > 1 ? "s" : ""}: ${b.labels[0]}`);
    lane.append(m);
  }
  if (Number.isFinite(mark) && mark >= data.from && mark <= data.to) {
    const m = document.createElement("span");
    m.className = "marker kind-at";
    m.setAttribute("role", "listitem");
    m.style.left = `${((mark - data.from) / (data.to - data.from)) * plotWidth}px`;
    m.textContent = "▼";
    m.title = "the event shown";
    m.setAttribute("aria-label", "the event shown");
    lane.append(m);
  }
  // Right under the plot's time axis, above the legend.
  const wrap = u.root.querySelector(".u-wrap");
  if (wrap) wrap.after(lane);
  else el.append(lane);
  el.dataset.drawMs = String(Math.round(performance.now() - started));
  table(el, data);
  el.dataset.markers = String(data.markers.length);
  el.dataset.drawn = "true";
}

if (typeof document !== "undefined" && document.querySelectorAll) {
  document.querySelectorAll("[data-chart]").forEach((e) => {
    const el = /** @type {HTMLElement} */ (e);
    draw(el, dataUrl(/** @type {string} */ (el.dataset.src), location.href));
  });
  // Back (or forward) through zooms: the page as its URL now says.
  window.addEventListener("popstate", () => location.reload());
}
