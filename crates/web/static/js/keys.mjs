// Keyboard use of every page: `?` help, `/` the filter box, `j`/`k` move through the rows
// of a table, Enter opens the selected row's link, Esc leaves a field or closes help,
// `g` then a letter goes to a page (e = events, i = incidents, a = alerts, p = pods, c = captures)
// in the scope the page is in, `[` and `]` go back and forward through the ranges and pages
// seen. Keys typed into a field are the field's.

/** @param {EventTarget | null} t */
export function typing(t) {
  if (!(t instanceof HTMLElement)) return false;
  return t.isContentEditable || ["INPUT", "SELECT", "TEXTAREA"].includes(t.tagName);
}

/**
 * The row index after moving by `step` from `current` among `count` rows (-1: none yet).
 * @param {number} current @param {number} step @param {number} count
 */
export function moveRow(current, step, count) {
  if (count === 0) return -1;
  if (current < 0) return step > 0 ? 0 : count - 1;
  return Math.min(count - 1, Math.max(0, current + step));
}

/** Pages reached with `g` then a letter. */
export const GO = { e: "/ui/events", i: "/ui/incidents", a: "/ui/alerts", p: "/ui/pods", c: "/ui/captures" };

function rows() {
  return Array.from(document.querySelectorAll("table[data-rows] tbody tr"));
}

let selected = -1;
let pendingG = false;

function select(i) {
  const all = rows();
  all.forEach((r, j) => r.setAttribute("aria-selected", String(j === i)));
  selected = i;
  if (i >= 0) all[i].scrollIntoView({ block: "nearest" });
}

document.addEventListener("keydown", (e) => {
  if (e.ctrlKey || e.metaKey || e.altKey) return;
  const help = /** @type {HTMLDialogElement | null} */ (document.getElementById("help"));
  if (e.key === "Escape") {
    if (help?.open) help.close();
    if (typing(e.target)) /** @type {HTMLElement} */ (e.target).blur();
    return;
  }
  if (typing(e.target)) return;
  if (pendingG) {
    pendingG = false;
    const to = GO[/** @type {keyof typeof GO} */ (e.key)];
    // The navigation's link carries the page's scope.
    const link = to && document.querySelector(`header.top nav a[href^="${to}"]`);
    if (to) location.assign(link?.getAttribute("href") || to);
    return;
  }
  switch (e.key) {
    case "?":
      help?.showModal();
      break;
    case "/": {
      const box = /** @type {HTMLInputElement | null} */ (document.querySelector("[data-filter]"));
      if (box) {
        e.preventDefault();
        box.focus();
        box.select();
      }
      break;
    }
    case "j":
    case "k":
      select(moveRow(selected, e.key === "j" ? 1 : -1, rows().length));
      break;
    case "Enter": {
      const link = rows()[selected]?.querySelector("a");
      if (link) link.click();
      break;
    }
    case "g":
      pendingG = true;
      break;
    case "[":
      history.back();
      break;
    case "]":
      history.forward();
      break;
  }
});

// A table swapped in by htmx starts with no row selected.
document.body.addEventListener("htmx:afterSwap", () => {
  selected = -1;
});
