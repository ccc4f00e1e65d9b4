"""composition: a known abundance shift found and nothing else, calibrated p-values, refusals."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
import pytest

from scagent.errors import InvalidDataError
from scagent.tools.abundance import COMPOSITION, export_composition, moderated_t, propeller_test

TYPES = ["CD4 naive T cell", "CD8 T cell", "classical monocyte", "B cell", "NK cell", "pDC"]
BASE = np.array([0.30, 0.16, 0.25, 0.13, 0.12, 0.04])


def _shifted_data(fold: float, seed: int, samples: int = 3) -> ad.AnnData:
    """Each sample simulated on its own; shares drawn around the condition's (replicate variation)."""
    from scagent.data import simulate

    rng = np.random.default_rng(seed)
    parts = []
    for cond in ("ctrl", "stim"):
        shares = BASE.copy()
        if cond == "stim":
            shares[TYPES.index("pDC")] *= fold
            shares /= shares.sum()
        for i in range(samples):
            props = rng.dirichlet(300 * shares)
            part = simulate(
                400,
                300,
                cell_types=TYPES,
                proportions=props,
                samples_per_condition=1,
                seed=int(rng.integers(1 << 30)),
            )
            part.obs["sample"] = f"{cond}_{i + 1}"
            part.obs["condition"] = cond
            part.obs_names = [f"{cond}{i}_{n}" for n in part.obs_names]
            parts.append(part)
    out = ad.concat(parts, join="inner")
    out.obs["condition"] = pd.Categorical(out.obs["condition"], categories=["ctrl", "stim"])
    return out


@pytest.fixture(scope="module")
def shifted() -> ad.AnnData:
    return _shifted_data(fold=4.0, seed=11)


def test_finds_the_shifted_type_and_no_other(shifted) -> None:
    adata = shifted.copy()
    result = COMPOSITION(adata, groupby="cell_type")
    res = adata.uns["composition"]["results"].set_index("cell_type")
    assert res.loc["pDC", "fdr"] < 0.1
    assert res.loc["pDC", "prop_ratio"] > 2
    assert set(res.index[res["significant"]]) == {"pDC"}
    assert result.metrics["significant"] == "pDC"
    # the inspector found sample and condition by their names
    params = adata.uns["composition"]["params"]
    assert (params["sample_key"], params["condition_key"]) == ("sample", "condition")
    counts = adata.uns["composition"]["counts"].set_index("sample")
    assert counts.to_numpy().sum() == adata.n_obs


def test_no_shift_no_call() -> None:
    adata = _shifted_data(fold=1.0, seed=5)
    COMPOSITION(adata, groupby="cell_type")
    assert not adata.uns["composition"]["results"]["significant"].any()


def test_pvalues_are_calibrated_on_null_proportions() -> None:
    """Under no difference, about 5% of p-values fall below 0.05 for common and rare types alike."""
    rng = np.random.default_rng(0)
    samples = pd.DataFrame({"condition": ["a"] * 4 + ["b"] * 4}, index=[f"s{i}" for i in range(8)])
    pvalues = []
    for _ in range(400):
        counts = np.array([rng.multinomial(800, rng.dirichlet(300 * BASE)) for _ in range(8)])
        table = pd.DataFrame(counts, index=samples.index, columns=TYPES)
        pvalues.append(propeller_test(table, samples, "condition", "a", "b")["pvalue"].to_numpy())
    rate = (np.array(pvalues) < 0.05).mean(axis=0)
    assert np.all((rate > 0.02) & (rate < 0.09)), rate


def test_moderated_t_pools_equal_variances_fully() -> None:
    coef = np.array([1.0, -0.5, 0.0])
    t, p, d0, s0 = moderated_t(coef, 0.5, np.array([0.2, 0.2, 0.2]), df_residual=4)
    assert d0 == np.inf and s0 == pytest.approx(0.2)
    np.testing.assert_allclose(t, coef / (0.5 * np.sqrt(0.2)))
    assert p[2] == pytest.approx(1.0) and p[0] < p[1]


def test_moderated_t_estimates_the_prior_and_shrinks_towards_it() -> None:
    rng = np.random.default_rng(1)
    true_var = 0.3 * 10 / rng.chisquare(10, size=2000)  # scaled inverse chi-square, d0 = 10
    s2 = true_var * rng.chisquare(4, size=2000) / 4  # observed on 4 residual df
    s2[0] = 3.0  # an outlying variance
    t, _, d0, s0 = moderated_t(np.ones(2000), 1.0, s2, df_residual=4)
    assert 6 < d0 < 16 and 0.25 < s0 < 0.36
    post = (1.0 / t) ** 2
    assert s0 < post[0] < s2[0]  # pulled towards the prior, not onto it
    np.testing.assert_allclose(post, (d0 * s0 + 4 * s2) / (d0 + 4))


def test_refuses_a_condition_with_one_sample(shifted) -> None:
    adata = shifted[~shifted.obs["sample"].isin(["stim_2", "stim_3"]).to_numpy()].copy()
    with pytest.raises(InvalidDataError, match="pseudoreplication"):
        COMPOSITION(adata, groupby="cell_type")


def test_confounded_covariate(shifted) -> None:
    adata = shifted.copy()
    adata.obs["site"] = adata.obs["condition"].astype(str)
    with pytest.raises(InvalidDataError, match="confounded"):
        COMPOSITION(adata, groupby="cell_type", covariates=["site"])


def test_logit_transform_and_export(shifted, tmp_path) -> None:
    adata = shifted.copy()
    COMPOSITION(adata, groupby="cell_type", transform="logit", key_added="comp_logit")
    res = adata.uns["comp_logit"]["results"].set_index("cell_type")
    assert res.loc["pDC", "fdr"] < 0.1
    files = export_composition(adata, tmp_path, key="comp_logit")
    assert {f.name for f in files} >= {
        "comp_logit.csv",
        "comp_logit_bars.png",
        "comp_logit_bars.svg",
    }
    table = pd.read_csv(tmp_path / "comp_logit.csv").set_index("cell_type")
    assert table.loc["pDC", "significant"]


def test_runs_through_a_session(shifted, tmp_path) -> None:
    from scagent.session import Session

    session = Session.init(tmp_path / "proj", data=shifted.copy())
    record = session.run("composition", groupby="cell_type")
    assert record.result.metrics["significant"] == "pDC"
    assert session.history()[-1].tool_id == "composition"
