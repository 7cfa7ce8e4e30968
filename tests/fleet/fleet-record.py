"""Writes a fleet record (agent/fleet/record.h) for the fleet tests.

usage: fleet-record.py FLEET-KEY FLEET NAME VERSION CERT KEY [--aad-name N] [--truncate]
                       [--acme JSON]
Prints the record's JSON on stdout: the key encrypted with AES-256-GCM under the fleet key,
associated data FLEET|NAME|VERSION (--aad-name: another name, as a record copied from it).
"""
import base64
import datetime
import json
import os
import subprocess
import sys

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

args = sys.argv[1:]
aad_name = None
truncate = False
if "--aad-name" in args:
    i = args.index("--aad-name")
    aad_name = args[i + 1]
    del args[i:i + 2]
acme = None
if "--acme" in args:
    i = args.index("--acme")
    acme = json.loads(args[i + 1])
    del args[i:i + 2]
if "--truncate" in args:
    args.remove("--truncate")
    truncate = True
keyfile, fleet, name, version, cert, key = args
fleet_key = open(keyfile, "rb").read()
chain = open(cert).read()
key_pem = open(key, "rb").read()
out = subprocess.run(["openssl", "x509", "-noout", "-serial", "-enddate", "-in", cert],
                     capture_output=True, text=True, check=True).stdout
serial = out.split("serial=")[1].split()[0]
end = out.split("notAfter=")[1].strip()
not_after = int(datetime.datetime.strptime(end, "%b %d %H:%M:%S %Y %Z")
                .replace(tzinfo=datetime.timezone.utc).timestamp())
nonce = os.urandom(12)
aad = "%s|%s|%s" % (fleet, aad_name or name, version)
sealed = AESGCM(fleet_key).encrypt(nonce, key_pem, aad.encode())
rec = {"format": 1, "version": int(version), "serial": serial, "not_after": not_after,
       "node": "test", "fullchain": chain, "key": base64.b64encode(nonce + sealed).decode()}
if acme is not None:
    rec["acme"] = acme  # how the name was ordered, so that any node can renew it
text = json.dumps(rec)
sys.stdout.write(text[:len(text) // 2] if truncate else text)
