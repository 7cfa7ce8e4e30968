#!/bin/sh
# docs.man: formats each man page with groff and with man(1) and fails on any
# warning (an unknown macro, a line that cannot be broken, ...), and on a
# paragraph of the rendered text with an odd number of double quotes: a quote
# that .BI/.BR swallowed or left stray, which groff does not warn about.
#
# usage: docs-man.sh PAGE...
set -u
if ! command -v groff >/dev/null || ! command -v man >/dev/null; then
    echo "docs-man.sh: groff or man is missing (packaging/install-deps.sh installs them)"
    exit 77
fi
[ "$#" -gt 0 ] || { echo "FAIL: no page given"; exit 1; }
failures=0
for page in "$@"; do
    warnings=$(
        groff -ww -z -t -man "$page" 2>&1
        LC_ALL=C.UTF-8 MANWIDTH=80 man --warnings -E UTF-8 -l "$page" 2>&1 >/dev/null
        LC_ALL=C.UTF-8 MANWIDTH=80 man -E UTF-8 -l "$page" 2>/dev/null | col -b | awk '
            /^[[:space:]]*$/ { if (q % 2) print "odd number of double quotes in: " p; p = ""; q = 0; next }
            { p = p " " $0; q += gsub(/"/, "\"") }
            END { if (q % 2) print "odd number of double quotes in: " p }'
    )
    if [ -n "$warnings" ]; then
        echo "FAIL: $page:"
        printf '%s\n' "$warnings" | sed 's/^/    /'
        failures=$((failures + 1))
    fi
done
echo "docs.man: $# pages, $failures with warnings"
[ "$failures" -eq 0 ]
