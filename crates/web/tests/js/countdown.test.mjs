// node --test: the words of the back-off countdown.
import { test } from "node:test";
import assert from "node:assert/strict";

const { left } = await import("../../static/js/countdown.mjs");

test("the time left is said in seconds, minutes or hours, then due", () => {
  assert.equal(left(4200), "in 5s");
  assert.equal(left(80_000), "in 1m20s");
  assert.equal(left(300_000), "in 5m00s");
  assert.equal(left(3_900_000), "in 1h05m");
  assert.equal(left(0), "due now");
  assert.equal(left(-5000), "due now");
  assert.equal(left(NaN), "due now");
});
