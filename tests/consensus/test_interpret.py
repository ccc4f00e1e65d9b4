"""`scagent interpret`: every exit code, the evidence invariants, the banners, and a read-only RUN_DIR."""

from __future__ import annotations

import json
import re

import pandas as pd
import pytest

from scagent.consensus.interpret import BANNER_LLM, BANNER_NO_LLM, resolve_ref
from scagent.consensus.run import load_run


def _interpret(run_cli, capsys, run_dir, out, *extra):
    return run_cli(capsys, "interpret", run_dir, "--output", out, *extra)


def test_no_llm_banner_outputs_and_read_only_run_dir(
    run_dir, tmp_path, capsys, run_cli, folder_checksums
):
    before = folder_checksums(run_dir)
    out = tmp_path / "interp"
    code, stdout, err = _interpret(run_cli, capsys, run_dir, out, "--tissue", "blood", "--no-llm")
    assert code == 0, err
    assert folder_checksums(run_dir) == before
    report = (out / "interpreted_report.md").read_text()
    assert report.splitlines()[0] == "[I-noLLM: Structural interpretation on verified consensus]"
    assert report.splitlines()[0] == BANNER_NO_LLM and stdout.splitlines()[0] == BANNER_NO_LLM
    a = json.loads((out / "interpreted_assignments.json").read_text())
    run = load_run(run_dir)
    assert {c["cluster"] for c in a["clusters"]} == set(run.labels["consensus_label"])
    de = pd.read_csv(out / "de_per_cluster.csv", dtype={"cluster": str})
    assert de.groupby("cluster")["de_rank"].max().max() == 20
    for c in a["clusters"]:
        assert c["source"] == "marker_db" and c["evidence"]["markers"]
        rows = de[de["cluster"] == c["cluster"]].set_index("de_rank")["gene"]
        for m in c["evidence"]["markers"]:
            assert rows[m["de_rank"]] == m["gene"]
    assert 1 <= len(a["next_steps"]) <= 3
    for step in a["next_steps"]:
        assert step["evidence_refs"] and all(
            resolve_ref(r, run) is None for r in step["evidence_refs"]
        )
    # the simulated B cells and NK cells are named from their markers
    types = {c["cell_type"].lower() for c in a["clusters"] if c["status"] == "interpreted"}
    assert any("b cell" in t for t in types) and any(
        "nk" in t or "natural killer" in t for t in types
    )
    audit = json.loads((out / "audit.json").read_text())
    assert audit["typed_run"]["run_id"] == run.run_id and audit["adata"]["matches_run_input"]
    assert audit["marker_db"]["tissue"] == "blood" and len(audit["marker_db"]["table_sha256"]) == 64
    assert audit["llm"] is None and audit["namespaces"]["interpretation"] == "I-noLLM"
    contra = pd.read_csv(out / "contradiction_regions.csv")
    assert list(contra.columns) == [
        "cluster", "member_a", "member_b", "pair_agreement_in_cluster", "pair_nmi", "n_cells",
    ]  # fmt: skip
    assert (contra["pair_agreement_in_cluster"] < 0.8).all()


@pytest.mark.parametrize(
    "args, message",
    [
        (["--no-llm"], "exactly one of --tissue and --markers"),
        (["--no-llm", "--tissue", "blood", "--markers", "x.tsv"], "exactly one"),
        (["--no-llm", "--tissue", "blood", "--coverage-floor", "1.5"], "coverage-floor"),
        (["--no-llm", "--tissue", "blood", "--top-k-next-steps", "4"], "top-k-next-steps"),
    ],
)
def test_argument_errors_exit_2(run_dir, tmp_path, capsys, args, message, run_cli):
    code, _, err = _interpret(run_cli, capsys, run_dir, tmp_path / "o", *args)
    assert code == 2 and message in err


def test_output_inside_run_dir_exits_2(run_dir, capsys, run_cli, folder_checksums):
    before = folder_checksums(run_dir)
    code, _, err = _interpret(
        run_cli, capsys, run_dir, run_dir / "interp", "--tissue", "blood", "--no-llm"
    )
    assert code == 2 and "inside RUN_DIR" in err
    assert folder_checksums(run_dir) == before


