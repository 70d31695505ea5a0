// The feed's live updates: counts the events that arrived since the page was drawn (a
// Server-Sent Events stream, `data-live`) and offers them in a pill; the rows on screen never
// move while someone reads them.

/** @param {number} n */
export function pillText(n) {
  return n === 1 ? "1 new event — show" : `${n} new events — show`;
}

if (typeof document !== "undefined" && document.querySelector) {
  const box = /** @type {HTMLElement | null} */ (document.querySelector("[data-live]"));
  if (box && typeof EventSource !== "undefined") {
    let count = 0;
    const source = new EventSource(box.dataset.live || "");
    source.addEventListener("new", (e) => {
      count += Number(/** @type {MessageEvent} */ (e).data) || 0;
      const pill = document.createElement("a");
      pill.className = "pill";
      pill.href = location.pathname + location.search;
      pill.textContent = pillText(count);
      box.replaceChildren(pill);
    });
  }
}
