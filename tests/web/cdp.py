#!/usr/bin/python3
"""Loads a page in headless chromium through the DevTools protocol over a pipe
(--remote-debugging-pipe: NUL-separated JSON on fds 3 and 4, no websocket needed),
optionally with scripts disabled (Emulation.setScriptExecutionDisabled, which also works
where --dump-dom does not), and writes the DOM as the browser built it and a screenshot.

usage: cdp.py URL DOM-OUT PNG-OUT PROFILE-DIR [noscript]"""
import base64
import fcntl
import json
import os
import subprocess
import sys
import time

url, dom_out, png_out, profile = sys.argv[1:5]
noscript = len(sys.argv) > 5 and sys.argv[5] == "noscript"
to_chrome_r, to_chrome_w = os.pipe()
from_chrome_r, from_chrome_w = os.pipe()


# Out of the way of 3 and 4 first: dup2 onto the same number would keep close-on-exec.
child_r = fcntl.fcntl(to_chrome_r, fcntl.F_DUPFD_CLOEXEC, 10)
child_w = fcntl.fcntl(from_chrome_w, fcntl.F_DUPFD_CLOEXEC, 10)


def child_fds():
    os.dup2(child_r, 3)
    os.dup2(child_w, 4)


proc = subprocess.Popen(
    ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--user-data-dir=" + profile,
     "--ignore-certificate-errors", "--remote-debugging-pipe", "about:blank"],
    stdout=subprocess.DEVNULL, stderr=open(profile + ".log", "w"), close_fds=False,
    preexec_fn=child_fds)
for fd in (to_chrome_r, from_chrome_w, child_r, child_w):
    os.close(fd)
buf = b""
next_id = 0
deadline = time.monotonic() + 90


def send(method, params=None, session=None):
    global next_id
    next_id += 1
    msg = {"id": next_id, "method": method, "params": params or {}}
    if session:
        msg["sessionId"] = session
    os.write(to_chrome_w, json.dumps(msg).encode() + b"\0")
    return next_id


def read_message():
    global buf
    while b"\0" not in buf:
        if time.monotonic() > deadline:
            raise SystemExit("cdp.py: chromium did not answer in time")
        chunk = os.read(from_chrome_r, 65536)
        if not chunk:
            raise SystemExit("cdp.py: chromium closed the pipe")
        buf += chunk
    msg, buf = buf.split(b"\0", 1)
    return json.loads(msg)


def call(method, params=None, session=None):
    want = send(method, params, session)
    while True:
        m = read_message()
        if m.get("id") == want:
            if "error" in m:
                raise SystemExit("cdp.py: %s: %s" % (method, m["error"]))
            return m.get("result", {})


def wait_event(name, session):
    while True:
        m = read_message()
        if m.get("method") == name and m.get("sessionId") == session:
            return m


try:
    target = call("Target.createTarget", {"url": "about:blank"})["targetId"]
    session = call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
    call("Page.enable", session=session)
    call("Emulation.setDeviceMetricsOverride",
         {"width": 1400, "height": 1000, "deviceScaleFactor": 1, "mobile": False}, session)
    if noscript:
        call("Emulation.setScriptExecutionDisabled", {"value": True}, session)
    call("Page.navigate", {"url": url}, session)
    wait_event("Page.loadEventFired", session)
    root = call("DOM.getDocument", {"depth": 0}, session)["root"]["nodeId"]
    html = call("DOM.getOuterHTML", {"nodeId": root}, session)["outerHTML"]
    with open(dom_out, "w", encoding="utf-8") as f:
        f.write(html)
    shot = call("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True},
                session)["data"]
    with open(png_out, "wb") as f:
        f.write(base64.b64decode(shot))
    try:
        call("Browser.close")
    except SystemExit:
        pass
finally:
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
