#!/bin/bash
# IPC fuzz as an unprivileged peer (issue 14, the chaos tests): nobody sends a few thousand
# malformed, random and mutated frames (raw garbage, lying lengths and counts, deep nesting,
# the fuzz_proto corpus mutated, requests of every op nobody may send with random arguments,
# pieces cut short by a close) to a live agent through a world-connectable socket.  Then the
# agent is up, root and nobody are served, the store is intact and its certificates are the
# ones from before.  IPCFUZZ_FRAMES (3000) and IPCFUZZ_SEED (14) change the run.
. "$(dirname "$0")/lib-sec.sh" "$@"
need_root
open_test_dir

FRAMES=${IPCFUZZ_FRAMES:-3000}
SEED=${IPCFUZZ_SEED:-14}
CORPUS=$(dirname "$0")/../fuzz/corpus/fuzz_proto
PY=/usr/bin/python3
install -m 0644 "$(dirname "$0")/ipcpeer.py" "$T/ipcpeer.py"
mkdir -m 0755 "$T/seeds"
install -m 0644 "$CORPUS"/* "$T/seeds/"

# Short deadlines, so that what the fuzzer leaves half-sent is swept while it runs.
echo '{"socket_mode": "0666", "ipc_hello_timeout": 2, "ipc_frame_timeout": 2,
  "ipc_idle_timeout": 5}' >"$CONFIG"
start_agent
run 0 ctl selfsigned before1 --dns before1.test
run 0 ctl import before2 --cert "$DATA/leaf.pem" --key "$DATA/leaf.key" \
    --chain "$DATA/intermediate.pem"
run 0 ctl --json list
before=$(printf '%s' "$JOUT" | "$PY" -c 'import json, sys; print(sorted((c["name"], c["version"]) for c in json.load(sys.stdin)))')

run 0 as_nobody "$PY" "$T/ipcpeer.py" fuzz "$SOCK" "$T/seeds" "$FRAMES" "$SEED"
echo "$OUT"
has "fuzz: seed $SEED"

check "the agent is up after the fuzz" kill -0 "$AGENT_PID"
run 0 ctl status
run 0 ctl --json list
after=$(printf '%s' "$JOUT" | "$PY" -c 'import json, sys; print(sorted((c["name"], c["version"]) for c in json.load(sys.stdin)))')
check "the certificates are the ones from before: $before / $after" test "$before" = "$after"
run 0 ctl_nobody list
has before1
check "the store is intact" verify_store
run 0 ctl selfsigned after --dns after.test
check "the agent logged the bad frames it dropped" grep -q "sent a bad frame" "$LOG"
stop_agent
finish
