// node --test: how chart.mjs groups events into per-pixel buckets under a chart.
import { test } from "node:test";
import assert from "node:assert/strict";

const { bucket, SYMBOLS } = await import("../../static/js/chart.mjs");

test("a thousand BackOff events in half a minute are one mark with +999", () => {
  const ms = Array.from({ length: 1000 }, (_, i) => ({ t: 1080 + i * 0.03, kind: "backoff", label: `BackOff ${i}` }));
  const b = bucket(ms, 0, 3600, 600);
  assert.equal(b.length, 1);
  assert.equal(b[0].count, 1000);
  assert.equal(b[0].kind, "backoff");
  assert.equal(b[0].labels.length, 10);
});

test("events apart stay apart, left to right, and outside the range are left out", () => {
  const b = bucket(
    [
      { t: 3000, kind: "oom", label: "OOMKilling" },
      { t: 100, kind: "change", label: "deploy" },
      { t: 5000, kind: "other", label: "late" },
    ],
    0,
    3600,
    600,
  );
  assert.deepEqual(b.map((x) => x.kind), ["change", "oom"]);
  assert.ok(b[0].x < b[1].x);
  assert.ok(b[1].x <= 600);
});

test("a bucket shows its commonest kind; a tie goes to the earlier symbol", () => {
  const one = (kind) => ({ t: 10, kind, label: kind });
  assert.equal(bucket([one("other"), one("backoff"), one("backoff")], 0, 60, 60)[0].kind, "backoff");
  assert.equal(bucket([one("other"), one("change")], 0, 60, 60)[0].kind, "change");
  assert.ok(Object.values(SYMBOLS).every((s) => s.length === 1));
});

test("nothing to draw on an empty range", () => {
  assert.deepEqual(bucket([{ t: 1, kind: "other", label: "x" }], 10, 10, 600), []);
  assert.deepEqual(bucket([{ t: 1, kind: "other", label: "x" }], 0, 10, 0), []);
});

test("a zoom puts absolute bounds in the page's URL in place of the preset", async () => {
  const { zoomed, dataUrl } = await import("../../static/js/chart.mjs");
  const from = Date.UTC(2026, 11, 7, 10, 0, 0) / 1000;
  const page = zoomed("http://h/ui/pods/shop/web?range=6h&at=2026-12-07T10:01:00Z", from + 0.4, from + 600.2);
  const u = new URL(page);
  assert.equal(u.searchParams.get("range"), null);
  assert.equal(u.searchParams.get("at"), null);
  assert.equal(u.searchParams.get("from"), "2026-12-07T10:00:00.000Z");
  assert.equal(u.searchParams.get("to"), "2026-12-07T10:10:01.000Z");
  // The chart's data follows the page's zoom; without one it keeps its own range.
  assert.equal(
    dataUrl("/ui/pods/shop/web/chart.json?range=6h", page),
    "/ui/pods/shop/web/chart.json?from=2026-12-07T10%3A00%3A00.000Z&to=2026-12-07T10%3A10%3A01.000Z",
  );
  assert.equal(dataUrl("/ui/pods/shop/web/chart.json?range=6h", "http://h/ui/pods/shop/web"), "/ui/pods/shop/web/chart.json?range=6h");
});

test("the table view lists the bands and the steps with restarts, in time order", async () => {
  const { tableRows } = await import("../../static/js/chart.mjs");
  const rows = tableRows({
    series: [{ label: "app", points: [[100, 0], [160, 1], [220, 2]] }],
    bands: [{ from: 130, to: 400, kind: "alert", label: "alert restarts: 3 restarts" }],
  });
  assert.deepEqual(
    rows.map((r) => [r[0], r[1]]),
    [[130, "alert"], [160, "restarts"], [220, "restarts"]],
  );
  assert.equal(rows[2][2], "app: 2");
});
