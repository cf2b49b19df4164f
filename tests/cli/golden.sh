#!/usr/bin/env bash
# golden.sh KILN CORPUS_DIR TESTS_DIR - `kiln process` over every file of the shared Sentry
# corpus; the outcomes, the rejection line and a summary of the stored form are compared
# with tests/golden/process/<file>.out, which were checked by hand against the spec.
# UPDATE_GOLDEN=1 rewrites the .out files (review the diff like code).
set -u
kiln=$1 corpus=$2 tests=$3
dir="$corpus/sentry"
if [ ! -d "$dir" ]; then
    echo "1..0 # SKIP no shared corpus at $dir"
    exit 77
fi
golden="$tests/golden/process"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
pass=0 fail=0
for f in "$dir"/*.json; do
    name=$(basename "$f" .json)
    "$kiln" process --outcomes --received 1700000000 "$f" >"$tmp/out.json" 2>"$tmp/err.txt"
    rc=$?
    {
        echo "exit=$rc"
        cat "$tmp/err.txt"
        python3 "$tests/cli/summarize.py" <"$tmp/out.json"
    } >"$tmp/$name.out"
    if [ "${UPDATE_GOLDEN:-0}" = 1 ]; then
        cp "$tmp/$name.out" "$golden/$name.out"
    fi
    if diff -u "$golden/$name.out" "$tmp/$name.out" >"$tmp/diff.txt" 2>&1; then
        pass=$((pass + 1))
        echo "ok - $name"
    else
        fail=$((fail + 1))
        echo "not ok - $name"
        head -40 "$tmp/diff.txt"
    fi
done
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
