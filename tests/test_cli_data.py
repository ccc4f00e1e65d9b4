"""The data commands end to end: `scagent inspect`, `simulate`, `demo`, and error reporting."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from scagent.cli.main import main
from scagent.data import DataState, read


def test_simulate_then_inspect_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "sim.h5ad"
    code = main(
        ["simulate", "--cells", "300", "--genes", "400", "--batches", "2", "--out", str(out)]
    )
    assert code == 0
    adata = read(out)
    assert adata.shape == (300, 400)
    assert adata.obs["batch"].nunique() == 2
    capsys.readouterr()
    assert main(["inspect", str(out), "--json"]) == 0
    state = DataState.model_validate_json(capsys.readouterr().out)
    assert state.x_state == "raw_counts"
    assert state.n_obs == 300 and state.species == "human"


def test_inspect_table_on_pbmc68k(tmp_path: Path, pbmc68k, capsys) -> None:
    path = tmp_path / "pbmc.h5ad"
    pbmc68k.write_h5ad(path)
    assert main(["inspect", str(path)]) == 0
    text = capsys.readouterr().out
    assert "scaled" in text and "louvain (11)" in text and "bulk_labels (10)" in text
    assert "700 cells x 765 genes (human)" in text


def test_missing_file_prints_one_line_and_exit_code(capsys) -> None:
    code = main(["inspect", "does/not/exist.h5ad"])
    assert code == 3
    err = capsys.readouterr().err
    assert err.startswith("error: ")
    assert " — " in err
    assert "Traceback" not in err


def test_debug_shows_the_traceback() -> None:
    from scagent.errors import InputNotFoundError

    with pytest.raises(InputNotFoundError):
        main(["--debug", "inspect", "does/not/exist.h5ad"])


def test_simulate_rejects_bad_parameters(tmp_path: Path, capsys) -> None:
    assert main(["simulate", "--cells", "10", "--out", str(tmp_path / "x.csv")]) == 2
    assert "must end in .h5ad" in capsys.readouterr().err
    assert not (tmp_path / "x.csv").exists()
    code = main(
        ["simulate", "--cells", "100", "--doublet-rate", "0.9", "--out", str(tmp_path / "y.h5ad")]
    )
    assert code == 2
    assert not (tmp_path / "y.h5ad").exists()


def test_usage_error_exit_code(capsys) -> None:
    assert main(["inspect"]) == 2  # missing argument: click's usage error code
    assert main(["no-such-command"]) == 2


def test_demo_runs_offline(tmp_path, capsys) -> None:
    out = tmp_path / "demo"
    assert main(["demo", "--cells", "900", "--out", str(out), "--no-real-data"]) == 0
    text = capsys.readouterr().out
    assert "900 cells" in text
    assert "normalize -> hvg -> pca -> neighbors -> leiden" in text
    assert "how well the known truth was recovered" in text
    assert (out / "report.html").stat().st_size > 10_000
    assert (out / "project" / ".scagent" / "provenance.jsonld").is_file()


def test_demo_recovers_the_simulated_truth(tmp_path) -> None:
    from rich.console import Console

    from scagent.demo import run_demo

    with open(os.devnull, "w") as sink:
        result = run_demo(n_cells=1500, seed=1, console=Console(file=sink), out_dir=tmp_path)
    assert result["steps"][0] == "import" and result["steps"][-1] == "pseudobulk_de"
    assert {"harmony", "annotate", "consensus_clustering"} <= set(result["steps"])
    assert result["annotation_score"] >= 0.6
    assert result["leiden_ari"] > 0.6 and result["consensus_ari"] > 0.6
    assert result["pseudobulk_fdp"] <= 0.2
    assert result["pbmc68k_x_state"] == "scaled"
    assert result["pbmc68k_broad_agreement"] > 0.5
    assert result["sae_enriched_share"] > result["sae_null_enriched_share"] + 0.1
    assert Path(result["sae_dashboard"]).stat().st_size > 10_000


def test_version(capsys) -> None:
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.startswith("scagent ")


def test_json_flag_output_is_pure_json(tmp_path: Path, capsys) -> None:
    out = tmp_path / "s.h5ad"
    main(["simulate", "--cells", "200", "--genes", "300", "--out", str(out)])
    capsys.readouterr()
    main(["inspect", str(out), "--json"])
    json.loads(capsys.readouterr().out)
