#!/usr/bin/env bash
# What recording costs the recorded program: a system-call-heavy command (dd copying N one-byte
# blocks: a read and a write per block) run plain, under `crashscope capture` (eBPF probe,
# every call written to a .scap with its payload) and under `strace -f` (the tool operators
# reach for otherwise), side by side in one run. Needs root.
# Usage: bench/probe-overhead.sh [BLOCKS]   (default 1000000)
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-1000000}
command -v strace >/dev/null || { echo "needs strace: apt-get install -y strace" >&2; exit 1; }
cargo build -q --release --bin crashscope
bin=$PWD/target/release/crashscope
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cmd=(dd if=/dev/zero of=/dev/null bs=1 count="$n" status=none)

measure() {
  local label=$1; shift
  /usr/bin/time -f '%e %M' -o "$work/time" "$@" >/dev/null 2>"$work/stderr" \
    || { cat "$work/stderr" >&2; exit 1; }
  read -r secs rss < "$work/time"
  echo "$label $secs $rss"
}

plain=$(measure plain "${cmd[@]}")
probe=$(measure crashscope "$bin" capture -w "$work/dd.scap" -- "${cmd[@]}")
probe_note=$(grep -o 'wrote .*' "$work/stderr" || true)
trace=$(measure strace strace -f -o /dev/null "${cmd[@]}")
size=$(stat -c %s "$work/dd.scap")

base=$(echo "$plain" | cut -d' ' -f2)
printf '%-11s %9s %12s %10s\n' tool seconds "ns/syscall+" "peak RSS"
for line in "$plain" "$probe" "$trace"; do
  set -- $line
  extra=$(awk -v t="$2" -v b="$base" -v n="$n" 'BEGIN { printf "%.0f", (t - b) * 1e9 / (2 * n) }')
  printf '%-11s %9s %12s %8s MB\n' "$1" "$2" "$extra" "$(( $3 / 1024 ))"
done
echo "capture: $probe_note; file $(( size / 1048576 )) MB"
