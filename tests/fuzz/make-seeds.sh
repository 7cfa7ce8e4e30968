#!/bin/sh
# Writes the seed corpora in tests/fuzz/corpus/ (run once; the output is
# committed).  Small hand-made valid and near-valid inputs; certificates and
# keys come from tests/data and from openssl here.  Needs openssl and python3.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
data=$here/../data
c=$here/corpus
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$c"/fuzz_proto "$c"/fuzz_pem "$c"/fuzz_der "$c"/fuzz_pkcs12 "$c"/fuzz_config \
    "$c"/fuzz_acme_json "$c"/fuzz_http_headers "$c"/fuzz_starttls "$c"/fuzz_http01 \
    "$c"/fuzz_alpn_sni

# PEM: the test data's certificates and keys, an encrypted key with the fuzz password,
# an EC key in traditional form, an Ed25519 key, a truncated block.
cp "$data"/leaf.pem "$c"/fuzz_pem/leaf.pem
cp "$data"/fullchain.pem "$c"/fuzz_pem/fullchain.pem
cp "$data"/leaf.key "$c"/fuzz_pem/leaf.key
cp "$data"/truncated.pem "$c"/fuzz_pem/truncated.pem
cat "$data"/leaf.pem "$data"/leaf.key >"$c"/fuzz_pem/leaf-and-key.pem
openssl pkey -in "$data"/leaf.key -aes-128-cbc -passout pass:fuzz-password \
    -out "$c"/fuzz_pem/leaf-enc.key
openssl ec -in "$data"/leaf.key -out "$c"/fuzz_pem/leaf-trad.key 2>/dev/null
openssl genpkey -algorithm ED25519 -out "$c"/fuzz_pem/ed25519.key
head -c 300 "$data"/fullchain.pem >"$c"/fuzz_pem/cut.pem
# DER: certificate, PKCS#8 and traditional keys.
cp "$data"/leaf.der "$c"/fuzz_der/leaf.der
openssl x509 -in "$data"/root.pem -outform DER -out "$c"/fuzz_der/root.der
openssl pkey -in "$data"/leaf.key -outform DER -out "$c"/fuzz_der/leaf-pkcs8.der
openssl ec -in "$data"/leaf.key -outform DER -out "$c"/fuzz_der/leaf-trad.der 2>/dev/null
head -c 200 "$data"/leaf.der >"$c"/fuzz_der/leaf-cut.der
# PKCS#12: with the fuzz password, without one, and with the password in the input
# (first byte: its length).
openssl pkcs12 -export -in "$data"/leaf.pem -inkey "$data"/leaf.key \
    -certfile "$data"/intermediate.pem -passout pass:fuzz-password \
    -out "$c"/fuzz_pkcs12/chain-fuzzpass.pfx
cp "$data"/leaf-nopass.pfx "$c"/fuzz_pkcs12/nopass.pfx
openssl pkcs12 -export -in "$data"/leaf.pem -nokeys -passout pass:fuzz-password \
    -out "$c"/fuzz_pkcs12/nokey.pfx
python3 - "$data"/leaf.pfx "$c"/fuzz_pkcs12/inline-password.pfx <<'EOF'
import sys
pw = b"correct horse"
open(sys.argv[2], "wb").write(bytes([len(pw)]) + pw + open(sys.argv[1], "rb").read())
EOF

python3 - "$c" <<'EOF'
import os, struct, sys
c = sys.argv[1]

def w(sub, name, data):
    if isinstance(data, str):
        data = data.encode()
    open(os.path.join(c, sub, name), "wb").write(data)

# msgpack, the few types the protocol uses.
def mp(o):
    if o is None: return b"\xc0"
    if o is True: return b"\xc3"
    if o is False: return b"\xc2"
    if isinstance(o, int):
        if 0 <= o < 128: return bytes([o])
        if o < 0 and o >= -32: return struct.pack("b", o)
        if o >= 0: return b"\xcf" + struct.pack(">Q", o)
        return b"\xd3" + struct.pack(">q", o)
    if isinstance(o, str):
        b = o.encode()
        if len(b) < 32: return bytes([0xa0 | len(b)]) + b
        return b"\xda" + struct.pack(">H", len(b)) + b
    if isinstance(o, bytes):
        return b"\xc5" + struct.pack(">H", len(o)) + o
    if isinstance(o, list):
        return bytes([0x90 | len(o)]) + b"".join(mp(x) for x in o)
    if isinstance(o, dict):
        return bytes([0x80 | len(o)]) + b"".join(mp(k) + mp(v) for k, v in o.items())
    raise TypeError(o)

