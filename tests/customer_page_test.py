#!/usr/bin/env python3
"""The customer page (ledgerd's /) in Debian's headless Chromium, as a person
uses it: ledgerd --demo, tokens issued with ledgerctl subject-token, the page
driven through chromedriver's W3C WebDriver HTTP API (python3's standard
library only). A small proxy between the browser and ledgerd tampers with
GET /v1/subjects answers or drops the connection on demand, so the page's
own checks are what fails. Screenshots go to $ARTIFACTS.

Environment: LEDGERD, LEDGERCTL, ARTIFACTS (directory), CHROMIUM,
CHROMEDRIVER. Exits 0 on success, 1 with a message on failure.
"""
import base64
import hashlib
import http.client
import http.server
import json
import os
import re
import shutil
import signal
import socketserver
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

LEDGERD = os.environ["LEDGERD"]
LEDGERCTL = os.environ["LEDGERCTL"]
ARTIFACTS = os.environ["ARTIFACTS"]
CHROMIUM = os.environ["CHROMIUM"]
CHROMEDRIVER = os.environ["CHROMEDRIVER"]

ELEMENT = "element-6066-11e4-a52e-4f735466cecf"
failures = []


START = time.time()


def check(cond, what):
    print("%5.1fs %s %s" % (time.time() - START, "ok  " if cond else "FAIL", what), flush=True)
    if not cond:
        failures.append(what)


def wait_for(fn, what, timeout=30.0, interval=0.1):
    deadline = time.time() + timeout
    while True:
        v = fn()
        if v:
            return v
        if time.time() > deadline:
            raise RuntimeError("timed out waiting for " + what)
        time.sleep(interval)


# ------------------------------------------------------------------ proxy