def test_plan_edited_by_hand_exits_3(run_dir, tmp_path, capsys, run_cli):
    plan = json.loads((run_dir / "plan.json").read_text())
    plan["outputs"]["consensus_labels.tsv"]["sha256"] = "0" * 64
    (run_dir / "plan.json").write_text(json.dumps(plan))
    code, _, err = _interpret(
        run_cli, capsys, run_dir, tmp_path / "o", "--tissue", "blood", "--no-llm"
    )
    assert code == 3 and "consensus_labels.tsv" in err and "differs" in err
    assert not (tmp_path / "o").exists()


def test_plan_field_edited_exits_3(run_dir, tmp_path, capsys, run_cli):
    plan = json.loads((run_dir / "plan.json").read_text())
    plan["seed"] = 12345
    (run_dir / "plan.json").write_text(json.dumps(plan))
    code, _, err = _interpret(
        run_cli, capsys, run_dir, tmp_path / "o", "--tissue", "blood", "--no-llm"
    )
    assert code == 3 and "plan.json was edited" in err


@pytest.mark.parametrize("damage", ["missing_plan", "schema", "not_typed", "missing_dir"])
def test_invalid_typed_runs_exit_3(run_dir, tmp_path, capsys, damage, run_cli):
    plan_path = run_dir / "plan.json"
    target = run_dir
    if damage == "missing_plan":
        plan_path.unlink()
    elif damage == "schema":
        plan = json.loads(plan_path.read_text())
        plan["schema_version"] = 99
        plan_path.write_text(json.dumps(plan))
    elif damage == "not_typed":
        plan_path.write_text(json.dumps({"members": []}))
    else:
        target = tmp_path / "nowhere"
    code, _, err = _interpret(
        run_cli, capsys, target, tmp_path / "o", "--tissue", "blood", "--no-llm"
    )
    assert code == 3, err
    expected = {"missing_plan": "plan.json is missing", "schema": "schema_version 99",
                "not_typed": "not from a typed consensus run", "missing_dir": "does not exist"}  # fmt: skip
    assert expected[damage] in err


def test_labels_for_cells_not_in_adata_exit_4(run_dir, sim, tmp_path, capsys, run_cli):
    fewer = tmp_path / "fewer.h5ad"
    sim[50:].copy().write_h5ad(fewer)
    code, _, err = _interpret(
        run_cli, capsys, run_dir, tmp_path / "o", "--tissue", "blood", "--no-llm", "--adata", fewer
    )
    assert code == 4 and "50 of 600 labelled cells" in err and sim.obs_names[0] in err
    code, _, err = _interpret(
        run_cli,
        capsys,
        run_dir,
        tmp_path / "o",
        "--tissue",
        "blood",
        "--no-llm",
        "--adata",
        tmp_path / "none.h5ad",
    )
    assert code == 4 and "does not exist" in err


def test_marker_db_unavailable_exits_5(run_dir, tmp_path, capsys, run_cli):
    code, _, err = _interpret(
        run_cli, capsys, run_dir, tmp_path / "o", "--tissue", "atlantis", "--no-llm"
    )
    assert code == 5 and "atlantis" in err
    code, _, err = _interpret(
        run_cli, capsys, run_dir, tmp_path / "o", "--markers", tmp_path / "no.tsv", "--no-llm"
    )
    assert code == 5 and "no.tsv" in err


def test_no_reachable_llm_exits_6(run_dir, tmp_path, capsys, run_cli):
    # No --no-llm and no LLM configured: the offline backend cannot interpret.
    code, _, err = _interpret(run_cli, capsys, run_dir, tmp_path / "o", "--tissue", "blood")
    assert code == 6 and "no LLM is configured" in err
    code, _, err = _interpret(
        run_cli, capsys, run_dir, tmp_path / "o", "--tissue", "blood",
        "--llm", "openai-compatible:m", "--base-url", "http://127.0.0.1:9/v1",
    )  # fmt: skip
    assert code == 6 and "not reachable" in err
    assert not (tmp_path / "o").exists()


