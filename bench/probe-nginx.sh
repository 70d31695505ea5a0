#!/usr/bin/env bash
# What recording costs a real server: nginx (Debian package) serving a small response under
# wrk, untraced, then with every nginx process recorded by `crashscope capture` (the eBPF
# probe writing each call with its payload to a .scap), then under `strace -f`, side by side in
# one run. Needs root, nginx and wrk.
# Usage: bench/probe-nginx.sh [SECONDS] [CONNECTIONS]   (default 10 s, 32 connections)
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-10}
conns=${2:-32}
for t in nginx wrk strace; do
  command -v "$t" >/dev/null || { echo "needs $t: apt-get install -y nginx wrk strace" >&2; exit 1; }
done
cargo build -q --release --bin crashscope
bin=$PWD/target/release/crashscope
work=$(mktemp -d)
cat > "$work/nginx.conf" <<CONF
worker_processes 1;
pid $work/nginx.pid;
error_log $work/error.log;
events { worker_connections 1024; }
http {
  access_log off;
  server { listen 127.0.0.1:18089; location / { return 200 "ok\n"; } }
}
CONF
nginx -c "$work/nginx.conf" -g 'daemon off;' &
nginx_pid=$!
trap 'kill $nginx_pid 2>/dev/null; wait $nginx_pid 2>/dev/null; rm -rf "$work"' EXIT
for _ in $(seq 50); do curl -fs http://127.0.0.1:18089/ >/dev/null 2>&1 && break; sleep 0.1; done
pids=$(pgrep -d ' ' -f "nginx.*$work/nginx.conf" || true)
[ -n "$pids" ] || pids=$nginx_pid
pids="$pids $(pgrep -P "$nginx_pid" | tr '\n' ' ')"

run_wrk() { wrk -t1 -c"$conns" -d"${secs}s" http://127.0.0.1:18089/ | awk '/Requests\/sec/ {print $2}'; }

plain=$(run_wrk)
pid_args=()
for p in $pids; do pid_args+=(--pid "$p"); done
/usr/bin/time -f '%M' -o "$work/cap.rss" \
  "$bin" capture -w "$work/nginx.scap" "${pid_args[@]}" --duration "$((secs + 3))s" 2>"$work/capture.err" &
cap=$!
sleep 1
traced=$(run_wrk)
wait $cap
note=$(grep -o 'wrote .*' "$work/capture.err" || true)
strace -f -o /dev/null -p "$(echo "$pids" | tr ' ' '\n' | grep -v '^$' | tail -n1)" &
st=$!
sleep 0.5
straced=$(run_wrk)
kill $st 2>/dev/null; wait $st 2>/dev/null || true

printf '%-22s %12s %8s\n' "nginx under wrk" "requests/s" "ratio"
for row in "untraced $plain" "crashscope $traced" "strace $straced"; do
  set -- $row
  printf '%-22s %12s %8s\n' "$1" "$2" "$(awk -v a="$2" -v b="$plain" 'BEGIN { printf "%.2f", a / b }')"
done
echo "capture: $note; crashscope peak RSS $(( $(tail -n1 "$work/cap.rss") / 1024 )) MB"
