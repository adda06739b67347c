#!/usr/bin/env bash
# Cost per million daily items: DynamoDB write units (one per item while items stay <= 1 KB,
# shown by item-size) and Lambda GB-seconds from the client's CPU time per UpdateItem
# (measured by dynamodb.sh). A CPU-bound Lambda gets 1 vCPU per 1769 MB, so its GB-seconds
# per CPU-second are 1.769 whatever the memory setting.
# Prices (us-east-1, on-demand, as of December 2025; they change): writes $0.625 per million
# WRU, Lambda arm64 $0.0000133334 per GB-s.
# usage: benches/scripts/cost.sh [CPU_US_PER_UPDATE_ITEM]   (default 230, measured on x86_64)
source "$(dirname "$0")/common.sh"
cpu_us="${1:-230}"
[ "$SMOKE" = 1 ] && lines=100 || lines=100000
build_release
"$BIN/item-size" "$lines"
awk -v cpu_us="$cpu_us" 'BEGIN {
    wru_price = 0.625 / 1e6; gbs_price = 0.0000133334
    gbs = 1e6 * cpu_us / 1e6 * 1.769
    printf "per million daily items: 1,000,000 WRU = $%.3f; Lambda %.0f GB-s = $%.4f; total $%.3f\n",
        1e6 * wru_price, gbs, gbs * gbs_price, 1e6 * wru_price + gbs * gbs_price
    printf "per million lines x 31 days (31M daily items): Lambda %.0f GB-s, total $%.2f\n",
        31 * gbs, 31 * (1e6 * wru_price + gbs * gbs_price)
}'
