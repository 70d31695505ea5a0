#!/usr/bin/env bash
# Recorder throughput, side by side in one run. Two producers of system calls:
#  - dd copying N one-byte blocks (a read and a write with a 1-byte payload per block),
#  - getppid (bench/getppid.c): N calls with nothing to copy, the fastest a process can make
#    system calls, so the recorder rather than the traced program sets the pace;
# each untraced, under bpftrace counting the same calls (when installed and tracefs is
# mounted: the cheapest eBPF tracer, which records nothing), and under `crashscope capture`,
# one producer and then two at once (both cores busy producing, the recorder competing with
# them for CPU). Every call is two events (entry and exit).
# For each capture: events written, records dropped (counted per CPU and written into the
# capture), events per second over the producers' run (timed from inside the capture, so the
# probe's start and the final drain are left out), the recorder's own CPU time (all its
# threads; the probe's in-kernel cost is charged to the producer) and its share of one core
# over that run, and its peak memory. Both figures lean high: the events include the shell's
# few outside the timed run, and the recorder's CPU its start (loading the probe) and drain.
# Needs root. Usage: bench/recorder-throughput.sh [N...]   (default 1000000 5000000)
set -euo pipefail
# A relative CRASHSCOPE is the caller's, not the repository's.
[ -n "${CRASHSCOPE:-}" ] && CRASHSCOPE=$(realpath "$CRASHSCOPE")
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
cc -O2 -o "$work/getppid" bench/getppid.c

have_bpftrace=false
if command -v bpftrace >/dev/null; then
  [ -d /sys/kernel/tracing/events ] || mount -t tracefs nodev /sys/kernel/tracing 2>/dev/null || true
  [ -d /sys/kernel/tracing/events/raw_syscalls ] && have_bpftrace=true
fi

# The producers' script: `par` copies of a command at once, their run timed from inside.
producers() {
  local par=$1 cmd=$2 body
  body="$cmd"
  [ "$par" = 2 ] && body="$cmd & $cmd; wait"
  echo "s=\$(date +%s%N); $body; echo \$((\$(date +%s%N) - s)) > '$work/span'"
}
dd_cmd() { echo "dd if=/dev/zero of=/dev/null bs=1 count=$1 status=none"; }
getppid_cmd() { echo "$work/getppid $1 /dev/null"; }

printf '%-36s %7s %7s %10s %8s %10s %9s %6s %7s\n' \
  run wall span events dropped "events/s" "rec. CPU" "share" "peak MB"
for n in "${sizes[@]}"; do
  for prog in dd getppid; do
    cmd=$("${prog}_cmd" "$n")
    for par in 1 2; do
      producers "$par" "$cmd" > "$work/p.sh"
      rm -f "$work/span"
      sh "$work/p.sh"
      printf '%-36s %7s %6.2fs\n' "untraced, ${par} $prog x$n" "" \
        "$(echo "$(cat "$work/span") / 10^9" | bc -l)"
      if $have_bpftrace; then
        rm -f "$work/span"
        /usr/bin/time -f '%e' -o "$work/t" bpftrace -q -e \
          "tracepoint:raw_syscalls:sys_enter /comm == \"$prog\"/ { @e = count(); }" \
          -c "/bin/sh $work/p.sh" >/dev/null 2>&1
        printf '%-36s %6.2fs %6.2fs\n' "bpftrace counting, ${par} $prog x$n" "$(cat "$work/t")" \
          "$(echo "$(cat "$work/span") / 10^9" | bc -l)"
      fi
      rm -f "$work/span"
      /usr/bin/time -f '%e %M' -o "$work/t" "$cs" capture -w "$work/c.scap" -- \
        /bin/sh "$work/p.sh" 2> "$work/err" || { cat "$work/err" >&2; exit 1; }
      read -r wall kb < "$work/t"
      span=$(echo "$(cat "$work/span") / 10^9" | bc -l)
      line=$(grep '^wrote ' "$work/err") || { cat "$work/err" >&2; exit 1; }
      events=$(echo "$line" | sed -E 's/^wrote ([0-9]+) events.*/\1/')
      dropped=$(echo "$line" | sed -E 's/.*\(([0-9]+) dropped.*/\1/')
      cpu=$(echo "$line" | sed -E 's/.*recorder CPU ([0-9.]+)s.*/\1/')
      printf '%-36s %6.2fs %6.2fs %10d %8d %10.0f %8.2fs %5.0f%% %7d\n' \
        "crashscope capture, ${par} $prog x$n" "$wall" "$span" "$events" "$dropped" \
        "$(echo "($events + $dropped) / $span" | bc -l)" "$cpu" \
        "$(echo "100 * $cpu / $span" | bc -l)" $((kb / 1024))
      rm -f "$work/c.scap"
    done
  done
done