def test_coverage_below_floor_exits_8(run_dir, tmp_path, capsys, run_cli):
    markers = tmp_path / "markers.tsv"
    # Markers of one type only: every other cluster stays unassigned.
    markers.write_text(
        "cell_type\tgene\tspecies\nB cell\tMS4A1\thuman\nB cell\tCD79A\thuman\nB cell\tCD19\thuman\n"
        "B cell\tBANK1\thuman\nB cell\tCD79B\thuman\n"
    )
    out = tmp_path / "o"
    code, _, err = _interpret(run_cli, capsys, run_dir, out, "--markers", markers, "--no-llm")
    assert code == 8 and "below the floor of 50%" in err
    a = json.loads((out / "interpreted_assignments.json").read_text())
    assert a["coverage"]["fraction"] < 0.5 and a["coverage"]["interpretable"] >= 1
    assert json.loads((out / "audit.json").read_text())["status"] == "coverage_below_threshold"
    assert (
        _interpret(
            run_cli,
            capsys,
            run_dir,
            tmp_path / "o2",
            "--markers",
            markers,
            "--no-llm",
            "--coverage-floor",
            "0.1",
        )[0]
        == 0
    )


# --------------------------------------------------------------------------- the LLM path


def _context(request) -> dict:
    text = request.messages[-1]["content"]
    if isinstance(text, list):
        text = " ".join(part.get("text", "") for part in text)
    return json.loads(re.search(r"```json\n(.*)\n```", text, flags=re.S).group(1))


def _answer(ctx: dict, *, fake_gene: bool = False, bad_ref: bool = False) -> dict:
    if "max_next_steps" in ctx:
        row = ctx["member_scores.csv"][0]
        value = row["composite"] if not bad_ref else row["composite"] + 0.2
        return {
            "summary": "Clusters match blood cell types.",
            "next_steps": [
                {
                    "action": f"Check member {row['member']}",
                    "rationale": "lowest agreement",
                    "evidence_refs": [
                        f"member_scores.csv:row={row['member']},col=composite,value={value:.4f}"
                    ],
                }
            ],
        }
    if ctx["candidates"]:
        top = ctx["candidates"][0]
        markers = top["evidence"]
        answer = {
            "cell_type": top["cell_type"],
            "cell_ontology_id": top["cell_ontology_id"],
            "confidence": 0.9,
        }
    else:
        markers = [
            {
                "gene": g["gene"],
                "de_rank": g["de_rank"],
                "db_source": None,
                "db_celltype": None,
                "weight": 0.0,
            }
            for g in ctx["de_table"][:2]
        ]
        answer = {"cell_type": "unassigned", "confidence": 0.1}
    if fake_gene and ctx["cluster"] == "0":
        markers = [
            *markers,
            {
                "gene": "FAKEGENE1",
                "de_rank": 3,
                "db_source": None,
                "db_celltype": None,
                "weight": 0.0,
            },
        ]
    return answer | {"evidence": {"markers": markers}, "rationale": "from the candidates"}


def _serve(server, n: int, **kw) -> None:
    from scagent.llm.testing import json_reply

    for _ in range(n):
        server.enqueue("openai", lambda req: json_reply("openai", _answer(_context(req), **kw)))


def _llm_args(server):
    return [
        "--llm",
        "openai-compatible:scripted-model",
        "--base-url",
        server.openai_base_url,
        "--seed",
        "7",
    ]


def test_llm_interpretation_with_a_real_client(
    run_dir, tmp_path, capsys, run_cli, folder_checksums
):
    from scagent.llm.testing import ScriptedLLMServer

    before = folder_checksums(run_dir)
    n_clusters = load_run(run_dir).labels["consensus_label"].nunique()
    out = tmp_path / "o"
    with ScriptedLLMServer() as server:
        _serve(server, n_clusters + 1)
        code, stdout, err = _interpret(
            run_cli, capsys, run_dir, out, "--tissue", "blood", *_llm_args(server)
        )
        bodies = [r.body for r in server.requests_for("openai")]
    assert code == 0, err
    assert len(bodies) == n_clusters + 1 and all(b["seed"] == 7 for b in bodies)
    assert (out / "interpreted_report.md").read_text().splitlines()[
        0
    ] == "[A+I: Interpreted on verified consensus]"
    assert stdout.splitlines()[0] == BANNER_LLM
    a = json.loads((out / "interpreted_assignments.json").read_text())
    assert {c["source"] for c in a["clusters"]} == {"llm"} and len(a["next_steps"]) == 1
    audit = json.loads((out / "audit.json").read_text())
    assert audit["llm"]["model"] == "scripted-model" and audit["llm"]["seed"] == 7
    assert len(audit["llm"]["calls"]) == n_clusters + 1
    assert folder_checksums(run_dir) == before


