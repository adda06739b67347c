#!/usr/bin/env bash
# Core throughput: `reimport validate` against a pure CSV parse of the same file.
# References: `xsv count` (if installed: cargo install xsv) and `csv-count` (benches/src/bin:
# the csv crate reading byte records, nothing else). Each size is one hyperfine run measuring
# all commands alternately, so the ratios share the machine's noise. Wall time is the target;
# CPU time (user + system) is printed beside it: validate reads records on a second thread.
# usage: benches/scripts/throughput.sh [LINES...]   (default 10000 100000 1000000)
source "$(dirname "$0")/common.sh"
sizes=("$@")
[ ${#sizes[@]} -gt 0 ] || sizes=(10000 100000 1000000)
[ "$SMOKE" = 1 ] && sizes=(1000)
build_release
for lines in "${sizes[@]}"; do
    csv="$(input "$lines")"
    profile="${csv%.csv}.json"
    if [ "$SMOKE" = 1 ]; then
        [ "$("$BIN/csv-count" "$csv")" = "$lines" ] || { echo "csv-count miscounted $csv" >&2; exit 1; }
        "$BIN/reimport" validate "$csv" --profile "$profile" >/dev/null
        echo "throughput smoke: $lines lines ok"
        continue
    fi
    runs=$(( lines >= 1000000 ? 5 : 10 ))
    commands=("$BIN/csv-count $csv")
    names=("csv-count")
    if command -v xsv >/dev/null; then
        commands+=("xsv count $csv"); names+=("xsv count")
    fi
    commands+=("$BIN/reimport validate $csv --profile $profile"); names+=("reimport validate")
    args=()
    for i in "${!commands[@]}"; do args+=(-n "${names[$i]}" "${commands[$i]}"); done
    out="$BENCH_DIR/throughput-$lines.json"
    hyperfine -N --warmup 1 --runs "$runs" --export-json "$out" "${args[@]}" >/dev/null
    "$PYTHON" - "$out" "$lines" "$(stat -c %s "$csv")" <<'PY'
import json, sys
results = {r["command"]: r for r in json.load(open(sys.argv[1]))["results"]}
lines, size = int(sys.argv[2]), int(sys.argv[3])
v = results["reimport validate"]
print(f"== validate, {lines} lines ({size / 1e6:.1f} MB), mean +- stddev (min)")
for name, r in results.items():
    print(f"  {name:18} {r['mean'] * 1e3:9.1f} ms +- {r['stddev'] * 1e3:6.1f} (min {r['min'] * 1e3:8.1f})"
          f"  {size / r['mean'] / 1e6:6.0f} MB/s  {lines / r['mean'] / 1e6:5.2f} M lines/s"
          f"  cpu {(r['user'] + r['system']) * 1e3:8.1f} ms")
for name, r in results.items():
    if name != "reimport validate":
        print(f"  ratio validate / {name}: {v['mean'] / r['mean']:.2f}x (mean), {v['min'] / r['min']:.2f}x (min),"
              f" {(v['user'] + v['system']) / (r['user'] + r['system']):.2f}x (cpu: user + system)")
PY
done
