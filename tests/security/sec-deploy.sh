#!/bin/bash
# Issue 14, finding 2: planted symlinks must not redirect what the root agent (or a root
# certctl) writes outside the store.  The attacker, nobody, owns $T/home (a deploy target's
# parent) and swaps the target directory for a link to $T/protected (root, 0700, files of known
# content).  For --deploy-files, --deploy-pfx, certctl export --out, trust_system_dir and
# deploy hooks: the protected files stay byte-identical, nothing new appears there, the error
# names the directory, the store stays whole, and the same writes to safe directories (under
# $T, itself under the sticky /tmp) still work.
. "$(dirname "$0")/lib-sec.sh" "$@"
need_root
open_test_dir

PROT=$T/protected
HOME_N=$T/home
OK=$T/ok
mkdir -m 0700 "$PROT"
for f in cert.pem chain.pem fullchain.pem privkey.pem www.pfx export.pem \
    certagent-0000000000000000.crt; do
    printf 'protected %s %s\n' "$f" "$$" >"$PROT/$f"
done
snapshot() {
    # Every entry (a new one too) with size, mode and owner, and every file's hash.
    (cd "$PROT" && find . -printf '%p %s %m %u\n' | sort && sha256sum -- * | sort)
}
BEFORE=$(snapshot)
protected_intact() {
    [ "$(snapshot)" = "$BEFORE" ]
}
mkdir -m 0755 "$HOME_N" "$OK"
chown nobody: "$HOME_N"
# nobody plants a link at $HOME_N/NAME to the protected directory (in place of whatever was
# there: it owns $HOME_N, so it may).
plant() {
    as_nobody rm -rf "$HOME_N/$1" && as_nobody ln -s "$PROT" "$HOME_N/$1"
}
owner_msg="$HOME_N is owned by uid $NOBODY_UID"

cat >"$T/hook.sh" <<EOS
#!/bin/sh
echo "\$CERTAGENT_NAME" >>'$T/hook.ran'
EOS
chmod 0755 "$T/hook.sh"
start_agent

# --- the legitimate deploy, under $T (root, in the sticky /tmp): written as before ------------
run 0 ctl selfsigned ok --dns ok.test --deploy-files "$OK/certs" --deploy-pfx "$OK/ok.pfx" \
    --deploy-hook "$T/hook.sh"
# The first deploy runs after selfsigned returns; its hook runs after the files are written.
check "legit: the hook ran" wait_for 30 grep -qx ok "$T/hook.ran"
check "legit: files written" test -s "$OK/certs/cert.pem" -a -s "$OK/certs/privkey.pem"
check "legit: key 0600" test "$(mode_of "$OK/certs/privkey.pem")" = 600
check "legit: directory created 0755" test "$(mode_of "$OK/certs")" = 755
check "legit: PFX written" test -s "$OK/ok.pfx"
run 0 ctl deploy ok

# --- --deploy-files: the target's parent belongs to nobody, who links it to protected ---------
plant certs
run 0 ctl selfsigned www --dns www.test --deploy-files "$HOME_N/certs"
run 1 ctl deploy www
has "deploy to $HOME_N/certs failed"
has "$owner_msg"
check "files: the protected files are unchanged" protected_intact
st=$(ctl --json status)
check "files: status names the directory" python3 -c "
import json, sys
c = [c for c in json.loads(sys.argv[1])['certificates'] if c['name'] == 'www'][0]
w = [w for w in c['warnings'] if w['code'] == 'deploy_failing']
sys.exit(0 if w and '$owner_msg' in w[0]['error'] else 1)" "$st"
check "files: the log names the directory" grep -qF "$owner_msg" "$LOG"

# A link in a directory only root controls is refused too (no link is followed at any level).
mkdir -m 0755 "$T/safe"
ln -s "$PROT" "$T/safe/certs"
run 1 ctl set www --remove-target "$HOME_N/certs" --deploy-files "$T/safe/certs"
has "$T/safe/certs is a symbolic link"
run 1 ctl set www --deploy-files "$T/safe/certs/sub"
has "$T/safe/certs is a symbolic link"
check "link: the protected files are unchanged" protected_intact
run 0 ctl set www --clear-deploy

# --- --deploy-pfx: the PFX's directory is nobody's link ---------------------------------------
plant pfxdir
run 1 ctl set www --deploy-pfx "$HOME_N/pfxdir/www.pfx"
has "deploy to $HOME_N/pfxdir/www.pfx failed"
has "$owner_msg"
check "pfx: the protected files are unchanged" protected_intact
# A link at the PFX's own name (in a safe directory) is replaced, never written through.
ln -s "$PROT/www.pfx" "$OK/www.pfx"
run 0 ctl set www --clear-deploy --deploy-pfx "$OK/www.pfx"
check "pfx: the link was replaced by the file" test -f "$OK/www.pfx" -a ! -L "$OK/www.pfx"
check "pfx: its target is unchanged" protected_intact
run 0 ctl set www --clear-deploy