def test_llm_citing_a_gene_not_in_the_de_table_exits_7(run_dir, tmp_path, capsys, run_cli):
    from scagent.llm.testing import ScriptedLLMServer

    n_clusters = load_run(run_dir).labels["consensus_label"].nunique()
    out = tmp_path / "o"
    with ScriptedLLMServer() as server:
        _serve(server, n_clusters + 1, fake_gene=True)
        code, _, err = _interpret(
            run_cli, capsys, run_dir, out, "--tissue", "blood", *_llm_args(server)
        )
    assert code == 7
    assert "cluster 0" in err and "FAKEGENE1" in err and "not in that cluster's DE table" in err
    assert not out.exists()


def test_llm_next_step_with_a_wrong_value_exits_7(run_dir, tmp_path, capsys, run_cli):
    from scagent.llm.testing import ScriptedLLMServer

    n_clusters = load_run(run_dir).labels["consensus_label"].nunique()
    with ScriptedLLMServer() as server:
        _serve(server, n_clusters + 1, bad_ref=True)
        code, _, err = _interpret(
            run_cli, capsys, run_dir, tmp_path / "o", "--tissue", "blood", *_llm_args(server)
        )
    assert code == 7 and "next step 1" in err and "member_scores.csv" in err


def test_resolve_ref_checks_file_row_column_and_value(base_run):
    run = load_run(base_run)
    a, b = run.cross_nmi.index[:2]
    v = float(run.cross_nmi.loc[a, b])
    assert resolve_ref(f"cross_method_nmi.csv:row={a},col={b},value={v:.3f}", run) is None
    assert (
        resolve_ref(f"cross_method_nmi.csv:row={a},col={b},value={v + 0.01:.3f}", run) is not None
    )
    assert "no row" in resolve_ref(f"cross_method_nmi.csv:row=nope,col={b},value=0.5", run)
    assert "no column" in resolve_ref(f"cross_method_nmi.csv:row={a},col=nope,value=0.5", run)
    assert "not a file of the typed run" in resolve_ref(f"plan.json:row={a},col={b},value=0.5", run)
    assert "at least two decimals" in resolve_ref(
        f"cross_method_nmi.csv:row={a},col={b},value=1", run
    )
    assert "is not FILE" in resolve_ref("cross_method_nmi.csv row a", run)


def test_invariant_wrong_rank_is_named(base_run, sim_file, tmp_path):
    from scagent.consensus.errors import InvariantViolation
    from scagent.consensus.interpret import (
        ClusterAssignment,
        ClusterEvidence,
        Coverage,
        EvidenceMarker,
        InterpretedAssignments,
        check_invariants,
        cluster_de,
    )
    from scagent.data import read
    from scagent.knowledge import MarkerDB

    run = load_run(base_run)
    de = cluster_de(read(sim_file), run.labels, 20)
    db = MarkerDB.bundled().subset(species="human", tissue="blood")
    clusters = []
    for c, g in de.groupby("cluster"):
        top = g.iloc[0]
        rank = int(top.de_rank) + (
            1 if c == "1" else 0
        )  # cluster 1 cites its top gene one rank off
        marker = EvidenceMarker(
            gene=top.gene, de_rank=rank, db_source=None, db_celltype=None, weight=0
        )
        clusters.append(ClusterAssignment(
            cluster=c, n_cells=1, cell_type="x", confidence=0.5, status="interpreted", source="llm",
            evidence=ClusterEvidence(markers=[marker], mean_local_purity=1, member_agreement=1),
        ))  # fmt: skip
    a = InterpretedAssignments(
        banner=BANNER_LLM, run_id=run.run_id, operator="kmode", tissue="blood", species="human",
        clusters=clusters, next_steps=[], coverage=Coverage(interpretable=1, total=1, fraction=1, floor=0),
    )  # fmt: skip
    with pytest.raises(InvariantViolation, match=r"cluster 1 .* at DE rank 2, but it is at rank 1"):
        check_invariants(a, de, db, run)
    clusters[1].evidence.markers[0].de_rank = 1
    clusters[0].evidence.markers[0].db_source = "made_up_db"
    clusters[0].evidence.markers[0].db_celltype = "B cell"
    with pytest.raises(InvariantViolation, match=r"marker-DB entry .* 'made_up_db': no such entry"):
        check_invariants(a, de, db, run)
