#!/usr/bin/env bash
# SQLite writes: daily items upserted per second, reimport's SqliteStore (benches/src/bin/
# sqlite-load.rs, the write phase timed apart from reading) against the Python baseline
# (benches/reference_sqlite.py: csv + sqlite3, executemany, one transaction), same file, same
# schema, fresh database each, alternating, REPEAT times. Then reimport alone at the big size.
# usage: benches/scripts/sqlite.sh [SAME_SIZE_LINES [BIG_LINES [REPEAT]]]  (default 100000 1000000 3)
source "$(dirname "$0")/common.sh"
same="${1:-100000}"; big="${2:-1000000}"; repeat="${3:-3}"
if [ "$SMOKE" = 1 ]; then same=1000; big=0; repeat=1; fi
build_release
db="$BENCH_DIR/sqlite-bench.db"
csv="$(input "$same")"
echo "== SQLite, $same lines x 31 days, fresh database each run"
for i in $(seq "$repeat"); do
    rm -f "$db"*
    rust="$("$BIN/sqlite-load" "$csv" "${csv%.csv}.json" "$db")"
    echo "  reimport  $rust"
    rm -f "$db"*
    "$BIN/reimport" setup --store "sqlite:$db" >/dev/null
    py="$("$PYTHON" "$ROOT/benches/reference_sqlite.py" "$csv" "$db")"
    echo "  python    $py"
    echo "  ratio reimport / python (daily items/s): $(ratio "$(json_field "$rust" daily_items_per_s)" "$(json_field "$py" daily_items_per_s)")x"
    if [ "$SMOKE" = 1 ]; then
        # Rows the Python baseline wrote, read through the store's view: its URL labels resolve.
        rows="$("$PYTHON" -c 'import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute("select count(*) from daily_item_text where pageinfo_url is not null").fetchone()[0])' "$db")"
        [ "$rows" = "$((same * 31))" ] || { echo "expected $((same * 31)) rows with their URL, found $rows" >&2; exit 1; }
    fi
done
if [ "$big" -gt 0 ]; then
    csv="$(input "$big")"
    echo "== SQLite, $big lines x 31 days, reimport only, fresh database"
    rm -f "$db"*
    echo "  reimport  $("$BIN/sqlite-load" "$csv" "${csv%.csv}.json" "$db")"
    echo "  reimport, same file again (every row an update)  $("$BIN/sqlite-load" "$csv" "${csv%.csv}.json" "$db")"
fi
rm -f "$db"*
