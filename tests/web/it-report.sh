#!/bin/bash
# certctl report: the status report for a person (report/digest.c) against a
# store with ok, warning and critical certificates: the subject carries the
# health and the counts, the certificates come worst first with their
# warnings' sentences, --json is {subject, text}.
. "$(dirname "$0")/../integration/lib.sh" "$@"
. "$(dirname "$0")/lib-web.sh"

start_agent
# An empty store is OK.
run 0 ctl report
has "[certagent] "
has ": OK, 0 certificates"
has "The store holds no certificate."

make_levels
HOST=$(hostname)
run 0 ctl report
has "[certagent] $HOST: CRITICAL, 3 expiring, 3 warnings"
has "4 certificates: 1 ok, 2 warning, 1 critical; 0 expired, 3 expiring"
has "CRITICAL  verysoon"
has "WARNING   soon"
has "WARNING   selfie"
has "OK        good"
has '<b>&quotes.example.test'
has "Source:       import"
has "days left)"
has "(self_signed_in_use): selfie is self-signed: clients do not"
has "(expiring): verysoon expires in"
# Worst first: critical, then the warnings (sooner expiry first), then ok.
order=$(printf '%s\n' "$OUT" | sed -n 's/^\(OK\|WARNING\|CRITICAL\) *\([a-z]*\)$/\2/p' | tr '\n' ' ')
check "worst first: $order" [ "$order" = "verysoon soon selfie good " ]
# Lines fit a mail client (wrapped at 76 columns; a single long word may not).
long=$(printf '%s\n' "$OUT" | awk 'length > 80' | wc -l)
check "no line over 80 columns ($long)" [ "$long" -eq 0 ]

run 0 ctl --json report
json "j['subject'].startswith('[certagent] ') and 'CRITICAL' in j['subject']"
json "'CRITICAL  verysoon' in j['text'] and j['text'].count('\n') > 20"
json "set(j) == {'subject', 'text'}"
run 2 ctl report --bogus
has "unexpected argument '--bogus'"
finish
