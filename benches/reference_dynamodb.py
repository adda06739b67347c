#!/usr/bin/env python3
"""The boto3 baseline for DynamoDB writes: the same UpdateItem calls reimport makes, from a
ThreadPoolExecutor (one boto3 client shared by the threads, as boto3 allows, with a connection
pool as large as the thread count), against the same endpoint (AWS_ENDPOINT_URL).

Each call is an UpdateItem of one daily item (pk = tenant#kind#key, day) with a SET of both
dimensions, five metrics, source and imported_at: the shape reimport sends (tenant, kind and key
are the parts of pk, not attributes of their own).

usage: reference_dynamodb.py CALLS THREADS [TABLE]
prints one JSON line: update_items_per_s and CPU microseconds per UpdateItem (user + system).
"""
import json
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import boto3
from botocore.config import Config


def main():
    calls, threads = int(sys.argv[1]), int(sys.argv[2])
    table = sys.argv[3] if len(sys.argv) > 3 else "reimport-bench"
    client = boto3.client(
        "dynamodb",
        endpoint_url=os.environ.get("AWS_ENDPOINT_URL"),
        region_name="us-east-1",
        config=Config(max_pool_connections=threads, retries={"max_attempts": 1}),
    )

    names = ["pageinfo_name", "pageinfo_url", "hit", "duration", "visitin", "visitone", "visitout",
             "source", "imported_at"]
    expression = "SET " + ", ".join(f"#n{i} = :v{i}" for i in range(len(names)))
    attribute_names = {f"#n{i}": n for i, n in enumerate(names)}

    def update(i):
        line, day = divmod(i, 31)
        key = f"/produits/page-{line}"
        values = [key, f"https://example.fr/produits/page-{line}?ref=1",
                  100 + day, 1234, 5, 3, 7, "bench/pagetree.csv", "2026-01-01T00:00:00.000Z"]
        client.update_item(
            TableName=table,
            Key={"pk": {"S": f"bench#pagetree#{key}"}, "day": {"S": f"2023-03-{day + 1:02d}"}},
            UpdateExpression=expression,
            ExpressionAttributeNames=attribute_names,
            ExpressionAttributeValues={
                f":v{i}": ({"N": str(v)} if isinstance(v, int) else {"S": v}) for i, v in enumerate(values)
            },
        )

    cpu_before = os.times()
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=threads) as pool:
        for _ in pool.map(update, range(calls)):
            pass
    seconds = time.perf_counter() - started
    cpu_after = os.times()
    cpu = (cpu_after.user - cpu_before.user) + (cpu_after.system - cpu_before.system)
    print(json.dumps({
        "bench": "boto3-dynamodb",
        "threads": threads,
        "update_items": calls,
        "seconds": round(seconds, 3),
        "update_items_per_s": round(calls / seconds),
        "cpu_us_per_update_item": round(cpu * 1e6 / calls, 1),
    }))


if __name__ == "__main__":
    main()
