"""The report in headless Chromium: no console errors, every section, images decoded, a screenshot,
and the table filter and sort working (through the DevTools protocol over a pipe, stdlib only)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest

from scagent.report.html import SECTIONS

CHROMIUM = next(
    (p for p in (shutil.which("chromium"), shutil.which("chromium-browser"), "/usr/bin/chromium")
     if p and os.path.exists(p)),
    None,
)  # fmt: skip
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed")

FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--hide-scrollbars",
]


def _chromium(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    with tempfile.TemporaryDirectory() as profile:
        return subprocess.run(
            [CHROMIUM, *FLAGS, f"--user-data-dir={profile}", *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )


def _dump(path: Path) -> tuple[str, list[str]]:
    """The DOM after load (scripts run; virtual time lets pending tasks finish) and console lines."""
    run = _chromium(
        "--enable-logging=stderr",
        "--v=0",
        "--virtual-time-budget=10000",
        "--dump-dom",
        path.as_uri(),
    )
    console = [line for line in run.stderr.splitlines() if ":CONSOLE" in line]
    return run.stdout, console


def _root_attrs(dom: str) -> dict[str, str]:
    tag = re.search(r"<html[^>]*>", dom).group(0)
    return dict(re.findall(r'([\w-]+)="([^"]*)"', tag))


@pytest.fixture(scope="module")
def report_file(rendered, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("browser") / "report.html"
    path.write_text(rendered[0], encoding="utf-8")
    return path


def test_loads_without_console_errors_with_every_section_and_image(report_file):
    dom, console = _dump(report_file)
    assert console == []  # the report logs nothing; any line is an error or a stray message
    attrs = _root_attrs(dom)
    assert "data-js-errors" not in attrs
    assert attrs.get("data-report-ready") == "true"
    assert int(attrs["data-images-total"]) == 4
    assert attrs["data-images-decoded"] == attrs["data-images-total"]
    ids = re.findall(r'<section id="([^"]+)" class="report-section"', dom)
    assert ids == list(SECTIONS)


def test_screenshot_1280x800_is_not_blank(report_file, tmp_path):
    from PIL import Image

    shot = tmp_path / "report.png"
    run = _chromium(f"--screenshot={shot}", "--window-size=1280,800", report_file.as_uri())
    assert shot.exists(), run.stderr[-2000:]
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    image = Image.open(shot).convert("RGB")
    assert image.size == (1280, 800)
    pixels = np.asarray(image, dtype=float)
    assert pixels.std() > 15
    assert len(np.unique(pixels.reshape(-1, 3), axis=0)) > 50  # text, badges, a figure
    # Keep a copy beside the test data for people to look at.
    shutil.copy(shot, report_file.with_name("screenshot-1280x800.png"))


def test_the_checks_catch_a_broken_page(tmp_path):
    """Control: the same checks fail on a page with a console error, an exception and a bad image."""
    bad = tmp_path / "bad.html"
    bad.write_text(
        "<html><body><img src='data:image/png;base64,AAAA'><script>"
        "window.addEventListener('error', function () {"
        " document.documentElement.setAttribute('data-js-errors', '1'); });"
        "console.error('boom'); window.addEventListener('load', function () {"
        " var ok = Array.prototype.filter.call(document.images, function (i) {"
        " return i.complete && i.naturalWidth > 0; }).length;"
        " document.documentElement.setAttribute('data-images-decoded', String(ok)); });"
        "</script><script>undefinedFunction();</script></body></html>"
    )
    dom, console = _dump(bad)
    assert any("boom" in line for line in console)
    assert any("undefinedFunction" in line for line in console)
    attrs = _root_attrs(dom)
    assert attrs.get("data-js-errors") == "1" and attrs.get("data-images-decoded") == "0"


# ------------------------------------------------------------------ DevTools protocol over a pipe


class _DevTools:
    """Chromium driven through ``--remote-debugging-pipe``: JSON messages ending in NUL on fds 3/4."""

    def __init__(self) -> None:
        to_r, to_w = os.pipe()
        from_r, from_w = os.pipe()

        def fds() -> None:  # in the child: the protocol's fixed descriptors
            os.dup2(to_r, 3)
            os.dup2(from_w, 4)

        self._profile = tempfile.TemporaryDirectory()
        self.proc = subprocess.Popen(
            [CHROMIUM, *FLAGS, f"--user-data-dir={self._profile.name}",
             "--remote-debugging-pipe", "--window-size=1280,800", "about:blank"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            pass_fds=(3, 4), preexec_fn=fds,
        )  # fmt: skip
        os.close(to_r)
        os.close(from_w)
        self._w = os.fdopen(to_w, "wb", buffering=0)
        self._r = os.fdopen(from_r, "rb", buffering=0)
        self._buffer = b""
        self._id = 0
        self.events: list[dict] = []
        self.session: str | None = None

    def _read(self, deadline: float) -> dict:
        while b"\0" not in self._buffer:
            if time.monotonic() > deadline:
                raise TimeoutError("chromium did not answer")
            chunk = self._r.read(1 << 16)
            if not chunk:
                raise RuntimeError("chromium closed the pipe")
            self._buffer += chunk
        raw, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(raw)

    def send(self, method: str, params: dict | None = None, *, browser: bool = False) -> dict:
        self._id += 1
        message = {"id": self._id, "method": method, "params": params or {}}
        if self.session and not browser:
            message["sessionId"] = self.session
        self._w.write(json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + 30
        while True:
            reply = self._read(deadline)
            if reply.get("id") == self._id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply["result"]
            self.events.append(reply)

    def eval(self, expression: str):
        result = self.send("Runtime.evaluate", {"expression": expression, "returnByValue": True})
        assert "exceptionDetails" not in result, result
        return result["result"].get("value")

    def open(self, url: str) -> None:
        target = self.send("Target.createTarget", {"url": "about:blank"}, browser=True)
        self.session = self.send(
            "Target.attachToTarget", {"targetId": target["targetId"], "flatten": True}, browser=True
        )["sessionId"]
        for domain in ("Runtime", "Log", "Page"):
            self.send(f"{domain}.enable")
        self.send("Page.navigate", {"url": url})
        deadline = time.monotonic() + 30
        ready = (
            f"location.href === {json.dumps(url)} && !!document.documentElement"
            " && document.documentElement.getAttribute('data-report-ready') === 'true'"
        )
        while not self.eval(ready):
            assert time.monotonic() < deadline, "the report never finished loading"
            time.sleep(0.05)

    def problems(self) -> list[str]:
        """Console errors and warnings, uncaught exceptions and error log entries so far."""
        found = []
        for e in self.events:
            method, params = e.get("method"), e.get("params", {})
            if method == "Runtime.consoleAPICalled" and params.get("type") in (
                "error",
                "warning",
                "assert",
            ):
                found.append(f"console.{params['type']}: {params.get('args')}")
            elif method == "Runtime.exceptionThrown":
                found.append(f"exception: {params.get('exceptionDetails', {}).get('text')}")
            elif method == "Log.entryAdded" and params.get("entry", {}).get("level") == "error":
                found.append(f"log: {params['entry'].get('text')}")
        return found

    def close(self) -> None:
        try:
            self.send("Browser.close", browser=True)
        except (RuntimeError, TimeoutError, OSError):
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self._w.close()
        self._r.close()
        self._profile.cleanup()


def test_filter_and_sort_work_in_the_browser(report_file, report_project):
    from scagent.annotate.report import DatasetReport

    report = DatasetReport.from_json(report_project.adata.uns["annotation"]["report"])
    browser = _DevTools()
    try:
        browser.open(report_file.as_uri())
        table = "document.getElementById('annotation-annotation')"
        visible = f"Array.from({table}.tBodies[0].rows).filter(r => r.style.display !== 'none')"
        assert browser.eval(f"{visible}.length") == len(report.clusters)
        # Type a cell-ontology id into the table's filter box: only its clusters stay.
        word = report.clusters[0].ontology_id
        browser.eval(
            "(() => { const i = document.querySelector('input[data-target=\"annotation-annotation\"]');"
            f" i.value = '{word}'; i.dispatchEvent(new Event('input')); }})()"
        )
        expected = sum(c.ontology_id == word for c in report.clusters)
        assert 0 < expected < len(report.clusters)
        assert browser.eval(f"{visible}.length") == expected
        # Click the confidence header: rows come back in ascending confidence.
        browser.eval(
            "(() => { const i = document.querySelector('input[data-target=\"annotation-annotation\"]');"
            " i.value = ''; i.dispatchEvent(new Event('input'));"
            f" const th = Array.from({table}.tHead.rows[0].cells).find(c => c.textContent === 'confidence');"
            " th.click(); })()"
        )
        col = f"Array.from({table}.tHead.rows[0].cells).findIndex(c => c.textContent === 'confidence')"
        values = browser.eval(
            f"Array.from({table}.tBodies[0].rows).map(r => parseFloat(r.cells[{col}].textContent))"
        )
        assert values == sorted(values) and len(values) == len(report.clusters)
        # Every figure decoded, and nothing went to the console.
        assert browser.eval("Array.from(document.images).every(i => i.naturalWidth > 0)")
        assert browser.problems() == []
    finally:
        browser.close()


def test_paradigm_results_render_in_the_browser(tmp_path):
    import scagent.tools as tl
    from scagent.data.simulate_communication import simulate_communication
    from scagent.report.html import render_report

    adata = simulate_communication(600, 600, seed=4)
    tl.normalize(adata)
    tl.communication(adata, groupby="cell_type", n_perms=10)
    path = tmp_path / "paradigm.html"
    path.write_text(render_report(adata)[0], encoding="utf-8")
    dom, console = _dump(path)
    assert console == []
    attrs = _root_attrs(dom)
    assert "data-js-errors" not in attrs
    assert attrs["data-images-decoded"] == attrs["data-images-total"]
    section = dom.split('<section id="paradigm"', 1)[1].split("</section>", 1)[0]
    assert "communication-top" in section and "<img" in section
