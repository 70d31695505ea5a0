#!/usr/bin/env bash
# What recording costs the recorded program, side by side in one run: plain, a process that is
# not watched while the probe is attached (what every other process on a node pays),
# `crashscope capture` (eBPF probe, every call written to a .scap with its parameters and
# payload), bpftrace counting the same calls (when installed: the cheapest eBPF tracer, which
# records nothing) and `strace -f` (the tool operators reach for otherwise). Two programs:
#  - getppid: N getppid() calls timed inside the process (bench/getppid.c) — the cost of a
#    call, without any tool's start-up or the time it takes to write its file;
#  - dd copying N one-byte blocks (a read and a write with a 1-byte payload per block), timed
#    from outside with each tool's start-up taken off — what a whole command pays.
# Needs root. Usage: bench/probe-overhead.sh [N]   (default 1000000)
set -euo pipefail
# A relative CRASHSCOPE is the caller's, not the repository's.
[ -n "${CRASHSCOPE:-}" ] && CRASHSCOPE=$(realpath "$CRASHSCOPE")
cd "$(dirname "$0")/.."
n=${1:-1000000}
command -v strace >/dev/null || { echo "needs strace: apt-get install -y strace" >&2; exit 1; }
# CRASHSCOPE=path: a binary already built (the release build takes minutes: it is LTO'd).
bin=${CRASHSCOPE:-}
if [ -z "$bin" ]; then
  cargo build -q --release --bin crashscope
  bin=$PWD/target/release/crashscope
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cmd=(dd if=/dev/zero of=/dev/null bs=1 count="$n" status=none)
cc -O2 -o "$work/getppid" bench/getppid.c
calls=$((2 * n))

measure() {
  local label=$1; shift
  /usr/bin/time -f '%e %M' -o "$work/time" "$@" >/dev/null 2>"$work/stderr" \
    || { cat "$work/stderr" >&2; exit 1; }
  read -r secs rss < "$work/time"
  echo "$label $secs $rss"
}

# Each tool's start-up (loading the probe, compiling the bpftrace script) is measured with a
# one-block run and taken off, so that the figure is the cost per system call.
one=(dd if=/dev/zero of=/dev/null bs=1 count=1 status=none)
startup() { local t; t=$(measure "$@"); echo "$t" | cut -d' ' -f2; }
have_bpftrace=false
if command -v bpftrace >/dev/null; then
  # bpftrace's tracepoints need tracefs, which these machines do not mount by default.
  [ -d /sys/kernel/tracing/events ] || mount -t tracefs nodev /sys/kernel/tracing 2>/dev/null || true
  [ -d /sys/kernel/tracing/events/raw_syscalls ] && have_bpftrace=true
fi
bt_script='tracepoint:raw_syscalls:sys_enter /pid == cpid/ { @enter = count(); } tracepoint:raw_syscalls:sys_exit /pid == cpid/ { @exit = count(); }'

# getppid: each tool runs the loop; the loop reports its own nanoseconds per call.
per_call() { "$@" >/dev/null 2>&1 || true; cat "$work/ns"; }
loop=("$work/getppid" "$calls" "$work/ns")
g_plain=$(per_call "${loop[@]}")
g_probe=$(per_call "$bin" capture -w "$work/g.scap" -- "${loop[@]}")
g_latency=$(per_call "$bin" capture --latency -w "$work/g.scap" -- "${loop[@]}")
sleep 600 &
idle=$!
"$bin" capture -w "$work/idle0.scap" --pid "$idle" 2>/dev/null &
watcher=$!
sleep 1
g_unwatched=$(per_call "${loop[@]}")
kill -INT "$watcher"; wait "$watcher" 2>/dev/null || true
kill "$idle"; wait "$idle" 2>/dev/null || true
if $have_bpftrace; then
  g_bt=$(per_call bpftrace -e "$bt_script" -c "${loop[*]}")
fi
# strace stops the process twice per call: a hundredth of the calls gives the same figure.
g_trace=$(per_call strace -f -o /dev/null "$work/getppid" $((calls / 100 + 1)) "$work/ns")
rm -f "$work/g.scap"
printf '%-11s %12s %12s\n' "getppid" "ns/call" "added"
grow() { printf '%-11s %12s %12s\n' "$1" "$2" "$(( $2 - g_plain ))"; }
grow plain "$g_plain"
grow unwatched "$g_unwatched"
grow crashscope "$g_probe"
grow --latency "$g_latency"
$have_bpftrace && grow bpftrace "$g_bt"
grow strace "$g_trace"
echo

plain=$(measure plain "${cmd[@]}")
probe=$(measure crashscope "$bin" capture -w "$work/dd.scap" -- "${cmd[@]}")
probe_note=$(grep -o 'wrote .*' "$work/stderr" || true)
probe0=$(startup crashscope "$bin" capture -w "$work/one.scap" -- "${one[@]}")
# An unwatched process while the probe is attached (watching an idle sleep): the cost every
# other process on a node pays for the agent.
sleep 600 &
idle=$!
"$bin" capture -w "$work/idle.scap" --pid "$idle" 2>/dev/null &
watcher=$!
sleep 1
unwatched=$(measure unwatched "${cmd[@]}")
kill -INT "$watcher"; wait "$watcher" 2>/dev/null || true
kill "$idle"; wait "$idle" 2>/dev/null || true
trace=$(measure strace strace -f -o /dev/null "${cmd[@]}")
trace0=$(startup strace strace -f -o /dev/null "${one[@]}")
if $have_bpftrace; then
  bt=$(measure bpftrace bpftrace -e "$bt_script" -c "$(command -v dd) if=/dev/zero of=/dev/null bs=1 count=$n status=none")
  bt0=$(startup bpftrace bpftrace -e "$bt_script" -c "$(command -v dd) if=/dev/zero of=/dev/null bs=1 count=1 status=none")
fi
size=$(stat -c %s "$work/dd.scap")

base=$(echo "$plain" | cut -d' ' -f2)
printf '%-11s %9s %9s %12s %10s\n' "dd bs=1" seconds start-up "ns/syscall+" "peak RSS"
row() {
  local line=$1 start=$2
  set -- $line
  extra=$(awk -v t="$2" -v s="$start" -v b="$base" -v n="$n" 'BEGIN { printf "%.0f", (t - s - b) * 1e9 / (2 * n) }')
  printf '%-11s %9s %9s %12s %8s MB\n' "$1" "$2" "$start" "$extra" "$(( $3 / 1024 ))"
}
row "$plain" 0
row "$unwatched" 0
row "$probe" "$probe0"
$have_bpftrace && row "$bt" "$bt0"
row "$trace" "$trace0"
echo "capture: $probe_note; file $(( size / 1048576 )) MB"
$have_bpftrace || echo "(bpftrace row skipped: apt-get install -y bpftrace)"
