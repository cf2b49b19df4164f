#!/usr/bin/env bash
# run.sh - `make bench`: throughput and peak memory of the profile-processing path
#
# usage: bash bench/run.sh BUILD_DIR
#   BUILD_DIR holds kiln and bench/{gen_profile,bench_process} (they are built if missing).
# Environment:
#   BENCH_RUNS=3      bench_process processes per size; the table shows the median of their
#                     medians (each process: 1 warm-up, >= 5 iterations and >= 1 s CPU per case)
#   BENCH_RSS_RUNS=5  runs of `kiln process FILE -o /dev/null` for peak RSS (median)
#   BENCH_SIZES="small medium large"
#   BENCH_CHUNKS=1    also run the sample-v2 chunk variant of each size
#   BENCH_WALL=1      time with the wall clock instead of the process CPU clock
# Test documents are generated once into BUILD_DIR/bench/data (regenerated when gen_profile
# is newer); raw outputs go to BUILD_DIR/bench/out. See bench/README.md.
set -u

if [ $# -lt 1 ]; then
    echo "usage: bash bench/run.sh BUILD_DIR" >&2
    exit 2
fi
build=$(cd "$1" && pwd) || exit 2
kiln=$build/kiln
gen=$build/bench/gen_profile
bp=$build/bench/bench_process
data=$build/bench/data
out=$build/bench/out
runs=${BENCH_RUNS:-3}
rss_runs=${BENCH_RSS_RUNS:-5}
sizes=${BENCH_SIZES:-small medium large}

if [ ! -x "$kiln" ] || [ ! -x "$gen" ] || [ ! -x "$bp" ]; then
    cmake --build "$build" --target kiln_bin gen_profile bench_process >&2 || true
fi
for b in "$kiln" "$gen" "$bp"; do
    if [ ! -x "$b" ]; then
        echo "run.sh: $b is missing; build first (ninja -C $build)" >&2
        exit 1
    fi
done
mkdir -p "$data" "$out"

# median of the numbers given as arguments
median() {
    printf '%s\n' "$@" | sort -g | awk '{ a[NR] = $1 }
        END { if (NR == 0) print "nan"; else if (NR % 2) print a[(NR + 1) / 2];
              else print (a[NR / 2] + a[NR / 2 + 1]) / 2 }'
}

# value of key=... in a line
field() {
    printf '%s\n' "$2" | tr ' ' '\n' | sed -n "s/^$1=//p"
}

cases=()
for s in $sizes; do
    cases+=("$s")
    if [ "${BENCH_CHUNKS:-0}" != 0 ]; then
        cases+=("$s-chunk")
    fi
done

for c in "${cases[@]}"; do
    f=$data/$c.json
    if [ ! -s "$f" ] || [ "$gen" -nt "$f" ]; then
        case $c in
        *-chunk) "$gen" --chunk "${c%-chunk}" -o "$f.tmp" 2>>"$out/gen.log" ;;
        *) "$gen" "$c" -o "$f.tmp" 2>>"$out/gen.log" ;;
        esac || { echo "run.sh: gen_profile $c failed, see $out/gen.log" >&2; exit 1; }
        mv "$f.tmp" "$f"
    fi
done

cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)
echo "kiln bench: $(date -u +%Y-%m-%dT%H:%M:%SZ), $(nproc) CPUs ($cpu), load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "clock: $([ "${BENCH_WALL:-0}" != 0 ] && echo wall || echo process CPU); $runs bench runs/size (median of run medians), $rss_runs RSS runs"
echo

