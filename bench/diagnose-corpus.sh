#!/usr/bin/env bash
# The diagnosis corpus as a benchmark: every manifest of scenarios/ runs in one local-runtime
# batch with the flight recorder; `crashscope diagnose -A` is polled every 0.5 s, and for each
# scenario the table gives the expected cause, the cause found, top-1 right or wrong, and how
# long after the container's first exit the right cause was first diagnosed — with capture
# evidence where the recorder writes a capture. Needs root, python3 and nginx.
# Then the engine over one large capture: `diagnose --capture` on a capture of about MB
# megabytes (a crash after a burst of system calls), timed with its peak memory.
# Usage: bench/diagnose-corpus.sh [MB]   (default 64)
set -euo pipefail
cd "$(dirname "$0")/.."
mb=${1:-64}
[ "$(id -u)" = 0 ] || { echo "needs root (the local runtime and the eBPF recorder)" >&2; exit 1; }
cargo build -q --release --bin crashscope
bin=$PWD/target/release/crashscope
work=$(mktemp -d)
trap 'kill -INT $run 2>/dev/null || true; wait $run 2>/dev/null || true; rm -rf "$work"' EXIT
"$bin" --data-dir "$work/data" run scenarios/*.yaml --time-scale 0.05 --dns 127.0.99.42 \
  >"$work/run.log" 2>&1 &
run=$!
python3 - "$bin" "$work/data" scenarios <<'PY'
import json, os, subprocess, sys, time
bin, data, sdir = sys.argv[1:4]
expect = {}
for f in sorted(os.listdir(sdir)):
    if f.endswith(".yaml"):
        first = open(os.path.join(sdir, f)).readline().strip()  # "# expect: ID"
        expect[f[:-5]] = first.removeprefix("# expect: ").removesuffix(" (init)")
first_exit, found, took = {}, {}, {}
start = time.time()
while time.time() - start < 120 and len(took) < len(expect):
    out = subprocess.run([bin, "--data-dir", data, "diagnose", "-A", "-o", "json"],
                         capture_output=True, text=True).stdout
    now = time.time()
    for d in json.loads(out or "[]"):
        ns = d["namespace"]
        if ns not in expect:
            continue
        if d.get("exited_at"):
            t = d["exited_at"].replace("Z", "+00:00")
            from datetime import datetime
            ts = datetime.fromisoformat(t).timestamp()
            first_exit[ns] = min(first_exit.get(ns, ts), ts)
        top = d["causes"][0]
        found[ns] = top["id"]
        has_cap = any(i.startswith("capture: /") for i in d["inputs"])
        cites = any(e["source"] == "capture" for e in top["evidence"])
        if ns not in took and top["id"] == expect[ns] and (cites or not has_cap):
            took[ns] = now - first_exit.get(ns, now)
    time.sleep(0.5)
right = 0
print(f"{'scenario':32} {'expected':30} {'found':30} top-1  first exit → diagnosis")
for ns, want in expect.items():
    got = found.get(ns, "-")
    ok = got == want
    right += ok
    t = f"{took[ns]:.1f} s" if ns in took and ns in first_exit else ("no exit" if ns in took else "-")
    print(f"{ns:32} {want:30} {got:30} {'yes' if ok else 'NO ':5}  {t}")
print(f"top-1: {right}/{len(expect)}")
PY
kill -INT $run 2>/dev/null; wait $run 2>/dev/null || true

# One large capture: a burst of 1-byte reads, then a crash on a missing file.
count=$(( mb * 1024 * 1024 / 260 ))
"$bin" capture -w "$work/big.scap" --buffer-size 256 -- sh -c \
  "dd if=/dev/zero of=/dev/null bs=1 count=$count 2>/dev/null; exec python3 -c 'open(\"/srv/conf/app.toml\")'" \
  >/dev/null 2>"$work/capture.err" || true
size=$(( $(stat -c %s "$work/big.scap") / 1024 / 1024 ))
/usr/bin/time -f '%e s, peak RSS %M KB' -o "$work/time" \
  taskset -c 0 "$bin" diagnose --capture "$work/big.scap" -o json >"$work/out.json"
cause=$(python3 -c "import json; print(json.load(open('$work/out.json'))[0]['causes'][0]['id'])")
echo "diagnose --capture over $size MiB (one core): $(cat "$work/time"); cause $cause"
