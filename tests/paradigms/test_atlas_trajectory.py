"""The atlas and developmental-trajectory paradigms: scIB metrics, trajectory DE, velocity, and both plans end to end on simulated truth."""

from __future__ import annotations

import importlib
import sys

import anndata as ad
import numpy as np
import pandas as pd
import pytest

import scagent.tools as T
from scagent.data.simulate_paradigms import (
    atlas_batch_key,
    simulate_atlas,
    simulate_trajectory,
    truth_recovery,
)
from scagent.errors import (
    DataStateError,
    InvalidDataError,
    InvalidParameterError,
    MissingDependencyError,
    MissingPrerequisiteError,
)

# sys.modules, not attribute access: scagent.tools.velocity etc. are the tool records
im = importlib.import_module("scagent.tools.integration_metrics")
tde = importlib.import_module("scagent.tools.trajectory_de")
vel = importlib.import_module("scagent.tools.velocity")

METRICS = im.INTEGRATION_METRICS
TRAJECTORY_DE = tde.TRAJECTORY_DE
VELOCITY = vel.VELOCITY

# --------------------------------------------------------------------------- atlas metrics


def _prepared(adata: ad.AnnData, batch_key: str = "batch") -> ad.AnnData:
    T.normalize(adata)
    T.hvg(adata, n_top_genes=800, batch_key=batch_key)
    T.pca(adata, n_comps=20)
    T.harmony(adata, batch_key=batch_key)
    return adata


@pytest.fixture(scope="module")
def batched() -> ad.AnnData:
    """A strong batch effect that Harmony can still remove (kNN batch mixing ~0.15 before)."""
    return _prepared(simulate_atlas(1500, 1000, batch_effect=0.15, seed=1))


@pytest.fixture(scope="module")
def batched_scored(batched: ad.AnnData) -> tuple[ad.AnnData, object]:
    adata = batched.copy()
    return adata, METRICS(adata, batch_key="batch", label_key="cell_type")


def test_harmony_improves_batch_mixing_and_keeps_the_cell_types(batched_scored) -> None:
    adata, result = batched_scored
    table = adata.uns["integration_metrics"]["results"].set_index("embedding")
    assert list(table.index) == ["X_pca", "X_pca_harmony"]  # found without being named
    before, after = table.loc["X_pca"], table.loc["X_pca_harmony"]
    assert before["ilisi"] < 0.3 < 0.7 < after["ilisi"]
    assert after["batch_asw"] > before["batch_asw"]
    assert after["kbet_acceptance"] > before["kbet_acceptance"] + 0.5
    assert after["batch_score"] > before["batch_score"] + 0.2
    # biology is conserved: true types stay apart and clusters match them
    assert after["bio_score"] > before["bio_score"] - 0.05
    assert after["nmi"] > 0.85 and after["clisi"] > 0.95
    assert after["overall"] == pytest.approx(0.6 * after["bio_score"] + 0.4 * after["batch_score"])
    assert result.metrics["best_embedding"] == "X_pca_harmony"
    assert result.metrics["delta_batch_score"] > 0.2
    assert result.metrics["ilisi:X_pca_harmony"] == pytest.approx(after["ilisi"])
    assert len(result.tables["integration_metrics"]) == 2
    for name in (*im.BATCH_METRICS, *im.BIO_METRICS, "kbet_acceptance"):
        assert table[name].between(0, 1).all(), name
    assert not result.warnings


def test_random_batch_labels_get_no_credit(batched: ad.AnnData) -> None:
    """With batch labels that carry no signal there is nothing to remove: no big improvement."""
    adata = batched.copy()
    rng = np.random.default_rng(0)
    adata.obs["random_batch"] = rng.permutation(adata.obs["batch"].astype(str).to_numpy())
    T.harmony(adata, batch_key="random_batch", key_added="X_pca_harmony", overwrite=True)
    result = METRICS(adata, batch_key="random_batch", label_key="cell_type")
    table = adata.uns["integration_metrics"]["results"].set_index("embedding")
    assert table.loc["X_pca", "ilisi"] > 0.8  # already mixed
    assert abs(result.metrics["delta_batch_score"]) < 0.05
    assert abs(result.metrics["delta_overall"]) < 0.05


def test_a_failed_integration_is_reported_as_such() -> None:
    """At batch_effect=0.8 the batches share no neighbourhood and Harmony cannot align them."""
    adata = _prepared(simulate_atlas(700, 800, batch_effect=0.8, seed=2))
    result = METRICS(
        adata, batch_key="batch", label_key="cell_type", embeddings="X_pca,X_pca_harmony"
    )
    assert result.metrics["ilisi:X_pca_harmony"] < 0.1
    assert result.metrics["delta_batch_score"] < 0.05
    assert any("does not mix batches better" in w for w in result.warnings)


