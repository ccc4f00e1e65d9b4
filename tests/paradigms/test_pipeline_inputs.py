"""`scagent pipeline --data`: other feature types of a 10x file, attached files, and the bad inputs of each paradigm."""

from __future__ import annotations

import sys
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from scagent.cli.main import main
from scagent.data import modality_counts, set_modality_counts, simulate, split_feature_types
from scagent.data.modalities import read_with_feature_types
from scagent.data.simulate_cite import simulate_cite
from scagent.data.simulate_repertoire import simulate_repertoire_contigs, write_10x_contigs
from scagent.errors import InvalidDataError, InvalidParameterError, MissingDependencyError


def write_10x_h5(rna, path: Path, others: dict[str, pd.DataFrame]) -> Path:
    """A Cell Ranger v3 .h5 with Gene Expression plus other feature types (``{type: counts}``)."""
    blocks = [sp.csr_matrix(rna.X)]
    names, types = list(rna.var_names), ["Gene Expression"] * rna.n_vars
    for feature_type, table in others.items():
        blocks.append(sp.csr_matrix(table.to_numpy()))
        names += list(table.columns)
        types += [feature_type] * table.shape[1]
    X = sp.hstack(blocks).tocsr()
    with h5py.File(path, "w") as f:
        m = f.create_group("matrix")
        m["data"] = X.data.astype(np.int32)
        m["indices"] = X.indices.astype(np.int64)
        m["indptr"] = X.indptr.astype(np.int64)
        m["shape"] = np.array([X.shape[1], X.shape[0]], dtype=np.int32)
        m["barcodes"] = np.array(rna.obs_names, dtype="S")
        feats = m.create_group("features")
        feats["id"] = np.array([f"ID{i}" for i in range(len(names))], dtype="S")
        feats["name"] = np.array(names, dtype="S")
        feats["feature_type"] = np.array(types, dtype="S")
        feats["genome"] = np.array(["GRCh38"] * len(names), dtype="S")
        feats["_all_tag_keys"] = np.array([b"genome"])
    return path


@pytest.fixture(scope="module")
def cite():
    return simulate_cite(1500, 800, seed=2)


def test_10x_feature_types_move_to_obsm(tmp_path: Path, cite) -> None:
    guides = pd.DataFrame(
        np.random.default_rng(0).poisson(2, size=(cite.n_obs, 3)),
        index=cite.obs_names,
        columns=["CD81_1", "NT_1", "NT_2"],
    )
    path = write_10x_h5(
        cite, tmp_path / "raw.h5",
        {"Antibody Capture": cite.obsm["protein_counts"], "CRISPR Guide Capture": guides},
    )  # fmt: skip
    adata, moved = read_with_feature_types(path)
    assert moved == {"Antibody Capture": "protein_counts", "CRISPR Guide Capture": "guide_counts"}
    assert adata.n_vars == cite.n_vars and set(adata.var["feature_types"]) == {"Gene Expression"}
    assert (adata.X != cite.X).nnz == 0
    np.testing.assert_array_equal(
        modality_counts(adata, "protein_counts").to_numpy(), cite.obsm["protein_counts"].to_numpy()
    )
    assert list(adata.obsm["guide_counts"].columns) == ["CD81_1", "NT_1", "NT_2"]
    # antibodies named like genes (CD4, CD19) keep their names; genes stay unique
    assert list(adata.obsm["protein_counts"].columns) == list(cite.obsm["protein_counts"].columns)
    assert adata.var_names.is_unique and list(adata.var_names) == list(cite.var_names)
    # a second split has nothing left to move; an obsm key in the way is refused
    assert split_feature_types(adata) == {}


def test_multimodal_pipeline_from_a_10x_file(tmp_path: Path, cite, capsys) -> None:
    path = write_10x_h5(
        cite, tmp_path / "cite.h5", {"Antibody Capture": cite.obsm["protein_counts"]}
    )
    out = tmp_path / "run"
    code = main(["pipeline", "-p", "multimodal", "--data", str(path), "--out", str(out),
                 "--no-report", "--json"])  # fmt: skip
    assert code == 0
    text = capsys.readouterr()
    assert "Antibody Capture features -> obsm['protein_counts']" in text.err
    from scagent.session import Session

    final = Session.open(out).adata
    # no simulation truth travels through a 10x file: score the joint clusters here
    from sklearn.metrics import adjusted_rand_score

    truth = cite.obs.loc[final.obs_names, "true_protein_population"]
    assert adjusted_rand_score(truth, final.obs["leiden_wnn"]) > 0.9
    assert adjusted_rand_score(truth, final.obs["leiden_wnn"]) > adjusted_rand_score(
        truth, final.obs["leiden"]
    )


def _plain(tmp_path: Path, n: int = 400):
    adata = simulate(n, 500, seed=7)
    path = tmp_path / "plain.h5ad"
    adata.write_h5ad(path)
    return adata, path


@pytest.mark.parametrize(
    "paradigm, extra, words",
    [
        ("perturbation_screen", [], ["obsm['guide_counts']", "CRISPR Guide Capture"]),
        ("immune_repertoire", [], ["obsm['airr']", "--vdj"]),
        ("multimodal", [], ["obsm['protein_counts']"]),
    ],
)
def test_paradigm_without_its_modality_names_what_is_missing(
    tmp_path: Path, capsys, paradigm: str, extra: list[str], words: list[str]
) -> None:
    _, path = _plain(tmp_path)
    out = tmp_path / "p"
    code = main(["pipeline", "-p", paradigm, "--data", str(path), "--out", str(out), *extra])
    assert code == InvalidDataError.exit_code
    err = capsys.readouterr().err
    for word in words:
        assert word in err
    assert not (out / ".scagent").exists()


