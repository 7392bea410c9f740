"""Open the run report in headless Chromium: it renders, every image loads, the console is clean.

Chromium is driven over the DevTools protocol on a pipe (--remote-debugging-pipe:
the browser reads commands on fd 3 and writes answers on fd 4), so no port is
opened. A control page with a broken image and an external resource checks that
the checker itself catches what it must.
"""

from __future__ import annotations

import json
import os
import queue
import shutil
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from test_registry_runfolders import make_run_folder

from l1flow.records import Baseline, read_summary
from l1flow.registry.criteria import AcceptanceCriteria, ResourceBudget
from l1flow.report import render_report

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

if CHROMIUM is None and os.environ.get("CI"):
    pytest.fail("chromium is not installed but CI is set: setup must `apt-get install -y chromium`", pytrace=False)
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(CHROMIUM is None, reason="Debian chromium is not installed (apt-get install -y chromium)"),
]

_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--remote-debugging-pipe",
    "--window-size=1200,1600",
]

_PAGE_STATE = """JSON.stringify({
  title: document.title,
  headings: Array.from(document.querySelectorAll('h2')).map(h => h.textContent.trim()),
  images: Array.from(document.images).map(i => ({alt: i.alt, complete: i.complete, width: i.naturalWidth})),
  tables: document.querySelectorAll('table').length,
  height: document.body.scrollHeight,
  text: document.body.innerText
})"""


@dataclass
class PageLoad:
    """What Chromium saw while loading one page."""

    state: dict[str, Any]
    console_errors: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    failed_requests: list[str] = field(default_factory=list)


