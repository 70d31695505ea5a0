#!/usr/bin/env bash
# Side-by-side benchmark of the inspector's views against the nearest sysdig chisels, in one
# run, on one large capture made by concatenating the fixture captures (a new section header
# starts each copy). Each command writes its result to /dev/null; wall time and peak RSS come
# from /usr/bin/time.
# Usage: bench/inspect-vs-chisels.sh [MEGABYTES]   (default 200)
#        bench/inspect-vs-chisels.sh CAPTURE.scap  (a capture of your own, e.g. one recorded with
#        `crashscope capture -w dd.scap -- dd if=/dev/zero of=/dev/null bs=1 count=1000000`)
set -euo pipefail
cd "$(dirname "$0")/.."
size_mb=${1:-200}
fixtures=../shared/fixtures/scap
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# CRASHSCOPE=path: a binary already built (the release build takes minutes: it is LTO'd).
cs=${CRASHSCOPE:-}
if [ -z "$cs" ]; then
  cargo build -q --release --bin crashscope
  cs=./target/release/crashscope
fi
unit="$work/unit.scap"
gzip -dcf "$fixtures/sample.scap" "$fixtures/single_ipv6_conn.scap" "$fixtures/test_ipv6_client.scap" \
    "$fixtures/curl_google.scap" > "$unit"
big="$work/big.scap"
if [ -f "$size_mb" ]; then
  big=$size_mb
else
  : > "$big"
  while [ "$(stat -c %s "$big")" -lt $((size_mb * 1024 * 1024)) ]; do cat "$unit" >> "$big"; done
fi
events=$("$cs" inspect "$big" summary -o json | python3 -c 'import json,sys; print(json.load(sys.stdin)["events_read"])')
echo "capture: $big, $(($(stat -c %s "$big") / 1024 / 1024)) MB, $events events"

time_of() { # name, command... -> prints "secs kb"
  /usr/bin/time -f "%e %M" -o "$work/t" "$@" > /dev/null 2> "$work/err" || true
  cat "$work/t"
}

printf '%-28s %9s %9s %8s %12s %12s\n' "view vs chisel" "crashscope" "sysdig" "ratio" "RSS ours" "RSS sysdig"
pair() { # view, chisel args...
  local view=$1; shift
  read -r ours_s ours_kb < <(time_of "$cs" inspect "$big" $view)
  read -r their_s their_kb < <(time_of sysdig -r "$big" "$@")
  printf '%-28s %8.2fs %8.2fs %7.1fx %10d MB %10d MB\n' "$view vs $1 ${2:-}" "$ours_s" "$their_s" \
    "$(echo "$their_s / ($ours_s + 0.001)" | bc -l)" $((ours_kb / 1024)) $((their_kb / 1024))
}
read -r ours_s ours_kb < <(time_of "$cs" inspect "$big" --events)
read -r their_s their_kb < <(time_of sysdig -r "$big")
printf '%-28s %8.2fs %8.2fs %7.1fx %10d MB %10d MB\n' "--events vs sysdig -r" "$ours_s" "$their_s" \
  "$(echo "$their_s / ($ours_s + 0.001)" | bc -l)" $((ours_kb / 1024)) $((their_kb / 1024))
pair files -c topfiles_bytes
pair errors -c topprocs_errors
pair procs -c proc_exec_time disable_colors
pair io -c echo_fds disable_color
pair net -c topconns
for v in summary containers death dns logs timeline; do
  read -r s kb < <(time_of "$cs" inspect "$big" $v)
  printf '%-28s %8.2fs %9s %8s %10d MB   %5.1f M events/s\n' "$v" "$s" "-" "-" $((kb / 1024)) \
    "$(echo "$events / ($s + 0.001) / 1000000" | bc -l)"
done
