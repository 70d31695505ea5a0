#!/usr/bin/env bash
# The flight recorder under load, side by side with the capture command's figures
# (bench/recorder-throughput.sh): a pod of the local runtime copies N one-byte blocks with dd
# (one copy, then two at once in the same container) and fails. The recorder keeps the
# container's last 30 s in memory — bounded by its 64 MiB per container, so at this rate the
# window is the last fraction of a second — and writes them when the container dies.
# Prints the producers' run (timed inside the container), the events per second they made
# (4 per block: a read and a write, entry and exit), records the probe dropped, events in the
# capture written, and the runtime's own CPU time (every thread: the reader keeping the
# windows, the kubelet loop, the store) and peak memory.
# Needs root. Usage: bench/flight-throughput.sh [N]   (default 5000000)
set -euo pipefail
# A relative CRASHSCOPE is the caller's, not the repository's.
[ -n "${CRASHSCOPE:-}" ] && CRASHSCOPE=$(realpath "$CRASHSCOPE")
cd "$(dirname "$0")/.."
n=${1:-5000000}
cs=${CRASHSCOPE:-}
if [ -z "$cs" ]; then
  cargo build -q --release --bin crashscope
  cs=./target/release/crashscope
fi
cs=$(realpath "$cs")
work=$(mktemp -d)
pid=
cleanup() {
  [ -n "$pid" ] && kill -INT "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
tck=$(getconf CLK_TCK)

printf '%-30s %7s %10s %8s %12s %9s %9s\n' run span "events/s" dropped "in capture" "rt. CPU" "peak MB"
for par in 1 2; do
  data="$work/data$par"
  dd="dd if=/dev/zero of=/dev/null bs=1 count=$n status=none"
  body="$dd"
  [ "$par" = 2 ] && body="$dd & $dd; wait"
  cat > "$work/busy.yaml" <<EOF
apiVersion: v1
kind: Pod
metadata: {name: busy}
spec:
  restartPolicy: Never
  containers:
  - name: busy
    image: debian
    command: [sh, -c, "s=\$(date +%s%N); $body; echo span \$((\$(date +%s%N) - s)); exit 1"]
EOF
  "$cs" --data-dir "$data" run --dns 127.0.99.61 "$work/busy.yaml" > "$work/run.log" 2>&1 &
  pid=$!
  captured=
  for _ in $(seq 1 600); do
    captured=$("$cs" --data-dir "$data" captures -o json 2>/dev/null || true)
    if echo "$captured" | grep -q '"file"'; then break; fi
    sleep 0.5
  done
  read -r _ _ _ _ _ _ _ _ _ _ _ _ _ ut st _ < "/proc/$pid/stat"
  peak=$(awk '/VmHWM/ {print int($2 / 1024)}' "/proc/$pid/status")
  span=$("$cs" --data-dir "$data" logs busy | awk '/^span/ {print $2 / 1e9}')
  [ -n "$span" ] || { echo "the pod did not log its run time" >&2; exit 1; }
  file=$(echo "$captured" | sed -n 's/.*"file": *"\(.*\)".*/\1/p' | head -1)
  if [ -z "$file" ]; then
    echo "no capture was written in 300 s; the runtime said:" >&2
    cat "$work/run.log" >&2
    exit 1
  fi
  summary=$("$cs" inspect "$file" summary -o json)
  tile() { echo "$summary" | tr -d '\n ' | grep -o "\"tile\":\"$1\",\"value\":[0-9]*" | grep -o '[0-9]*$' || echo 0; }
  events=$(tile events)
  drops=$(tile "recordsdroppedbytherecorder")
  kill -INT "$pid"; wait "$pid" 2>/dev/null || true; pid=
  printf '%-30s %6.2fs %10.0f %8d %12d %8.2fs %9d\n' "flight recorder, ${par} dd x$n" "$span" \
    "$(echo "4 * $n * $par / $span" | bc -l)" "$drops" "$events" \
    "$(echo "($ut + $st) / $tck" | bc -l)" "$peak"
done