def frame(o):
    p = mp(o)
    return struct.pack(">I", len(p)) + p

reqs = {
    "hello": {"id": 1, "op": "hello", "args": {"proto": 1, "client": "certctl 26.1"}},
    "list": {"id": 2, "op": "list", "args": None},
    "import": {"id": 3, "op": "import", "args": {"name": "www", "cert": b"-----BEGIN CERT",
                                                 "key": b"\x30\x03\x02\x01\x00",
                                                 "password": "pw"}},
    "selfsigned": {"id": 4, "op": "selfsigned", "args": {"name": "a", "dns": ["a.test", "b.test"],
                                                         "days": 30, "key": "ec256"}},
    "request": {"id": 5, "op": "request", "args": {"name": "n", "dns": ["x.test"], "ips": ["127.0.0.1"],
                                                   "ca": "pebble", "challenge": "http-01",
                                                   "timeout": 60}},
    "probe": {"id": 6, "op": "probe", "args": {"urls": ["imap+starttls://h:143"], "concurrency": 4}},
    "badtypes": {"id": 7, "op": "export", "args": {"name": 5, "format": ["pem"], "to": -1}},
}
for n, o in reqs.items():
    w("fuzz_proto", n, b"\x07" + frame(o))
w("fuzz_proto", "two-frames", b"\x01" + frame(reqs["hello"]) + frame(reqs["list"]))
w("fuzz_proto", "too-big", b"\x3f" + struct.pack(">I", 2 * 1024 * 1024) + b"\x80")
w("fuzz_proto", "empty-frame", b"\x05" + struct.pack(">I", 0))
w("fuzz_proto", "nested", b"\x09" + frame({"id": 1, "op": "x", "args": {"a": [[[[[[1]]]]]]}}))
w("fuzz_proto", "huge-count", b"\x10" + struct.pack(">I", 6) + b"\xdf\xff\xff\xff\xff\xa1")

# Config.
w("fuzz_config", "full.json", """{
  "socket": "/run/certagent/s.sock", "socket_group": "certagent", "socket_mode": "0660",
  "state_dir": "/var/lib/certagent", "log_level": "info", "default_key": "ec256",
  "selfsigned_days": 90, "max_connections": 64,
  "http01_listen": ["127.0.0.1:80", "[::1]:80"], "tls_alpn01_listen": ["127.0.0.1:443"],
  "challenge_listen_always": false, "default_ca": "letsencrypt",
  "dns01_hook": "/usr/local/bin/hook",
  "acme_cas": {"pebble": {"directory": "https://127.0.0.1:14000/dir", "trust": "/x.pem"}},
  "trust_system_roots": true, "trust_aia_fetch": false, "probe_min_tls": "1.2",
  "probe_timeout": 10, "probe_concurrency": 32, "probe_interval": 3600,
  "probes": ["https://www.example.test", "smtp+starttls://mail.test:25", "tls://[::1]:993"]
}""")
w("fuzz_config", "empty.json", "{}")
w("fuzz_config", "wrong-types.json", '{"log_level": 3, "selfsigned_days": "90", "probes": "x"}')
w("fuzz_config", "unknown.json", '{"log_levle": "debug", "x": {"y": [1, 2, {"z": null}]}}')
w("fuzz_config", "dup.json", '{"log_level": "warn", "log_level": "debug"}')
w("fuzz_config", "deep.json", "[" * 40 + "]" * 40)
w("fuzz_config", "nul.json", b'{"socket": "/run/a\\u0000b", "log_level": "info\x00"}')

