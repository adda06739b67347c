#!/usr/bin/env bash
# Cost per million daily items: DynamoDB write units (one per item while items stay <= 1 KB,
# shown by item-size) and Lambda GB-seconds from the function's CPU time per daily item,
# measured end to end by lambda.sh (S3 read, validation, UpdateItems, checkpoints, report:
# the function process's user+sys CPU over the whole chain / items written).
# The function is CPU-bound; Lambda gives 1 vCPU per 1,769 MB, so below 1,769 MB a CPU-bound
# function is billed 1.769 GB-s per CPU-second whatever its memory setting (512 MB: 0.29 vCPU,
# so 3.45 s of wall per CPU-second, x 0.5 GB = the same 1.769 GB-s).
# Continuations: every invocation re-reads and re-validates the whole CSV before writing;
# VALIDATE_MS_PER_100K is that time per 100,000 lines (from lambda.sh's per-invocation
# validate_ms), charged once per invocation after the first (the first is in the CPU per item); the invocations a file needs at MEMORY_MB follow
# from its CPU time and the part length (900 s timeout - 90 s margin).
# Prices (us-east-1, on-demand, as published in 2025; they change): writes $0.625 per million
# WRU, Lambda arm64 $0.0000133334 per GB-s.
# usage: benches/scripts/cost.sh [CPU_US_PER_DAILY_ITEM [VALIDATE_MS_PER_100K [MEMORY_MB]]]
#        (defaults: 177 and 300, lambda.sh 100000 x 31 days on x86_64, 2026-12-04; 512)
source "$(dirname "$0")/common.sh"
cpu_us="${1:-177}"; validate_ms="${2:-300}"; memory_mb="${3:-512}"
[ "$SMOKE" = 1 ] && lines=100 || lines=100000
build_release
"$BIN/item-size" "$lines"
awk -v cpu_us="$cpu_us" -v validate_ms="$validate_ms" -v memory_mb="$memory_mb" 'BEGIN {
    wru_price = 0.625 / 1e6; gbs_price = 0.0000133334
    vcpu = memory_mb / 1769; if (vcpu > 1) vcpu = 1     # one thread of work per vCPU at most
    per_cpu_s = memory_mb / 1024 / vcpu                 # GB-s billed per CPU-second
    gbs = 1e6 * cpu_us / 1e6 * per_cpu_s
    printf "per million daily items (%.0f us CPU each, %d MB = %.2f vCPU): 1,000,000 WRU = $%.3f; Lambda %.0f GB-s = $%.4f; total $%.3f\n",
        cpu_us, memory_mb, vcpu, 1e6 * wru_price, gbs, gbs * gbs_price, 1e6 * wru_price + gbs * gbs_price
    part_s = 900 - 90
    for (n = 0; n < 2; n++) {
        l = (n == 0) ? 100000 : 1000000
        items = l * 31
        cpu_s = items * cpu_us / 1e6
        invocations = int(cpu_s / vcpu / part_s) + 1
        val_s = (invocations - 1) * validate_ms / 1000 * l / 100000
        total_gbs = (cpu_s + val_s) * per_cpu_s
        printf "%d lines x 31 days (%d daily items) at %d MB: ~%d invocations of %d s, writes %.0f CPU-s + re-validation %d x %.1f s (first included); Lambda %.0f GB-s ($%.3f) + %d WRU ($%.2f): total $%.2f\n",
            l, items, memory_mb, invocations, part_s, cpu_s, invocations - 1, validate_ms / 1000 * l / 100000,
            total_gbs, total_gbs * gbs_price, items, items * wru_price, items * wru_price + total_gbs * gbs_price
    }
}'
