#!/usr/bin/env bash
# Recorder throughput, side by side in one run: dd copying N one-byte blocks (a read and a
# write per block: 4 events per block) untraced, under bpftrace counting the same calls (when
# installed and tracefs is mounted), and under `crashscope capture`; then two such dd at once
# (both cores busy producing, the recorder competing with them for CPU). For each capture:
# events written, records dropped (counted per CPU and written into the capture), events per
# second of the run, the recorder's own CPU time (all its threads; the probe's in-kernel cost
# is charged to dd) and its peak memory.
# Needs root. Usage: bench/recorder-throughput.sh [N...]   (default 1000000 5000000)
set -euo pipefail
cd "$(dirname "$0")/.."
if [ $# -gt 0 ]; then sizes=("$@"); else sizes=(1000000 5000000); fi
# CRASHSCOPE=path: a binary already built (the release build takes minutes: it is LTO'd).
cs=${CRASHSCOPE:-}
if [ -z "$cs" ]; then
  cargo build -q --release --bin crashscope
  cs=./target/release/crashscope
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

have_bpftrace=false
if command -v bpftrace >/dev/null; then
  [ -d /sys/kernel/tracing/events ] || mount -t tracefs nodev /sys/kernel/tracing 2>/dev/null || true
  [ -d /sys/kernel/tracing/events/raw_syscalls ] && have_bpftrace=true
fi

printf '%-34s %8s %12s %10s %12s %12s %9s\n' run wall events dropped "events/s" "recorder CPU" "peak MB"
dd_cmd() { echo "dd if=/dev/zero of=/dev/null bs=1 count=$1 status=none"; }
for n in "${sizes[@]}"; do
  /usr/bin/time -f '%e' -o "$work/t" sh -c "$(dd_cmd "$n")"
  printf '%-34s %7.2fs\n' "untraced dd x$n" "$(cat "$work/t")"
  if $have_bpftrace; then
    /usr/bin/time -f '%e' -o "$work/t" bpftrace -q -e \
      'tracepoint:raw_syscalls:sys_enter /comm == "dd"/ { @e = count(); }' -c "$(dd_cmd "$n")" >/dev/null
    printf '%-34s %7.2fs\n' "bpftrace counting, dd x$n" "$(cat "$work/t")"
  fi
  for par in 1 2; do
    script="$(dd_cmd "$n")"
    [ "$par" = 2 ] && script="$(dd_cmd "$n") & $(dd_cmd "$n"); wait"
    /usr/bin/time -f '%e %M' -o "$work/t" "$cs" capture -w "$work/c.scap" -- sh -c "$script" 2> "$work/err"
    read -r wall kb < "$work/t"
    line=$(grep '^wrote ' "$work/err")
    events=$(echo "$line" | sed -E 's/^wrote ([0-9]+) events.*/\1/')
    dropped=$(echo "$line" | sed -E 's/.*\(([0-9]+) dropped.*/\1/')
    cpu=$(echo "$line" | sed -E 's/.*recorder CPU ([0-9.]+)s.*/\1/')
    printf '%-34s %7.2fs %12d %10d %12.0f %11.2fs %9d\n' "crashscope capture, ${par} dd x$n" "$wall" \
      "$events" "$dropped" "$(echo "($events + $dropped) / $wall" | bc -l)" "$cpu" $((kb / 1024))
    rm -f "$work/c.scap"
  done
done
