#!/usr/bin/env python3
"""The dashboard of `btest-server-pro serve --http` in a real browser (headless Chromium).

A real server (SQLite file) runs a real btest test from a user named `<script>alert(1)</script>`;
while it runs, Chromium loads the dashboard, runs its JavaScript (Chart.js served by the server)
and dumps the resulting DOM. Asserted: the live session is there with a non-zero rate, its chart
was drawn (the page records the painted pixels of the canvas), and the user name is text, not
markup. A screenshot is written to the output folder (a CI artifact).

Standard library only. Without Chromium the test reports "chromium is not installed" (ctest:
skipped) unless BTEST_REQUIRE_CHROMIUM=1, as CI sets: then it fails.

Ports (slot 4 of tests/pro/http_test.cpp's scheme): TCP 13104, UDP 12200.., HTTP 13204.
"""
import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request

TCP, UDP, HTTP = 13104, 5000 + 300 * 4, 13204
USER = "<script>alert(1)</script>"


def find_chromium():
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


def fail(msg):
    print("FAIL: " + msg, flush=True)
    sys.exit(1)


def get_json(path):
    with urllib.request.urlopen("http://127.0.0.1:%d%s" % (HTTP, path), timeout=10) as r:
        return json.load(r)


def chromium_run(chromium, profile, extra, timeout=90):
    # --virtual-time-budget: the page's timers run until 4 s of page time passed (network
    # waits pause that clock), so the dashboard refreshes a few times before the dump.
    # Nothing but the page: no background fetches (the CI machine has no network, and
    # refused connections would only slow Chromium down), no QUIC, no updates, no sync.
    args = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
            "--disable-extensions", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--disable-quic", "--user-data-dir=" + profile, "--virtual-time-budget=4000"]
    args += extra + ["http://127.0.0.1:%d/" % HTTP]
    return subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout, text=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--pro", required=True)
    ap.add_argument("--btest", required=True)
    ap.add_argument("--out", required=True, help="folder for the screenshot")
    a = ap.parse_args()

    chromium = find_chromium()
    if not chromium:
        if os.environ.get("BTEST_REQUIRE_CHROMIUM") == "1":
            fail("chromium is not installed, and BTEST_REQUIRE_CHROMIUM=1")
        print("chromium is not installed (Debian: apt-get install chromium): skipped")
        return 0

    with tempfile.TemporaryDirectory(prefix="btest_dash_") as tmp:
        db = "sqlite:" + os.path.join(tmp, "dash.db")
        r = subprocess.run([a.pro, "user", "add", USER, "-p", "pw", "--db", db], capture_output=True, text=True)
        if r.returncode != 0:
            fail("user add: " + r.stderr)
        srv = subprocess.Popen([a.pro, "serve", "--db", db, "-P", str(TCP), "--listen", "127.0.0.1", "--listen6", "none",
                                "--udp-port-start", str(UDP), "--udp-port-end", str(UDP + 255), "--threads", "2",
                                "--http", "127.0.0.1:%d" % HTTP, "--ip-quota-daily", "20G",
                                "--server-id", "btest.example.net"],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        cli = None
        try:
            deadline = time.time() + 15
            while True:  # ready once the HTTP API answers
                try:
                    get_json("/api/v1/info")
                    break
                except OSError:
                    if time.time() > deadline or srv.poll() is not None:
                        fail("the server did not start")
                    time.sleep(0.05)
            # A finished test for the history, then a rate-limited download, long enough for the
            # browser to watch it.
            r = subprocess.run([a.btest, "-c", "127.0.0.1", "-P", str(TCP), "-a", USER, "-p", "pw", "-d", "1", "-u",
                                "-t", "-r", "-b", "10M"], capture_output=True, text=True, timeout=60)
            if r.returncode != 0:
                fail("the first test failed: " + r.stderr)
            # A rate-limited download, long enough for the browser to watch it.
            cli = subprocess.Popen([a.btest, "-c", "127.0.0.1", "-P", str(TCP), "-a", USER, "-p", "pw", "-d", "25",
                                    "-r", "-b", "30M"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            deadline = time.time() + 15
            while True:
                live = get_json("/api/v1/live")["sessions"]
                if live and len(live[0]["intervals"]) >= 2:
                    break
                if time.time() > deadline:
                    fail("no live session with intervals in the API")
                time.sleep(0.1)

            dom = chromium_run(chromium, os.path.join(tmp, "profile"), ["--dump-dom"])
            if dom.returncode != 0:
                fail("chromium --dump-dom exited %d: %s" % (dom.returncode, dom.stderr[-2000:]))
            html = dom.stdout
            os.makedirs(a.out, exist_ok=True)
            with open(os.path.join(a.out, "dashboard_dom.html"), "w") as f:
                f.write(html)

            refreshes = re.search(r'data-refreshes="(\d+)"', html)
            if not refreshes or int(refreshes.group(1)) < 1:
                fail("the dashboard's script did not run")
            if "cannot reach the API" in html:
                fail("the dashboard could not reach the API")
            m = re.search(r'<div class="session" data-session-id="(\d+)">(.*?)</canvas>', html, re.S)
            if not m:
                fail("the live session is not on the page")
            session = m.group(2)
            rates = [int(x) for x in re.findall(r'class="rate" data-bps="(\d+)"', session)]
            if not rates or max(rates) <= 0:
                fail("the live session shows no non-zero rate: %r" % rates)
            canvas = re.search(r'<canvas[^>]*data-points="(\d+)"[^>]*data-painted="(\d+)"', session)
            if not canvas:
                fail("no chart for the live session (is Chart.js served at /static/chart.js?)")
            if int(canvas.group(1)) < 2 or int(canvas.group(2)) < 1000:
                fail("the chart is empty: %s points, %s pixels painted" % canvas.groups())
            # The hostile user name is text: escaped in the serialized DOM, never an element.
            escaped = "&lt;script&gt;alert(1)&lt;/script&gt;"
            if '<span class="user">' + escaped + "</span>" not in session:
                fail("the user name is not shown as text")
            if "<script>alert(1)" in html:
                fail("the user name became markup")

            shot = os.path.join(a.out, "dashboard.png")
            s = chromium_run(chromium, os.path.join(tmp, "profile"),
                             ["--hide-scrollbars", "--window-size=1400,900", "--screenshot=" + shot])
            if s.returncode != 0 or not os.path.exists(shot) or os.path.getsize(shot) < 10000:
                fail("no screenshot: %s" % s.stderr[-2000:])
            with open(shot, "rb") as f:
                if f.read(8) != b"\x89PNG\r\n\x1a\n":
                    fail("the screenshot is not a PNG")
            print("ok: live session %s at %.2f Mbit/s, chart of %s points (%s pixels), screenshot %s"
                  % (m.group(1), max(rates) / 1e6, canvas.group(1), canvas.group(2), shot))
        finally:
            if cli and cli.poll() is None:
                cli.send_signal(signal.SIGINT)
                try:
                    cli.wait(10)
                except subprocess.TimeoutExpired:
                    cli.kill()
            srv.send_signal(signal.SIGTERM)
            try:
                srv.wait(10)
            except subprocess.TimeoutExpired:
                srv.kill()
    return 0


if __name__ == "__main__":
    sys.exit(main())
