#!/bin/sh
# Runs one libFuzzer binary on a scratch copy of its seed corpus for a bounded time; a crash, leak, sanitizer
# report or per-input timeout is a test failure (libFuzzer exits non-zero and leaves the input in WORKDIR).
#   usage: run-fuzzer.sh FUZZER SEED_CORPUS_DIR WORKDIR SECONDS
# HUGEPAGED_FUZZ_SECONDS, if set, overrides SECONDS (e.g. 5 for a quick local run).
set -eu
fuzzer=$1
seeds=$2
work=$3
seconds=${HUGEPAGED_FUZZ_SECONDS:-$4}

rm -rf "$work"
mkdir -p "$work/corpus" "$work/artifacts"
export ASAN_OPTIONS="${ASAN_OPTIONS:-}${ASAN_OPTIONS:+:}detect_leaks=1:abort_on_error=1"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-}${UBSAN_OPTIONS:+:}print_stacktrace=1:halt_on_error=1"
# New inputs go to the scratch corpus; the committed seeds are only read.
exec "$fuzzer" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
        -artifact_prefix="$work/artifacts/" "$work/corpus" "$seeds"
