#!/usr/bin/env bash
# Quick check that every whole-process benchmark still runs: tiny inputs, no timing, seconds.
# Exits non-zero if any of them breaks. Installs nothing: the nginx and boto3 parts of the
# DynamoDB benchmark are skipped (with the reason printed) when those are missing.
# usage: benches/scripts/smoke.sh   (CI); the criterion benches: cargo bench -p reimport-benches -- --test
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
export SMOKE=1
BENCH_DIR="$(mktemp -d "${TMPDIR:-/tmp}/reimport-bench-smoke.XXXX")"
export BENCH_DIR
trap 'rm -rf "$BENCH_DIR"' EXIT
for bench in throughput memory sqlite dynamodb lambda cost; do
    echo "--- $bench"
    "$here/$bench.sh"
done
echo "--- all benchmark smoke checks passed (dev build, tiny inputs: the rates printed above are not measurements)"
