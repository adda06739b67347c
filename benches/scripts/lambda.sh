#!/usr/bin/env bash
# The s3-import Lambda binary through the Lambda Runtime API (benches/lambda_runtime.py):
# 1. cold start: process spawn -> first answer, for an s3:TestEvent (no AWS call made);
# 2. end to end: one ObjectCreated event for a LINES-line pagetree file in moto's S3, the
#    DynamoDB writes answered `{}` at once by nginx (benches/nginx/split-moto.conf), so this
#    measures the function (S3 read, validation, 31 x LINES UpdateItems built, signed, sent,
#    report written), not DynamoDB. Reference: the DynamoDB client alone (dynamodb.sh).
# usage: benches/scripts/lambda.sh [LINES [RUNS]]   (default 100000 lines, 5 cold starts)
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
csv="$(input "$lines")"
moto_port="$(free_port)"; port="$(free_port)"
work="$(mktemp -d "$BENCH_DIR/lambda.XXXX")"
"$MOTO" -H 127.0.0.1 -p "$moto_port" >"$work/moto.log" 2>&1 &
moto_pid=$!
sed -e "s/__PORT__/$port/" -e "s/__MOTO_PORT__/$moto_port/" "$ROOT/benches/nginx/split-moto.conf" >"$work/nginx.conf"
"$NGINX" -p "$work" -c "$work/nginx.conf" -e stderr &
nginx_pid=$!
trap 'kill "$nginx_pid" "$moto_pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$work"' EXIT
for _ in $(seq 200); do curl -s -o /dev/null "http://127.0.0.1:$moto_port/" && break; sleep 0.1; done
export AWS_ENDPOINT_URL="http://127.0.0.1:$port"
"$PYTHON" - "$csv" "$lines" "$work/event.json" <<'PY'
import json, sys, time, boto3
csv, lines, event_path = sys.argv[1], sys.argv[2], sys.argv[3]
s3 = boto3.client("s3", endpoint_url=__import__("os").environ["AWS_ENDPOINT_URL"], region_name="us-east-1")
for _ in range(100):
    try:
        s3.create_bucket(Bucket="reimport-bench"); break
    except Exception:
        time.sleep(0.2)
key = f"incoming/bench/pagetree-{lines}"
s3.upload_file(csv, "reimport-bench", key + ".csv")
s3.upload_file(csv[:-4] + ".json", "reimport-bench", key + ".json")
record = {"eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": "us-east-1",
          "eventTime": "2026-12-04T16:00:00.000Z", "eventName": "ObjectCreated:Put",
          "s3": {"s3SchemaVersion": "1.0", "bucket": {"name": "reimport-bench", "arn": "arn:aws:s3:::reimport-bench"},
                 "object": {"key": key + ".csv", "size": 1}}}
json.dump({"Records": [record]}, open(event_path, "w"))
PY
echo "== s3-import end to end, $lines lines x 31 days (S3: moto; DynamoDB: nginx answering {})"
LAMBDA_LOG="$work/function.log" /usr/bin/time -f "function process: %e s wall, %U s user, %S s sys" \
    "$PYTHON" "$ROOT/benches/lambda_runtime.py" "$FUNCTION" "$work/event.json" || { tail -20 "$work/function.log" >&2; exit 1; }