def test_lisi_counts_the_labels_nearby() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(600, 5))
    x[300:] += 20.0  # two far-apart blobs
    mixed = rng.permutation(np.repeat(["a", "b"], 300))
    apart = np.repeat(["a", "b"], 300)
    assert np.median(im.lisi(x, mixed)) > 1.8
    assert np.median(im.lisi(x, apart)) == pytest.approx(1.0, abs=1e-6)
    assert im.graph_connectivity(im._knn(x, 10)[1], apart) == 1.0
    assert im.kbet_acceptance(im._knn(x, 15)[1], mixed, np.zeros(600)) > 0.8
    assert im.kbet_acceptance(im._knn(x, 15)[1], apart, np.zeros(600)) == 0.0


def test_integration_metrics_defaults_and_errors(batched: ad.AnnData) -> None:
    adata = batched[:400].copy()
    # no cell-type column: the clusters stand in, with a warning
    with pytest.raises(MissingPrerequisiteError, match="labels or clusters"):
        METRICS(adata, batch_key="batch")
    adata.obs["leiden"] = pd.Categorical(adata.obs["cell_type"].cat.codes.astype(str))
    result = METRICS(adata, subsample=300)
    assert result.metrics["label_key"] == "leiden" and result.metrics["batch_key"] == "batch"
    assert result.metrics["n_cells"] == 300
    assert any("favour it" in w for w in result.warnings)
    with pytest.raises(InvalidParameterError, match="not in obsm"):
        METRICS(adata, embeddings=["X_scvi"], overwrite=True)
    with pytest.raises(InvalidParameterError, match="same column"):
        METRICS(adata, batch_key="batch", label_key="batch", overwrite=True)
    adata.obs["one"] = "x"
    with pytest.raises(InvalidDataError, match="single level"):
        METRICS(adata, batch_key="one", overwrite=True)
    adata.uns["mine"] = {"user": 1}
    with pytest.raises(InvalidParameterError, match="not written by scagent"):
        METRICS(adata, key_added="mine")


# --------------------------------------------------------------------------- trajectory DE


@pytest.fixture(scope="module")
def lineage() -> ad.AnnData:
    adata = simulate_trajectory(1200, 1000, seed=4)
    T.normalize(adata)
    T.hvg(adata, n_top_genes=500)
    return adata


def test_trajectory_de_finds_the_planted_genes(lineage: ad.AnnData) -> None:
    adata = lineage.copy()
    adata.obs["dpt_pseudotime"] = adata.obs["pseudotime"]  # the true order
    result = TRAJECTORY_DE(adata)
    table = adata.uns["trajectory_de"]["results"]
    truth = set(adata.uns["simulation"]["trajectory_genes"])
    called = set(table.loc[table["significant"], "gene"])
    assert len(called & truth) / len(truth) >= 0.95
    strong = set(table.loc[table["significant"] & (table["log2_fold_range"] >= 2), "gene"])
    assert len(strong & truth) / len(strong) >= 0.85  # precision at the truth's own 4-fold bar
    score = truth_recovery(adata)
    assert score["de_recall"] == pytest.approx(len(called & truth) / len(truth))
    # haemoglobin rises towards erythroid, and peaks at the end
    hbb = table.set_index("gene").loc["HBB"]
    assert hbb["direction"] == "increasing" and hbb["peak_pseudotime"] > 0.9
    assert table["pvalue"].is_monotonic_increasing
    assert result.metrics["n_tested"] == len(table) <= int(adata.var["highly_variable"].sum())
    assert result.metrics["n_significant"] == len(called)


def test_trajectory_de_on_shuffled_pseudotime_calls_almost_nothing(lineage: ad.AnnData) -> None:
    adata = lineage.copy()
    rng = np.random.default_rng(1)
    adata.obs["shuffled"] = rng.permutation(adata.obs["pseudotime"].to_numpy())
    result = TRAJECTORY_DE(adata, pseudotime_key="shuffled", genes="all")
    assert result.metrics["n_tested"] > 500
    assert result.metrics["n_fdr_only"] <= 3
    pvalues = adata.uns["trajectory_de"]["results"]["pvalue"]
    assert 0.35 < pvalues.median() < 0.65  # roughly uniform under the null


