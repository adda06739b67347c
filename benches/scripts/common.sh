# Sourced by the benchmark scripts: paths, the release binaries, generated inputs.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
BENCH_DIR="${BENCH_DIR:-${TMPDIR:-/tmp}/reimport-bench}"
# SMOKE=1: tiny inputs, correctness checks only, no timing (CI runs it through smoke.sh).
SMOKE="${SMOKE:-0}"
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
# Measurements use release builds; the smoke run uses the dev profile CI has already built.
BUILD_PROFILE="${BUILD_PROFILE:-$( [ "$SMOKE" = 1 ] && echo dev || echo release)}"
BIN="$TARGET_DIR/$( [ "$BUILD_PROFILE" = dev ] && echo debug || echo "$BUILD_PROFILE")"
VENV="${REIMPORT_VENV:-$ROOT/.venv}"
PYTHON="${PYTHON:-$( [ -x "$VENV/bin/python" ] && echo "$VENV/bin/python" || echo python3)}"
mkdir -p "$BENCH_DIR"

# SKIP_BUILD=1 uses the binaries already in $BIN (e.g. while a sibling crate does not build).
build_release() {
    [ "${SKIP_BUILD:-0}" = 1 ] && return
    (cd "$ROOT" && cargo build --profile "$BUILD_PROFILE" -q -p reimport -p reimport-benches --bins "$@")
}

# input LINES: generates (once) and echoes the CSV path; the profile is beside it (.json).
input() {
    local csv="$BENCH_DIR/pagetree-$1.csv"
    [ -s "$csv" ] || "$BIN/gen-pagetree" "$1" "$BENCH_DIR" >/dev/null
    echo "$csv"
}

# ratio A B: A / B with 2 decimals.
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }

# json_field JSON NAME: a number field of a one-line JSON object.
json_field() { sed -E "s/.*\"$2\": ?([0-9.]+).*/\1/" <<<"$1"; }

free_port() { "$PYTHON" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
