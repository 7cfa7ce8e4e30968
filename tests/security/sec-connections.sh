#!/bin/bash
# Connection slots and secrets (issue 14, findings 4, 5 and 9), attacked as nobody through a
# world-connectable socket:
#   - idle connections that never say hello cannot lock root out (slots reserved for users who
#     may change the store), nor take more than max_connections_per_uid; the excess is refused;
#   - a connection that never says hello is dropped after ipc_hello_timeout, one that sits
#     idle after ipc_idle_timeout, while a `logs --follow` client stays;
#   - partial frames of many clients are bounded (ipc_partial_limit_mib): the agent drops the
#     oldest of nobody's, logs it, stays up, and root's large frame is served;
#   - the agent is not dumpable and has no core limit (nobody's other processes cannot read its
#     memory), unless --allow-core-dumps; its soft RLIMIT_NOFILE is raised to the hard limit;
#     SIGPIPE is ignored;
#   - after an import of a PFX and an export of one, their passwords are nowhere in the agent's
#     memory, neither as they were sent nor as the UTF-16 that PKCS#12 derives keys from.
. "$(dirname "$0")/lib-sec.sh" "$@"
need_root
open_test_dir

PEER=$T/ipcpeer.py
install -m 0644 "$(dirname "$0")/ipcpeer.py" "$PEER"
# The system's python, which nobody can run (not a python of root's home).
PY=/usr/bin/python3

# The attacker's connections, held by a coprocess running as nobody (tests/security/ipcpeer.py).
hold_start() {
    coproc HOLD { as_nobody "$PY" "$PEER" hold "$SOCK"; }
}
# hold CMD...: one command to the holder; its answer in $HELD.
hold() {
    HELD=
    if [ -z "${HOLD[1]:-}" ]; then
        fail "the holder is gone before '$*'"
        return
    fi
    echo "$*" >&"${HOLD[1]}"
    read -r -t 300 HELD <&"${HOLD[0]}" || fail "the holder did not answer '$*'"
}
hold_stop() {
    [ -z "${HOLD[1]:-}" ] || echo quit >&"${HOLD[1]}"
    wait "${HOLD_PID:-}" 2>/dev/null
}
# restart_with JSON: the agent again, with this configuration.
restart_with() {
    [ -z "$AGENT_PID" ] || stop_agent
    printf '%s\n' "$1" >"$CONFIG"
    start_agent
}

# 1. Slots: 50 in all, 10 reserved for users who may change the store; nobody may hold
#    100 at most, so the reserve is what stops nobody here.
restart_with '{"socket_mode": "0666", "max_connections": 50, "reserved_connections": 10,
  "max_connections_per_uid": 100, "ipc_hello_timeout": 3600}'
run 0 ctl selfsigned kept --dns kept.test
run 0 ctl_nobody list
has kept
hold_start
hold open 60 silent
# Root's connection comes after nobody's 60 in the listen queue: when its status is served,
# all 60 were accepted or refused.
run 0 ctl status
hold await_closed 20 120
check "nobody's connections past the 40 unreserved slots were refused with E_UNAVAILABLE, \
the 40 others stay: $HELD" test "$HELD" = "closed=20 open=40 E_UNAVAILABLE=20 E_PROTO=0"
run 0 ctl list
has kept
run 0 ctl selfsigned rootonly --dns rootonly.test
# One more of nobody's is refused, with the reason.
hold open 1 silent
hold await_closed 21 120
check "one more of nobody's is refused: $HELD" \
    test "$HELD" = "closed=21 open=40 E_UNAVAILABLE=21 E_PROTO=0"
# certctl says why, whether its hello was written before the agent closed or not.
# (exit 3, as when it cannot reach the agent; before, it died of SIGPIPE without a word)
run 3 ctl_nobody list
has "the agent serves too many connections; try again later"
check "the refusal names reserved_connections in the log" \
    grep -q "reserved for users who may change the store (reserved_connections)" "$LOG"
hold closeall
hold_stop

# 2. Per user: nobody may hold 5 connections.
restart_with '{"socket_mode": "0666", "max_connections": 50, "reserved_connections": 10,
  "max_connections_per_uid": 5, "ipc_hello_timeout": 3600}'
hold_start
hold open 8 silent
run 0 ctl status
hold await_closed 3 120
check "nobody's connections past max_connections_per_uid were refused: $HELD" \
    test "$HELD" = "closed=3 open=5 E_UNAVAILABLE=3 E_PROTO=0"
hold open 1 silent
hold await_closed 4 120
check "one more of nobody's is refused: $HELD" \
    test "$HELD" = "closed=4 open=5 E_UNAVAILABLE=4 E_PROTO=0"
