"""The report in a real browser: headless Chromium opens it, no console errors, nothing
fetched, the overview visible and within a 1280-px viewport; full-page screenshots saved.

Chromium is Debian's `chromium` package, installed here with apt-get when missing. The
test talks to it over the Chrome DevTools protocol on `--remote-debugging-pipe` (JSON
messages separated by NUL bytes on file descriptors 3 and 4), so no websocket library
is needed. Screenshots: `<pytest tmp>/report.png` and `out/screenshots/report.png`.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import json
import os
import re
import select
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from paths import ROOT

REPO = ROOT
CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOTS = REPO / "out" / "screenshots"
VIEWPORT = 1280
PHONE = 390
AS_OF = "2026-11-23"


def chromium() -> Path:
    """Debian's chromium, installed with apt-get when missing (skip only if that is impossible)."""
    if CHROMIUM.exists():
        return CHROMIUM
    apt = shutil.which("apt-get")
    if apt is None:
        pytest.skip("chromium is not installed and apt-get is not available to install it")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run([apt, "update", "-qq"], check=True, env=env)
    subprocess.run([apt, "install", "-y", "-qq", "chromium"], check=True, env=env)
    assert CHROMIUM.exists(), "apt-get install chromium did not provide /usr/bin/chromium"
    return CHROMIUM


def high_fd(fd: int) -> int:
    """A copy of `fd` numbered 10 or above (the original is closed)."""
    high = fcntl.fcntl(fd, fcntl.F_DUPFD, 10)
    os.close(fd)
    return high


