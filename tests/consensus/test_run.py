"""The typed run: consensus on simulated data, the run folder, its verification, the tool and the CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score

from scagent.consensus import consensus, load_run
from scagent.consensus.errors import TooFewMembersError, TypedRunInvalid
from scagent.consensus.run import RUN_FILES, plan_checksum


def test_consensus_beats_median_member_on_simulated_truth(sim):
    adata = sim.copy()
    res = consensus(adata, seed=0)
    truth = adata.obs["cell_type"].to_numpy()
    member_aris = [adjusted_rand_score(truth, m.labels) for m in res.succeeded]
    cons = adjusted_rand_score(truth, res.result.labels)
    assert cons >= np.median(member_aris)
    assert cons >= max(member_aris) - 0.05
    # the labels, their agreement and the scores are written where documented
    assert adata.obs["consensus_kmode"].dtype == "category"
    assert adata.obs["consensus_kmode"].astype(str).tolist() == res.labels.tolist()
    assert np.allclose(adata.obs["consensus_kmode_agreement"], res.result.agreement)
    s = res.member_scores
    assert set(s.index) == {m.spec.id for m in res.members}
    assert np.allclose(s["composite"], (s["nmi"] + s["ari"]) / 2)
    assert np.allclose(np.diag(res.cross_nmi), 1.0)
    assert np.allclose(res.cross_nmi, res.cross_nmi.T)


def test_coassoc_operator_end_to_end(sim):
    res = consensus(
        sim.copy(), "leiden:resolution=0.5,leiden:resolution=1.0,kmeans:k=auto", "coassoc"
    )
    truth = sim.obs["cell_type"].to_numpy()
    assert adjusted_rand_score(truth, res.result.labels) > 0.6
    assert res.result.info["edges_kept"] <= res.result.info["edges"]


def test_run_folder_is_typed_and_verifiable(base_run, sim_file):
    plan = json.loads((base_run / "plan.json").read_text())
    assert plan["schema_version"] == 1 and plan["typed"] is True
    assert plan["input"]["path"] == str(sim_file.resolve()) and len(plan["input"]["sha256"]) == 64
    assert set(RUN_FILES) <= set(plan["outputs"])
    assert plan["plan_sha256"] == plan_checksum(plan)
    assert {"numpy", "scanpy", "scikit-learn", "igraph"} <= set(plan["library_versions"])
    assert all(
        m["status"] == "succeeded" and "seed" in m and "params" in m for m in plan["members"]
    )
    run = load_run(base_run)
    labels = run.labels
    assert list(labels.columns[:3]) == ["observation", "consensus_label", "agreement"]
    assert labels["agreement"].between(0, 1).all()
    summary = run.cluster_summary
    assert summary["n_cells"].sum() == len(labels)
    assert (
        set(run.member_scores.index) == set(run.cross_nmi.index) == set(run.member_labels.columns)
    )


def test_edited_run_is_refused(run_dir):
    labels = run_dir / "consensus_labels.tsv"
    text = labels.read_text().splitlines()
    row = text[1].split("\t")
    row[1] = str(int(row[1]) + 1)
    labels.write_text("\n".join([text[0], "\t".join(row), *text[2:]]) + "\n")
    with pytest.raises(TypedRunInvalid, match=r"checksum of consensus_labels\.tsv differs"):
        load_run(run_dir)


def test_too_few_members_is_a_clear_error(sim, monkeypatch):
    from scagent.consensus import members as mem

    def boom(inputs, seed, params):
        raise ValueError("kmeans exploded")

    monkeypatch.setitem(
        mem.MEMBER_METHODS, "kmeans", mem.MemberMethod("kmeans", mem.KMeansMember, boom)
    )
    with pytest.raises(
        TooFewMembersError, match=r"only 1 of 2 clustering members succeeded.*kmeans exploded"
    ):
        consensus(sim.copy(), "leiden:resolution=1.0,kmeans:k=3")


def test_cli_consensus_member_crash_and_write_adata(sim_file, tmp_path, capsys, run_cli):
    # gmm with more components than cells crashes inside scikit-learn: recorded, run goes on.
    out = tmp_path / "run"
    code, _, err = run_cli(
        capsys, "consensus", sim_file, "--output", out,
        "--members", "leiden:resolution=0.5,leiden:resolution=1.0,gmm:k=5000", "--write-adata",
    )  # fmt: skip
    assert code == 0, err
    assert "gmm_k5000: failed" in err
    plan = json.loads((out / "plan.json").read_text())
    failed = [m for m in plan["members"] if m["status"] == "failed"]
    assert [m["id"] for m in failed] == ["gmm_k5000"] and "n_samples" in failed[0]["error"]
    assert "adata.h5ad" in plan["outputs"]
    import anndata as ad

    written = ad.read_h5ad(out / "adata.h5ad")
    run = load_run(out)
    assert (
        written.obs["consensus_kmode"].astype(str).tolist()
        == run.labels["consensus_label"].tolist()
    )
    # a second run into the same folder is refused without --overwrite
    code, _, err = run_cli(
        capsys, "consensus", sim_file, "--output", out, "--members", "leiden,louvain"
    )
    assert code == 2 and "already holds a consensus run" in err
    # fewer than two successes: a clear error, exit 1
    code, _, err = run_cli(
        capsys, "consensus", sim_file, "--output", tmp_path / "r2", "--members", "leiden,gmm:k=5000"
    )
    assert code == 1 and "only 1 of 2 clustering members succeeded" in err
    assert not (tmp_path / "r2" / "plan.json").exists()
    code, _, err = run_cli(
        capsys, "consensus", sim_file, "--output", tmp_path / "r3", "--members", "nope"
    )
    assert code == 2 and "unknown clustering member" in err


def test_tool_through_session_records_provenance(sim, tmp_path):
    import scagent.consensus.tool  # noqa: F401  (registers the tool)
    from scagent.session import Session
    from scagent.tools import get_tool

    tool = get_tool("consensus_clustering")
    assert tool.requires == ("pca",) and "clustering" in tool.produces
    session = Session.init(tmp_path / "proj", data=sim.copy())
    record = session.run(
        "consensus_clustering",
        members="leiden:resolution=0.5,kmeans:k=auto",
        operator="kmode",
        seed=1,
    )
    step = record.step
    assert step.tool_id == "consensus_clustering" and step.params["seed"] == 1
    assert step.params["members"] == ["leiden:resolution=0.5", "kmeans:k=auto"]
    assert record.result.metrics["members_succeeded"] == 2
    assert "obs/consensus_kmode" in record.result.written
    assert [r["member"] for r in record.result.tables["members"]] == [
        "leiden_resolution0.5",
        "kmeans_kauto",
    ]