# ACME replies: first byte 0 = application/json, 1 = problem+json.
J, P = b"\x00", b"\x01"
w("fuzz_acme_json", "directory", J + b'''{"keyChange":"https://127.0.0.1:14000/rollover-account-key",
"meta":{"externalAccountRequired":false,"termsOfService":"data:text/plain,Do%20what%20thou%20wilt",
"profiles":{"default":"The profile you know","shortlived":"A short-lived cert profile"}},
"newAccount":"https://127.0.0.1:14000/sign-me-up","newNonce":"https://127.0.0.1:14000/nonce-plz",
"newOrder":"https://127.0.0.1:14000/order-plz","revokeCert":"https://127.0.0.1:14000/revoke-cert",
"renewalInfo":"https://127.0.0.1:14000/draft-ietf-acme-ari-03/renewalInfo"}''')
w("fuzz_acme_json", "order-pending", J + b'''{"status":"pending","expires":"2026-11-24T16:00:00Z",
"identifiers":[{"type":"dns","value":"a.test"},{"type":"ip","value":"127.0.0.1"}],
"finalize":"https://127.0.0.1:14000/finalize-order/Xy","profile":"default",
"authorizations":["https://127.0.0.1:14000/authZ/a1","https://127.0.0.1:14000/authZ/a2"]}''')
w("fuzz_acme_json", "order-valid", J + b'''{"status":"valid","finalize":"https://ca/f/1",
"certificate":"https://ca/cert/1","authorizations":["https://ca/a/1"]}''')
w("fuzz_acme_json", "order-invalid", J + b'''{"status":"invalid","error":{"type":
"urn:ietf:params:acme:error:unauthorized","detail":"Some of the authorizations failed"}}''')
w("fuzz_acme_json", "authz-pending", J + b'''{"status":"pending","identifier":{"type":"dns",
"value":"a.test"},"challenges":[{"type":"http-01","url":"https://ca/chalZ/1","token":
"LoqXcYV8q5ONbJQxbmR7SCTNo3tiAXDfowyjxAjEuX0","status":"pending"},{"type":"dns-01","url":
"https://ca/chalZ/2","token":"t2","status":"pending"},{"type":"tls-alpn-01","url":"https://ca/c/3",
"token":"t3","status":"pending"}],"expires":"2026-11-24T16:00:00Z"}''')
w("fuzz_acme_json", "authz-invalid", J + b'''{"status":"invalid","identifier":{"type":"dns",
"value":"b.test"},"wildcard":true,"challenges":[{"type":"dns-01","url":"u","token":"t",
"status":"invalid","error":{"type":"urn:ietf:params:acme:error:dns","detail":
"no TXT record found at _acme-challenge.b.test","status":400}}]}''')
w("fuzz_acme_json", "problem", P + b'''{"type":"urn:ietf:params:acme:error:rejectedIdentifier",
"detail":"Error creating new order","status":400,"subproblems":[{"type":
"urn:ietf:params:acme:error:malformed","detail":"Invalid underscore in DNS name",
"identifier":{"type":"dns","value":"_example.org"}},{"type":"urn:ietf:params:acme:error:rejectedIdentifier",
"detail":"This CA will not issue for example.net","identifier":{"type":"dns","value":"example.net"}}]}''')
w("fuzz_acme_json", "badnonce", P + b'{"type":"urn:ietf:params:acme:error:badNonce","detail":"JWS has an invalid anti-replay nonce","status":400}')
w("fuzz_acme_json", "text", b"\x04<html>502 Bad Gateway</html>")
w("fuzz_acme_json", "broken", J + b'{"status":"valid","certificate":')

# Header lines as libcurl hands them over.
w("fuzz_http_headers", "pebble", b"HTTP/2 201\r\ncontent-type: application/json\r\n"
  b"link: <https://127.0.0.1:14000/dir>;rel=\"index\"\r\n"
  b"location: https://127.0.0.1:14000/my-order/1\r\nreplay-nonce: abcDEF-123_\r\n\r\n")
w("fuzz_http_headers", "alternates", b"HTTP/1.1 200 OK\r\n"
  b"Link: <https://ca/cert/1/1>;rel=\"alternate\", <https://ca/cert/1/2>; rel=\"alternate\"\r\n"
  b"Link: <https://ca/dir>;rel=\"index\", <https://ca/x,y>;rel=up;title=\"a, b\"\r\n\r\n")
