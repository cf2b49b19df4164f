#!/usr/bin/env bash
# check-style.sh - formatting (clang-format, when installed) and banned calls, over the
# tracked C sources. Banned: sprintf strcpy strcat strtok gets atoi (curl checksrc).
set -euo pipefail
cd "$(dirname "$0")/.."
files=$(git ls-files 'src/*.c' 'src/*.h' 'src/*.cpp' 'tests/*.c' 'tests/*.h' 'fuzz/*.c' 'bench/*.c')
status=0
if grep -nE '\b(sprintf|strcpy|strcat|strtok|gets|atoi)\s*\(' $files; then
    echo "check-style: banned call above (use snprintf, memcpy with lengths, kl_parse_*)" >&2
    status=1
fi
if command -v clang-format >/dev/null 2>&1; then
    if ! clang-format --dry-run --Werror $files 2>/tmp/kl-format.txt; then
        head -40 /tmp/kl-format.txt >&2
        echo "check-style: run 'make format'" >&2
        status=1
    fi
fi
exit $status
