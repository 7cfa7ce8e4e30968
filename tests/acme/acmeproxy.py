#!/usr/bin/env python3
"""Fault-injecting HTTPS reverse proxy between an ACME client and Pebble.

Pebble 2.4.0 sends no Retry-After, has no ACME Renewal Information (RFC 9773) and no
profiles, and cannot produce a long `processing`, `orderNotReady` or replica lag on demand.
This proxy sits in front of it, on loopback, for certagent's tests:

    acmeproxy.py --upstream https://127.0.0.1:PEBBLE_PORT --upstream-ca LISTENER_CA.pem \
                 --cert LISTENER.pem --key LISTENER.key [--config RULES.json] \
                 [--mgmt https://127.0.0.1:PEBBLE_MGMT_PORT] [--port-file FILE]

It prints `acmeproxy: ready https://127.0.0.1:PORT control http://127.0.0.1:CPORT` once both
listeners accept connections.  Everything it forwards keeps the client's Host header (Pebble
builds its URLs and checks the JWS "url" from it) and the upstream origin is rewritten to the
proxy's in every body and in Location/Link headers, so clients stay on the proxy.

Configuration (the --config file, or POST /config on the control port):

    {"rules": [RULE, ...],
     "profiles": {"classic": "the default profile", "shortlived": "6 days"},
     "default_profile": "classic",
     "renewal_info": {"start": -60, "end": 3600, "explanation_url": "https://...",
                      "retry_after": 21600}}

A RULE matches requests by "kind" (a name or a list of names: directory, newNonce,
newAccount, account, newOrder, order, orders, authz, challenge, finalize, cert, revoke,
keyChange, renewalInfo), optionally "method" (GET, POST, HEAD) and "payload_has" (a field of
the JWS payload, e.g. "replaces"), skips the first "after" matches (default 0) and applies its
"action" "times" times (default 1, -1 for every match):

    status          answer "status" (default 503) with an ACME problem ("type", "detail",
                    optional "subproblems") and a fresh Replay-Nonce from Pebble; Retry-After
                    from "retry_after" (seconds, or a string sent verbatim) or
                    "retry_after_date" (seconds from now, sent as an HTTP-date).  The request
                    is not forwarded unless "forward": true (then Pebble acts and the reply is
                    lost).
    processing      (kind order) once an order was finalized, answer it "polls" times (default
                    1) as "processing" with Retry-After "retry_after" (default 1) before the
                    real state shows; the finalize reply itself shows "processing" too.  "times"
                    counts orders.
    order-not-ready (kind finalize) answer 403 orderNotReady without forwarding, and show the
                    order as "pending" on its next poll.
    lag             (kind order) show a valid order as "pending" (no certificate) once more.
    reset           close the connection abruptly (TCP RST) without a reply; with
                    "forward": true, after Pebble has acted on the request.
    stall           hold the reply "seconds" seconds (default 30), then send it.
    truncate        send the headers with the full Content-Length but only "bytes" bytes of
                    the body (default: half), then close the connection.
    badjson         replace the body with malformed JSON (same status and headers).
    content-type    replace the Content-Type with "value" (default text/html).

    reset-headers   send the status line and part of the headers, then RST (no reply parsed).
    reset-body      forward, send the headers and half the body, then RST.

Chaos (the "chaos" key of the configuration, or POST /chaos; null turns it off): a seeded
random plan over every request that no rule took:

    {"seed": 8, "rate": 0.3, "faults": [NAME, ...], "kinds": [KIND, ...],
     "stall_seconds": 5, "retry_after": 1}

Each request of one of "kinds" (default: every ACME kind but renewalInfo) draws a fault with
probability "rate" (0..1) from "faults" (default all of CHAOS_FAULTS): 503-retry-after,
500, 429-retry-after, 429 (rateLimited without Retry-After), reset (no reply),
reset-headers, reset-body, stall ("stall_seconds", default 5, then the connection is closed
without a reply), truncate, badjson, content-type.  The draws come from random.Random(seed),
so a plan is reproducible up to the order in which concurrent requests arrive.  GET /log's
"chaos" counts the faults injected by name.

renewal_info window bounds ("start", "end") are seconds relative to now (numbers), absolute
RFC 3339 strings, or "notBefore+N" / "notAfter-N" relative to the certificate named by the
CertID (looked up in Pebble's management interface given with --mgmt).  renewal_info's "for":
{CERT_ID: {"start": ..., "end": ...}} gives one certificate its own window (a mass revocation
moving one window into the past).

Control endpoint (plain HTTP on another loopback port):
    GET  /config, POST /config       the whole configuration
    GET  /rules,  POST /rules        the rules (a list, or {"rules": [...]}); counters restart
    POST /profiles                   {"profiles": {...} or null, "default_profile": ...}
    POST /renewal-info               the renewal_info object, or null to drop renewalInfo
    POST /chaos                      the chaos object (above), or null to stop injecting
    GET  /log                        {"counts": {kind: requests}, "user_agents": {UA: requests},
                                      "injected": [...],
                                      "orders": [newOrder payload facts], "renewal_info":
                                      [CertIDs asked], "rules": [rules with seen/applied]}
    POST /log/clear                  forget counts and log entries
Python 3 standard library only.
"""

import argparse
import base64
import datetime
import email.utils
import http.client
import http.server
import ipaddress
import json
import os
import random
import re
import socket
import ssl
import struct
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse

MAX_BODY = 1 << 20
MAX_LOG = 10000