def test_vdj_barcodes_that_do_not_match_report_the_rate(tmp_path: Path, capsys) -> None:
    adata, contigs = simulate_repertoire_contigs(600, 500, seed=1)
    contigs = contigs.assign(
        barcode=contigs["barcode"].str.replace("-1", "-9").str.replace("-2", "-9")
    )
    vdj = write_10x_contigs(contigs, tmp_path / "filtered_contig_annotations.csv")
    path = tmp_path / "gex.h5ad"
    adata.write_h5ad(path)
    code = main(["pipeline", "-p", "immune_repertoire", "--data", str(path), "--vdj", str(vdj),
                 "--out", str(tmp_path / "p")])  # fmt: skip
    assert code == InvalidDataError.exit_code
    err = capsys.readouterr().err
    assert "0 of" in err and "(0.0%) are among the 600 cells" in err
    assert not (tmp_path / "p" / ".scagent").exists()


def test_adt_table_of_other_cells_reports_the_rate(tmp_path: Path, cite, capsys) -> None:
    rna_path = tmp_path / "rna.h5ad"
    cite[:1000].copy().write_h5ad(rna_path)
    adt = cite.obsm["protein_counts"].iloc[500:]  # half of the cells, plus cells not in X
    adt.to_csv(tmp_path / "adt.csv")
    code = main(["pipeline", "-p", "multimodal", "--data", str(rna_path), "--proteins",
                 str(tmp_path / "adt.csv"), "--out", str(tmp_path / "p")])  # fmt: skip
    assert code == InvalidDataError.exit_code
    assert "500 of 1,000 cells (50.0%)" in capsys.readouterr().err
    with pytest.raises(InvalidDataError, match=r"50\.0%"):
        set_modality_counts(cite[:1000].copy(), "protein_counts", adt)


def test_attached_files_only_go_with_data(tmp_path: Path, capsys) -> None:
    code = main(["pipeline", "-p", "immune_repertoire", "--simulate", "--vdj", "x.csv",
                 "--out", str(tmp_path / "p")])  # fmt: skip
    assert code == InvalidParameterError.exit_code
    assert "--vdj/--guides/--proteins attach files to --data" in capsys.readouterr().err


@pytest.mark.parametrize(
    "module, extra, call",
    [
        ("liana", "communication", "communication"),
        ("scirpy", "repertoire", "read_vdj"),
        ("muon", "multimodal", "protein_normalize"),
    ],
)
def test_missing_extra_gives_the_pip_command(
    monkeypatch, tmp_path: Path, cite, module, extra, call
) -> None:
    import scagent.tools as tl
    from scagent.data.vdj import read_vdj

    _, contigs = simulate_repertoire_contigs(300, 400, seed=1)
    contig_file = write_10x_contigs(contigs, tmp_path / "filtered_contig_annotations.csv")
    monkeypatch.setitem(sys.modules, module, None)  # import now fails as if not installed
    adata = cite[:200].copy()
    adata.obs["cell_type"] = adata.obs["cell_type"].astype("category")
    with pytest.raises(MissingDependencyError) as err:
        if call == "read_vdj":
            read_vdj(contig_file)
        elif call == "communication":
            tl.communication(adata, groupby="cell_type")
        else:
            tl.get_tool(call)(adata)
    assert f"pip install 'scagent[{extra}]'" in err.value.remedy


def test_perturbation_pipeline_with_a_guide_table(tmp_path: Path, capsys) -> None:
    import json

    from scagent.data.simulate_perturbation import simulate_perturbation

    screen = simulate_perturbation(1500, 800, n_targets=3, seed=4)
    guides = screen.obsm.pop("guide_counts")
    # cells without any guide read are missing from the table, as in a real export
    guides = guides[guides.sum(axis=1) > 0]
    guides.to_csv(tmp_path / "guides.csv")
    screen.write_h5ad(tmp_path / "screen.h5ad")
    out = tmp_path / "run"
    code = main(["pipeline", "-p", "perturbation_screen", "--data", str(tmp_path / "screen.h5ad"),
                 "--guides", str(tmp_path / "guides.csv"), "--out", str(out), "--no-report"])  # fmt: skip
    assert code == 0
    assert "guides.csv -> obsm['guide_counts']" in capsys.readouterr().out
    truth = json.loads((out / "pipeline.json").read_text())["truth"]
    assert truth["assignment_accuracy"] > 0.9
    assert truth["targets_knocked_down"] == 1.0 and truth["false_knockdown_calls"] == 0


def test_bad_counts_tables_are_refused_clearly(tmp_path: Path, cite, capsys) -> None:
    from scagent.data.modalities import read_counts_table
    from scagent.errors import CorruptInputError, InputNotFoundError

    _, path = _plain(tmp_path)
    code = main(["pipeline", "-p", "multimodal", "--data", str(path), "--proteins",
                 str(tmp_path / "nope.csv"), "--out", str(tmp_path / "p")])  # fmt: skip
    assert code == InputNotFoundError.exit_code and "nope.csv" in capsys.readouterr().err
    (tmp_path / "empty.csv").write_text("barcode\nAAAC-1\n")
    with pytest.raises(CorruptInputError, match="no feature columns"):
        read_counts_table(tmp_path / "empty.csv")
    adt = cite.obsm["protein_counts"].iloc[:300]
    twice = pd.concat([adt, adt.iloc[:2]])
    with pytest.raises(InvalidDataError, match="appear more than once"):
        set_modality_counts(cite[:300].copy(), "protein_counts", twice)
    words = adt.assign(note="x")
    with pytest.raises(InvalidDataError, match=r"\['note'\] are not numbers"):
        set_modality_counts(cite[:300].copy(), "protein_counts", words)
