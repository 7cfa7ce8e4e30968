#!/bin/bash
# Finding 8 of issue 14: hooks inherited the agent's descriptors (a libcurl socketpair, what
# the agent's own parent left open).  A hook that hands work to a less privileged program
# (here: nobody) must not hand it those too.  The agent is started with an extra descriptor
# (fd 7, a root-owned file open for writing); its deploy hook runs, as nobody, a program that
# lists its open descriptors and tries to write to fd 7: it finds only 0, 1 and 2, and so does
# trust_system_command.  The launcher itself (certagent --exec-hook) is checked directly too.
. "$(dirname "$0")/lib-sec.sh" "$@"
need_root
open_test_dir

PY=/usr/bin/python3
[ -x "$PY" ] || PY=$(command -v python3)
OUTD=$T/out
mkdir -m 0777 "$OUTD"

# Lists the process's open descriptors ("FD TARGET" lines, found by fstat, which opens
# nothing) into $1, then tries to write to fd 7.
cat >"$T/listfds.py" <<'PY'
import os, resource, sys
lines = []
for fd in range(resource.getrlimit(resource.RLIMIT_NOFILE)[0]):
    try:
        os.fstat(fd)
    except OSError:
        continue
    lines.append("%d %s" % (fd, os.readlink("/proc/self/fd/%d" % fd)))
try:
    os.write(7, b"written through an inherited descriptor\n")
    lines.append("wrote to fd 7")
except OSError:
    pass
with open(sys.argv[1], "w") as f:
    f.write("\n".join(lines) + "\n")
PY
chmod 0644 "$T/listfds.py"

# only_stdio FILE: FILE lists descriptors 0, 1 and 2 and nothing else.
only_stdio() {
    [ "$(cut -d' ' -f1 "$1" | tr '\n' ' ')" = "0 1 2 " ]
}

# --- the launcher alone: what a shell leaves open does not reach the program -----------------
exec 8>"$T/direct-inherited"
run 0 "$AGENT" --exec-hook "$PY" "$T/listfds.py" "$T/direct.txt"
exec 8>&-
check "launcher: only 0, 1, 2 reach the program ($(tr '\n' ';' <"$T/direct.txt" 2>/dev/null))" \
    only_stdio "$T/direct.txt"
run 127 "$AGENT" --exec-hook "$T/no-such-program"
has "certagent: cannot run $T/no-such-program: No such file or directory"
run 2 "$AGENT" --exec-hook

# --- the agent: started with fd 7 open, its deploy hook's program (as nobody) sees 0, 1, 2 ---
# (trust_system_command is split on spaces, without a shell: it runs the lister directly.)
HOOK="setpriv --reuid=nobody --regid=nogroup --clear-groups -- $PY $T/listfds.py $OUTD/hook.txt"
mkdir "$T/sysdir"
"$PY" -c 'import json, sys
json.dump({"deploy_hook": sys.argv[1], "trust_system_dir": sys.argv[2],
           "trust_system_command": sys.argv[3], "trust_system_roots": False},
          open(sys.argv[4], "w"))' \
    "$HOOK" "$T/sysdir" "$PY $T/listfds.py $OUTD/trust.txt" "$CONFIG"
: >"$T/inherited"
exec 7>>"$T/inherited"
start_agent
exec 7>&-
check "the agent holds the inherited fd 7" test -e "/proc/$AGENT_PID/fd/7"
# fdinfo's flags are octal; O_CLOEXEC is 02000000.
flags=$(awk '/^flags:/ {print $2}' "/proc/$AGENT_PID/fdinfo/7" 2>/dev/null)
check "the agent marked it close-on-exec at start (flags ${flags:-none})" \
    test $((8#${flags:-0} & 8#2000000)) -ne 0
run 0 ctl selfsigned web --dns web.example.test --days 30
check "deploy hook ran" wait_log "deploy hook (config) for 'web' finished" 30
check "the hook's program found only 0, 1, 2 ($(tr '\n' ';' <"$OUTD/hook.txt" 2>/dev/null))" \
    only_stdio "$OUTD/hook.txt"
# (1 and 2 are the agent's socket pairs for its output: the only sockets it may see.)
check "no other socket reached it" sh -c "! grep -v '^[12] ' '$OUTD/hook.txt' | grep -q socket:"
check "nothing was written through fd 7" test ! -s "$T/inherited"
# The same for the trust store's system command (its own spawn).
run 0 ctl trust add "$DATA/root.pem"
check "trust_system_command ran" test -s "$OUTD/trust.txt"
check "trust_system_command found only 0, 1, 2 ($(tr '\n' ';' <"$OUTD/trust.txt" 2>/dev/null))" \
    only_stdio "$OUTD/trust.txt"
# Hooks still work as before: the program's exit and output reach the log.
run 0 ctl set web --deploy-hook 'echo hook says hello; exit 3'
run 1 ctl deploy web
has "exited with status 3"
lacks "hook says hello"
check "the hook's output reached the log" grep -q "hook says hello" "$LOG"
stop_agent
finish