class Proxy:
    """Forwards GET requests to ledgerd; |mode| changes /v1/subjects answers."""

    def __init__(self, upstream_port):
        self.upstream = upstream_port
        self.mode = None
        self.subject_requests = []
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                subjects = self.path.startswith("/v1/subjects/")
                if subjects and proxy.mode == "down":
                    # As if the server went away mid-request.
                    self.close_connection = True
                    self.connection.shutdown(2)
                    return
                path = self.path
                if subjects:
                    proxy.subject_requests.append(path)
                    if proxy.mode == "small-pages":
                        # A server that answers at most 2 accesses a page.
                        path = path.replace("limit=1000", "limit=2")
                conn = http.client.HTTPConnection("127.0.0.1", proxy.upstream, timeout=10)
                conn.request("GET", path)
                res = conn.getresponse()
                body = res.read()
                headers = [(k, v) for k, v in res.getheaders()
                           if k.lower() not in ("content-length", "connection", "keep-alive", "transfer-encoding")]
                if subjects and res.status == 200 and proxy.mode and proxy.mode != "small-pages":
                    body = json.dumps(proxy.tamper(json.loads(body))).encode()
                self.send_response(res.status)
                for k, v in headers:
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                conn.close()

        class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
            daemon_threads = True

        self.server = Server(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def tamper(self, ans):
        if self.mode == "flip-inclusion":
            # One bit of one hash of the first access's inclusion proof.
            h = bytearray(base64.b64decode(ans["entries"][0]["inclusion"][0]))
            h[5] ^= 0x01
            ans["entries"][0]["inclusion"][0] = base64.b64encode(bytes(h)).decode()
        elif self.mode == "omit-access":
            # A log hiding one access: the list, the count and the entries
            # consistently without it (every inclusion proof still holds).
            dropped = ans["indices"].pop()
            ans["count"] -= 1
            ans["entries"] = [e for e in ans["entries"] if e["index"] != dropped]
        elif self.mode == "uncommitted":
            # As before the log's first index commitment: every access is
            # pending, nothing proves the list complete.
            ans["pending"] = ans["entries"] + ans["pending"]
            ans.update(entries=[], indices=[], count=0, commitment=None, proof={"end": "empty", "siblings": []})
        elif self.mode == "no-policy":
            # The answer names no policy in force for the first access.
            ans["entries"][0]["policy"] = None
        elif self.mode == "flip-index-sibling":
            s = bytearray(base64.b64decode(ans["proof"]["siblings"][0]))
            s[0] ^= 0x80
            ans["proof"]["siblings"][0] = base64.b64encode(bytes(s)).decode()
        return ans


# ------------------------------------------------------------- webdriver

class WebDriver:
    def __init__(self, port):
        self.base = "http://127.0.0.1:%d" % port

    def call(self, method, path, body=None):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.base + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=60) as res:
                return json.loads(res.read())["value"]
        except urllib.error.HTTPError as e:
            raise RuntimeError("webdriver %s %s: %s" % (method, path, e.read()[:500]))

    def start(self, user_data_dir):
        caps = {"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": CHROMIUM,
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                         "--no-first-run", "--disable-extensions", "--lang=en-US", "--window-size=1280,900",
                         # Nothing in the background: the test's machine is shared.
                         "--disable-background-networking", "--disable-component-update", "--disable-sync",
                         "--disable-default-apps", "--mute-audio", "--no-default-browser-check",
                         "--disable-features=Translate,OptimizationHints,MediaRouter",
                         "--user-data-dir=" + user_data_dir],
            }}}}
        self.session = self.call("POST", "/session", caps)["sessionId"]

    def s(self, path):
        return "/session/" + self.session + path

    def get(self, url):
        self.call("POST", self.s("/url"), {"url": url})

    def find(self, css):
        return self.call("POST", self.s("/element"), {"using": "css selector", "value": css})[ELEMENT]

    def type(self, css, text):
        e = self.find(css)
        self.call("POST", self.s("/element/%s/clear" % e), {})
        if text:
            self.call("POST", self.s("/element/%s/value" % e), {"text": text})

    def click(self, css):
        self.call("POST", self.s("/element/%s/click" % self.find(css)), {})

    def js(self, script, *args):
        return self.call("POST", self.s("/execute/sync"), {"script": script, "args": list(args)})

    def js_async(self, script, *args):
        return self.call("POST", self.s("/execute/async"), {"script": script, "args": list(args)})

    def resize(self, width, height):
        self.call("POST", self.s("/window/rect"), {"width": width, "height": height})

    def cdp(self, cmd, params):
        # Chromium's DevTools commands, through chromedriver's extension.
        return self.call("POST", self.s("/goog/cdp/execute"), {"cmd": cmd, "params": params})

    def phone(self, on):
        if on:  # a 375 px wide phone screen, as the page's media queries see it
            self.cdp("Emulation.setDeviceMetricsOverride",
                     {"width": 375, "height": 812, "deviceScaleFactor": 2, "mobile": True})
        else:
            self.cdp("Emulation.clearDeviceMetricsOverride", {})

    def screenshot(self, path):
        # The whole page, not only what the window shows, one image pixel
        # per CSS pixel.
        w, h, dpr = self.js("return [document.documentElement.scrollWidth, document.documentElement.scrollHeight,"
                            " window.devicePixelRatio];")
        shot = self.cdp("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True,
                                                    "clip": {"x": 0, "y": 0, "width": w, "height": h, "scale": 1 / dpr}})
        png = base64.b64decode(shot["data"])
        with open(path, "wb") as f:
            f.write(png)
        print("     screenshot " + path, flush=True)

    def quit(self):
        try:
            self.call("DELETE", self.s(""))
        except Exception:
            pass


