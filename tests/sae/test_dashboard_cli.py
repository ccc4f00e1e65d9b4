"""The dashboard in headless Chromium, the `scagent sae` commands and the demo run."""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from scagent.errors import InvalidParameterError
from scagent.sae.pipeline import demo_sae

CHROMIUM = next(
    (
        p
        for p in (
            "/usr/bin/chromium",
            shutil.which("chromium") or "",
            shutil.which("google-chrome") or "",
        )
        if p and Path(p).exists()
    ),
    None,
)


@pytest.fixture(scope="module")
def demo_run(pbmc68k, tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    adata = pbmc68k.copy()
    summary = demo_sae(adata, out, steps=200)
    return out, summary, adata


def test_demo_writes_every_step(demo_run):
    out, summary, adata = demo_run
    assert summary["training"]["step"] == 200 and summary["training"]["fvu"] < 0.5
    assert (
        summary["validation"]["share_significant"] > summary["validation"]["null_share_significant"]
    )
    assert (out / "train" / "sae" / "cfg.json").is_file()
    assert json.loads((out / "summary.json").read_text())["d_in"] == 50
    assert adata.obsm["X_sae"].shape == (700, 128)
    page = (out / "dashboard.html").read_text()
    assert "http://" not in page and "https://" not in page and "<script src" not in page


def _chromium(*args: str, timeout: int = 90) -> subprocess.CompletedProcess:
    profile = tempfile.mkdtemp()
    try:
        return subprocess.run(
            [
                CHROMIUM,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--no-first-run",
                f"--user-data-dir={profile}",
                "--enable-logging=stderr",
                "--v=0",
                *args,
            ],
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    finally:
        shutil.rmtree(profile, ignore_errors=True)


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed")
def test_dashboard_selftest_in_headless_chromium(demo_run, tmp_path):
    out, _, _ = demo_run
    proc = _chromium("--dump-dom", f"file://{out / 'dashboard.html'}#selftest")
    marker = '<pre id="selftest-result">'
    assert marker in proc.stdout, proc.stderr[-2000:]
    result = json.loads(
        proc.stdout.split(marker, 1)[1]
        .split("</pre>", 1)[0]
        .replace("&quot;", '"')
        .replace("&amp;", "&")
    )
    assert result["ok"] and result["errors"] == []
    assert result["n_features"] == result["rows_initial"] > 0
    assert 0 < result["rows_filtered"] < result["rows_initial"] and result["all_match"]
    assert result["rows_nonsense"] == 0
    assert (
        result["detail_title"].startswith("Feature #")
        and result["gene_bars"] > 0
        and result["group_bars"] > 0
    )
    console_errors = [
        line
        for line in proc.stderr.splitlines()
        if "CONSOLE" in line and ("Uncaught" in line or "error" in line.lower())
    ]
    assert console_errors == []
    shot = tmp_path / "dashboard.png"
    _chromium("--window-size=1400,900", f"--screenshot={shot}", f"file://{out / 'dashboard.html'}")
    assert shot.is_file() and shot.stat().st_size > 20_000  # a blank page is a few KB


def _app() -> typer.Typer:
    from scagent.cli.sae import register

    app = typer.Typer()
    app.callback()(lambda: None)
    register(app)
    return app


def test_cli_steps_one_by_one(pbmc68k, tmp_path):
    data = tmp_path / "pbmc.h5ad"
    pbmc68k.write_h5ad(data)
    runner = CliRunner()
    app = _app()
    r = runner.invoke(
        app,
        [
            "sae",
            "activations",
            "--data",
            str(data),
            "--source",
            "obsm:X_pca",
            "--out",
            str(tmp_path / "acts"),
        ],
    )
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["n_rows"] == 700
    r = runner.invoke(
        app,
        [
            "sae",
            "train",
            "--cache",
            str(tmp_path / "acts"),
            "--out",
            str(tmp_path / "run"),
            "--d-sae",
            "64",
            "--k",
            "4",
            "--steps",
            "60",
            "--batch-size",
            "128",
            "--lr",
            "0.002",
        ],
    )
    assert r.exit_code == 0, r.output
    r = runner.invoke(
        app,
        [
            "sae",
            "features",
            "--data",
            str(data),
            "--cache",
            str(tmp_path / "acts"),
            "--sae",
            str(tmp_path / "run" / "sae"),
            "--out",
            str(tmp_path / "feat"),
        ],
    )
    assert r.exit_code == 0, r.output
    r = runner.invoke(
        app,
        [
            "sae",
            "validate",
            "--data",
            str(data),
            "--cache",
            str(tmp_path / "acts"),
            "--sae",
            str(tmp_path / "run" / "sae"),
            "--features",
            str(tmp_path / "feat"),
            "--out",
            str(tmp_path / "val"),
        ],
    )
    assert r.exit_code == 0, r.output
    assert 0 <= json.loads(r.stdout)["share_significant"] <= 1
    r = runner.invoke(
        app,
        [
            "sae",
            "dashboard",
            "--features",
            str(tmp_path / "feat"),
            "--validation",
            str(tmp_path / "val"),
            "--out",
            str(tmp_path / "d.html"),
        ],
    )
    assert r.exit_code == 0 and (tmp_path / "d.html").stat().st_size > 10_000
    r = runner.invoke(
        app,
        [
            "sae",
            "train",
            "--cache",
            str(tmp_path / "acts"),
            "--out",
            str(tmp_path / "run2"),
            "--d-sae",
            "8",
            "--k",
            "8",
        ],
    )
    assert isinstance(r.exception, InvalidParameterError) and "k=8 must be below d_sae=8" in str(
        r.exception
    )