run 0 ctl list
check "the refusal names max_connections_per_uid in the log" \
    grep -q "(max_connections_per_uid)" "$LOG"
hold closeall
hold_stop

# 3. Deadlines: no hello within 1 s, idle for 2 s; a follower of the log is never idle.
restart_with '{"socket_mode": "0666", "ipc_hello_timeout": 1, "ipc_idle_timeout": 2}'
"$CTL" --socket "$SOCK" logs --follow --level error --lines 0 >"$T/follow.out" 2>&1 &
follower=$!
wait_log "pid $follower) says hello" || fail "the follower did not say hello"
hold_start
hold open 1 silent
hold open 1 hello
hold await_closed 2 120
check "the silent connection and the idle one were dropped (the silent one told why): $HELD" \
    test "$HELD" = "closed=2 open=0 E_UNAVAILABLE=0 E_PROTO=1"
check "the hello deadline is logged" grep -q "did not say hello within 1 s (ipc_hello_timeout)" "$LOG"
check "the idle drop is logged" grep -q "was idle for 2 s (ipc_idle_timeout)" "$LOG"
# The follower connected before both and has sent nothing since: it would have been due first.
check "the follower of the log is still connected" kill -0 "$follower"
check "the follower was not dropped as idle" sh -c "! grep -q 'pid $follower) was idle' '$LOG'"
kill "$follower"
wait "$follower" 2>/dev/null
hold_stop

# 4. Partial frames: 2 MiB for all clients.  Ten of nobody's connections each begin a 1 MiB
#    frame and send 400,000 bytes of it: the five oldest are dropped (five hold 2,000,000).
#    Then root sends a 300 KiB frame: one more of nobody's goes, root is answered.
restart_with '{"socket_mode": "0666", "ipc_partial_limit_mib": 2, "ipc_frame_timeout": 3600}'
hold_start
hold open 10 partial:400000
hold await_closed 5 120
check "the oldest partial frames were dropped until 2 MiB: $HELD" \
    test "$HELD" = "closed=5 open=5 E_UNAVAILABLE=5 E_PROTO=0"
check "the drop is logged" grep -q "over ipc_partial_limit_mib (2 MiB)" "$LOG"
run 0 "$PY" "$PEER" big "$SOCK" 300000
check "root's large frame was answered" test "$JOUT" = ok
hold await_closed 6 120
check "root's frame pushed out one more of nobody's, not itself: $HELD" \
    test "$HELD" = "closed=6 open=4 E_UNAVAILABLE=6 E_PROTO=0"
check "the agent is up" kill -0 "$AGENT_PID"
run 0 ctl status
hold closeall
hold_stop
check "the store is intact" verify_store

# 5. The process: SIGPIPE ignored; soft RLIMIT_NOFILE raised to the hard limit.
stop_agent
echo '{}' >"$CONFIG"
AGENT_PID=$(prlimit --nofile=1024:4096 "$AGENT_UP" "$LOG" "$AGENT" --foreground \
    --config "$CONFIG" --socket "$SOCK" --state-dir "$STATE" --log-level debug) ||
    { fail "agent did not start under prlimit"; finish; }
check "soft RLIMIT_NOFILE raised to the hard limit: $(grep 'Max open files' "/proc/$AGENT_PID/limits")" \
    grep -Eq '^Max open files +4096 +4096 ' "/proc/$AGENT_PID/limits"
check "the limit is logged" grep -q "open files: at most 4096" "$LOG"
sigign=$(awk '/^SigIgn:/ {print $2}' "/proc/$AGENT_PID/status")
check "SIGPIPE is ignored (SigIgn $sigign)" test $((0x$sigign & 0x1000)) -ne 0
check "no core dumps: $(grep 'Max core' "/proc/$AGENT_PID/limits")" \
    grep -Eq '^Max core file size +0 ' "/proc/$AGENT_PID/limits"
stop_agent

# 6. Core dumps and /proc: an agent of nobody's, in a directory of nobody's, read by another
#    process of nobody's.
nb=$T/nb
mkdir -m 0700 "$nb"
echo '{}' >"$nb/config.json"
chown -R nobody:nogroup "$nb"
nobody_agent() {
    AGENT_PID=$(as_nobody "$AGENT_UP" "$nb/agent.log" "$AGENT" --foreground \
        --config "$nb/config.json" --socket "$nb/agent.sock" --state-dir "$nb/state" \
        --log-level debug "$@") || { fail "nobody's agent did not start: $(tail "$nb/agent.log")"; finish; }
}
nobody_agent
if as_nobody cat "/proc/$AGENT_PID/environ" >/dev/null 2>&1; then
    fail "another process of nobody's read the agent's /proc/PID/environ"
