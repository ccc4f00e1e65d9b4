"""Exports: a deterministic methods section, and a bundle whose commands rebuild the branch elsewhere."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from scagent.agent.exports import bundle_commands, methods_text, write_bundle
from scagent.session import Session


def test_methods_text_is_deterministic_and_follows_the_steps(processed):
    text = methods_text(processed)
    assert text == methods_text(Session.open(processed.project.root))
    # Steps in order, with their parameters and library versions.
    order = [
        text.index(f"`{tool}`")
        for tool in ("qc_metrics", "normalize", "hvg", "pca", "neighbors", "leiden", "markers")
    ]
    assert order == sorted(order)
    assert "resolution 0.8" in text and "resolution=0.8" in text
    n_clusters = processed.history()[6].metrics["n_clusters"]
    assert f"giving {n_clusters} clusters" in text
    assert "600 cells × 800 genes" in text
    import scanpy

    assert f"scanpy {scanpy.__version__}" in text
    assert "Traag" in text  # the Leiden reference
    # A different parameter gives a different text.
    processed.run("leiden", resolution=1.3)
    assert "resolution 1.3" in methods_text(processed)


def test_bundle_holds_what_a_rerun_needs(processed, tmp_path):
    out = write_bundle(processed, tmp_path / "bundle")
    names = {p.name for p in out.iterdir()}
    assert {
        "project.json", "context.json", "provenance.jsonld", "steps.json", "run.sh",
        "environment.json", "requirements.txt", "methods.md", "README.md", "data",
    } <= names  # fmt: skip
    assert json.loads((out / "project.json").read_text()) == json.loads(
        processed.project.config_path.read_text()
    )
    prov = json.loads((out / "provenance.jsonld").read_text())
    assert "@context" in prov
    steps = json.loads((out / "steps.json").read_text())
    assert [s["tool_id"] for s in steps] == [s.tool_id for s in processed.history()]
    assert steps[-1]["parts"] == processed.store.manifest(processed.head()).parts
    env = json.loads((out / "environment.json").read_text())
    import anndata

    assert env["packages"]["anndata"] == anndata.__version__
    assert f"anndata=={anndata.__version__}" in (out / "requirements.txt").read_text()
    assert os.access(out / "run.sh", os.X_OK)
    # A non-empty folder is refused rather than mixed.
    from scagent.errors import InvalidParameterError

    with pytest.raises(InvalidParameterError):
        write_bundle(processed, out)


def _run_lines(script: str) -> list[list[str]]:
    return [shlex.split(line) for line in script.splitlines() if line.startswith("scagent run ")]


def test_bundle_commands_rebuild_the_branch(processed, tmp_path):
    """Run the bundle's `scagent run` lines (parsed as the CLI parses them) on its data."""
    from scagent.cli.project import parse_params

    out = write_bundle(processed, tmp_path / "bundle")
    lines = _run_lines((out / "run.sh").read_text())
    assert [words[2] for words in lines] == [s.tool_id for s in processed.history()[1:]]
    rebuilt = Session.init(tmp_path / "rebuilt", data=out / "data" / "import.h5ad")
    for words in lines:
        params = [words[i + 1] for i, w in enumerate(words) if w == "--param"]
        rebuilt.run(words[2], **parse_params(params))
    original = processed.store.manifest(processed.head()).parts
    again = rebuilt.store.manifest(rebuilt.head()).parts
    for part in ("X", "layers/counts", "obsm/X_pca", "obs/leiden", "var/highly_variable"):
        assert again[part] == original[part], part
    # Every recorded parameter round-trips through the command line.
    for old, new in zip(processed.history()[1:], rebuilt.history()[1:], strict=True):
        assert old.params == new.params


def test_export_cli_commands(processed, tmp_path):
    from scagent.cli.agent import register

    app = typer.Typer()
    register(app)

    @app.callback()
    def _root() -> None:  # a group, as in the real app
        pass

    runner = CliRunner()
    root = str(processed.project.root)
    result = runner.invoke(app, ["export", "methods", "--project", root])
    assert result.exit_code == 0, result.output
    assert result.output == methods_text(processed)
    result = runner.invoke(
        app, ["export", "bundle", str(tmp_path / "b"), "--no-data", "--project", root]
    )
    assert result.exit_code == 0, result.output
    assert not (tmp_path / "b" / "data").exists()
    result = runner.invoke(
        app, ["export", "provenance", "--out", str(tmp_path / "p.jsonld"), "--project", root]
    )
    assert result.exit_code == 0, result.output
    assert "@context" in json.loads((tmp_path / "p.jsonld").read_text())


def test_bundle_commands_quote_values(processed):
    commands = bundle_commands(processed)
    qc = next(c for c in commands if " qc_metrics " in c)
    words = shlex.split(qc)
    # The regex parameter survives shell quoting intact.
    pattern = next(w for w in words if w.startswith("hb_pattern="))
    assert pattern.split("=", 1)[1] == processed.history()[1].params["hb_pattern"]


@pytest.mark.slow
def test_run_sh_recreates_and_replays(processed, tmp_path):
    """The bundle's script, run by bash with the installed `scagent` command."""
    scagent = Path(sys.executable).with_name("scagent")
    if not scagent.exists() or shutil.which("bash") is None:
        pytest.skip("needs bash and the scagent command")
    out = write_bundle(processed, tmp_path / "bundle")
    env = dict(os.environ, PATH=f"{scagent.parent}{os.pathsep}{os.environ['PATH']}")
    done = subprocess.run(
        ["bash", str(out / "run.sh"), str(out / "data" / "import.h5ad"), str(tmp_path / "work")],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "replay reproduced every deterministic step" in done.stdout
    rebuilt = Session.open(tmp_path / "work")
    assert (
        rebuilt.store.manifest(rebuilt.head()).parts["obs/leiden"]
        == (processed.store.manifest(processed.head()).parts["obs/leiden"])
    )
