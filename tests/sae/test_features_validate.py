"""Feature analysis and validation on pbmc68k_reduced, and the ORA statistics."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from scagent.errors import InvalidDataError, InvalidParameterError
from scagent.sae.activations import cache_activations, parse_source
from scagent.sae.features import compute_features, read_features, write_features
from scagent.sae.train import make_config, train_sae
from scagent.sae.validate import marker_gene_sets, ora, random_direction_sae, validate_features


@pytest.fixture(scope="module")
def pbmc_run(pbmc68k, tmp_path_factory):
    adata = pbmc68k.copy()
    folder = tmp_path_factory.mktemp("pbmc_sae")
    cache = cache_activations(parse_source("obsm:X_pca"), adata, folder / "acts")
    cfg = make_config(
        d_sae=128,
        k=8,
        steps=400,
        batch_size=256,
        lr=2e-3,
        warmup_steps=40,
        dead_after=20000,
        threads=1,
    )
    sae = train_sae(cache, cfg).sae
    return adata, cache, sae


def test_cell_level_features(pbmc_run, tmp_path):
    adata, cache, sae = pbmc_run
    result = compute_features(sae, cache, adata, groupby="bulk_labels")
    feats = result.features
    acts = adata.obsm["X_sae"]
    assert acts.shape == (700, 128) and (acts.getnnz(axis=1) <= 8).all()
    # Frequencies agree with the activation matrix, specificity lies in [0, 1].
    assert np.allclose(feats["frequency"], acts.getnnz(axis=0) / 700)
    assert feats["specificity"].between(0, 1).all()
    f = int(feats.sort_values("specificity").iloc[-1]["feature"])
    grp = result.groups[result.groups["feature"] == f].set_index("group")["mean_activation"]
    assert feats.loc[f, "top_group"] == grp.idxmax()
    col = acts[:, f].toarray().ravel()
    assert grp[feats.loc[f, "top_group"]] == pytest.approx(
        col[(adata.obs["bulk_labels"] == grp.idxmax()).to_numpy()].mean(), rel=1e-4
    )
    top = result.top_cells[result.top_cells["feature"] == f]
    assert top["activation"].is_monotonic_decreasing
    assert top.iloc[0]["cell_id"] == adata.obs_names[col.argmax()]
    assert result.info["gene_score"] == "decoder direction"
    write_features(result, tmp_path / "f")
    back = read_features(tmp_path / "f")
    pd.testing.assert_frame_equal(back.features, result.features)
    assert (
        back.info["histograms"][f]["counts"]
        and sum(back.info["histograms"][f]["counts"]) == (col > 0).sum()
    )


def test_correlation_gene_scores_track_expression(pbmc_run):
    adata, cache, sae = pbmc_run
    result = compute_features(sae, cache, adata, gene_score="correlation", key_added=None)
    f = int(result.features.sort_values("frequency").iloc[-1]["feature"])
    best = result.genes[(result.genes["feature"] == f) & (result.genes["rank"] == 1)].iloc[0]
    a = result.cell_activations[:, f].toarray().ravel()
    e = adata.raw[:, best["gene"]].X
    e = np.asarray(e.toarray() if hasattr(e, "toarray") else e).ravel()
    assert best["score"] == pytest.approx(np.corrcoef(a, e)[0, 1], abs=1e-6)


def test_decoder_scores_need_a_gene_map(pbmc_run, tmp_path):
    adata, _, sae = pbmc_run
    adata = adata.copy()
    adata.obsm["X_other"] = adata.obsm["X_pca"].copy()
    cache = cache_activations(parse_source("obsm:X_other"), adata, tmp_path / "c")
    with pytest.raises(InvalidParameterError, match="gene_score='decoder'"):
        compute_features(sae, cache, adata, gene_score="decoder")


def test_enrichment_beats_random_directions(pbmc_run):
    adata, cache, sae = pbmc_run
    result = compute_features(sae, cache, adata, key_added=None)
    v = validate_features(result, sae, cache, adata)
    s = v.summary
    assert s["share_significant"] >= s["null_share_significant"] + 0.1, s
    assert s["n_gene_sets"] > 100
    hits = v.enrichment[v.enrichment["fdr"] < 0.05]
    assert len(hits) and (hits["overlap"] >= 1).all()


def test_random_direction_sae_keeps_shape_and_sparsity(pbmc_run):
    _, _, sae = pbmc_run
    null = random_direction_sae(sae, seed=3)
    assert (null.d_in, null.d_sae, null.k, null.input_scale) == (
        sae.d_in,
        sae.d_sae,
        sae.k,
        sae.input_scale,
    )
    cos = (null.W_dec @ sae.W_dec.T).abs().max().item()
    assert cos < 0.9


def test_ora_matches_fisher_exact():
    universe = [f"g{i}" for i in range(200)]
    sets = {"A": universe[:20], "B": universe[100:130], "C": ["x", "y"]}
    top = {0: universe[:10] + universe[150:160], 1: universe[100:105] + universe[50:65]}
    df = ora(top, sets, universe)
    row = df[(df["feature"] == 0) & (df["gene_set"] == "A")].iloc[0]
    assert row["overlap"] == 10 and row["set_size"] == 20
    p = stats.fisher_exact([[10, 10], [10, 170]], alternative="greater").pvalue
    assert row["pvalue"] == pytest.approx(p, rel=1e-9)
    # BH over all 2 features x 2 testable sets.
    assert (df["fdr"] >= df["pvalue"]).all()
    assert "C" not in set(df["gene_set"])


def test_marker_gene_sets_and_empty_sets(pbmc_run):
    sets = marker_gene_sets("human")
    assert any("T cell" in k for k in sets) and all(len(v) >= 3 for v in sets.values())
    adata, cache, sae = pbmc_run
    result = compute_features(sae, cache, adata, key_added=None)
    with pytest.raises(InvalidDataError, match="no gene sets"):
        validate_features(result, sae, cache, adata, gene_sets={})