ACME_ERR = "urn:ietf:params:acme:error:"
KINDS = ("directory", "newNonce", "newAccount", "account", "newOrder", "order", "orders",
         "authz", "challenge", "finalize", "cert", "revoke", "keyChange", "renewalInfo")
ACTIONS = ("status", "processing", "order-not-ready", "lag", "reset", "stall", "truncate",
           "badjson", "content-type", "reset-headers", "reset-body")
# Faults of the chaos plan, each a rule for the actions above.
CHAOS_FAULTS = {
    "503-retry-after": {"action": "status", "status": 503, "type": "serverInternal",
                        "detail": "chaos: service unavailable", "retry_after": 1},
    "500": {"action": "status", "status": 500, "type": "serverInternal",
            "detail": "chaos: internal error"},
    "429-retry-after": {"action": "status", "status": 429, "type": "rateLimited",
                        "detail": "chaos: slow down", "retry_after": 1},
    "429": {"action": "status", "status": 429, "type": "rateLimited",
            "detail": "chaos: too many requests, no Retry-After"},
    "reset": {"action": "reset"},
    "reset-headers": {"action": "reset-headers"},
    "reset-body": {"action": "reset-body"},
    "stall": {"action": "stall", "close": True},
    "truncate": {"action": "truncate"},
    "badjson": {"action": "badjson"},
    "content-type": {"action": "content-type", "value": "text/html; charset=utf-8"},
}

# Pebble 2.4.0's fixed resource paths (wfe/wfe.go).
PATHS = (
    ("/dir", "directory", True),
    ("/nonce-plz", "newNonce", True),
    ("/sign-me-up", "newAccount", True),
    ("/order-plz", "newOrder", True),
    ("/revoke-cert", "revoke", True),
    ("/rollover-account-key", "keyChange", True),
    ("/my-account/", "account", False),
    ("/list-orderz/", "orders", False),
    ("/my-order/", "order", False),
    ("/authZ/", "authz", False),
    ("/chalZ/", "challenge", False),
    ("/finalize-order/", "finalize", False),
    ("/certZ/", "cert", False),
    ("/renewal-info/", "renewalInfo", False),
)
RENEWAL_INFO_PATH = "/renewal-info"
HOP_BY_HOP = {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "te",
              "trailer", "upgrade", "content-length", "host"}
# Reply headers the proxy's own server code writes.
OWN_HEADERS = {"date", "server"}
DEFAULT_TYPES = {400: "malformed", 401: "unauthorized", 403: "unauthorized", 404: "malformed",
                 409: "malformed", 429: "rateLimited"}


class ConfigError(Exception):
    pass


def phase_of(rule):
    """pre: decided before the request reaches Pebble; post: acts on Pebble's reply;
    order: rewrites order objects (processing, lag)."""
    action = rule["action"]
    if action in ("processing", "lag"):
        return "order"
    if action == "order-not-ready":
        return "pre"
    if action in ("status", "reset", "reset-headers"):
        return "post" if rule.get("forward") else "pre"
    return "post"


def kind_of(path):
    path = path.split("?", 1)[0]
    for prefix, kind, exact in PATHS:
        if (exact and path == prefix) or (not exact and path.startswith(prefix)):
            return kind
    if path == RENEWAL_INFO_PATH:
        return "renewalInfo"
    return "other"


def b64url_decode(text):
    text = text.strip()
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def rfc3339(ts):
    return datetime.datetime.fromtimestamp(ts, datetime.timezone.utc).strftime(
        "%Y-%m-%dT%H:%M:%SZ")


def check_int(rule, key, default, low, high):
    value = rule.get(key, default)
    if not isinstance(value, int) or isinstance(value, bool) or value < low or value > high:
        raise ConfigError("rule %s: %r must be an integer in %d..%d" % (rule.get("action"), key,
                                                                         low, high))
    return value


def check_rule(i, rule):
    if not isinstance(rule, dict):
        raise ConfigError("rule %d: expected an object" % i)
    action = rule.get("action")
    if action not in ACTIONS:
        raise ConfigError("rule %d: action %r is not one of %s" % (i, action, ", ".join(ACTIONS)))
    kinds = rule.get("kind")
    if isinstance(kinds, str):
        kinds = [kinds]
    if not isinstance(kinds, list) or not kinds or any(k not in KINDS for k in kinds):
        raise ConfigError("rule %d: kind %r must be one or a list of %s" % (i, rule.get("kind"),
                                                                          ", ".join(KINDS)))
    if action in ("processing", "lag") and kinds != ["order"]:
        raise ConfigError("rule %d: %s applies to kind order only" % (i, action))
    if action == "order-not-ready" and kinds != ["finalize"]:
        raise ConfigError("rule %d: order-not-ready applies to kind finalize only" % i)
    method = rule.get("method")
    if method is not None and method not in ("GET", "POST", "HEAD"):
        raise ConfigError("rule %d: method %r must be GET, POST or HEAD" % (i, method))
    if "payload_has" in rule and not isinstance(rule["payload_has"], str):
        raise ConfigError("rule %d: payload_has must be a string" % i)
    check_int(rule, "times", 1, -1, 1 << 30)
    check_int(rule, "after", 0, 0, 1 << 30)
    if action == "status":
        check_int(rule, "status", 503, 100, 599)
        ra = rule.get("retry_after")
        if ra is not None and not isinstance(ra, (int, str)):
            raise ConfigError("rule %d: retry_after must be seconds or a string" % i)
        if "retry_after_date" in rule:
            check_int(rule, "retry_after_date", 0, -(1 << 30), 1 << 30)
    if action == "processing":
        check_int(rule, "polls", 1, 1, 1 << 20)
        check_int(rule, "retry_after", 1, 0, 86400)
    if action == "stall":
        if not isinstance(rule.get("seconds", 30), (int, float)):
            raise ConfigError("rule %d: seconds must be a number" % i)
    if action == "truncate" and "bytes" in rule:
        check_int(rule, "bytes", 0, 0, MAX_BODY)
    out = dict(rule)
    out["kind"] = kinds
    return out


