#!/usr/bin/env bash
# Benchmark one or more .tflite models on an attached Android phone or emulator with TFLite's benchmark_model.
#
#   android_bench/run_on_device.sh MODEL.tflite... [--serial SERIAL] [-- extra 'edgeprune bench' options]
#
# Environment: BENCHMARK_MODEL (path of benchmark_model for the device's ABI; default: the cache folder, see
# README.md), THREADS (default 4), RUNS (default 50). Writes one JSON result per model next to it
# (MODEL.tflite.device.json), all of them or none: the results are kept in temporary files until every model has been
# measured, and a failure removes them. A thin wrapper over 'edgeprune bench --device'.
set -euo pipefail
models=() serial="" extra=()
while [ $# -gt 0 ]; do
    case "$1" in
        --serial) serial="$2"; shift 2 ;;
        --) shift; extra=("$@"); break ;;
        *) models+=("$1"); shift ;;
    esac
done
[ ${#models[@]} -gt 0 ] || { echo "usage: $0 MODEL.tflite... [--serial SERIAL] [-- options]" >&2; exit 2; }
binary=()
[ -n "${BENCHMARK_MODEL:-}" ] && binary=(--benchmark-binary "$BENCHMARK_MODEL")
device=(--device)
[ -n "$serial" ] && device=(--device "$serial")
partials=()
trap 'rm -f "${partials[@]}"' EXIT
for model in "${models[@]}"; do
    partials+=("$(mktemp "$model.device.json.XXXXXX.partial")")
    edgeprune bench "$model" "${device[@]}" "${binary[@]}" --num-threads "${THREADS:-4}" --num-runs "${RUNS:-50}" \
        --big-cores --json "${extra[@]}" > "${partials[-1]}"
done
for i in "${!models[@]}"; do
    mv "${partials[$i]}" "${models[$i]}.device.json"
    echo "wrote ${models[$i]}.device.json"
done