# Reads every result box as the user sees it.
READ_RESULTS = r"""
const boxes = Array.from(document.querySelectorAll('#results .result'));
return {
  busy: boxes.some((b) => b.dataset.state === 'checking') || document.getElementById('verify').disabled,
  results: boxes.map((b) => ({
    state: b.dataset.state,
    title: b.querySelector('h2').innerText,
    status: (b.querySelector('.status') || {}).innerText || '',
    verified: b.querySelectorAll('.verified').length,
    keySource: (b.querySelector('.key-source') || {dataset: {}}).dataset.source || null,
    rows: Array.from(b.querySelectorAll('tr.access-row')).map((tr) => ({
      index: Number(tr.dataset.index),
      when: tr.querySelector('td[data-label="When"]').innerText,
      who: tr.querySelector('td.who .accessor').innerText,
      actor: (tr.querySelector('td.who .sub') || {}).innerText || '',
      why: tr.querySelector('td.why .purpose').innerText,
      data: tr.querySelector('td.categories').innerText,
      disclosed: tr.querySelector('td.disclosed').classList.contains('yes'),
      disclosedText: tr.querySelector('td.disclosed').innerText,
    })),
  })),
  text: document.body.innerText,
};
"""


# The page's own verification functions against the project's known-answer
# vectors (tests/vectors/tlog.json, computed with Go's sumdb packages): each
# inclusion proof verifies and fails for another leaf; the signed checkpoint
# verifies with its key and fails once altered.
KNOWN_ANSWERS = r"""
const vec = arguments[0], done = arguments[arguments.length - 1];
const bytes = (h) => new Uint8Array((h.match(/../g) || []).map((x) => parseInt(x, 16)));
(async () => {
  const out = { ok: 0, rejected: 0, bad: [] };
  for (const v of vec.inclusion) {
    const cp = { size: BigInt(v.size), root: fromBase64(vec.roots[v.size]) };
    try { await verifyInclusion(bytes(vec.leaves_hex[v.index]), v.index, v.hashes, cp, 'v'); out.ok++; }
    catch (e) { out.bad.push(v.index + '/' + v.size + ': ' + e.message); }
    try {  // the leaf with one more byte
      await verifyInclusion(bytes(vec.leaves_hex[v.index] + '00'), v.index, v.hashes, cp, 'v');
      out.bad.push('accepted another leaf at ' + v.index + '/' + v.size);
    } catch (e) { out.rejected++; }
  }
  const key = await parseVerifierKey(vec.checkpoint.verifier_key);
  const c = await verifyCheckpoint(vec.checkpoint.signed_note, key);
  out.checkpoint = c.origin + ' ' + c.size;
  try { await verifyCheckpoint(vec.checkpoint.signed_note.replace('\n1000\n', '\n1001\n'), key); out.bad.push('accepted an altered checkpoint'); }
  catch (e) { out.rejected++; }
  done(out);
})().catch((e) => done({ error: String(e) }));
"""


def verify_tokens(wd, tokens, trusted_key=""):
    wd.type("#tokens", "\n".join(tokens))
    if trusted_key or wd.js("return document.getElementById('trusted-key').value;"):
        # The key field is in a <details> section: open it as a person would.
        if not wd.js("return document.getElementById('key-panel').open;"):
            wd.click("#key-panel summary")
        wd.type("#trusted-key", trusted_key)
    wd.click("#verify")
    # The click starts the checks; wait until every box has its answer.
    wait_for(lambda: len(wd.js(READ_RESULTS)["results"]) == len(tokens), "result boxes")
    return wait_for(lambda: (lambda r: None if r["busy"] else r)(wd.js(READ_RESULTS)), "the checks to finish")


# ------------------------------------------------------------------- main