status=0
rows=()
for c in "${cases[@]}"; do
    f=$data/$c.json
    item=auto
    case $c in *-chunk) item=chunk ;; *) item=profile ;; esac
    ceil=() parse=() proc=()
    bytes=""
    fail=""
    : >"$out/$c.log"
    for ((r = 1; r <= runs; r++)); do
        res=$("$bp" --item "$item" "$f" 2>>"$out/$c.log" | tee -a "$out/$c.log" | grep '^RESULT ')
        if [ -z "$res" ]; then
            fail=1
            break
        fi
        bytes=$(field bytes "$res")
        ceil+=("$(field ceiling_mbs "$res")")
        parse+=("$(field parse_mbs "$res")")
        proc+=("$(field process_mbs "$res")")
        case " ${ceil[*]} ${parse[*]} ${proc[*]} " in *" -1.0 "*) fail=1 ;; esac
    done
    rss=$("$bp" --rss "$kiln" --runs "$rss_runs" "$f" 2>>"$out/$c.log" | tee -a "$out/$c.log" |
        grep '^RSS ')
    rss_mib=$(field rss_mib "$rss")
    rss_ratio=$(field rss_ratio "$rss")
    if [ -z "$rss" ] || [ "$(field failed "$rss")" != 0 ]; then
        rss_mib="fail" rss_ratio="fail"
        status=1
    fi
    if [ -n "$fail" ]; then
        status=1
        [ -n "$bytes" ] || bytes=$(stat -c %s "$f")
        rows+=("$(printf '%-13s %11s %11s %11s %11s %7s %10s %8s' "$c" "$bytes" "fail" "fail" \
            "fail" "-" "$rss_mib" "$rss_ratio")")
        echo "run.sh: $c: bench_process failed, see $out/$c.log" >&2
        continue
    fi
    mc=$(median "${ceil[@]}")
    mp=$(median "${parse[@]}")
    mr=$(median "${proc[@]}")
    ratio=$(awk -v a="$mr" -v b="$mc" 'BEGIN { printf "%.3f", a / b }')
    rows+=("$(printf '%-13s %11s %11.1f %11.1f %11.1f %7s %10s %8s' "$c" "$bytes" "$mc" "$mp" \
        "$mr" "$ratio" "$rss_mib" "$rss_ratio")")
done

printf '%-13s %11s %11s %11s %11s %7s %10s %8s\n' size bytes "ceiling" "parse" "process" \
    ratio "peak RSS" "RSS/in"
printf '%-13s %11s %11s %11s %11s %7s %10s %8s\n' "" "" "MB/s" "MB/s" "MB/s" "" "MiB" ""
printf '%s\n' "${rows[@]}"
echo
echo "ceiling = kl_json_validate (simdjson DOM, parser reused); parse = kl_profile_parse;"
echo "process = kl_process_run + kl_profile_write_stored; ratio = process/ceiling;"
echo "peak RSS = median ru_maxrss of '$kiln process FILE -o /dev/null'. Logs: $out"

# ---- the read side (bench/bench_read.c): a 10,000-profile store (built once, kept in
# BUILD_DIR/bench/read-store), the aggregated flamegraph over all of it, one large profile's
# flamegraph, bytes on disk per sample. BENCH_READ=0 skips it; BENCH_READ_PROFILES=N.
br=$build/bench/bench_read
if [ "${BENCH_READ:-1}" != 0 ]; then
    [ -x "$br" ] || cmake --build "$build" --target bench_read >&2 || true
    large=()
    [ -s "$data/large.json" ] || "$gen" large -o "$data/large.json" 2>>"$out/gen.log" || true
    [ -s "$data/large.json" ] && large=(--large "$data/large.json")
    if [ -x "$br" ] && "$br" --dir "$build/bench/read-store" --profiles "${BENCH_READ_PROFILES:-10000}" \
        --runs 5 "${large[@]}" >"$out/read.txt" 2>"$out/read.log"; then
        rf() { sed -n "s/^RESULT case=$1 .*\b$2=\([^ ]*\).*/\1/p" "$out/read.txt"; }
        echo
        printf '%-34s %12s %s\n' "read side" "median" "target"
        printf '%-34s %12s %s\n' "ingest to store (worker path)" "$(rf store ingest_items_s) it/s" "(when the store was built)"
        printf '%-34s %9s ms %s\n' "flamegraph $(rf flamegraph trees) profiles+metrics" "$(rf flamegraph ms)" \
            "<= 1000 ms; $(rf flamegraph profiles_s_core) profiles/s/core (Pyroscope ~50)"
        printf '%-34s %9s ms %s\n' "  of which query+merge / write" "$(rf flamegraph query_ms)" "/ $(rf flamegraph write_ms) ms"
        printf '%-34s %9s ms %s\n' "one 30 MB profile -> flamegraph" "$(rf large ms)" "<= 150 ms (process $(rf large process_ms) ms)"
        printf '%-34s %9s B  %s\n' "blob (zstd) per sample" "$(rf bytes blob_per_sample)" ""
        printf '%-34s %9s B  %s\n' "stored call tree per sample" "$(rf bytes tree_per_sample)" ""
        echo "bench_read: $(rf store profiles) profiles, $(rf store samples) samples; raw: $out/read.txt"
    else
        echo "run.sh: bench_read failed, see $out/read.log" >&2
        status=1
    fi
fi
exit $status
