#!/bin/bash
# docs.examples: runs the certctl examples of README.md and docs/*.md against a
# real agent, so the documentation cannot rot.
#
# usage: docs-examples.sh SRCDIR CERTAGENT CERTCTL AGENT-UP [FILE.md...]
#
# The convention (written down in docs/development.md):
# - A fenced block opened with ```sh that holds at least one line starting with
#   `certctl` (or `build/ctl/certctl`) is run, line by line, in order; lines
#   ending in a backslash continue on the next one.  Every other line of such
#   a block must be blank or a `#` comment: a block that mixes in other
#   commands (systemctl, cmake, ...) must be marked.
# - `<!-- docs-test: skip REASON -->` on a line of its own before a block keeps
#   it from running (it needs a CA, the network, Windows, root, files the
#   reader has...).  The reason is required.
# - A line whose trailing comment is `# exits N` must exit with status N;
#   every other line must exit 0.
# - `<!-- docs-test: config -->` before a ```json block: the agent must start
#   with that configuration (its socket and store moved to the test's temp
#   directory, `metrics_listen` moved to a free loopback port, `probes`
#   emptied so that nothing reaches the network).
#
# Each file gets a fresh agent on a private socket and state directory; the
# commands run in a private working and home directory (`~` is there), with
# CERTAGENT_SOCKET pointing at the agent.  Nothing is left behind.
set -u

