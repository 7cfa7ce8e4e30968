#!/bin/bash
# Deploy targets and hooks: a certificate's files and PFX written after each new version
# (create, renew, rollback), the certificate's own and the config's deploy hooks run once per
# version with the documented environment, a Windows store target refused on Linux, settings kept across a restart and dropped with
# the certificate, a failing and a hanging hook reported without stopping the agent, a
# target that cannot be written reported by certctl deploy, a deploy cut short done again at
# the next start (but not on a first start without the record), and no password in any log.
. "$(dirname "$0")/lib.sh" "$@"

OUTD=$T/out
PFX=$T/www.pfx
PW=$T/pw
HOOKLOG=$T/hooks.log
ENVLOG=$T/env.log
printf 'pfx-secret-%s\n' "$$" >"$PW"
cat >"$CONFIG" <<JSON
{"deploy_hook": "echo config \$CERTAGENT_EVENT \$CERTAGENT_NAME \$CERTAGENT_VERSION >> $HOOKLOG",
 "hook_timeout": 2}
JSON
start_agent

# --- the first version is deployed, then the hooks run (the certificate's, then the config's)
run 0 ctl selfsigned www --dns www.example.test --ip 127.0.0.1 --days 30 \
    --deploy-files "$OUTD" --deploy-pfx "$PFX" --pfx-password-file "$PW" \
    --deploy-hook "echo own \$CERTAGENT_NAME \$CERTAGENT_VERSION >> $HOOKLOG; env | grep ^CERTAGENT_ | sort > $ENVLOG"
has "created self-signed 'www' version 1"
check "v1: both hooks ran" wait_log "deploy hook (config) for 'www' finished" 30
check "v1: files written" test -s "$OUTD/cert.pem" -a -s "$OUTD/fullchain.pem" -a -s "$OUTD/privkey.pem"
check "v1: cert.pem is the store's" cmp -s "$OUTD/cert.pem" "$STATE/live/www/cert.pem"
check "v1: key matches" key_matches "$OUTD/cert.pem" "$OUTD/privkey.pem"
check "v1: key file 0600" test "$(mode_of "$OUTD/privkey.pem")" = 600
check "v1: cert file 0644" test "$(mode_of "$OUTD/cert.pem")" = 644
check "v1: PFX 0600" test "$(mode_of "$PFX")" = 600
check "v1: PFX opens with the password" \
    openssl pkcs12 -in "$PFX" -passin "file:$PW" -nokeys -noout
check "v1: PFX refuses another password" \
    sh -c "! openssl pkcs12 -in '$PFX' -passin pass:wrong -nokeys -noout"
check "hooks in order: own, then config" \
    test "$(cat "$HOOKLOG")" = "$(printf 'own www 1\nconfig deploy www 1')"
check "env: event" grep -qx "CERTAGENT_EVENT=deploy" "$ENVLOG"
check "env: name and version" grep -qx "CERTAGENT_VERSION=1" "$ENVLOG"
check "env: source" grep -qx "CERTAGENT_SOURCE=selfsigned" "$ENVLOG"
check "env: cert path" grep -qx "CERTAGENT_CERT=$STATE/live/www/cert.pem" "$ENVLOG"
check "env: key path" grep -qx "CERTAGENT_KEY=$STATE/live/www/privkey.pem" "$ENVLOG"
check "env: domains" grep -qx "CERTAGENT_DOMAINS=www.example.test 127.0.0.1" "$ENVLOG"
na=$(openssl x509 -in "$OUTD/cert.pem" -noout -enddate | cut -d= -f2)
check "env: not-after (Unix)" grep -qx "CERTAGENT_NOT_AFTER_UNIX=$(date -d "$na" +%s)" "$ENVLOG"
check "env: not-after (RFC 3339)" grep -qx "CERTAGENT_NOT_AFTER=$(date -u -d "$na" +%Y-%m-%dT%H:%M:%SZ)" "$ENVLOG"
check "env: no error for a deploy" sh -c "! grep -q CERTAGENT_ERROR '$ENVLOG'"

# --- settings shown, kept in settings.json ----------------------------------------------------
run 0 ctl set www
has "deploy files $OUTD"
has "deploy pfx   $PFX (password from $PW)"
has "auto renew   default"
run 0 ctl --json set www
json "j['settings']['deploy'] == [{'type': 'files', 'path': '$OUTD'}, {'type': 'pfx', 'path': '$PFX', 'password_file': '$PW'}]"
check "settings.json has www" python3 -c "import json,sys; d=json.load(open('$STATE/settings.json')); sys.exit(0 if d['www']['deploy'][0]['path'] == '$OUTD' else 1)"
check "settings.json is 0600" test "$(mode_of "$STATE/settings.json")" = 600