else
    pass
fi
if as_nobody "$PY" -c 'import sys; open("/proc/%s/mem" % sys.argv[1], "rb")' "$AGENT_PID" \
    >/dev/null 2>&1; then
    fail "another process of nobody's opened the agent's /proc/PID/mem"
else
    pass
fi
check "nobody's agent dumps no core" grep -Eq '^Max core file size +0 ' "/proc/$AGENT_PID/limits"
stop_agent
nobody_agent --allow-core-dumps
check "with --allow-core-dumps the agent is dumpable: nobody reads its environ" \
    as_nobody cat "/proc/$AGENT_PID/environ"
check "--allow-core-dumps is logged" grep -q "core dumps allowed (--allow-core-dumps)" "$nb/agent.log"
stop_agent

# 7. Secrets: a PFX imported with a password, then a PFX exported with another; neither
#    password is left in the agent's memory (every readable mapping, read as root).
start_agent
pw=pfx-$(openssl rand -hex 12)
printf '%s\n' "$pw" >"$T/pw"
openssl pkcs12 -export -in "$DATA/leaf.pem" -inkey "$DATA/leaf.key" \
    -certfile "$DATA/intermediate.pem" -passout "pass:$pw" -out "$T/secret.pfx" ||
    fail "openssl could not make the PFX"
run 0 ctl import secretpfx --pfx "$T/secret.pfx" --password-file "$T/pw"
run 0 ctl export secretpfx --format pem --out "$T/export.pem"
pw2=out-$(openssl rand -hex 12)
printf '%s\n' "$pw2" >"$T/pw2"
run 0 ctl export secretpfx --format pfx --out "$T/export.pfx" --password-file "$T/pw2"
keyline=$(sed -n '/BEGIN PRIVATE KEY/,/END/p' "$T/export.pem" | sed -n 2p)
# memory_has PID TEXT...: prints, for each TEXT, the addresses where it is (ASCII, UTF-16) in
# the mappings that hold memory (smaps Rss > 0); a mapping of more than 64 GiB is a sanitizer's
# shadow, which holds no data (reading it would make the kernel build its page tables).
memory_has() {
    "$PY" - "$@" <<'PY'
import re, sys
pid = int(sys.argv[1])
needles = [n.encode() for n in sys.argv[2:]]
maps = []
with open("/proc/%d/smaps" % pid) as smaps:
    for line in smaps:
        m = re.match(r"^([0-9a-f]+)-([0-9a-f]+) (\S+) \S+ \S+ \S+\s*(.*)$", line)
        if m:
            maps.append([int(m.group(1), 16), int(m.group(2), 16), m.group(3),
                         m.group(4) or "[anon]", 0])
        elif line.startswith("Rss:") and maps:
            maps[-1][4] = int(line.split()[1])
scanned = 0
found = {n: [] for n in needles}
with open("/proc/%d/mem" % pid, "rb", 0) as mem:
    for lo, hi, perms, name, rss in maps:
        if ("r" not in perms or rss == 0 or hi - lo > 64 << 30 or
                name in ("[vvar]", "[vvar_vclock]", "[vsyscall]")):
            continue
        for off in range(lo, hi, 1 << 20):
            try:
                mem.seek(off)
                chunk = mem.read(min((1 << 20) + 256, hi - off))
            except (OSError, ValueError, OverflowError):
                continue  # a guard page, an unreadable device mapping
            scanned += len(chunk)
            for n in needles:
                for form in (n, b"".join(bytes([0, c]) for c in n)):
                    i = chunk.find(form)
                    while i >= 0:
                        if off + i not in (a for a, _ in found[n]):
                            found[n].append((off + i, name))
                        i = chunk.find(form, i + 1)
print("scanned %d MiB" % (scanned >> 20))
for n in needles:
    print("%s: %d %s" % (n.decode(), len(found[n]),
                         " ".join("%x(%s)" % a for a in found[n][:8])))
PY
}
memory_has "$AGENT_PID" "$pw" "$pw2" "$keyline" secretpfx >"$T/memory.out" 2>&1
cat "$T/memory.out"
check "the memory search worked: it finds the certificate's name" \
    grep -Eq '^secretpfx: [1-9]' "$T/memory.out"
check "the PFX password is not in the agent's memory" grep -qxF "$pw: 0 " "$T/memory.out"
check "the exported PFX's password is not in the agent's memory" grep -qxF "$pw2: 0 " "$T/memory.out"
check "the exported key is not in the agent's memory" grep -qxF "$keyline: 0 " "$T/memory.out"
run 0 ctl show secretpfx
stop_agent
finish
