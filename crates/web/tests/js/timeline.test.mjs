// node --test: the pure parts of timeline.mjs — pixels to times, and the URL a brush makes.
import { test } from "node:test";
import assert from "node:assert/strict";

const { spanOf, withRange } = await import("../../static/js/timeline.mjs");

test("a brushed stretch is the time under it, in order and within the strip", () => {
  // 480 px over 4800 s: 10 s per pixel.
  const start = Date.UTC(2026, 11, 7, 10, 0, 0);
  const end = start + 4_800_000;
  assert.deepEqual(spanOf(48, 96, 480, start, end), [start + 480_000, start + 960_000]);
  assert.deepEqual(spanOf(96, 48, 480, start, end), [start + 480_000, start + 960_000]);
  assert.deepEqual(spanOf(-20, 900, 480, start, end), [start, end]);
  // A fraction of a millisecond at the end is rounded out, not lost.
  const [, to] = spanOf(0, 1, 3, 0, 10);
  assert.equal(to, 4);
});

test("the brushed range replaces the page's range and keeps its other fields", () => {
  const href = "http://127.0.0.1:8080/ui/events?namespace=shop&last=1h&cursor=12.3&q=oom";
  const out = new URL(withRange(href, Date.UTC(2026, 11, 7, 10, 0, 0), Date.UTC(2026, 11, 7, 10, 5, 0)));
  assert.equal(out.pathname, "/ui/events");
  assert.equal(out.searchParams.get("namespace"), "shop");
  assert.equal(out.searchParams.get("q"), "oom");
  assert.equal(out.searchParams.get("last"), null);
  assert.equal(out.searchParams.get("cursor"), null);
  assert.equal(out.searchParams.get("from"), "2026-12-07T10:00:00.000Z");
  assert.equal(out.searchParams.get("to"), "2026-12-07T10:05:00.000Z");
});