def check_config(cfg):
    if not isinstance(cfg, dict):
        raise ConfigError("the configuration must be a JSON object")
    unknown = set(cfg) - {"rules", "profiles", "default_profile", "renewal_info", "chaos"}
    if unknown:
        raise ConfigError("unknown configuration keys: %s" % ", ".join(sorted(unknown)))
    rules = cfg.get("rules", [])
    if not isinstance(rules, list):
        raise ConfigError("rules must be a list")
    out = {"rules": [check_rule(i, r) for i, r in enumerate(rules)]}
    profiles = cfg.get("profiles")
    if profiles is not None and (not isinstance(profiles, dict) or
                                 any(not isinstance(v, str) for v in profiles.values())):
        raise ConfigError("profiles must be an object of name: description")
    out["profiles"] = profiles
    default = cfg.get("default_profile")
    if default is not None and (profiles is None or default not in profiles):
        raise ConfigError("default_profile %r is not one of the profiles" % default)
    out["default_profile"] = default
    ri = cfg.get("renewal_info")
    if ri is not None:
        if not isinstance(ri, dict):
            raise ConfigError("renewal_info must be an object or null")
        for key in ("start", "end"):
            if not isinstance(ri.get(key), (int, float, str)) or isinstance(ri.get(key), bool):
                raise ConfigError("renewal_info.%s must be seconds from now, an RFC 3339 time "
                                  "or notBefore+N / notAfter-N" % key)
        if "retry_after" in ri and not isinstance(ri["retry_after"], (int, str)):
            raise ConfigError("renewal_info.retry_after must be seconds or a string")
    out["renewal_info"] = ri
    out["chaos"] = check_chaos(cfg.get("chaos"))
    return out


def check_chaos(ch):
    if ch is None:
        return None
    if not isinstance(ch, dict):
        raise ConfigError("chaos must be an object or null")
    unknown = set(ch) - {"seed", "rate", "faults", "kinds", "stall_seconds", "retry_after"}
    if unknown:
        raise ConfigError("unknown chaos keys: %s" % ", ".join(sorted(unknown)))
    rate = ch.get("rate", 0.3)
    if not isinstance(rate, (int, float)) or isinstance(rate, bool) or not 0 <= rate <= 1:
        raise ConfigError("chaos.rate must be a number in 0..1")
    faults = ch.get("faults", sorted(CHAOS_FAULTS))
    if not isinstance(faults, list) or not faults or any(f not in CHAOS_FAULTS for f in faults):
        raise ConfigError("chaos.faults must be a list of %s" % ", ".join(sorted(CHAOS_FAULTS)))
    kinds = ch.get("kinds", [k for k in KINDS if k != "renewalInfo"])
    if not isinstance(kinds, list) or not kinds or any(k not in KINDS for k in kinds):
        raise ConfigError("chaos.kinds must be a list of %s" % ", ".join(KINDS))
    stall = ch.get("stall_seconds", 5)
    if not isinstance(stall, (int, float)) or isinstance(stall, bool) or not 0 <= stall <= 600:
        raise ConfigError("chaos.stall_seconds must be a number in 0..600")
    out = {"seed": ch.get("seed", 0), "rate": rate, "faults": faults, "kinds": kinds,
           "stall_seconds": stall}
    check_int(ch, "retry_after", 1, 0, 86400)
    out["retry_after"] = ch.get("retry_after", 1)
    if not isinstance(out["seed"], (int, str)):
        raise ConfigError("chaos.seed must be an integer or a string")
    return out


