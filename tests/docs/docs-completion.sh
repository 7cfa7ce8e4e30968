#!/bin/bash
# docs.completion: the bash completion of certctl (packaging/bash-completion/certctl)
# offers the commands, each command's options and values, and the certificate names of a
# real agent, asked through CERTAGENT_SOCKET or the command line's --socket.
#
# usage: docs-completion.sh COMPLETION CERTAGENT CERTCTL AGENT-UP
set -u
COMPLETION=$1
AGENT=$2
CTL=$3
AGENT_UP=$4
T=$(mktemp -d /tmp/certagent-completion-XXXXXX)
AGENT_PID=
FAILURES=0
CHECKS=0
cleanup() {
    if [ -n "$AGENT_PID" ] && kill -0 "$AGENT_PID" 2>/dev/null; then
        kill -TERM "$AGENT_PID"
        timeout 20 tail --pid="$AGENT_PID" -f /dev/null || kill -KILL "$AGENT_PID"
    fi
    if [ "$FAILURES" -ne 0 ]; then
        echo "--- agent log"
        tail -n 30 "$T/agent.log"
    fi
    rm -rf "$T"
}
trap cleanup EXIT

mkdir -p "$T/state" "$T/bin" "$T/home"
echo '{}' >"$T/certagent.json"
ln -s "$CTL" "$T/bin/certctl"
export PATH="$T/bin:$PATH" HOME="$T/home"
unset XDG_RUNTIME_DIR
SOCK=$T/agent.sock
AGENT_PID=$(env -u NOTIFY_SOCKET "$AGENT_UP" "$T/agent.log" "$AGENT" --foreground \
    --config "$T/certagent.json" --socket "$SOCK" --state-dir "$T/state") || {
    echo "FAIL: the agent did not start"
    exit 1
}
export CERTAGENT_SOCKET=$SOCK
for name in web mail intranet.lab; do
    certctl selfsigned "$name" --dns "$name.example.com" >/dev/null || {
        echo "FAIL: certctl selfsigned $name"
        exit 1
    }
done

# shellcheck source=/dev/null
. "$COMPLETION"
complete -p certctl >/dev/null || { echo "FAIL: the file registers no completion for certctl"; exit 1; }

# candidates LINE: what the completion offers at the end of LINE, sorted, on one line.
candidates() {
    local line=$1
    read -r -a COMP_WORDS <<<"$line"
    [[ $line == *" " ]] && COMP_WORDS+=("")
    COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
    COMP_LINE=$line
    COMP_POINT=${#line}
    COMPREPLY=()
    _certctl certctl "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD - 1]}"
    printf '%s\n' "${COMPREPLY[@]}" | sed '/^$/d' | sort | tr '\n' ' ' | sed 's/ $//'
}

# expect LINE WANTED: the candidates at the end of LINE are exactly WANTED.
expect() {
    local got
    CHECKS=$((CHECKS + 1))
    got=$(candidates "$1")
    if [ "$got" != "$2" ]; then
        FAILURES=$((FAILURES + 1))
        echo "FAIL: 'certctl ${1#certctl }<TAB>' offers '$got', wanted '$2'"
    fi
}

expect "certctl re" "remove renew report request revoke"
expect "certctl ro" "rollback"
expect "certctl --js" "--json"
expect "certctl --json st" "status"
expect "certctl show " "intranet.lab mail web"
expect "certctl show w" "web"
expect "certctl --json renew m" "mail"
expect "certctl deploy in" "intranet.lab"
expect "certctl show web " ""
expect "certctl logs --name " "intranet.lab mail web"
expect "certctl selfsigned web --k" "--key"
expect "certctl selfsigned web --key " "ec256 ec384 ed25519 rsa2048 rsa3072 rsa4096"
expect "certctl set web --deploy-" "--deploy-binding --deploy-files --deploy-hook --deploy-pfx --deploy-store"
expect "certctl set web --no-" "--no-check-served --no-deploy-hook --no-failure-hook"
expect "certctl set web --auto-renew " "default no yes"
expect "certctl export web --format " "pem pfx"
expect "certctl request web --dns www.example.com --challenge " "dns-01 http-01 tls-alpn-01"
expect "certctl request web --dns www.example.com " ""
expect "certctl renew --" "--all --force --json"
expect "certctl status --" "--check --json"
expect "certctl ca " "add list remove"
expect "certctl trust " "add list remove show"
expect "certctl account " "deactivate register rollover show"
expect "certctl probe --min-tls " "1.0 1.1 1.2 1.3"
expect "certctl help req" "request"
# The names come from the agent the command line names.
unset CERTAGENT_SOCKET
expect "certctl --socket $SOCK show " "intranet.lab mail web"
expect "certctl --socket $T/nothing.sock show " ""
export CERTAGENT_SOCKET=$T/nothing.sock
expect "certctl show " ""
expect "certctl --socket $SOCK remove " "intranet.lab mail web"

echo "docs.completion: $CHECKS checks, $FAILURES failed"
[ "$FAILURES" -eq 0 ]