class DevTools:
    """A minimal Chrome DevTools protocol client over --remote-debugging-pipe."""

    def __init__(self, binary: Path, profile: Path) -> None:
        to_chrome_r, self._to_chrome = os.pipe()
        self._from_chrome, from_chrome_w = os.pipe()
        # Move the browser's ends above fd 9 so that placing them on 3 and 4 clobbers nothing.
        to_chrome_r, from_chrome_w = (high_fd(fd) for fd in (to_chrome_r, from_chrome_w))
        args = [
            str(binary),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
            f"--user-data-dir={profile}",
            "--remote-debugging-pipe",
            "about:blank",
        ]
        # The browser reads commands on fd 3 and writes replies on fd 4.
        script = (
            f'exec "$@" 3<&{to_chrome_r} 4>&{from_chrome_w} {to_chrome_r}<&- {from_chrome_w}>&-'
        )
        self.proc = subprocess.Popen(
            ["/bin/bash", "-c", script, "bash", *args],
            pass_fds=(to_chrome_r, from_chrome_w),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        os.close(to_chrome_r)
        os.close(from_chrome_w)
        self._buffer = b""
        self._next_id = 0
        self.events: list[dict[str, Any]] = []

    def send(
        self, method: str, params: dict[str, Any] | None = None, session: str | None = None
    ) -> dict[str, Any]:
        """Send a command and wait for its result (events that arrive meanwhile are kept)."""
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method, "params": params or {}}
        if session is not None:
            message["sessionId"] = session
        os.write(self._to_chrome, json.dumps(message).encode() + b"\0")
        while True:
            reply = self._read(30.0)
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply["result"]
            self.events.append(reply)

    def wait_for(self, method: str, timeout: float = 30.0) -> dict[str, Any]:
        """The first event named `method` (already received or arriving within `timeout`)."""
        deadline = time.monotonic() + timeout
        for event in self.events:
            if event.get("method") == method:
                return event
        while True:
            event = self._read(max(deadline - time.monotonic(), 0.01))
            self.events.append(event)
            if event.get("method") == method:
                return event

    def _read(self, timeout: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            ready, _, _ = select.select([self._from_chrome], [], [], max(left, 0))
            if not ready:
                raise TimeoutError("no message from chromium")
            chunk = os.read(self._from_chrome, 1 << 20)
            if not chunk:
                raise RuntimeError("chromium closed the DevTools pipe")
            self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(message)

    def close(self) -> None:
        """Ask the browser to quit; kill it if it does not."""
        with contextlib.suppress(RuntimeError, TimeoutError, OSError):
            self.send("Browser.close")
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        os.close(self._to_chrome)
        os.close(self._from_chrome)


def sample_report(tmp_path: Path) -> Path:
    """report.html of the sample data, made by the installed `cs-metrics weekly`."""
    data = REPO / "sample_data"
    if not (data / "messages.csv").exists():
        from cs_metrics.generate import GeneratorConfig, generate, write_tables

        data = tmp_path / "data"
        config = GeneratorConfig(shops=8, start=None, days=15, messages=None, seed=7, bad_rows=True)
        write_tables(generate(config), data, "csv")
    out = tmp_path / "out"
    entry = Path(sys.executable).with_name("cs-metrics")
    done = subprocess.run(
        [str(entry), "weekly", "--data", str(data), "--out", str(out), "--as-of", AS_OF],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return out / AS_OF / "report.html"


MEASURE = """(() => {
  const table = document.querySelector('table.overview');
  const box = table.getBoundingClientRect();
  const style = getComputedStyle(table);
  return {
    width: box.width, left: box.left, right: box.right, height: box.height,
    visible: box.width > 0 && box.height > 0 && style.visibility === 'visible'
      && style.display !== 'none',
    rows: table.querySelectorAll('tr[data-shop-id]').length,
    pageWidth: document.documentElement.scrollWidth,
    pageHeight: document.documentElement.scrollHeight,
  };
})()"""


def open_page(tools: DevTools, url: str, width: int, mobile: bool) -> tuple[str, dict[str, Any]]:
    """A new tab at `width` CSS pixels showing `url`; its session and the overview's box."""
    target = tools.send("Target.createTarget", {"url": "about:blank"})["targetId"]
    session = tools.send("Target.attachToTarget", {"targetId": target, "flatten": True})[
        "sessionId"
    ]
    for domain in ("Page", "Runtime", "Log", "Network"):
        tools.send(f"{domain}.enable", session=session)
    tools.send(
        "Emulation.setDeviceMetricsOverride",
        {"width": width, "height": 900, "deviceScaleFactor": 1, "mobile": mobile},
        session=session,
    )
    tools.events.clear()
    tools.send("Page.navigate", {"url": url}, session=session)
    tools.wait_for("Page.loadEventFired")
    measured = tools.send(
        "Runtime.evaluate", {"expression": MEASURE, "returnByValue": True}, session=session
    )["result"]["value"]
    return session, measured


def screenshot(tools: DevTools, session: str, width: int, height: float, path: Path) -> None:
    """A full-page PNG of the tab."""
    shot = tools.send(
        "Page.captureScreenshot",
        {
            "format": "png",
            "captureBeyondViewport": True,
            "clip": {"x": 0, "y": 0, "width": width, "height": height, "scale": 1},
        },
        session=session,
    )
    path.write_bytes(base64.b64decode(shot["data"]))


def problems(events: list[dict[str, Any]]) -> list[str]:
    """Console errors, uncaught exceptions and any request that is not the local file."""
    found = []
    for event in events:
        method, params = event.get("method"), event.get("params", {})
        if method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
            found.append(f"console: {params.get('args')}")
        elif method == "Runtime.exceptionThrown":
            found.append(f"exception: {params.get('exceptionDetails')}")
        elif method == "Log.entryAdded" and params["entry"].get("level") == "error":
            found.append(f"log: {params['entry'].get('text')}")
        elif method == "Network.requestWillBeSent":
            url = params["request"]["url"]
            if not url.startswith(("file://", "data:", "about:")):
                found.append(f"request: {url}")
    return found


@pytest.mark.slow
def test_sample_report_in_headless_chromium(tmp_path: Path) -> None:
    """No console errors or fetches; the overview is visible and fits 1280 px; screenshots."""
    binary = chromium()
    page = sample_report(tmp_path)
    tools = DevTools(binary, tmp_path / "profile")
    try:
        session, desktop = open_page(tools, page.as_uri(), VIEWPORT, mobile=False)
        assert problems(tools.events) == []
        assert desktop["visible"], desktop
        assert desktop["rows"] > 0
        assert desktop["left"] >= 0 and desktop["right"] <= VIEWPORT, desktop
        assert desktop["pageWidth"] <= VIEWPORT, desktop
        shot = tmp_path / "report.png"
        screenshot(tools, session, VIEWPORT, desktop["pageHeight"], shot)

        session, phone = open_page(tools, page.as_uri(), PHONE, mobile=True)
        assert problems(tools.events) == []
        assert phone["pageWidth"] <= PHONE, phone
        phone_shot = tmp_path / "report-phone.png"
        screenshot(tools, session, PHONE, min(phone["pageHeight"], 4000), phone_shot)
    finally:
        tools.close()
    assert shot.read_bytes().startswith(b"\x89PNG") and shot.stat().st_size > 10_000
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(shot, SCREENSHOTS / "report.png")
    shutil.copyfile(phone_shot, SCREENSHOTS / "report-phone.png")


FITS = """(() => {
  const page = document.documentElement;
  const wide = [...document.querySelectorAll('.scroll, table, section, details, ol, ul')]
    .filter(e => e.scrollWidth > e.clientWidth + 1 && getComputedStyle(e).overflowX !== 'auto')
    .map(e => `${e.tagName}.${e.className}#${e.id} ${e.scrollWidth}>${e.clientWidth}`);
  const boxes = [...document.querySelectorAll('.scroll')]
    .filter(e => e.scrollWidth > e.clientWidth + 1)
    .map(e => `scroll>${e.firstElementChild && e.firstElementChild.className}`);
  const first = document.querySelector('table.overview tr.group th');
  return {pageWidth: page.scrollWidth, clientWidth: page.clientWidth, wide, boxes,
          height: page.scrollHeight, firstGroup: first ? first.textContent.trim() : null};
})()"""


def evaluate(tools: DevTools, session: str, expression: str) -> Any:
    """The value of a JavaScript expression in the tab."""
    return tools.send(
        "Runtime.evaluate", {"expression": expression, "returnByValue": True}, session=session
    )["result"]["value"]


def portfolio_report(tmp_path: Path, shops: int) -> Path:
    """report.html of a generated week of `shops` shops, by the installed `cs-metrics weekly`."""
    from cs_metrics.generate import GeneratorConfig, generate, write_tables

    data = tmp_path / "data"
    config = GeneratorConfig(shops=shops, days=15, messages=shops * 150, seed=7, bad_rows=False)
    write_tables(generate(config), data, "csv")
    out = tmp_path / "out"
    entry = Path(sys.executable).with_name("cs-metrics")
    for as_of in ("2026-11-16", AS_OF):
        done = subprocess.run(
            [str(entry), "weekly", "--data", str(data), "--out", str(out), "--as-of", as_of],
            capture_output=True,
            text=True,
            check=False,
        )
        assert done.returncode == 0, done.stderr
    return out / AS_OF / "report.html"


@pytest.mark.slow
def test_a_200_shop_week_fits_desktop_and_phone_and_links_open_the_shop(tmp_path: Path) -> None:
    """200 generated shops: at 1400 and 390 px nothing is wider than the viewport (page, and
    every table container); the first group is "Act now"; a shop's link opens its page with
    its section open and a link back to its row; screenshots saved."""
    binary = chromium()
    page = portfolio_report(tmp_path, 200)
    assert len(list((page.parent / "shops").glob("*.html"))) == 200
    tools = DevTools(binary, tmp_path / "profile")
    shots = []
    try:
        for width, mobile, name in ((1400, False, "portfolio"), (PHONE, True, "portfolio-phone")):
            session, _ = open_page(tools, page.as_uri(), width, mobile)
            assert problems(tools.events) == []
            fits = evaluate(tools, session, FITS)
            assert fits["pageWidth"] <= width, fits
            assert fits["wide"] == [] and fits["boxes"] == [], fits
            assert fits["firstGroup"].startswith("Act now"), fits
            shot = tmp_path / f"{name}.png"
            screenshot(tools, session, width, min(fits["height"], 2400), shot)
            shots.append(shot)

            tools.events.clear()
            href = evaluate(
                tools,
                session,
                "(() => { const a = document.querySelector('table.overview td.shop a');"
                " a.click(); return a.getAttribute('href'); })()",
            )
            assert re.fullmatch(r"shops/[A-Za-z0-9_-]+\.html", href), href
            tools.wait_for("Page.loadEventFired")
            time.sleep(0.2)
            shown = evaluate(
                tools,
                session,
                "(() => { const d = document.querySelector('details.shop');"
                " const b = d.getBoundingClientRect();"
                " return {url: location.href, open: d.open, height: b.height,"
                " back: document.querySelector('p.back a').getAttribute('href'),"
                " pageWidth: document.documentElement.scrollWidth}; })()",
            )
            assert shown["url"].endswith(href), shown
            assert shown["open"] and shown["height"] > 300, shown
            assert shown["back"].startswith("../report.html#shop-"), shown
            fits = evaluate(tools, session, FITS)
            assert fits["pageWidth"] <= width and fits["boxes"] == [], fits
            shot = tmp_path / f"{name}-shop.png"
            screenshot(tools, session, width, 2400, shot)
            shots.append(shot)
    finally:
        tools.close()
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    for shot in shots:
        assert shot.read_bytes().startswith(b"\x89PNG")
        shutil.copyfile(shot, SCREENSHOTS / shot.name)


@pytest.mark.slow
def test_in_a_small_report_a_shop_link_shows_its_open_section(tmp_path: Path) -> None:
    """With the details inline (8 shops), following a shop's link scrolls to its section,
    which is open and targeted, and its back link leads to the overview."""
    binary = chromium()
    page = sample_report(tmp_path)
    tools = DevTools(binary, tmp_path / "profile")
    try:
        session, _ = open_page(tools, page.as_uri(), VIEWPORT, mobile=False)
        href = evaluate(
            tools,
            session,
            "(() => { const a = document.querySelectorAll('table.overview td.shop a')[1];"
            " a.click(); return a.getAttribute('href'); })()",
        )
        assert href.startswith("#shop-")
        time.sleep(0.3)
        shown = evaluate(
            tools,
            session,
            "(() => { const d = document.querySelector(':target');"
            " const b = d.getBoundingClientRect();"
            " return {id: d.id, tag: d.tagName, open: d.open, top: b.top, height: b.height,"
            " back: d.querySelector('p.back a').getAttribute('href')}; })()",
        )
        assert "#" + shown["id"] == href and shown["tag"] == "DETAILS", shown
        assert shown["open"] and abs(shown["top"]) < 5 and shown["height"] > 300, shown
        assert shown["back"] == "#overview"
    finally:
        tools.close()