def main():
    tmp = tempfile.mkdtemp(prefix="customer-page-")
    procs = []
    try:
        data = os.path.join(tmp, "data")
        port_file = os.path.join(tmp, "port")
        log = open(os.path.join(tmp, "ledgerd.log"), "w")
        procs.append(subprocess.Popen([LEDGERD, "--demo", "--data", data, "--listen", "127.0.0.1:0",
                                       "--port-file", port_file, "--index-interval-ms", "200"],
                                      stdout=log, stderr=subprocess.STDOUT))
        port = int(wait_for(lambda: os.path.exists(port_file) and open(port_file).read().strip(), "ledgerd's port"))
        vrf_key = os.path.join(data, "demo", "holder-vrf.key")
        period = time.strftime("%Y-%m", time.gmtime())

        def token(customer):
            return subprocess.check_output([LEDGERCTL, "subject-token", "--holder", "demo-bank", "--vrf-key", vrf_key,
                                            "--customer", customer, "--period", period], text=True).strip()
        alice, bob, carol = token("alice"), token("bob"), token("carol")
        alice_tag = alice.split(":")[4]

        # The demo's accesses are logged once ledgerd listens; wait until an
        # index commitment covers alice's three.
        def committed():
            try:
                with urllib.request.urlopen("http://127.0.0.1:%d/v1/subjects/%s" % (port, alice_tag), timeout=5) as r:
                    a = json.loads(r.read())
                return a["commitment"] is not None and a["count"] == 3
            except (urllib.error.URLError, ConnectionError):
                return False
        wait_for(committed, "the demo accesses to be committed")
        print("%5.1fs ledgerd --demo up, accesses committed" % (time.time() - START), flush=True)
        with urllib.request.urlopen("http://127.0.0.1:%d/v1/log" % port) as r:
            served_key = json.loads(r.read())["verifier_key"]

        proxy = Proxy(port)
        page = "http://127.0.0.1:%d/" % proxy.port

        cd_log = open(os.path.join(tmp, "chromedriver.log"), "w+")
        procs.append(subprocess.Popen([CHROMEDRIVER, "--port=0"], stdout=cd_log, stderr=subprocess.STDOUT))

        def driver_port():
            cd_log.seek(0)
            m = re.search(r"started successfully on port (\d+)", cd_log.read())
            return m and int(m.group(1))
        wd = WebDriver(wait_for(driver_port, "chromedriver's port"))
        wd.start(os.path.join(tmp, "profile"))
        print("%5.1fs chromium started" % (time.time() - START), flush=True)
        try:
            run_cases(wd, page, proxy, served_key, alice, bob, carol)
        finally:
            wd.quit()
    finally:
        for p in reversed(procs):
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
        shutil.rmtree(tmp, ignore_errors=True)
    if failures:
        print("%d check(s) failed" % len(failures))
        return 1
    print("all checks passed")
    return 0