class State:
    """Everything the request threads share, behind one lock."""

    def __init__(self, cfg):
        self.lock = threading.Lock()
        self.chaos_rng = None
        self.set_config(cfg)
        self.clear_log()
        self.order_profile = {}     # order path -> profile
        self.finalize_order = {}    # finalize path -> order path
        self.processing = {}        # order path -> [polls left, retry_after]
        self.show_pending = set()   # order paths to show "pending" once
        self.cert_dates = {}        # serial hex -> (notBefore, notAfter)

    def set_config(self, cfg):
        if cfg.get("chaos") != getattr(self, "config", {}).get("chaos"):
            self.set_chaos(cfg.get("chaos"))
        self.config = cfg
        self.rule_seen = [0] * len(cfg["rules"])
        self.rule_applied = [0] * len(cfg["rules"])

    def set_chaos(self, chaos):
        self.chaos_rng = random.Random(chaos["seed"]) if chaos is not None else None

    def chaos_draw(self, kind):
        """(name, rule) of the chaos fault for this request, or (None, None)."""
        with self.lock:
            ch = self.config.get("chaos")
            if ch is None or self.chaos_rng is None or kind not in ch["kinds"]:
                return None, None
            if self.chaos_rng.random() >= ch["rate"]:
                return None, None
            name = self.chaos_rng.choice(ch["faults"])
            self.chaos_counts[name] = self.chaos_counts.get(name, 0) + 1
        rule = dict(CHAOS_FAULTS[name], kind=[kind], chaos=name)
        if "retry_after" in rule:
            rule["retry_after"] = ch["retry_after"]
        if name == "stall":
            rule["seconds"] = ch["stall_seconds"]
        return name, rule

    def clear_log(self):
        self.chaos_counts = {}
        self.counts = {}
        self.user_agents = {}
        self.injected = []
        self.orders = []
        self.ari = []

    def note(self, lst, entry):
        if len(lst) < MAX_LOG:
            lst.append(entry)

    def count(self, kind, user_agent=None):
        with self.lock:
            self.counts[kind] = self.counts.get(kind, 0) + 1
            ua = user_agent if user_agent is not None else "(none)"
            self.user_agents[ua] = self.user_agents.get(ua, 0) + 1

    def pick(self, kind, method, payload, phase, action=None):
        """The first rule of this phase that matches and has budget left, consumed."""
        with self.lock:
            for i, rule in enumerate(self.config["rules"]):
                if phase_of(rule) != phase:
                    continue
                if action is not None and rule["action"] != action:
                    continue
                if kind not in rule["kind"]:
                    continue
                if rule.get("method") and rule["method"] != method:
                    continue
                if "payload_has" in rule and (not isinstance(payload, dict) or
                                              rule["payload_has"] not in payload):
                    continue
                times = rule.get("times", 1)
                if times >= 0 and self.rule_applied[i] >= times:
                    continue
                self.rule_seen[i] += 1
                if self.rule_seen[i] <= rule.get("after", 0):
                    continue
                self.rule_applied[i] += 1
                return i, rule
        return None, None

    def log_injection(self, i, rule, kind, method, path, detail=""):
        with self.lock:
            entry = {"seq": len(self.injected) + 1, "time": time.time(), "rule": i,
                     "action": rule["action"], "kind": kind, "method": method, "path": path,
                     "detail": detail}
            if "chaos" in rule:
                entry["chaos"] = rule["chaos"]
            self.note(self.injected, entry)

    def snapshot(self):
        with self.lock:
            rules = []
            for i, rule in enumerate(self.config["rules"]):
                r = dict(rule)
                r["seen"] = self.rule_seen[i]
                r["applied"] = self.rule_applied[i]
                rules.append(r)
            return {"counts": dict(self.counts), "user_agents": dict(self.user_agents),
                    "chaos": dict(self.chaos_counts),
                    "injected": list(self.injected),
                    "orders": list(self.orders), "renewal_info": list(self.ari),
                    "rules": rules}


class Upstream:
    """Per-thread kept-alive HTTPS connections to Pebble (and its management port)."""

    def __init__(self, origin, context):
        u = urllib.parse.urlsplit(origin)
        if u.scheme != "https" or not u.hostname:
            raise SystemExit("acmeproxy: upstream must be an https:// URL, got %r" % origin)
        self.origin = "https://%s" % u.netloc
        self.host = u.hostname
        self.port = u.port or 443
        self.context = context
        self.local = threading.local()

    def _conn(self, fresh=False):
        conn = getattr(self.local, "conn", None)
        if conn is None or fresh:
            if conn is not None:
                conn.close()
            conn = http.client.HTTPSConnection(self.host, self.port, context=self.context,
                                               timeout=120)
            self.local.conn = conn
            self.local.used = False
        return conn

    def request(self, method, path, body, headers):
        """(status, [(name, value)], body) from upstream; retries once on a stale connection."""
        for attempt in (0, 1):
            conn = self._conn()
            reused = self.local.used
            try:
                conn.request(method, path, body=body, headers=headers)
                resp = conn.getresponse()
                data = resp.read()
                self.local.used = True
                if resp.will_close:
                    self._conn(fresh=True)
                return resp.status, resp.getheaders(), data
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                self._conn(fresh=True)
                if attempt == 1 or not reused:
                    raise
            except Exception:
                self._conn(fresh=True)
                raise
        raise RuntimeError("unreachable")


def http_date(ts):
    return email.utils.formatdate(ts, usegmt=True)


class Proxy(http.server.ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128

    def __init__(self, addr, state, upstream, mgmt, tls, verbose):
        family = socket.AF_INET6 if ":" in addr[0] else socket.AF_INET
        self.address_family = family
        super().__init__(addr, ProxyHandler)
        self.state = state
        self.upstream = upstream
        self.mgmt = mgmt
        self.tls = tls
        self.verbose = verbose

    def finish_request(self, request, client_address):
        try:
            request.settimeout(300)
            conn = self.tls.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError):
            request.close()
            return
        try:
            self.RequestHandlerClass(conn, client_address, self)
        finally:
            try:
                conn.close()
            except OSError:
                pass

    def handle_error(self, request, client_address):
        exc = sys.exc_info()[1]
        if isinstance(exc, (ConnectionError, ssl.SSLError, TimeoutError, BrokenPipeError)):
            return
        super().handle_error(request, client_address)


class ProxyHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def version_string(self):
        return "acmeproxy"

    def log_message(self, fmt, *args):
        if self.server.verbose:
            sys.stderr.write("acmeproxy: %s\n" % (fmt % args))

    def log_request(self, code="-", size="-"):
        if self.server.verbose:
            sys.stderr.write("acmeproxy: %s %s -> %s\n" % (self.command, self.path, code))

    def finish(self):
        if getattr(self, "dead", False):
            return
        try:
            super().finish()
        except OSError:
            pass

    # --- helpers -------------------------------------------------------------------------

    def client_origin(self):
        host = self.headers.get("Host") or "%s:%d" % self.server.server_address[:2]
        return "https://" + host

    def rewrite(self, data):
        return data.replace(self.server.upstream.origin.encode(), self.client_origin().encode())

    def kill_connection(self):
        """Abrupt close: RST instead of a TLS close_notify and FIN."""
        self.dead = True
        self.close_connection = True
        try:
            self.wfile.flush()
        except OSError:
            pass
        try:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                       struct.pack("ii", 1, 0))
        except OSError:
            pass
        try:
            self.connection.close()
        except OSError:
            pass

    def reset_mid_headers(self):
        """A status line and half a header block, then RST."""
        try:
            self.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/js")
            self.wfile.flush()
        except OSError:
            pass
        self.kill_connection()

    def end_connection(self):
        """Orderly close (TLS close_notify, then FIN) whatever was promised in the headers."""
        self.dead = True
        self.close_connection = True
        try:
            self.wfile.flush()
            self.connection.unwrap().close()
        except (OSError, ValueError):
            try:
                self.connection.close()
            except OSError:
                pass

    def fresh_nonce(self):
        try:
            _, headers, _ = self.server.upstream.request(
                "HEAD", "/nonce-plz", None, {"Host": self.headers.get("Host", "")})
        except (OSError, http.client.HTTPException):
            return None
        for name, value in headers:
            if name.lower() == "replay-nonce":
                return value
        return None

    def send_reply(self, status, headers, body, head=False):
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if not head:
            self.wfile.write(body)
        self.wfile.flush()

    def problem(self, status, ptype, detail, extra_headers=(), subproblems=None, nonce=True):
        doc = {"type": ptype if ":" in ptype else ACME_ERR + ptype, "detail": detail}
        if subproblems is not None:
            doc["subproblems"] = subproblems
        headers = [("Content-Type", "application/problem+json"),
                   ("Cache-Control", "public, max-age=0, no-cache"),
                   ("Link", '<%s/dir>;rel="index"' % self.client_origin())]
        if nonce:
            n = self.fresh_nonce()
            if n:
                headers.append(("Replay-Nonce", n))
        headers.extend(extra_headers)
        self.send_reply(status, headers, json.dumps(doc, indent=2).encode() + b"\n",
                        head=self.command == "HEAD")

    def read_body(self):
        if self.headers.get("Transfer-Encoding"):
            return None
        try:
            length = int(self.headers.get("Content-Length", "0"))
        except ValueError:
            return None
        if length < 0 or length > MAX_BODY:
            return None
        return self.rfile.read(length) if length else b""

    @staticmethod
    def jws_payload(body):
        try:
            jws = json.loads(body)
            payload = jws.get("payload", "")
            if payload == "":
                return {}
            return json.loads(b64url_decode(payload))
        except (ValueError, TypeError, AttributeError):
            return None

    # --- request entry points ------------------------------------------------------------

    def do_GET(self):
        self.handle_acme()

    def do_POST(self):
        self.handle_acme()

    def do_HEAD(self):
        self.handle_acme()

    def handle_acme(self):
        st = self.server.state
        path = self.path
        kind = kind_of(path)
        st.count(kind, self.headers.get("User-Agent"))
        body = b""
        if self.command == "POST":
            body = self.read_body()
            if body is None:
                self.close_connection = True
                self.problem(413, "malformed", "request body missing a length or too large",
                             nonce=False)
                return
        payload = self.jws_payload(body) if body else None

        i, rule = st.pick(kind, self.command, payload, "pre")
        if rule is not None:
            self.apply_pre(i, rule, kind, path)
            return
        self.chaos_rule = None
        if st.config.get("chaos") is not None:
            _, crule = st.chaos_draw(kind)
            if crule is not None and phase_of(crule) == "pre":
                self.apply_pre(-1, crule, kind, path)
                return
            self.chaos_rule = crule

        if kind == "renewalInfo" and self.command == "GET":
            self.renewal_info(path)
            return

        if kind == "newOrder" and isinstance(payload, dict):
            with st.lock:
                st.note(st.orders, {"identifiers": payload.get("identifiers"),
                                    "profile": payload.get("profile"),
                                    "replaces": payload.get("replaces")})
            profiles = st.config["profiles"]
            wanted = payload.get("profile")
            if profiles is not None and wanted is not None and wanted not in profiles:
                self.problem(400, "invalidProfile",
                             "profile %r is not offered by this CA (offered: %s)" %
                             (wanted, ", ".join(sorted(profiles))))
                return

        headers = {}
        for name, value in self.headers.items():
            if name.lower() not in HOP_BY_HOP:
                headers[name] = value
        headers["Host"] = self.headers.get("Host", "")
        try:
            status, rheaders, rbody = self.server.upstream.request(
                self.command, path, body if self.command == "POST" else None, headers)
        except (OSError, http.client.HTTPException) as exc:
            self.problem(503, "serverInternal", "the CA behind the proxy is unreachable: %s" %
                         exc.__class__.__name__, nonce=False)
            return
        self.relay(kind, path, payload, status, rheaders, rbody)

    def apply_pre(self, i, rule, kind, path):
        st = self.server.state
        action = rule["action"]
        if action == "reset":
            st.log_injection(i, rule, kind, self.command, path)
            self.kill_connection()
            return
        if action == "reset-headers":
            st.log_injection(i, rule, kind, self.command, path)
            self.reset_mid_headers()
            return
        if action == "order-not-ready":
            order = self.order_of_finalize(path)
            with st.lock:
                st.show_pending.add(order)
            st.log_injection(i, rule, kind, self.command, path, "order %s" % order)
            self.problem(403, "orderNotReady",
                         rule.get("detail", "Order's status (\"pending\") is not acceptable "
                                            "for finalization"))
            return
        # status
        code = rule.get("status", 503)
        extra = self.retry_after_headers(rule)
        st.log_injection(i, rule, kind, self.command, path, "%d%s" % (
            code, "".join("; Retry-After: " + v for _, v in extra)))
        self.problem(code, rule.get("type", DEFAULT_TYPES.get(code, "serverInternal")),
                     rule.get("detail", "injected by acmeproxy"), extra,
                     rule.get("subproblems"), nonce=rule.get("nonce", True))

    @staticmethod
    def retry_after_headers(rule):
        if "retry_after_date" in rule:
            return [("Retry-After", http_date(time.time() + rule["retry_after_date"]))]
        ra = rule.get("retry_after")
        if ra is None:
            return []
        return [("Retry-After", str(ra))]

    def order_of_finalize(self, path):
        st = self.server.state
        with st.lock:
            order = st.finalize_order.get(path)
        if order is None:
            order = path.replace("/finalize-order/", "/my-order/", 1)
        return order

    def relay(self, kind, path, payload, status, rheaders, rbody):
        st = self.server.state
        origin = self.server.upstream.origin
        out = []
        ctype = ""
        location = None
        for name, value in rheaders:
            low = name.lower()
            if low in HOP_BY_HOP or low in OWN_HEADERS:
                continue
            if low in ("location", "link"):
                value = value.replace(origin, self.client_origin())
            if low == "location":
                location = urllib.parse.urlsplit(value).path
            if low == "content-type":
                ctype = value
            out.append((name, value))
        rbody = self.rewrite(rbody)

        # Remember which order a finalize URL belongs to, and its profile.
        order_path = None
        if kind == "newOrder" and status == 201 and location:
            order_path = location
        elif kind == "order":
            order_path = path
        elif kind == "finalize":
            order_path = self.order_of_finalize(path)
        obj = None
        if order_path and "json" in ctype and 200 <= status < 300:
            try:
                obj = json.loads(rbody)
            except ValueError:
                obj = None
        changed = False
        if isinstance(obj, dict):
            fin = obj.get("finalize")
            with st.lock:
                if isinstance(fin, str):
                    st.finalize_order[urllib.parse.urlsplit(fin).path] = order_path
                if kind == "newOrder":
                    prof = payload.get("profile") if isinstance(payload, dict) else None
                    if prof is None:
                        prof = st.config["default_profile"]
                    if prof is not None and st.config["profiles"] is not None:
                        st.order_profile[order_path] = prof
                prof = st.order_profile.get(order_path)
            if prof is not None:
                obj["profile"] = prof
                changed = True
            changed |= self.order_faults(kind, path, order_path, obj, out)
        if changed:
            rbody = json.dumps(obj, indent=3).encode()

        if kind == "directory" and status == 200 and "json" in ctype:
            try:
                d = json.loads(rbody)
                meta = d.setdefault("meta", {})
                if st.config["profiles"] is not None:
                    meta["profiles"] = st.config["profiles"]
                if st.config["renewal_info"] is not None:
                    d["renewalInfo"] = self.client_origin() + RENEWAL_INFO_PATH
                rbody = json.dumps(d, indent=3).encode()
            except ValueError:
                pass

        i, rule = st.pick(kind, self.command, payload, "post")
        if rule is None and getattr(self, "chaos_rule", None) is not None:
            i, rule = -1, self.chaos_rule
        if rule is not None:
            self.apply_post(i, rule, kind, path, status, out, rbody)
            return
        self.send_reply(status, out, rbody, head=self.command == "HEAD")

    def order_faults(self, kind, path, order_path, obj, headers):
        """processing / order-not-ready / lag rewrites of an order object; True if changed."""
        st = self.server.state
        status = obj.get("status")
        if kind == "finalize":
            # Attach a processing rule to this order when one has budget left.
            i, rule = st.pick("order", "POST", None, "order", "processing")
            if rule is not None:
                with st.lock:
                    st.processing[order_path] = [rule.get("polls", 1),
                                                 rule.get("retry_after", 1), i]
                st.log_injection(i, rule, kind, self.command, path,
                                 "order %s held processing for %d polls" %
                                 (order_path, rule.get("polls", 1)))
            with st.lock:
                hold = st.processing.get(order_path)
            if hold is not None and status in ("processing", "valid"):
                obj["status"] = "processing"
                obj.pop("certificate", None)
                headers.append(("Retry-After", str(hold[1])))
                return True
            return False
        if kind != "order":
            return False
        with st.lock:
            pending = order_path in st.show_pending
            if pending:
                st.show_pending.discard(order_path)
            hold = st.processing.get(order_path)
            if hold is not None and status in ("processing", "valid"):
                hold[0] -= 1
                if hold[0] <= 0:
                    del st.processing[order_path]
        if pending:
            obj["status"] = "pending"
            obj.pop("certificate", None)
            st.log_injection(-1, {"action": "order-not-ready"}, kind, self.command, path,
                             "shown pending after orderNotReady")
            return True
        if hold is not None and status in ("processing", "valid"):
            obj["status"] = "processing"
            obj.pop("certificate", None)
            headers.append(("Retry-After", str(hold[1])))
            st.log_injection(hold[2], {"action": "processing"}, kind, self.command, path,
                             "%d more polls" % max(hold[0], 0))
            return True
        if status == "valid":
            i, rule = st.pick("order", self.command, None, "order", "lag")
            if rule is not None:
                obj["status"] = "pending"
                obj.pop("certificate", None)
                st.log_injection(i, rule, kind, self.command, path, "valid shown as pending")
                return True
        return False

    def apply_post(self, i, rule, kind, path, status, headers, body):
        st = self.server.state
        action = rule["action"]
        head = self.command == "HEAD"
        if action == "status":
            self.apply_pre(i, rule, kind, path)
            return
        st.log_injection(i, rule, kind, self.command, path)
        if action == "reset":
            self.kill_connection()
        elif action == "reset-headers":
            self.reset_mid_headers()
        elif action == "reset-body":
            try:
                self.send_response(status)
                for name, value in headers:
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if not head:
                    self.wfile.write(body[:len(body) // 2])
                self.wfile.flush()
            except OSError:
                pass
            self.kill_connection()
        elif action == "stall":
            time.sleep(float(rule.get("seconds", 30)))
            if rule.get("close"):
                self.kill_connection()
                return
            try:
                self.send_reply(status, headers, body, head=head)
            except OSError:
                self.close_connection = True
        elif action == "truncate":
            cut = rule.get("bytes", len(body) // 2)
            self.send_response(status)
            for name, value in headers:
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if not head:
                self.wfile.write(body[:min(cut, max(len(body) - 1, 0))])
            self.end_connection()
        elif action == "badjson":
            self.send_reply(status, headers, b'{"status": "valid", "identifiers": [{"type"',
                            head=head)
        elif action == "content-type":
            value = rule.get("value", "text/html; charset=utf-8")
            headers = [(n, v) for n, v in headers if n.lower() != "content-type"]
            headers.append(("Content-Type", value))
            self.send_reply(status, headers, body, head=head)

    # --- ACME Renewal Information (RFC 9773) ---------------------------------------------

    def renewal_info(self, path):
        st = self.server.state
        ri = st.config["renewal_info"]
        cert_id = path[len(RENEWAL_INFO_PATH) + 1:].split("?", 1)[0]
        m = re.fullmatch(r"([A-Za-z0-9_-]+)\.([A-Za-z0-9_-]+)", cert_id)
        with st.lock:
            st.note(st.ari, {"time": time.time(), "cert_id": cert_id})
        if ri is None:
            self.problem(404, "malformed", "this CA offers no renewal information", nonce=False)
            return
        if not m:
            self.problem(400, "malformed", "the CertID %r is not base64url(AKI).base64url(serial)"
                         % cert_id[:200], nonce=False)
            return
        try:
            serial = b64url_decode(m.group(2)).hex()
            b64url_decode(m.group(1))
        except (ValueError, base64.binascii.Error):
            self.problem(400, "malformed", "the CertID is not valid base64url", nonce=False)
            return
        # "for": {CERT_ID: {"start": ..., "end": ...}}: another window for that certificate.
        win = (ri.get("for") or {}).get(cert_id) or ri
        try:
            start = self.window_time(win["start"], serial)
            end = self.window_time(win["end"], serial)
        except LookupError as exc:
            self.problem(404, "malformed", str(exc), nonce=False)
            return
        doc = {"suggestedWindow": {"start": start, "end": end}}
        if ri.get("explanation_url"):
            doc["explanationURL"] = ri["explanation_url"]
        headers = [("Content-Type", "application/json"),
                   ("Retry-After", str(ri.get("retry_after", 21600)))]
        self.send_reply(200, headers, json.dumps(doc, indent=2).encode())

    def window_time(self, spec, serial):
        if isinstance(spec, (int, float)):
            return rfc3339(time.time() + spec)
        m = re.fullmatch(r"(notBefore|notAfter)\s*([+-])\s*(\d+)", spec)
        if not m:
            return spec
        nb, na = self.cert_dates(serial)
        base = nb if m.group(1) == "notBefore" else na
        delta = int(m.group(3))
        return rfc3339(base + delta if m.group(2) == "+" else base - delta)

    def cert_dates(self, serial):
        st = self.server.state
        serial = serial.lstrip("0") or "0"
        with st.lock:
            if serial in st.cert_dates:
                return st.cert_dates[serial]
        if self.server.mgmt is None:
            raise LookupError("window relative to the certificate needs --mgmt")
        try:
            status, _, data = self.server.mgmt.request("GET", "/cert-status-by-serial/" + serial,
                                                       None, {})
        except (OSError, http.client.HTTPException) as exc:
            raise LookupError("Pebble's management interface failed: %s" % exc) from exc
        if status != 200:
            raise LookupError("no certificate with serial %s at this CA" % serial)
        pem = json.loads(data)["Certificate"]
        with tempfile.NamedTemporaryFile("w", suffix=".pem") as f:
            f.write(pem)
            f.flush()
            out = subprocess.run(["openssl", "x509", "-in", f.name, "-noout", "-startdate",
                                  "-enddate"], capture_output=True, text=True, check=True).stdout
        dates = {}
        for line in out.splitlines():
            key, _, value = line.partition("=")
            dates[key] = email.utils.mktime_tz(email.utils.parsedate_tz(
                re.sub(r"\s+GMT$", " +0000", value.strip())))
        result = (dates["notBefore"], dates["notAfter"])
        with st.lock:
            st.cert_dates[serial] = result
        return result


class ControlHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def version_string(self):
        return "acmeproxy-control"

    def log_message(self, fmt, *args):
        pass

    def reply(self, status, obj):
        data = json.dumps(obj, indent=2).encode() + b"\n"
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        st = self.server.state
        if self.path == "/log":
            self.reply(200, st.snapshot())
        elif self.path == "/config":
            with st.lock:
                self.reply(200, st.config)
        elif self.path == "/rules":
            with st.lock:
                self.reply(200, st.config["rules"])
        else:
            self.reply(404, {"error": "no such control resource: %s" % self.path})

    def do_POST(self):
        st = self.server.state
        try:
            length = int(self.headers.get("Content-Length", "0"))
            if length < 0 or length > MAX_BODY:
                raise ValueError("body too large")
            raw = self.rfile.read(length) if length else b""
            body = json.loads(raw) if raw.strip() else None
        except ValueError as exc:
            self.reply(400, {"error": "not JSON: %s" % exc})
            return
        try:
            with st.lock:
                cfg = dict(st.config)
            if self.path == "/config":
                new = check_config(body if body is not None else {})
            elif self.path == "/rules":
                rules = body.get("rules") if isinstance(body, dict) else body
                cfg["rules"] = rules if rules is not None else []
                new = check_config(cfg)
            elif self.path == "/profiles":
                if not isinstance(body, dict):
                    raise ConfigError("expected {\"profiles\": ..., \"default_profile\": ...}")
                cfg["profiles"] = body.get("profiles")
                cfg["default_profile"] = body.get("default_profile")
                new = check_config(cfg)
            elif self.path == "/renewal-info":
                cfg["renewal_info"] = body
                new = check_config(cfg)
            elif self.path == "/chaos":
                cfg["chaos"] = body
                new = check_config(cfg)
            elif self.path == "/log/clear":
                with st.lock:
                    st.clear_log()
                self.reply(200, {})
                return
            else:
                self.reply(404, {"error": "no such control resource: %s" % self.path})
                return
        except ConfigError as exc:
            self.reply(400, {"error": str(exc)})
            return
        with st.lock:
            if self.path in ("/config", "/rules", "/chaos"):
                st.set_config(new)
            else:
                st.config = dict(new, rules=st.config["rules"])
        self.reply(200, new)


def loopback(addr):
    try:
        return ipaddress.ip_address(addr).is_loopback
    except ValueError:
        return False


def main():
    ap = argparse.ArgumentParser(description="fault-injecting ACME proxy for tests")
    ap.add_argument("--upstream", required=True, help="Pebble's origin or directory URL")
    ap.add_argument("--upstream-ca", required=True, help="CA file for Pebble's listener")
    ap.add_argument("--cert", required=True, help="certificate (PEM) the proxy serves")
    ap.add_argument("--key", required=True, help="its private key (PEM)")
    ap.add_argument("--config", help="initial configuration (JSON file)")
    ap.add_argument("--mgmt", help="Pebble's management origin, for certificate lookups")
    ap.add_argument("--listen", default="127.0.0.1", help="loopback address to listen on")
    ap.add_argument("--port", type=int, default=0, help="port (default: any free one)")
    ap.add_argument("--control-port", type=int, default=0)
    ap.add_argument("--port-file", help="write 'PORT CONTROL-PORT' here once listening")
    ap.add_argument("--verbose", action="store_true", help="one stderr line per request")
    args = ap.parse_args()
    if not loopback(args.listen):
        ap.error("--listen must be a loopback address, got %r" % args.listen)

    cfg = {}
    if args.config:
        try:
            with open(args.config, encoding="utf-8") as f:
                cfg = json.load(f)
        except (OSError, ValueError) as exc:
            ap.error("--config %s: %s" % (args.config, exc))
    try:
        cfg = check_config(cfg)
    except ConfigError as exc:
        ap.error("--config %s: %s" % (args.config, exc))

    client_ctx = ssl.create_default_context(cafile=args.upstream_ca)
    upstream = Upstream(args.upstream, client_ctx)
    mgmt = Upstream(args.mgmt, client_ctx) if args.mgmt else None
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(args.cert, args.key)
    server_ctx.set_alpn_protocols(["http/1.1"])

    state = State(cfg)
    proxy = Proxy((args.listen, args.port), state, upstream, mgmt, server_ctx, args.verbose)
    control = http.server.ThreadingHTTPServer((args.listen, args.control_port), ControlHandler)
    control.daemon_threads = True
    control.state = state
    port = proxy.server_address[1]
    cport = control.server_address[1]
    threading.Thread(target=control.serve_forever, daemon=True).start()
    if args.port_file:
        tmp = args.port_file + ".tmp"
        with open(tmp, "w", encoding="ascii") as f:
            f.write("%d %d\n" % (port, cport))
        os.replace(tmp, args.port_file)
    host = "[%s]" % args.listen if ":" in args.listen else args.listen
    print("acmeproxy: ready https://%s:%d control http://%s:%d" % (host, port, host, cport),
          flush=True)
    try:
        proxy.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
