#!/usr/bin/env python3
"""The Python baseline for SQLite writes: what a competent user would write instead of reimport.

Reads the same generated pagetree CSV with the csv module, spreads each line's metrics over the
31 days of March 2023 (floor a day, the remainder on the first day, like reimport), and upserts
one row per (tenant, kind, key, day) into the same schema reimport writes (create it first with
`reimport setup --store sqlite:DB`; schema version 3: a `series` row per (tenant, kind, key), an
`origin` row per import, a `label` row per distinct (series, URL), `daily_item` keyed by
id = series << 21 | (day + 2**20), day = days since 1970-01-01, its URL column the label id).
One transaction, the same pragmas as reimport (WAL, synchronous=NORMAL, 16 MB cache): the origin
row, the series rows (executemany, ON CONFLICT DO NOTHING), their ids read back into a dict, the
label rows the same way, then the daily rows with INSERT ... ON CONFLICT DO UPDATE, executemany
over a generator.
It validates nothing beyond int(): a fair, lean baseline.

usage: reference_sqlite.py CSV DB
prints one JSON line: read_seconds, write_seconds, daily_items_per_s
"""
import csv
import datetime
import json
import sqlite3
import sys
import time

EPOCH = datetime.date(1970, 1, 1)
DAYS = [(datetime.date(2023, 3, 1) + datetime.timedelta(days=d) - EPOCH).days + (1 << 20) for d in range(31)]
METRICS = [("hit", 2), ("duration", 3), ("visitin", 22), ("visitone", 25), ("visitout", 26)]
TENANT, KIND = "bench", "pagetree"


def read_lines(path):
    lines = []
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.reader(f)
        next(reader)  # header
        for row in reader:
            lines.append((row[0].strip(), row[1].strip(), [int(row[i]) for _, i in METRICS]))
    return lines


def daily_rows(lines, series_ids, label_ids, origin_id):
    n = len(DAYS)
    for key, url, totals in lines:
        series_id = series_ids[key]
        series = series_id << 21
        label = label_ids[(series_id, url)]
        shares = [(t // n, t % n) for t in totals]
        for d, day in enumerate(DAYS):
            values = [base + rem if d == 0 else base for base, rem in shares]
            yield (series | day, origin_id, label, *values)


def main():
    csv_path, db_path = sys.argv[1], sys.argv[2]
    started = time.perf_counter()
    lines = read_lines(csv_path)
    read_seconds = time.perf_counter() - started

    conn = sqlite3.connect(db_path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA temp_store=MEMORY")
    conn.execute("PRAGMA cache_size=-16384")
    names = [m for m, _ in METRICS]
    columns = ["id", "origin", "pageinfo_url", *names]
    updates = ", ".join(f"{c} = excluded.{c}" for c in ["origin", "pageinfo_url", *names])
    sql = (
        f"INSERT INTO daily_item ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))}) "
        f"ON CONFLICT (id) DO UPDATE SET {updates}"
    )
    origin = (csv_path, "2026-01-01T00:00:00.000Z")
    started = time.perf_counter()
    conn.execute("BEGIN")
    conn.execute("INSERT INTO origin (source, imported_at) VALUES (?, ?) ON CONFLICT DO NOTHING", origin)
    (origin_id,) = conn.execute("SELECT id FROM origin WHERE source = ? AND imported_at = ?", origin).fetchone()
    conn.executemany(
        "INSERT INTO series (tenant, kind, key) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
        ((TENANT, KIND, key) for key, _, _ in lines),
    )
    series_ids = dict(conn.execute("SELECT key, id FROM series WHERE tenant = ? AND kind = ?", (TENANT, KIND)))
    conn.executemany(
        "INSERT INTO label (series, value) VALUES (?, ?) ON CONFLICT DO NOTHING",
        ((series_ids[key], url) for key, url, _ in lines),
    )
    label_ids = {(series, value): id for id, series, value in conn.execute("SELECT id, series, value FROM label")}
    cursor = conn.executemany(sql, daily_rows(lines, series_ids, label_ids, origin_id))
    items = cursor.rowcount
    conn.execute("COMMIT")
    write_seconds = time.perf_counter() - started
    conn.close()
    print(json.dumps({
        "bench": "python-sqlite",
        "lines": len(lines),
        "daily_items": items,
        "read_seconds": round(read_seconds, 3),
        "write_seconds": round(write_seconds, 3),
        "daily_items_per_s": round(items / write_seconds),
    }))


if __name__ == "__main__":
    main()
