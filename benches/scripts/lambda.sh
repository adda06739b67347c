#!/usr/bin/env bash
# The s3-import Lambda binary through the Lambda Runtime API (benches/lambda_runtime.py):
# 1. cold start: process spawn -> first answer, for an s3:TestEvent (no AWS call made);
# 2. end to end: one ObjectCreated event for a LINES-line pagetree file in moto's S3, then, as
#    S3 would, one more invocation per checkpoint the function leaves under continuations/
#    (same warm process), until the report is written. Each invocation gets a deadline
#    LAMBDA_DEADLINE_S away (default 900, Lambda's maximum). DynamoDB is either
#    - DYNAMODB=fake (default): nginx answering `{}` at once (benches/nginx/split-moto.conf), so
#      this measures the function (S3 read, validation, LINES x DAYS UpdateItems built, signed,
#      sent, checkpoints, report), not DynamoDB. Reference: the DynamoDB client alone (dynamodb.sh);
#    - DYNAMODB=moto: moto_server's DynamoDB over the wire (a real local server, ~200 writes/s),
#      then the table is checked: item count = LINES x DAYS, values of a few lines.
# DAYS=31 (default) or 1 (the profile's period cut to its first day, as memory.sh does).
# Prints one JSON line per invocation while running, then the summary line (items/s, CPU us
# per daily item, peak RSS, report status and invocations).
# usage: [DAYS=1|31] [DYNAMODB=fake|moto] [LAMBDA_DEADLINE_S=900] benches/scripts/lambda.sh [LINES [RUNS]]
#        (default 100000 lines, 5 cold starts; RUNS=0 skips them)
source "$(dirname "$0")/common.sh"
lines="${1:-100000}"; runs="${2:-5}"
[ "$SMOKE" = 1 ] && { lines=200; runs=1; }
FUNCTION="$BIN/s3-import"
if [ "${SKIP_BUILD:-0}" != 1 ]; then
    (cd "$ROOT" && cargo build --profile "$BUILD_PROFILE" -q -p s3-import --bins)
fi
[ -x "$FUNCTION" ] || { echo "lambda.sh: $FUNCTION is missing" >&2; exit 1; }
export AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1 AWS_ACCESS_KEY_ID=bench AWS_SECRET_ACCESS_KEY=bench
export AWS_EC2_METADATA_DISABLED=true TABLE_NAME=reimport-bench
export AWS_LAMBDA_FUNCTION_MEMORY_SIZE="${LAMBDA_MEMORY_MB:-512}"

echo "== s3-import cold start (s3:TestEvent), $runs runs"
for i in $(seq "$runs"); do
    AWS_ENDPOINT_URL=http://127.0.0.1:9 "$PYTHON" "$ROOT/benches/lambda_runtime.py" "$FUNCTION" "$ROOT/benches/test-event.json"
done

NGINX="$(command -v nginx || echo /usr/sbin/nginx)"
MOTO="$VENV/bin/moto_server"; [ -x "$MOTO" ] || MOTO="$(command -v moto_server || true)"
if [ ! -x "$NGINX" ] || [ -z "$MOTO" ] || ! "$PYTHON" -c 'import boto3' 2>/dev/null; then
    why="needs nginx, moto_server and boto3 (REIMPORT_VENV)"
    if [ "$SMOKE" = 1 ]; then echo "lambda smoke: end to end SKIPPED, $why"; exit 0; fi
    echo "lambda.sh: end to end $why" >&2; exit 1
fi
days="${DAYS:-31}"; dynamodb="${DYNAMODB:-fake}"
# Smoke: a 60 s deadline is within the default margin (60 s), so each invocation writes one
# batch and leaves a checkpoint: 200 lines x 31 days take 13 chained invocations.
[ "$SMOKE" = 1 ] && export LAMBDA_DEADLINE_S="${LAMBDA_DEADLINE_S:-60}"
csv="$(input "$lines")"
profile="${csv%.csv}.json"
if [ "$days" = 1 ]; then
    profile="${csv%.csv}-1day.json"
    sed 's#"to": "31/03/2023"#"to": "01/03/2023"#' "${csv%.csv}.json" >"$profile"
elif [ "$days" != 31 ]; then
    echo "lambda.sh: DAYS must be 1 or 31" >&2; exit 1
fi
moto_port="$(free_port)"; port="$(free_port)"
work="$(mktemp -d "$BENCH_DIR/lambda.XXXX")"
"$MOTO" -H 127.0.0.1 -p "$moto_port" >"$work/moto.log" 2>&1 &
moto_pid=$!
nginx_pid=
if [ "$dynamodb" = fake ]; then
    sed -e "s/__PORT__/$port/" -e "s/__MOTO_PORT__/$moto_port/" "$ROOT/benches/nginx/split-moto.conf" >"$work/nginx.conf"
    "$NGINX" -p "$work" -c "$work/nginx.conf" -e stderr &
    nginx_pid=$!
    export AWS_ENDPOINT_URL="http://127.0.0.1:$port"
