// node --test: the pure parts of keys.mjs (the module's listeners need a document, which
// node has not; they are exercised in the browser test).
import { test } from "node:test";
import assert from "node:assert/strict";

globalThis.document = { addEventListener() {}, body: { addEventListener() {} } };
globalThis.HTMLElement = class {};
const { moveRow, GO } = await import("../../static/js/keys.mjs");

test("j and k stay within the rows and start at an end", () => {
  assert.equal(moveRow(-1, 1, 5), 0);
  assert.equal(moveRow(-1, -1, 5), 4);
  assert.equal(moveRow(4, 1, 5), 4);
  assert.equal(moveRow(0, -1, 5), 0);
  assert.equal(moveRow(2, 1, 5), 3);
  assert.equal(moveRow(3, 1, 0), -1);
});

test("g and a letter go to each page", () => {
  assert.deepEqual(GO, { e: "/ui/events", i: "/ui/incidents", a: "/ui/alerts", p: "/ui/pods", c: "/ui/captures" });
});

test("the live pill counts what arrived", async () => {
  const { pillText } = await import("../../static/js/live.mjs");
  assert.equal(pillText(1), "1 new event — show");
  assert.equal(pillText(12), "12 new events — show");
});