# --- a new version (renew of an auto-renew self-signed certificate) is deployed once -----------
run 0 ctl set www --auto-renew yes
has "auto renew   yes"
v1=$(openssl x509 -in "$OUTD/cert.pem" -noout -fingerprint -sha256)
run 0 ctl renew www --force
has "renewed 'www' version 2 (self-signed)"
check "v2: hooks ran" wait_log "deploy hook (config) for 'www' finished" 30
wait_for 30 grep -qx "config deploy www 2" "$HOOKLOG"
v2=$(openssl x509 -in "$OUTD/cert.pem" -noout -fingerprint -sha256)
check "v2: deployed files changed" test "$v1" != "$v2"
check "v2: deployed files are the store's" cmp -s "$OUTD/cert.pem" "$STATE/live/www/cert.pem"
check "v2: key matches" key_matches "$OUTD/cert.pem" "$OUTD/privkey.pem"
check "v2: same lifetime (30 days)" sh -c "openssl x509 -in $OUTD/cert.pem -noout -checkend $((29 * 86400)) && ! openssl x509 -in $OUTD/cert.pem -noout -checkend $((30 * 86400 + 3600))"
check "one run per hook per version" test "$(grep -c . "$HOOKLOG")" = 4

# --- a rollback deploys the older version again ----------------------------------------------
run 0 ctl rollback www
wait_for 30 grep -qx "config deploy www 1" <(sed -n '5,$p' "$HOOKLOG")
check "rollback: deploy hook saw version 1" sh -c "sed -n '5,\$p' '$HOOKLOG' | grep -qx 'own www 1'"
check "rollback: files show version 1" test "$(openssl x509 -in "$OUTD/cert.pem" -noout -fingerprint -sha256)" = "$v1"

# --- certctl deploy runs everything again ---------------------------------------------------
run 0 ctl deploy www
has "deployed 'www' version 1"
check "deploy: hooks ran again" test "$(grep -c . "$HOOKLOG")" = 8

# --- bad settings are refused with the reason ----------------------------------------------
run 1 ctl set www --deploy-files relative/dir
has "must be absolute"
run 1 ctl set www --remove-target /nowhere
has "is not a deploy target"
run 2 ctl set www --auto-renew maybe
has "yes, no or default"
run 1 ctl set 'bad/name' --deploy-hook true
run 0 ctl set www --remove-target "$PFX"
lacks "deploy pfx"
# The Windows certificate store exists only on Windows: a store target is refused, with
# request/selfsigned too (nothing is created), and the settings stay as they were.
run 1 ctl set www --deploy-store MY --store-exportable
has "cannot deploy to the store 'MY': the Windows certificate store exists only on Windows"
run 0 ctl --json set www
json "all(t['type'] != 'windows_store' for t in j['settings']['deploy'])"
json "'store_thumbprints' not in j['settings']"
run 0 ctl --json status
json "all(c['windows_store'] == {} for c in j['certificates'])"
run 1 ctl selfsigned winonly --dns w.example.test --deploy-store MY
has "exists only on Windows"
run 1 ctl show winonly
has "E_NOT_FOUND"
run 1 ctl import winonly --from-store 00112233445566778899AABBCCDDEEFF00112233
has "cannot import from the store: the Windows certificate store exists only on Windows"

# --- a target that cannot be written: certctl deploy says which, the store stays -------------
touch "$T/afile"
run 1 ctl set www --deploy-files "$T/afile/sub"
has "the settings were saved, but deploying the current version failed"
has "Not a directory"
run 1 ctl deploy www
has "deploy to $T/afile/sub failed"
# The status report says so (deploy_failing, with the words and the version) until a deploy
# succeeds again.
deploy_warning() {
    ctl --json status | python3 -c "
import json, sys
for c in json.load(sys.stdin)['certificates']:
    if c['name'] == 'www':
        w = [w for w in c['warnings'] if w['code'] == 'deploy_failing']
        print(json.dumps(w[0]) if w else '')"
}
w=$(deploy_warning)
check "status warns that www's deploy fails ($w)" python3 -c "
import json, sys
w = json.loads(sys.argv[1])
sys.exit(0 if w['level'] == 'warning' and '$T/afile/sub' in w['error'] and w['version'] >= 1
         and w['since'] > 0 and 'certctl deploy www' in w['message'] else 1)" "$w"
