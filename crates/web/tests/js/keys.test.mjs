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

test("g e and g p go to the events feed and the pods", () => {
  assert.equal(GO.e, "/ui/events");
  assert.equal(GO.p, "/ui/pods");
});