elif [ "$dynamodb" = moto ]; then
    export AWS_ENDPOINT_URL="http://127.0.0.1:$moto_port"
else
    echo "lambda.sh: DYNAMODB must be fake or moto" >&2; exit 1
fi
trap 'kill $nginx_pid "$moto_pid" 2>/dev/null; wait 2>/dev/null; [ "${KEEP:-0}" = 1 ] || rm -rf "$work"' EXIT
for _ in $(seq 200); do curl -s -o /dev/null "http://127.0.0.1:$moto_port/" && break; sleep 0.1; done
"$PYTHON" - "$csv" "$profile" "$lines" "$work/event.json" "$dynamodb" <<'PY'
import json, os, sys, time, boto3
csv, profile, lines, event_path, dynamodb = sys.argv[1:6]
endpoint = os.environ["AWS_ENDPOINT_URL"]
s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
for _ in range(100):
    try:
        s3.create_bucket(Bucket="reimport-bench"); break
    except Exception:
        time.sleep(0.2)
if dynamodb == "moto":  # the table as infra/template.yaml declares it (shared/store-dynamodb key_schema.rs)
    boto3.client("dynamodb", endpoint_url=endpoint, region_name="us-east-1").create_table(
        TableName=os.environ["TABLE_NAME"], BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}, {"AttributeName": "day", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "day", "KeyType": "RANGE"}])
key = f"incoming/bench/pagetree-{lines}"
s3.upload_file(csv, "reimport-bench", key + ".csv")
s3.upload_file(profile, "reimport-bench", key + ".json")
record = {"eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": "us-east-1",
          "eventTime": "2026-12-04T16:00:00.000Z", "eventName": "ObjectCreated:Put",
          "s3": {"s3SchemaVersion": "1.0", "bucket": {"name": "reimport-bench", "arn": "arn:aws:s3:::reimport-bench"},
                 "object": {"key": key + ".csv", "size": 1}}}
json.dump({"Records": [record]}, open(event_path, "w"))
PY
where="$([ "$dynamodb" = moto ] && echo "moto_server's DynamoDB" || echo "nginx answering {}")"
echo "== s3-import end to end, $lines lines x $days days (S3: moto; DynamoDB: $where; deadline ${LAMBDA_DEADLINE_S:-900} s)"
log="${LAMBDA_LOG:-$work/function.log}"
LAMBDA_LOG="$log" LAMBDA_CHAIN_BUCKET=reimport-bench RUST_LOG="${RUST_LOG:-info,s3_import=debug}" \
    /usr/bin/time -f "harness + function: %e s wall, %U s user, %S s sys" \
    "$PYTHON" "$ROOT/benches/lambda_runtime.py" "$FUNCTION" "$work/event.json" || { grep -v 'batch written' "$log" | tail -20 >&2; exit 1; }
if [ "$dynamodb" = moto ]; then
    "$PYTHON" - "$csv" "$lines" "$days" <<'PY'
import csv as csvmod, os, sys, boto3
path, lines, days = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
ddb = boto3.client("dynamodb", endpoint_url=os.environ["AWS_ENDPOINT_URL"], region_name="us-east-1")
count, start, pks = 0, None, set()
while True:
    page = ddb.scan(TableName=os.environ["TABLE_NAME"], ProjectionExpression="pk", **({"ExclusiveStartKey": start} if start else {}))
    count += page["Count"]
    pks.update(i["pk"]["S"] for i in page["Items"])
    start = page.get("LastEvaluatedKey")
    if not start:
        break
rows = list(csvmod.reader(open(path, encoding="utf-8")))[1:]
metrics = {"hit": 2, "duration": 3, "visitin": 22, "visitone": 25, "visitout": 26}
checked = []
for row in (rows[0], rows[1], rows[len(rows) // 2], rows[-1]) if days == 1 else ():
    pk = f"bench#pagetree#{row[0]}"
    if pk not in pks:  # the stored key differs from the CSV's first column: show it
        suffix = row[0].rsplit("/", 1)[-1]
        print(f"table check: no pk {pk!r}; stored: {[p for p in pks if p.endswith('/' + suffix)]}")
        continue
    item = ddb.get_item(TableName=os.environ["TABLE_NAME"], Key={"pk": {"S": pk}, "day": {"S": "2023-03-01"}}).get("Item")
    assert item, f"no item for {pk} on 2023-03-01"
    for name, idx in metrics.items():
        assert item.get(name, {}).get("N") == row[idx], (row[0], name, item.get(name), row[idx])
    checked.append(row[0])
assert count == lines * days, f"{count} items in the table, expected {lines * days}"
print(f"table check: {count} items = {lines} lines x {days} days, {len(pks)} partition keys; hit, duration, visitin, visitone, visitout of {checked} match the CSV")
PY
fi
