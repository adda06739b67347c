#!/usr/bin/env bash
# Memory: peak RSS (/usr/bin/time -v) of `reimport import` into a fresh SQLite store.
# Shows that memory follows distinct lines, not lines x days: the same 1M lines imported over
# 31 days and over 1 day; and 100k vs 1M lines. References, same file: the pure parse
# (csv-count) and the Python baseline (benches/reference_sqlite.py), which holds the lines in
# Python objects.
# usage: benches/scripts/memory.sh [LINES...]   (default 100000 1000000)
source "$(dirname "$0")/common.sh"
sizes=("$@")
[ ${#sizes[@]} -gt 0 ] || sizes=(100000 1000000)
[ "$SMOKE" = 1 ] && sizes=(1000)
if [ ! -x /usr/bin/time ]; then
    [ "$SMOKE" = 1 ] || { echo "memory.sh needs /usr/bin/time (apt-get install time)" >&2; exit 1; }
    echo "memory smoke: /usr/bin/time missing, running the commands without measuring RSS"
fi
build_release

# peak_rss_mb CMD...: runs CMD, echoes its peak RSS in MB (and its wall seconds) or fails.
peak_rss_mb() {
    local log="$BENCH_DIR/time.log"
    if [ ! -x /usr/bin/time ]; then "$@" >/dev/null && echo "ran (RSS not measured)"; return; fi
    /usr/bin/time -v "$@" >/dev/null 2>"$log" || { cat "$log" >&2; return 1; }
    awk -F': ' '/Maximum resident set size/ { rss = $2 / 1024 } /Elapsed \(wall clock\)/ { wall = $2 }
        END { printf "%.1f MB (wall %s)", rss, wall }' "$log"
}

for lines in "${sizes[@]}"; do
    csv="$(input "$lines")"
    profile="${csv%.csv}.json"
    one_day="${csv%.csv}-1day.json"
    sed 's#"to": "31/03/2023"#"to": "01/03/2023"#' "$profile" >"$one_day"
    db="$BENCH_DIR/memory.db"
    echo "== peak RSS, $lines lines"
    echo "  csv-count (pure parse)          $(peak_rss_mb "$BIN/csv-count" "$csv")"
    echo "  reimport validate               $(peak_rss_mb "$BIN/reimport" validate "$csv" --profile "$profile")"
    rm -f "$db"*
    echo "  reimport import, 1 day          $(peak_rss_mb "$BIN/reimport" import "$csv" --profile "$one_day" --store "sqlite:$db")"
    rm -f "$db"*
    echo "  reimport import, 31 days        $(peak_rss_mb "$BIN/reimport" import "$csv" --profile "$profile" --store "sqlite:$db")"
    if [ "$SMOKE" != 1 ] && [ "$lines" -le 100000 ]; then
        rm -f "$db"*
        "$BIN/reimport" setup --store "sqlite:$db" >/dev/null
        echo "  python reference, 31 days       $(peak_rss_mb "$PYTHON" "$ROOT/benches/reference_sqlite.py" "$csv" "$db")"
    fi
    rm -f "$db"*
done
