#!/usr/bin/env bash
# DynamoDB client cost: UpdateItem/s and CPU microseconds per UpdateItem of reimport's
# DynamoStore, sweeping the in-flight limit, against boto3 with a thread pool, both against
# nginx answering `{}` to every request at once (benches/nginx/fake-dynamodb.conf): the client
# alone, no network, no server work. nginx shares the 2 cores with the client.
# usage: benches/scripts/dynamodb.sh [LINES [BOTO3_CALLS]]  (default 3226 lines = 100,006 calls; 20000)
source "$(dirname "$0")/common.sh"
lines="${1:-3226}"; boto_calls="${2:-20000}"
concurrencies=(16 32 64 128 256 512); threads=(8 16 32 64)
if [ "$SMOKE" = 1 ]; then lines=20; boto_calls=200; concurrencies=(16); threads=(8); fi
if ! command -v nginx >/dev/null && [ ! -x /usr/sbin/nginx ]; then
    if [ "$SMOKE" = 1 ]; then echo "dynamodb smoke: SKIPPED, nginx is not installed (apt-get install nginx-light)"; exit 0; fi
    echo "dynamodb.sh needs nginx (apt-get install nginx-light)" >&2; exit 1
fi
NGINX="$(command -v nginx || echo /usr/sbin/nginx)"
build_release

port="$(free_port)"
nginx_dir="$(mktemp -d "$BENCH_DIR/nginx.XXXX")"
sed "s/__PORT__/$port/" "$ROOT/benches/nginx/fake-dynamodb.conf" >"$nginx_dir/nginx.conf"
"$NGINX" -p "$nginx_dir" -c "$nginx_dir/nginx.conf" -e stderr &
nginx_pid=$!
trap 'kill "$nginx_pid" 2>/dev/null; wait "$nginx_pid" 2>/dev/null; rm -rf "$nginx_dir"' EXIT
for _ in $(seq 50); do
    curl -s -o /dev/null -X POST "http://127.0.0.1:$port/" && break
    sleep 0.1
done

export AWS_ENDPOINT_URL="http://127.0.0.1:$port" AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1
export AWS_ACCESS_KEY_ID=bench AWS_SECRET_ACCESS_KEY=bench AWS_EC2_METADATA_DISABLED=true

echo "== DynamoDB client against nginx answering {} (127.0.0.1:$port)"
best_rust=0
for c in "${concurrencies[@]}"; do
    out="$("$BIN/dynamo-load" "$lines" "$c")"
    echo "  reimport  $out"
    rate="$(json_field "$out" update_items_per_s)"
    best_rust="$(awk -v a="$rate" -v b="$best_rust" 'BEGIN { print (a > b) ? a : b }')"
done
if "$PYTHON" -c 'import boto3' 2>/dev/null; then
    best_boto=0
    for t in "${threads[@]}"; do
        out="$("$PYTHON" "$ROOT/benches/reference_dynamodb.py" "$boto_calls" "$t")"
        echo "  boto3     $out"
        rate="$(json_field "$out" update_items_per_s)"
        best_boto="$(awk -v a="$rate" -v b="$best_boto" 'BEGIN { print (a > b) ? a : b }')"
    done
    echo "  best reimport $best_rust/s, best boto3 $best_boto/s: ratio $(ratio "$best_rust" "$best_boto")x"
elif [ "$SMOKE" = 1 ]; then
    echo "dynamodb smoke: boto3 part SKIPPED, boto3 is not importable by $PYTHON (set REIMPORT_VENV)"
else
    echo "dynamodb.sh needs boto3 in $PYTHON (set REIMPORT_VENV to a venv with boto3)" >&2; exit 1
fi
