#!/bin/bash
# Fails when a C source or header of the tree is not formatted as .clang-format says,
# naming each file and showing clang-format's diff of it.
# usage: clang-format.sh SOURCE_DIR [CLANG_FORMAT]
set -u
top=$1
cf=${2:-clang-format}
cd "$top" || exit 2
command -v "$cf" >/dev/null || { echo "clang-format.sh: $cf not found (packaging/install-deps.sh installs it)"; exit 1; }
files=$(find agent common ctl installer tests -name '*.[ch]' -type f | sort)
n=$(printf '%s\n' "$files" | wc -l)
bad=0
# shellcheck disable=SC2086 # one argument per file; no file name has a space
if "$cf" --dry-run -Werror $files >/dev/null 2>&1; then
    echo "clang-format.sh: $n files checked, all formatted"
    exit 0
fi
for f in $files; do
    if ! "$cf" --dry-run -Werror "$f" >/dev/null 2>&1; then
        bad=$((bad + 1))
        echo "clang-format.sh: $f is not formatted; 'clang-format -i $f' fixes it:"
        "$cf" "$f" | diff -u "$f" - | head -n 40
    fi
done
echo "clang-format.sh: $n files checked, $bad not formatted"
[ "$bad" -eq 0 ]