run 0 ctl status
has "deploying version"
run 0 ctl set www --remove-target "$T/afile/sub"
check "the warning stays until the next deploy" test -n "$(deploy_warning)"
run 0 ctl deploy www
check "the warning is gone once a deploy succeeds" test -z "$(deploy_warning)"

# --- a failing hook and a hanging hook are reported; the agent keeps serving -----------------
run 0 ctl set www --deploy-hook 'echo first line; echo about to fail >&2; exit 3'
run 1 ctl deploy www
has "exited with status 3"
# Its output goes to the log (operate right), not into the cause that status shows to anyone
# who may read: a hook may print a secret.
has "its output is in the agent's log"
lacks "about to fail"
check "its output is in the log" grep -q "deploy hook for 'www': first line" "$LOG"
check "its stderr too" grep -q "deploy hook for 'www': about to fail" "$LOG"
check "and not in status.json" bash -c 'test -s "$1" && ! grep -q "about to fail" "$1"' _ "$STATE/status.json"
run 0 ctl set www --deploy-hook 'sleep 60'
run 1 ctl deploy www
has "did not finish in time"
run 0 ctl ping
w=$(deploy_warning)
case $w in
*"did not finish in time"*) pass ;;
*) fail "a failing hook is a failing deploy too: $w" ;;
esac

# --- settings survive a restart; removing the certificate drops them -------------------------
stop_agent
start_agent
run 0 ctl --json set www
json "j['settings']['deploy'] == [{'type': 'files', 'path': '$OUTD'}] and j['settings']['auto_renew'] is True"
run 0 ctl remove www
run 1 ctl deploy www
has "no certificate named 'www'"
wait_for 10 python3 -c "import json,sys; sys.exit(0 if 'www' not in json.load(open('$STATE/settings.json')) else 1)"
check "settings.json forgot www" python3 -c "import json,sys; sys.exit(0 if 'www' not in json.load(open('$STATE/settings.json')) else 1)"

# --- a deploy cut short (agent killed) is done again at the next start -----------------------
run 0 ctl selfsigned dep --dns dep.test --key ec256 --deploy-files "$T/dep" \
    --deploy-hook "echo dep \$CERTAGENT_VERSION >> $T/dep.log"
check "dep: deployed, hook ran" wait_for 30 test -s "$T/dep.log"
check "dep: recorded as deployed" wait_for 10 python3 -c \
    "import json,sys; sys.exit(0 if json.load(open('$STATE/deployed.json')).get('dep') == 1 else 1)"
stop_agent
# As if killed after the commit, mid-way through the files: no record, a file missing.
python3 - "$STATE/deployed.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1])); d.pop("dep"); json.dump(d, open(sys.argv[1], "w"))
PY
rm -f "$T/dep/privkey.pem"
start_agent
check "dep: deployed again at start" wait_log "'dep' version 1 was not completely deployed" 10
check "dep: the hook ran again" wait_for 30 sh -c "test \$(grep -c . '$T/dep.log') = 2"
check "dep: files whole again" key_matches "$T/dep/cert.pem" "$T/dep/privkey.pem"
check "nothing else deployed again" test "$(grep -c "was not completely deployed" "$LOG")" = 1
# An agent without the record (an upgrade) counts every current version as deployed.
stop_agent
rm -f "$STATE/deployed.json"
start_agent
check "first start without a record: the record is made" wait_for 10 python3 -c \
    "import json,sys; sys.exit(0 if json.load(open('$STATE/deployed.json')).get('dep') == 1 else 1)"
check "first start without a record: no hook ran" test "$(grep -c . "$T/dep.log")" = 2

# --- import takes the settings options too ---------------------------------------------------
run 0 ctl import imp --cert "$DATA/leaf.pem" --key "$DATA/leaf.key" --deploy-files "$T/imp"
check "import: deployed" wait_for 30 test -s "$T/imp/privkey.pem"
check "import: deployed key matches" key_matches "$T/imp/cert.pem" "$T/imp/privkey.pem"

check "no password in the log" sh -c "! grep -qF -- '$(cat "$PW")' '$LOG'"
finish