# --- deploy hooks: a program that nobody can replace is not run --------------------------------
cp "$T/hook.sh" "$HOME_N/hook.sh"
run 0 ctl set www --deploy-hook "$HOME_N/hook.sh"
run 1 ctl deploy www
has "refusing to run $HOME_N/hook.sh: $owner_msg"
# nobody swaps in its own script: still refused, and never run as root.
as_nobody rm -f "$HOME_N/hook.sh"
as_nobody sh -c "printf '#!/bin/sh\ntouch $PROT/pwned\n' >'$HOME_N/hook.sh'; chmod 0777 '$HOME_N/hook.sh'"
run 1 ctl deploy www
has "refusing to run $HOME_N/hook.sh"
check "hook: nobody's script did not run" test ! -e "$PROT/pwned"
# A root script made writable by others is refused as well.
chmod 0757 "$OK"
cp "$T/hook.sh" "$OK/hook2.sh"
run 0 ctl set www --deploy-hook "$OK/hook2.sh"
run 1 ctl deploy www
has "$OK is writable by others (mode 0757)"
chmod 0755 "$OK"
# Through links only root controls (/bin/sh may be /usr/bin/dash by way of /bin -> usr/bin).
run 0 ctl set www --deploy-hook "/bin/sh $T/hook.sh"
run 0 ctl deploy www
check "hook: a system program ran the safe script" wait_for 30 grep -qx www "$T/hook.ran"
run 0 ctl set www --no-deploy-hook
check "hook: the protected files are unchanged" protected_intact

# --- certctl export --out (root certctl writes the file itself) ----------------------------------
plant exportdir
run 1 ctl export www --out "$HOME_N/exportdir/export.pem"
has "$owner_msg"
check "export: the protected files are unchanged" protected_intact
run 0 ctl export www --out "$OK/export.pem"
check "export: written to a safe directory" test -s "$OK/export.pem"
check "export: key file 0600" test "$(mode_of "$OK/export.pem")" = 600
# A relative --out is taken from the working directory, checked like the rest.
run 1 sh -c "cd '$HOME_N' && '$CTL' --socket '$SOCK' export www --out rel.pem"
has "$owner_msg"
check "export: nothing in nobody's directory" test ! -e "$HOME_N/rel.pem"
run 0 sh -c "cd '$OK' && '$CTL' --socket '$SOCK' export www --out rel.pem"
check "export: relative path in a safe directory" test -s "$OK/rel.pem"
stop_agent

# --- trust_system_dir: nobody's link; then a safe directory with nobody's command -------------
plant sysdir
cat >"$T/update-ca" <<EOS
#!/bin/sh
echo ran >>'$T/update-ca.log'
EOS
chmod 0755 "$T/update-ca"
cat >"$CONFIG" <<EOS
{"trust_system_dir": "$HOME_N/sysdir", "trust_system_command": "$T/update-ca",
 "trust_system_roots": false}
EOS
start_agent
run 0 ctl trust add "$DATA/root.pem"
has "not copied to the system store"
has "$owner_msg"
check "trust: the protected files are unchanged" protected_intact
check "trust: no command run for an unchanged store" test ! -e "$T/update-ca.log"
stop_agent
mkdir -m 0755 "$T/sysdir"
as_nobody sh -c "printf '#!/bin/sh\ntouch $PROT/pwned\n' >'$HOME_N/update-ca'; chmod 0755 '$HOME_N/update-ca'"
cat >"$CONFIG" <<EOS
{"trust_system_dir": "$T/sysdir", "trust_system_command": "$HOME_N/update-ca",
 "trust_system_roots": false}
EOS
start_agent
run 0 ctl trust list
root_id=$(openssl x509 -in "$DATA/root.pem" -noout -fingerprint -sha256 | sed 's/.*=//' | tr -d :)
run 0 ctl trust remove "$root_id"
run 0 ctl trust add "$DATA/root.pem"
has "refusing to run trust_system_command $HOME_N/update-ca"
check "trust: written to the safe system dir" test -n "$(ls "$T/sysdir")"
check "trust: nobody's command did not run" test ! -e "$PROT/pwned"
check "trust: the protected files are unchanged" protected_intact

verify_store >"$T/verify.out" 2>&1 || fail "the store is not whole: $(cat "$T/verify.out")"
run 0 ctl ping
stop_agent
finish