class DevToolsPipe:
    """A minimal DevTools-protocol client over Chromium's fd 3 / fd 4 pipe."""

    def __init__(self, profile: Path) -> None:
        to_browser_r, self._to_browser = os.pipe()
        self._from_browser, from_browser_w = os.pipe()

        def wire_pipes() -> None:  # runs in the child before exec
            a, b = os.dup(to_browser_r), os.dup(from_browser_w)
            os.dup2(a, 3)
            os.dup2(b, 4)

        self.process = subprocess.Popen(
            [CHROMIUM, *_FLAGS, f"--user-data-dir={profile}", "about:blank"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            close_fds=False, preexec_fn=wire_pipes,
        )
        os.close(to_browser_r)
        os.close(from_browser_w)
        self._messages: queue.Queue[dict[str, Any]] = queue.Queue()
        self._stderr: list[bytes] = []
        threading.Thread(target=self._read, daemon=True).start()
        threading.Thread(target=lambda: self._stderr.extend(self.process.stderr), daemon=True).start()
        self._next_id = 0
        self.events: list[dict[str, Any]] = []

    def _read(self) -> None:
        buffer = b""
        while chunk := os.read(self._from_browser, 1 << 16):
            buffer += chunk
            while b"\0" in buffer:
                message, buffer = buffer.split(b"\0", 1)
                self._messages.put(json.loads(message))

    def _next(self, deadline: float) -> dict[str, Any]:
        try:
            return self._messages.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            raise AssertionError(
                "Chromium did not answer in time; its stderr:\n" + b"".join(self._stderr).decode(errors="replace")[-3000:]
            ) from None

    def call(self, method: str, params: dict[str, Any] | None = None, session: str | None = None,
             timeout: float = 120.0) -> dict[str, Any]:
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self._to_browser, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            reply = self._next(deadline)
            if reply.get("id") == self._next_id:
                assert "error" not in reply, f"{method}: {reply['error']}"
                return reply.get("result", {})
            self.events.append(reply)

    def wait_for(self, method: str, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        while not any(e.get("method") == method for e in self.events):
            self.events.append(self._next(deadline))

    def close(self) -> None:
        try:
            self.call("Browser.close", timeout=10)
        except (AssertionError, OSError):
            pass
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        os.close(self._to_browser)


def load_page(url: str, profile: Path, screenshot: Path | None = None) -> PageLoad:
    browser = DevToolsPipe(profile)
    try:
        target = browser.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = browser.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Page", "Runtime", "Log", "Network"):
            browser.call(f"{domain}.enable", session=session)
        browser.call("Page.navigate", {"url": url}, session=session)
        browser.wait_for("Page.loadEventFired")
        result = browser.call(
            "Runtime.evaluate", {"expression": _PAGE_STATE, "returnByValue": True}, session=session
        )["result"]["value"]
        if screenshot is not None:
            import base64

            shot = browser.call("Page.captureScreenshot", {"format": "png"}, session=session)
            screenshot.write_bytes(base64.b64decode(shot["data"]))
        # Let late console messages arrive.
        browser.call("Runtime.evaluate", {"expression": "1"}, session=session)
        load = PageLoad(state=json.loads(result))
        for event in browser.events:
            method, params = event.get("method"), event.get("params", {})
            if method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
                load.console_errors.append(" ".join(str(a.get("value", a.get("description"))) for a in params["args"]))
            elif method == "Runtime.exceptionThrown":
                load.console_errors.append(params["exceptionDetails"].get("text", "exception"))
            elif method == "Log.entryAdded" and params["entry"]["level"] == "error":
                load.console_errors.append(params["entry"]["text"])
            elif method == "Network.requestWillBeSent":
                load.requests.append(params["request"]["url"])
            elif method == "Network.loadingFailed":
                load.failed_requests.append(params.get("errorText", "failed"))
        return load
    finally:
        browser.close()


def test_report_renders_in_chromium_with_images_and_clean_console(tmp_path: Path) -> None:
    models = (("ae", "dense_ae"), ("bdt", "bdt_student"))
    first = make_run_folder(tmp_path / "run1", run_id="run-1", seed=1, models=models)
    second = make_run_folder(tmp_path / "run2", run_id="run-2", seed=2, tag="Calib_v2", first_run=391500,
                             signal_shift=0.9, mismatches=2, models=models)
    previous = Baseline.of_run(read_summary(first))
    criteria = AcceptanceCriteria(max_latency_ns=50.0, resources=ResourceBudget(LUT=60000, FF=20000))
    report = render_report(second, previous, criteria)

    load = load_page(report.as_uri(), tmp_path / "profile", tmp_path / "report.png")

    assert load.console_errors == []
    assert load.failed_requests == []
    # The page itself is the only request; every image is an inline data URI.
    assert [u for u in load.requests if not u.startswith("data:")] == [report.as_uri()]
    state = load.state
    assert state["title"] == "l1flow run run-2"
    assert state["headings"][:2] == ["Conditions change that triggered this run", "Overview"]
    assert [h for h in state["headings"][2:]] == ["ae (dense_ae)", "bdt (bdt_student)"]
    # Per model: efficiency and AUC comparison charts + ROC + scores + residuals.
    assert len(state["images"]) == 2 * 5
    assert all(i["complete"] and i["width"] > 0 for i in state["images"]), state["images"]
    assert state["tables"] >= 2 + 2 * 4
    text = state["text"]
    assert "verilator 2 of 2000 events differ" in text
    assert "68.3 %" in text  # 41,000 of a 60,000 LUT budget
    assert "Calib_v2" in text and "runs 391500 – open" in text
    assert state["height"] > 3000
    assert (tmp_path / "report.png").stat().st_size > 10_000


def test_checker_catches_broken_image_and_external_request(tmp_path: Path) -> None:
    page = tmp_path / "broken.html"
    page.write_text(
        "<!DOCTYPE html><html><head><title>broken</title></head><body><h2>x</h2>"
        '<img alt="bad" src="data:image/png;base64,iVBORw0KGgoAAAAN">'
        '<img alt="missing" src="missing.png">'
        "<script>console.error('boom')</script></body></html>"
    )
    load = load_page(page.as_uri(), tmp_path / "profile")
    widths = {i["alt"]: i["width"] for i in load.state["images"]}
    assert widths == {"bad": 0, "missing": 0}
    assert "boom" in load.console_errors
    assert any(u.endswith("/missing.png") for u in load.requests)
    assert load.failed_requests