def test_trajectory_de_matches_statsmodels_per_gene(lineage: ad.AnnData) -> None:
    """The vectorised QR solve gives each gene the F test of a per-gene OLS fit."""
    import statsmodels.formula.api as smf

    adata = lineage[:400].copy()
    adata.obs["pt"] = adata.obs["pseudotime"]
    TRAJECTORY_DE(adata, pseudotime_key="pt", df=4)
    table = adata.uns["trajectory_de"]["results"].set_index("gene")
    for gene in (table.index[0], table.index[len(table) // 2]):
        y = adata[:, gene].X.toarray().ravel()
        fit = smf.ols("y ~ cr(t, df=4, constraints='center')", {"y": y, "t": adata.obs["pt"]}).fit()
        assert table.loc[gene, "F"] == pytest.approx(fit.fvalue, rel=1e-6)
        assert table.loc[gene, "pvalue"] == pytest.approx(fit.f_pvalue, rel=1e-6, abs=1e-300)
    dense = adata.copy()
    dense.X = dense.X.toarray()
    TRAJECTORY_DE(dense, pseudotime_key="pt", df=4, overwrite=True)
    again = dense.uns["trajectory_de"]["results"].set_index("gene")
    np.testing.assert_allclose(again.loc[table.index, "F"], table["F"], rtol=1e-8)


def test_trajectory_de_errors(lineage: ad.AnnData) -> None:
    adata = lineage[:200].copy()
    with pytest.raises(MissingPrerequisiteError, match="pseudotime"):
        TRAJECTORY_DE(adata)  # the simulator's truth column is not an analysis result
    adata.obs["flat"] = 1.0
    with pytest.raises(InvalidDataError, match="constant"):
        TRAJECTORY_DE(adata, pseudotime_key="flat")
    adata.obs["few"] = np.where(np.arange(200) < 10, 0.5, np.inf)
    with pytest.raises(InvalidDataError, match="20"):
        TRAJECTORY_DE(adata, pseudotime_key="few")
    with pytest.raises(InvalidParameterError, match="not an obs column"):
        TRAJECTORY_DE(adata, pseudotime_key="nope")
    adata.obs["pt"] = adata.obs["pseudotime"]
    with pytest.raises(InvalidDataError, match="no gene is detected in 10000"):
        TRAJECTORY_DE(adata, pseudotime_key="pt", min_cells=10_000)


def test_trajectory_de_refuses_a_pseudotime_of_a_few_stages(lineage: ad.AnnData) -> None:
    """Three sampling days as pseudotime make the spline design rank-deficient."""
    adata = lineage[:300].copy()
    adata.obs["day"] = np.repeat([0.0, 1.0, 2.0], 100)
    with pytest.raises(InvalidDataError, match="only 3 distinct") as exc:
        TRAJECTORY_DE(adata, pseudotime_key="day")
    assert "continuous pseudotime" in exc.value.remedy
    assert "trajectory_de" not in adata.uns
    # Five stages support df=4 at most; the remedy says so, and df=4 runs with sane curves.
    adata.obs["stage"] = np.tile(np.arange(5.0), 60)
    with pytest.raises(InvalidDataError, match="df=5 needs at least 6") as exc:
        TRAJECTORY_DE(adata, pseudotime_key="stage")
    assert "df=4" in exc.value.remedy
    TRAJECTORY_DE(adata, pseudotime_key="stage", df=4)
    table = adata.uns["trajectory_de"]["results"]
    assert table["amplitude"].abs().max() < 20  # log-normalized expression, not 1e30


# --------------------------------------------------------------------------- velocity


def test_velocity_says_which_layers_are_missing(lineage: ad.AnnData) -> None:
    adata = lineage[:100].copy()
    assert not vel.has_velocity_layers(adata)
    with pytest.raises(
        DataStateError, match="'spliced' and 'unspliced'; missing: spliced, unspliced"
    ):
        VELOCITY(adata)
    adata.layers["spliced"] = adata.layers["counts"].copy()
    with pytest.raises(DataStateError, match="missing: unspliced"):
        VELOCITY(adata)


def test_velocity_without_scvelo_names_the_extra(lineage: ad.AnnData, monkeypatch) -> None:
    adata = lineage[:100].copy()
    adata.layers["spliced"] = adata.layers["counts"].copy()
    adata.layers["unspliced"] = adata.layers["counts"].copy()
    assert vel.has_velocity_layers(adata)
    monkeypatch.setitem(sys.modules, "scvelo", None)  # as if scVelo were not installed
    with pytest.raises(MissingDependencyError) as info:
        VELOCITY(adata)
    assert "pip install 'scagent[velocity]'" in info.value.remedy
    assert set(adata.layers) == {"counts", "spliced", "unspliced"}  # nothing written


def test_velocity_with_scvelo() -> None:
    pytest.importorskip("scvelo")
    adata = simulate_trajectory(600, 600, seed=5)
    rng = np.random.default_rng(0)
    counts = adata.X.copy()
    adata.layers["spliced"] = counts
    unspliced = counts.copy()
    unspliced.data = rng.binomial(unspliced.data.astype(int), 0.3).astype(np.float32)
    adata.layers["unspliced"] = unspliced
    T.normalize(adata)
    T.hvg(adata, n_top_genes=300)
    T.pca(adata, n_comps=15)
    T.neighbors(adata, n_neighbors=20)
    result = VELOCITY(adata)
    assert "obs/velocity_pseudotime" in result.written
    assert adata.obs["velocity_pseudotime"].between(0, 1).all()


# --------------------------------------------------------------------------- inputs


def test_input_checks() -> None:
    from scagent.plan.run import check_paradigm_inputs

    adata = simulate_atlas(300, 400, seed=0)
    check_paradigm_inputs("atlas", adata)
    assert atlas_batch_key(adata) == "batch"
    one = adata.copy()
    one.obs = one.obs.drop(columns=["batch", "sample"])
    with pytest.raises(InvalidDataError, match="no batch, sample or donor column"):
        check_paradigm_inputs("atlas", one)
    one.obs["batch"] = "b1"  # one level separates nothing
    with pytest.raises(InvalidDataError, match="2 or more levels"):
        check_paradigm_inputs("atlas", one)

    check_paradigm_inputs("developmental_trajectory", adata)
    with pytest.raises(InvalidDataError, match="'CD999'"):
        check_paradigm_inputs(
            "developmental_trajectory", adata, {"trajectory": {"root_gene": "CD999"}}
        )
    with pytest.raises(InvalidDataError, match="at least 100 cells"):
        check_paradigm_inputs("developmental_trajectory", adata[:50].copy())
    scaled = ad.AnnData(
        X=np.random.default_rng(0).normal(size=(200, 100)).astype(np.float32),
        var=pd.DataFrame(index=[f"G{i}" for i in range(100)]),
    )
    with pytest.raises(InvalidDataError, match="raw counts or log-normalized"):
        check_paradigm_inputs("atlas", scaled)


# --------------------------------------------------------------------------- end to end


def test_atlas_paradigm_end_to_end(tmp_path) -> None:
    from scagent.plan.run import run_paradigm
    from scagent.session import Session

    adata = simulate_atlas(1500, 1000, seed=0)
    session = Session.init(tmp_path / "atlas", data=adata)
    result = run_paradigm(session, "atlas", params={"hvg": {"n_top_genes": 1000}})
    batch_key = atlas_batch_key(adata)
    params = {h.tool_id: h.params for h in session.history()}
    assert params["harmony"]["batch_key"] == params["integration_metrics"]["batch_key"] == batch_key
    assert session.history()[-1].metrics["label_key"] == "annotation_label"
    assert not [s.step_id for s in result.steps if s.status == "skipped"]
    score = truth_recovery(session.adata)
    assert score["ilisi_pca"] < 0.3 and score["ilisi_integrated"] > 0.7
    assert score["clisi_integrated"] > 0.95 and score["label_asw_integrated"] > 0.5
    assert score["ari_leiden"] > 0.8
    assert score["annotation_score"] > 0.6
    assert score["reported_delta_batch_score"] > 0.2


def test_developmental_trajectory_paradigm_end_to_end(tmp_path) -> None:
    from scagent.plan.run import run_paradigm
    from scagent.session import Session

    adata = simulate_trajectory(1200, 1000, seed=0)
    session = Session.init(tmp_path / "trajectory", data=adata)
    result = run_paradigm(session, "developmental_trajectory", params={"hvg": {"n_top_genes": 500}})
    # velocity is optional: without spliced/unspliced layers it is skipped with the reason,
    # and nothing of it is committed
    assert not vel.has_velocity_layers(session.adata)
    velocity = result.outcome("velocity")
    assert velocity.status == "skipped" and "spliced" in velocity.reason
    assert "velocity" not in [h.tool_id for h in session.history()]
    trajectory = next(h for h in session.history() if h.tool_id == "trajectory")
    assert trajectory.params["root_gene"] == "CD34"
    score = truth_recovery(session.adata)
    assert score["root_cell_type"] == "HSPC"
    assert score["pseudotime_spearman"] > 0.9
    assert score["de_recall"] >= 0.9
    assert score["de_precision_4fold"] >= 0.8
    assert score["n_scored_cells"] > 1000


def test_records_schemas_and_the_paradigm_plans_see_the_tools() -> None:
    import json

    from scagent.plan.paradigms import get_paradigm

    for tool in (METRICS, TRAJECTORY_DE, VELOCITY):
        schema = tool.json_schema()
        json.dumps(schema)
        assert tool.reference and tool.fn.__doc__ and schema["description"]
        tool.validate_params({})  # every parameter has a default
    assert METRICS.category == "integration_metrics"
    assert TRAJECTORY_DE.category == VELOCITY.category == "trajectory"
    for paradigm in ("atlas", "developmental_trajectory"):
        plan = get_paradigm(paradigm)
        assert all(step.available for step in plan.steps), paradigm