SRC=$1
AGENT=$2
CTL=$3
AGENT_UP=$4
shift 4
if [ $# -gt 0 ]; then
    FILES=("$@")
else
    FILES=("$SRC/README.md" "$SRC"/docs/*.md)
fi

T=$(mktemp -d /tmp/certagent-docs-XXXXXX)
AGENT_PID=
FAILURES=0
RUN=0
cleanup() {
    stop_agent
    if [ "$FAILURES" -ne 0 ] || [ -n "${KEEP_TEST_DIR:-}" ]; then
        echo "--- kept $T"
    else
        rm -rf "$T"
    fi
}
trap cleanup EXIT

stop_agent() {
    if [ -n "$AGENT_PID" ] && kill -0 "$AGENT_PID" 2>/dev/null; then
        kill -TERM "$AGENT_PID"
        # The agent is not our child (agent-up started it): wait for its exit.
        if ! timeout 20 tail --pid="$AGENT_PID" -f /dev/null; then
            fail "the agent (pid $AGENT_PID) did not stop within 20 s of SIGTERM"
            kill -KILL "$AGENT_PID" 2>/dev/null
        fi
    fi
    AGENT_PID=
}

fail() {
    FAILURES=$((FAILURES + 1))
    echo "FAIL: $*"
}

# start_agent DIR CONFIG-TEXT: a fresh agent with its store, socket and log in DIR.
start_agent() {
    local dir=$1
    mkdir -p "$dir/state" "$dir/home" "$dir/work" "$dir/bin"
    printf '%s\n' "$2" >"$dir/certagent.json"
    ln -sf "$CTL" "$dir/bin/certctl"
    SOCK=$dir/agent.sock
    AGENT_LOG=$dir/agent.log
    AGENT_PID=$(env -u NOTIFY_SOCKET HOME="$dir/home" "$AGENT_UP" "$AGENT_LOG" "$AGENT" \
        --foreground --config "$dir/certagent.json" --socket "$SOCK" --state-dir "$dir/state" \
        --log-level debug) || {
        AGENT_PID=
        return 1
    }
}

# extract FILE: prints one record per example, tab-separated:
# LINE KIND EXPECTED TEXT, KIND being "cmd", "config" (TEXT base64) or "error".
extract() {
    python3 - "$1" <<'EOF'
import base64, re, sys

path = sys.argv[1]
lines = open(path, encoding="utf-8").read().split("\n")
marker = None
i = 0
CTL = re.compile(r"^(build/ctl/)?certctl(\s|$)")
while i < len(lines):
    line = lines[i]
    m = re.match(r"^\s*<!--\s*docs-test:\s*(\S+)\s*(.*?)\s*-->\s*$", line)
    if m:
        marker = (m.group(1), m.group(2), i + 1)
        if marker[0] not in ("skip", "config"):
            print(f"{i + 1}\terror\t0\tunknown docs-test marker '{marker[0]}'")
        elif marker[0] == "skip" and not marker[1]:
            print(f"{i + 1}\terror\t0\tdocs-test: skip needs a reason")
        i += 1
        continue
    fence = re.match(r"^(\s*)```(\S*)\s*$", line)
    if not fence:
        if line.strip():
            marker = None
        i += 1
        continue
    lang, start = fence.group(2), i + 1
    body = []
    i += 1
    while i < len(lines) and not re.match(r"^\s*```\s*$", lines[i]):
        body.append((i + 1, lines[i]))
        i += 1
    i += 1
    kind = marker[0] if marker else None
    marker = None
    if kind == "skip":
        continue
    if kind == "config":
        if lang != "json":
            print(f"{start}\terror\t0\tdocs-test: config goes before a ```json block")
            continue
        text = "\n".join(l for _, l in body)
        print(f"{start}\tconfig\t0\t{base64.b64encode(text.encode()).decode()}")
        continue
    if lang != "sh" or not any(CTL.match(l.strip()) for _, l in body):
        continue
    j = 0
    while j < len(body):
        no, text = body[j]
        while text.endswith("\\") and j + 1 < len(body):
            j += 1
            text = text[:-1] + " " + body[j][1].strip()
        j += 1
        s = text.strip()
        if not s or s.startswith("#"):
            continue
        if not CTL.match(s):
            print(f"{no}\terror\t0\tnot a certctl command in a block that is run: '{s}'"
                  " (split the block, or mark it <!-- docs-test: skip REASON -->)")
            continue
        expected = 0
        e = re.search(r"#\s*exits\s+(\d+)\b", s)
        if e:
            expected = int(e.group(1))
        s = re.sub(r"^build/ctl/certctl", "certctl", s)
        print(f"{no}\tcmd\t{expected}\t{s}")
EOF
}

# A free loopback TCP port for the config examples' metrics_listen.
free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

n=0
for file in "${FILES[@]}"; do
    rel=${file#"$SRC"/}
    n=$((n + 1))
    dir=$T/$n
    records=$(extract "$file") || { fail "$rel: cannot be read"; continue; }
    [ -n "$records" ] || continue
    if ! start_agent "$dir" '{}'; then
        fail "$rel: the agent did not start"
        continue
    fi
    while IFS=$'\t' read -r line kind expected text; do
        case $kind in
        error)
            fail "$rel:$line: $text"
            ;;
        config)
            RUN=$((RUN + 1))
            cfg=$(printf '%s' "$text" | base64 -d | python3 -c '
import json, sys
c = json.load(sys.stdin)
if "metrics_listen" in c:
    c["metrics_listen"] = "127.0.0.1:" + sys.argv[1]
if "probes" in c:
    c["probes"] = []
print(json.dumps(c))' "$(free_port)") || { fail "$rel:$line: the configuration is not JSON"; continue; }
            saved_pid=$AGENT_PID saved_sock=$SOCK saved_log=$AGENT_LOG
            if start_agent "$dir/config-$line" "$cfg"; then
                CERTAGENT_SOCKET=$SOCK "$CTL" ping >/dev/null 2>&1 ||
                    fail "$rel:$line: the agent started with this configuration does not answer"
                stop_agent
            else
                fail "$rel:$line: the agent does not start with this configuration:"
                sed 's/^/    /' "$AGENT_LOG"
            fi
            AGENT_PID=$saved_pid SOCK=$saved_sock AGENT_LOG=$saved_log
            ;;
        cmd)
            RUN=$((RUN + 1))
            out=$(cd "$dir/work" && env -u XDG_RUNTIME_DIR -u XDG_CONFIG_HOME -u XDG_STATE_HOME \
                HOME="$dir/home" PATH="$dir/bin:$PATH" CERTAGENT_SOCKET="$SOCK" \
                timeout 60 bash -c "$text" </dev/null 2>&1)
            rc=$?
            if [ "$rc" -ne "$expected" ]; then
                fail "$rel:$line: '$text' exited $rc (expected $expected); its output:"
                printf '%s\n' "$out" | head -n 40 | sed 's/^/    /'
            fi
            ;;
        esac
    done <<<"$records"
    stop_agent
done

if [ "$RUN" -eq 0 ]; then
    fail "no example found in ${FILES[*]}"
fi
echo "docs.examples: $RUN examples run, $FAILURES failed"
[ "$FAILURES" -eq 0 ]
