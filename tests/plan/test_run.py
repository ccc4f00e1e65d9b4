"""Running a paradigm end to end: `scagent pipeline`, its bad inputs, and resuming a stopped run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from scagent.cli.main import main
from scagent.data import simulate
from scagent.errors import InvalidDataError, InvalidParameterError
from scagent.plan import get_paradigm
from scagent.plan.run import check_paradigm_inputs, resolve_params
from scagent.session import Session


def test_disease_pipeline_stops_on_a_bad_step_then_resumes(tmp_path: Path, capsys) -> None:
    out = tmp_path / "run"
    args = ["pipeline", "-p", "disease-vs-healthy", "--simulate", "--n-cells", "1500"]
    # A bad parameter for leiden stops the run there; the steps before it stay committed.
    code = main([*args, "--out", str(out), "--param", "leiden.resolution=-1"])
    assert code == InvalidParameterError.exit_code
    assert "resolution" in capsys.readouterr().err
    tools_before = [h.tool_id for h in Session.open(out).history()]
    assert tools_before[-1] == "neighbors" and "leiden" not in tools_before
    assert not (out / "pipeline.json").exists()

    # The same --out without --resume is refused; with it the run goes on where it stopped.
    assert main([*args, "--out", str(out)]) == 9
    capsys.readouterr()
    assert main(["pipeline", "-p", "disease_vs_healthy", "--out", str(out), "--resume"]) == 0
    result = json.loads((out / "pipeline.json").read_text())
    status = {s["step_id"]: s["status"] for s in result["steps"]}
    assert status["pca"] == "resumed" and status["leiden"] == "done"
    assert status["pseudobulk_de"] == "done"
    history = Session.open(out).history()
    tools = [h.tool_id for h in history]
    assert len(tools) == len(set(tools))  # nothing ran twice
    # Harmony got the simulator's batch column; DE compared the conditions over samples.
    params = {h.tool_id: h.params for h in history}
    assert params["harmony"]["batch_key"] == "batch"
    assert params["pseudobulk_de"]["sample_key"] == "sample"
    truth = result["truth"]
    assert truth["leiden_ari"] > 0.8
    assert truth["pseudobulk_fdp"] <= 0.1 and truth["pseudobulk_recall"] > 0.3
    assert Path(result["report"]).stat().st_size > 50_000


def test_paradigm_without_its_data_says_what_is_missing(tmp_path: Path, capsys) -> None:
    one_condition = simulate(400, 500, n_batches=1, seed=1)
    with pytest.raises(InvalidDataError, match="condition column with two or more levels"):
        check_paradigm_inputs("disease_vs_healthy", one_condition)
    with pytest.raises(InvalidDataError, match="2 or more levels"):
        check_paradigm_inputs("atlas", simulate(400, 500, samples_per_condition=1, seed=1))
    single = simulate(400, 500, n_conditions=2, samples_per_condition=1, seed=1)
    with pytest.raises(InvalidDataError, match="two or more samples per condition"):
        check_paradigm_inputs("disease_vs_healthy", single)
    # Through the CLI: exit code 6, and nothing is written.
    path = tmp_path / "one.h5ad"
    one_condition.write_h5ad(path)
    code = main(["pipeline", "-p", "disease_vs_healthy", "--data", str(path), "--out",
                 str(tmp_path / "p")])  # fmt: skip
    assert code == InvalidDataError.exit_code
    assert "condition" in capsys.readouterr().err
    assert not (tmp_path / "p" / ".scagent").exists()


@pytest.mark.parametrize(
    "args, message",
    [
        (["--simulate", "--data", "x.h5ad"], "exactly one of --data"),
        ([], "exactly one of --data"),
        (["--simulate", "--param", "leiden-resolution"], "STEP.PARAM=VALUE"),
        (["--simulate", "--param", "leidn.resolution=1"], "did you mean 'leiden'"),
        (["--resume"], "nothing to resume"),
    ],
)
def test_bad_command_lines(tmp_path: Path, capsys, args: list[str], message: str) -> None:
    code = main(["pipeline", "-p", "atlas", "--out", str(tmp_path / "o"), *args])
    assert code != 0
    assert message in capsys.readouterr().err
    assert not (tmp_path / "o" / ".scagent").exists()


def test_placeholders_resolve_to_columns_with_more_than_one_level() -> None:
    harmony = get_paradigm("disease_vs_healthy").step("harmony")
    two = simulate(300, 400, n_batches=2, seed=2)
    assert resolve_params(harmony, two) == ({"batch_key": "batch"}, None)
    one = simulate(300, 400, n_batches=1, samples_per_condition=1, seed=2)
    params, reason = resolve_params(harmony, one)
    assert params == {} and "no batch column" in reason
    # hvg's batch_key has a default: an unresolvable placeholder is dropped, not fatal.
    assert resolve_params(get_paradigm("atlas").step("hvg"), one) == ({}, None)


def test_user_root_replaces_the_paradigm_root() -> None:
    step = get_paradigm("developmental_trajectory").step("trajectory")
    adata = simulate(300, 400, trajectory=True, seed=3)
    params, _ = resolve_params(step, adata)
    assert params == {"groups": "leiden", "root_gene": "CD34"}
    # exactly one root: a root cell type from the user drops the paradigm's root gene
    params, _ = resolve_params(step, adata, given={"root_cell_type": "HSPC"})
    assert params == {"groups": "leiden", "root_cell_type": "HSPC"}
    # a user's batch column for harmony wins even where no column would resolve
    harmony = get_paradigm("atlas").step("harmony")
    one = simulate(300, 400, n_batches=1, samples_per_condition=1, seed=2)
    one.obs["lane"] = ["a", "b"] * 150
    assert resolve_params(harmony, one, given={"batch_key": "lane"}) == (
        {"batch_key": "lane"},
        None,
    )


def test_trajectory_root_gene_is_checked_unless_the_root_is_given_otherwise() -> None:
    adata = simulate(300, 400, trajectory=True, seed=3)
    no_cd34 = adata[:, adata.var_names != "CD34"].copy()
    with pytest.raises(InvalidDataError, match=r"'CD34', which is not a gene") as err:
        check_paradigm_inputs("developmental_trajectory", no_cd34)
    assert "--param trajectory.root_gene" in err.value.remedy
    check_paradigm_inputs(
        "developmental_trajectory", no_cd34, {"trajectory": {"root_cell_type": "HSPC"}}
    )
    with pytest.raises(InvalidDataError, match="'GATA9'"):
        check_paradigm_inputs(
            "developmental_trajectory", adata, {"trajectory": {"root_gene": "GATA9"}}
        )


def test_resume_keeps_steps_the_first_run_found_precomputed(tmp_path: Path) -> None:
    import scagent.tools as tl
    from scagent.plan.run import run_paradigm

    adata = simulate(800, 600, trajectory=True, seed=5)
    tl.normalize(adata)
    tl.hvg(adata, n_top_genes=300)
    tl.pca(adata, n_comps=20)
    session = Session.init(tmp_path / "p", data=adata)
    with pytest.raises(InvalidParameterError):
        run_paradigm(session, "developmental_trajectory", params={"leiden": {"resolution": -1}})
    assert [h.tool_id for h in session.history()] == ["import", "neighbors"]
    result = run_paradigm(session, "developmental_trajectory", resume=True)
    # normalize .. pca were in the data before the first run: still not run, not after neighbors
    assert {result.outcome(s).status for s in ("normalize", "hvg", "pca")} == {"precomputed"}
    tools = [h.tool_id for h in session.history()]
    assert tools[:3] == ["import", "neighbors", "leiden"] and "pca" not in tools
