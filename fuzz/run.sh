#!/usr/bin/env bash
# run.sh BUILD_DIR SECONDS - run every libFuzzer target for SECONDS each, seeded from
# fuzz/corpus/<target> (new inputs go to a scratch dir, never into the repo). A crash leaves
# its input in BUILD_DIR/fuzz-artifacts/; copy it to tests/regress/<target>/ before fixing.
set -euo pipefail
build=$1
secs=${2:-60}
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$build/fuzz-artifacts"
status=0
for bin in "$build"/fuzz/fuzz_*; do
    [ -x "$bin" ] || continue
    name=$(basename "$bin")
    short=${name#fuzz_}
    work="$build/fuzz-work/$short"
    mkdir -p "$work"
    dict=()
    [ -f "$here/dict/$short.dict" ] && dict=(-dict="$here/dict/$short.dict")
    echo "fuzz: $name for ${secs}s"
    if ! "$bin" -max_total_time="$secs" -rss_limit_mb=4096 -max_len=1048576 \
        -artifact_prefix="$build/fuzz-artifacts/${short}-" -print_final_stats=1 "${dict[@]}" \
        "$work" "$here/corpus/$short" 2>"$build/fuzz-$short.log"; then
        tail -50 "$build/fuzz-$short.log"
        status=1
    fi
    grep -E "stat::number_of_executed_units|stat::peak_rss_mb" "$build/fuzz-$short.log" || true
done
exit $status
