#!/usr/bin/env bash
# Side-by-side benchmark of reading a capture: `crashscope inspect FILE --events` against
# `sysdig -r FILE`, both printing every event to /dev/null, on one large file made by
# concatenating the fixture captures (a new section header starts each copy).
# As root it also reads a capture crashscope records itself (one section, 2 M events).
# Usage: bench/scap-vs-sysdig.sh [MEGABYTES]   (default 200)
set -euo pipefail
cd "$(dirname "$0")/.."
size_mb=${1:-200}
fixtures=../shared/fixtures/scap
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

cargo build -q --release --bin crashscope
unit="$work/unit.scap"
# Several fixtures are gzip-compressed; -f passes plain ones through.
gzip -dcf "$fixtures/sample.scap" "$fixtures/single_ipv6_conn.scap" "$fixtures/test_ipv6_client.scap" \
    "$fixtures/curl_google.scap" > "$unit"
big="$work/big.scap"
: > "$big"
while [ "$(stat -c %s "$big")" -lt $((size_mb * 1024 * 1024)) ]; do cat "$unit" >> "$big"; done
bytes=$(stat -c %s "$big")
events=$(./target/release/crashscope inspect "$big" --events | wc -l)

run() { # name, command...
  local name=$1; shift
  /usr/bin/time -f "%e %M" -o "$work/t" "$@" > /dev/null 2> "$work/err" || true
  read -r secs kb < "$work/t"
  printf '%-10s %8.2f s  %10.0f events/s  peak RSS %6d MB\n' "$name" "$secs" \
    "$(echo "$events / $secs" | bc -l)" $((kb / 1024))
  echo "$secs" > "$work/$name.secs"
}

echo "capture: $((bytes / 1024 / 1024)) MB, $events events shown (sysdig's default line format)"
run crashscope ./target/release/crashscope inspect "$big" --events
run sysdig sysdig -r "$big"
echo "ratio (sysdig time / crashscope time): $(echo "$(cat "$work/sysdig.secs") / $(cat "$work/crashscope.secs")" | bc -l | cut -c1-5)"

# A capture as crashscope records one (one section, 2 million events of a busy process), when
# run as root: the per-event cost without the fixtures' 1 400 process lists.
if [ "$(id -u)" = 0 ]; then
  ./target/release/crashscope capture -w "$work/dd.scap" -- \
    dd if=/dev/zero of=/dev/null bs=1 count=500000 status=none 2>/dev/null
  big="$work/dd.scap"
  events=$(./target/release/crashscope inspect "$big" --events | wc -l)
  echo "capture: $(( $(stat -c %s "$big") / 1024 / 1024 )) MB recorded by crashscope capture (dd bs=1), $events events"
  run crashscope ./target/release/crashscope inspect "$big" --events
  run sysdig sysdig -r "$big"
  echo "ratio (sysdig time / crashscope time): $(echo "$(cat "$work/sysdig.secs") / $(cat "$work/crashscope.secs")" | bc -l | cut -c1-5)"
fi