def run_cases(wd, page, proxy, served_key, alice, bob, carol):
    shots = ARTIFACTS
    # 1. Desktop: alice, bob and carol (nobody accessed carol's data), with
    # the key the server publishes. The page is loaded once; each case
    # below enters new tokens into it, as a person would.
    wd.resize(1280, 900)
    wd.get(page)
    wait_for(lambda: wd.js("return document.getElementById('served-key').textContent;") == served_key,
             "the page to show the served log key")
    r = verify_tokens(wd, [alice, bob, carol])
    a, b, c = r["results"]
    check(a["state"] == "verified" and a["verified"] == 1 and "Verified" in a["status"], "alice: verified")
    check("alice" in a["title"] and "demo-bank" in a["title"], "alice: heading names the customer and bank")
    check(len(a["rows"]) == 3, "alice: 3 accesses listed (got %d)" % len(a["rows"]))
    check([x["index"] for x in a["rows"]] == sorted(x["index"] for x in a["rows"]), "alice: rows in log order")
    check(all(x["who"] == "chat-banking" and x["actor"] == "by demo-agent" for x in a["rows"]),
          "alice: accessor chat-banking, actor demo-agent")
    check(sorted(x["why"] for x in a["rows"]) == ["Answering your own requests for help"] * 2 + ["Making a payment you asked for"],
          "alice: purposes in words")
    check(any(x["data"] == "account details, account and routing numbers" for x in a["rows"]),
          "alice: categories in words")
    check(all(x["disclosed"] and "✓" in x["disclosedText"] for x in a["rows"]), "alice: every access disclosed ✓")
    check(all(re.match(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2} UTC$", x["when"]) for x in a["rows"]), "alice: times shown")
    check(a["keySource"] == "served", "alice: says the served key was used")
    check(b["state"] == "verified" and len(b["rows"]) == 2, "bob: verified, 2 accesses")
    check(sorted(x["why"] for x in b["rows"]) == ["Answering your own requests for help", "Detecting and preventing fraud"],
          "bob: purposes in words")
    check(c["state"] == "verified" and len(c["rows"]) == 0 and "nobody accessed" in c["status"],
          "carol (no accesses): verified empty list (non-membership proof)")
    check("VRF" in r["text"] and "ledger-verify subject" in r["text"], "page says the VRF proof is not checked here")
    wd.screenshot(os.path.join(shots, "customer-page-desktop.png"))

    with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "vectors", "tlog.json")) as f:
        vectors = json.load(f)
    ka = wd.js_async(KNOWN_ANSWERS, vectors)
    n = len(vectors["inclusion"])
    check(ka.get("ok") == n and not ka.get("bad") and ka.get("checkpoint") == "example.com/ledger/test 1000"
          and ka.get("rejected") == n + 1,
          "page's verifier on known answers: %s of %d inclusion proofs, %s rejections, %r" %
          (ka.get("ok"), n, ka.get("rejected"), ka.get("bad") or ka.get("error")))

    # 2. Phone width (375 px): same answer, no sideways scrolling.
    wd.phone(True)
    r = verify_tokens(wd, [alice])
    check(r["results"][0]["state"] == "verified" and len(r["results"][0]["rows"]) == 3, "phone: alice verified, 3 rows")
    widths = wd.js("return [document.documentElement.scrollWidth, window.innerWidth];")
    check(widths[0] <= widths[1], "phone: no horizontal overflow (%d <= %d px)" % tuple(widths))
    check(wd.js("return getComputedStyle(document.querySelector('tr.access-row')).display;") == "block",
          "phone: accesses shown as cards")
    wd.screenshot(os.path.join(shots, "customer-page-phone.png"))
    # What the phone's screen shows of the result, at its own resolution.
    wd.js("document.querySelector('#results .result').scrollIntoView();")
    with open(os.path.join(shots, "customer-page-phone-screen.png"), "wb") as f:
        f.write(base64.b64decode(wd.call("GET", wd.s("/screenshot"))))
    wd.phone(False)

    # 3. Tampered answers: each must fail, and nothing may say verified.
    for mode, why in [("flip-inclusion", "inclusion proof"), ("omit-access", "index proof"),
                      ("flip-index-sibling", "index proof")]:
        proxy.mode = mode
        r = verify_tokens(wd, [alice])
        x = r["results"][0]
        check(x["state"] == "verify-failed" and "Verification failed" in x["status"] and why in x["status"],
              "tampered (%s): fails naming the %s — %r" % (mode, why, x["status"]))
        check(x["verified"] == 0 and "Verified" not in r["text"] and not x["rows"],
              "tampered (%s): no 'Verified', no rows" % mode)
        if mode == "flip-inclusion":
            wd.screenshot(os.path.join(shots, "customer-page-tampered.png"))
    # Several pages: the page asks for the next offset until it has every
    # listed access.
    proxy.mode = "small-pages"
    proxy.subject_requests.clear()
    r = verify_tokens(wd, [alice])
    x = r["results"][0]
    check(x["state"] == "verified" and len(x["rows"]) == 3 and
          [p.split("?")[1] for p in proxy.subject_requests] == ["offset=0&limit=1000", "offset=2&limit=1000"],
          "paged answers (2 a page): verified, 3 rows, 2 requests %r" % proxy.subject_requests)

    # An access for which no policy in force is named: listed with ✗.
    proxy.mode = "no-policy"
    r = verify_tokens(wd, [alice])
    rows = r["results"][0]["rows"]
    check(len(rows) == 3 and not rows[0]["disclosed"] and "✗" in rows[0]["disclosedText"] and
          "no policy" in rows[0]["disclosedText"] and all(x["disclosed"] for x in rows[1:]),
          "no policy named: that access shows ✗ %r" % (rows[0]["disclosedText"] if rows else None))

    # Before any index commitment: the accesses (each proven in the log) but
    # not "verified", since nothing proves the list complete.
    proxy.mode = "uncommitted"
    r = verify_tokens(wd, [alice])
    x = r["results"][0]
    check(x["state"] == "unproven" and "Not yet provable" in x["status"] and len(x["rows"]) == 3,
          "no commitment yet: 3 accesses listed, 'Not yet provable' %r" % x["status"])
    check(x["verified"] == 0 and "Verified" not in r["text"], "no commitment yet: no 'Verified'")
    proxy.mode = None

    # 4. A malformed token next to a good one.
    bad = alice.replace(":" + alice.split(":")[2] + ":", ":2026-13:")
    r = verify_tokens(wd, [bad, "hello", alice])
    x, y, z = r["results"]
    check(x["state"] == "token-error" and "period" in x["status"], "malformed token (month 13): plain error %r" % x["status"])
    check(y["state"] == "token-error" and "ledger-subject-v1" in y["status"], "not a token: plain error %r" % y["status"])
    check(z["state"] == "verified" and len(z["rows"]) == 3, "the good token next to them still verifies")
    wd.screenshot(os.path.join(shots, "customer-page-errors.png"))

    # Tokens from a file, opened with the page's file input.
    token_file = os.path.join(os.path.dirname(shots), "customer-page-tokens.txt")
    with open(token_file, "w") as f:
        f.write(alice + "\n" + bob + "\n")
    wd.type("#tokens", "")
    wd.call("POST", wd.s("/element/%s/value" % wd.find("#token-file")), {"text": token_file})
    wait_for(lambda: wd.js("return document.getElementById('tokens').value;").split() == [alice, bob],
             "the file's tokens in the text box")
    wd.click("#verify")
    wait_for(lambda: len(wd.js(READ_RESULTS)["results"]) == 2, "result boxes")
    r = wait_for(lambda: (lambda r: None if r["busy"] else r)(wd.js(READ_RESULTS)), "the checks to finish")
    check([x["state"] for x in r["results"]] == ["verified"] * 2 and [len(x["rows"]) for x in r["results"]] == [3, 2],
          "tokens from a file: both verified")
    os.remove(token_file)

    # 5. The server goes away mid-check.
    proxy.mode = "down"
    r = verify_tokens(wd, [alice])
    x = r["results"][0]
    check(x["state"] == "server-error" and "could not be reached" in x["status"],
          "server unreachable: plain error %r" % x["status"])
    proxy.mode = None

    # 6. A key the customer obtained independently. The right one: verified,
    # and the page says it used it. Another log's key: the checkpoint is not
    # signed by it.
    r = verify_tokens(wd, [alice], served_key)
    x = r["results"][0]
    check(x["state"] == "verified" and x["keySource"] == "entered", "entered key: verified, page says which key")
    name = served_key.split("+")[0]
    pub = hashlib.sha256(b"another log").digest()
    key_id = hashlib.sha256(name.encode() + b"\n\x01" + pub).digest()[:4].hex()
    other = "%s+%s+%s" % (name, key_id, base64.b64encode(b"\x01" + pub).decode())
    r = verify_tokens(wd, [alice], other)
    x = r["results"][0]
    check(x["state"] == "verify-failed" and "not signed by the log key" in x["status"],
          "another log's key: fails %r" % x["status"])
    r = verify_tokens(wd, [alice], "not-a-key")
    check(r["results"][0]["state"] == "token-error" and "log key you entered" in r["results"][0]["status"],
          "malformed entered key: plain error")


if __name__ == "__main__":
    sys.exit(main())
