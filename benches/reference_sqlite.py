#!/usr/bin/env python3
"""The Python baseline for SQLite writes: what a competent user would write instead of reimport.

Reads the same generated pagetree CSV with the csv module, spreads each line's metrics over the
31 days of March 2023 (floor a day, the remainder on the first day, like reimport), and upserts
one row per (tenant, kind, key, day) into the same table reimport writes (create it first with
`reimport setup --store sqlite:DB`), with INSERT ... ON CONFLICT DO UPDATE, executemany over a
generator, one transaction, and the same pragmas as reimport (WAL, synchronous=NORMAL).
It binds only the columns it has (cheaper than reimport's NULLs for the metrics not sent), and
validates nothing beyond int(): a fair, lean baseline.

usage: reference_sqlite.py CSV DB
prints one JSON line: read_seconds, write_seconds, daily_items_per_s
"""
import csv
import datetime
import json
import sqlite3
import sys
import time

DAYS = [(datetime.date(2023, 3, 1) + datetime.timedelta(days=d)).isoformat() for d in range(31)]
METRICS = [("hit", 2), ("duration", 3), ("visitin", 22), ("visitone", 25), ("visitout", 26)]


def read_lines(path):
    lines = []
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.reader(f)
        next(reader)  # header
        for row in reader:
            lines.append((row[0].strip(), row[1].strip(), [int(row[i]) for _, i in METRICS]))
    return lines


def daily_rows(lines, source, imported_at):
    n = len(DAYS)
    for key, url, totals in lines:
        shares = [(t // n, t % n) for t in totals]
        for d, day in enumerate(DAYS):
            values = [base + rem if d == 0 else base for base, rem in shares]
            yield ("bench", "pagetree", key, day, url, *values, source, imported_at)


def main():
    csv_path, db_path = sys.argv[1], sys.argv[2]
    started = time.perf_counter()
    lines = read_lines(csv_path)
    read_seconds = time.perf_counter() - started

    conn = sqlite3.connect(db_path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA temp_store=MEMORY")
    conn.execute("PRAGMA cache_size=-32768")
    names = [m for m, _ in METRICS]
    columns = ["tenant", "kind", "key", "day", "pageinfo_url", *names, "source", "imported_at"]
    updates = ", ".join(f"{c} = excluded.{c}" for c in ["pageinfo_url", *names, "source", "imported_at"])
    sql = (
        f"INSERT INTO daily_item ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))}) "
        f"ON CONFLICT (tenant, kind, key, day) DO UPDATE SET {updates}"
    )
    started = time.perf_counter()
    conn.execute("BEGIN")
    cursor = conn.executemany(sql, daily_rows(lines, csv_path, "2026-01-01T00:00:00.000Z"))
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