w("fuzz_http_headers", "retry-seconds", b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 120\r\n\r\n")
w("fuzz_http_headers", "retry-date", b"HTTP/1.1 429 Too Many\r\nRetry-After: Sun, 06 Nov 1994 08:49:37 GMT\r\n\r\n")
w("fuzz_http_headers", "continue", b"HTTP/1.1 100 Continue\r\nRetry-After: 5\r\n\r\nHTTP/1.1 200 OK\r\nRetry-After:  -3 \r\n\r\n")

# STARTTLS dialogues: first byte % 3: 0 IMAP, 1 POP3, 2 SMTP; / 3 % 32 + 1: chunk size.
w("fuzz_starttls", "imap", b"\x1e* OK [CAPABILITY IMAP4rev1 STARTTLS] ready\r\na OK done\r\n"
  b"* CAPABILITY IMAP4rev1 STARTTLS LOGINDISABLED\r\nA1 OK CAPABILITY completed\r\nA2 OK Begin TLS\r\n")
w("fuzz_starttls", "imap-no", b"\x00* OK ready\r\n* CAPABILITY IMAP4rev1\r\nA1 OK done\r\n")
w("fuzz_starttls", "pop3", b"\x1f+OK POP3 ready\r\n+OK Capability list follows\r\nUSER\r\nSTLS\r\n.\r\n+OK Begin TLS\r\n")
w("fuzz_starttls", "pop3-err", b"\x04-ERR go away\r\n")
w("fuzz_starttls", "smtp", b"\x20220 mail.test ESMTP\r\n250-mail.test\r\n250-PIPELINING\r\n"
  b"250-STARTTLS\r\n250 8BITMIME\r\n220 2.0.0 Ready to start TLS\r\n")
w("fuzz_starttls", "smtp-multi", b"\x02220-mail.test\r\n220 ESMTP\r\n250 mail.test\r\n")

# http-01 requests.
tok = "LoqXcYV8q5ONbJQxbmR7SCTNo3tiAXDfowyjxAjEuX0"
w("fuzz_http01", "get", "GET /.well-known/acme-challenge/%s HTTP/1.1\r\nHost: a.test\r\n"
  "User-Agent: Pebble\r\nAccept: */*\r\n\r\n" % tok)
w("fuzz_http01", "head", "HEAD /.well-known/acme-challenge/%s?x=1 HTTP/1.0\r\n\r\n" % tok)
w("fuzz_http01", "absolute", "GET http://a.test/.well-known/acme-challenge/%s HTTP/1.1\r\nHost: a\r\n\r\n" % tok)
w("fuzz_http01", "post", "POST / HTTP/1.1\r\nContent-Length: 0\r\n\r\n")
w("fuzz_http01", "other", "GET /index.html HTTP/1.1\r\n\r\n")
w("fuzz_http01", "bad", "\r\n\r\nGET  HTTP/2\r\nX:\x01\r\n\r\n")
w("fuzz_http01", "lf-only", "GET /.well-known/acme-challenge/abc HTTP/1.1\nHost: x\n\n")

# tls-alpn-01: a ClientHello's server_name extension data (list length, then type, length, name).
def sni(names):
    body = b"".join(bytes([t]) + struct.pack(">H", len(n)) + n for t, n in names)
    return struct.pack(">H", len(body)) + body
w("fuzz_alpn_sni", "one-name", sni([(0, b"www.example.test")]))
w("fuzz_alpn_sni", "reverse-ip", sni([(0, b"1.0.0.127.in-addr.arpa")]))
w("fuzz_alpn_sni", "two-entries", sni([(1, b"\x01\x02"), (0, b"Mixed.Case-Name.test")]))
w("fuzz_alpn_sni", "bad-chars", sni([(0, b"a_b/c")]))
w("fuzz_alpn_sni", "truncated", sni([(0, b"www.example.test")])[:9])
w("fuzz_alpn_sni", "long-list-len", b"\xff\xff\x00\x00\x03abc")
EOF
echo "seeds written to $c"
