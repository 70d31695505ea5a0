#!/usr/bin/env bash
# Scale benchmark of the Kubernetes watch path: a synthetic, realistically shaped stream of
# PODS pods and EVENTS events through normalization into the SQLite store (see
# crates/sources/kube/benches/scale.rs). Prints events/s, CPU seconds and peak RSS.
# Usage: bench/kube-scale.sh [PODS] [EVENTS]   (default 100000 1000000)
set -euo pipefail
cd "$(dirname "$0")/.."
pods=${1:-100000}
events=${2:-1000000}
cargo bench -q -p crashscope-kube --bench scale --no-run
bin=$(ls -t target/release/deps/scale-* | grep -v '\.d$' | head -n1)
/usr/bin/time -f 'time(1): %e s wall, %U s user, %S s sys, peak RSS %M KB' \
    "$bin" --pods "$pods" --events "$events"
