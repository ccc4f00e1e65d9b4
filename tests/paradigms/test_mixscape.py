"""Mixscape on a simulated screen with planted escapers: KO/NP calls against the truth, and bad inputs."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pytest

import scagent.tools.perturbation  # noqa: F401  (registers guide_assignment)
from scagent.data.simulate_perturbation import simulate_perturbation
from scagent.errors import InvalidDataError, InvalidParameterError, MissingPrerequisiteError
from scagent.tools import get_tool
from scagent.tools.mixscape import fit_fixed_mixture  # registers mixscape

mixscape = get_tool("mixscape")


@pytest.fixture(scope="module")
def prepared() -> ad.AnnData:
    """3 targets, 30% escapers, knocked-down cells with 30 downstream genes; up to pca + guides."""
    data = simulate_perturbation(
        2500, 1000, n_targets=3, escape_rate=0.3, n_downstream=30, downstream_log2fc=1.5, seed=2
    )
    for tool in ("normalize", "hvg", "pca", "guide_assignment"):
        get_tool(tool)(data)
    return data


@pytest.fixture(scope="module")
def called(prepared) -> tuple[ad.AnnData, object]:
    data = prepared.copy()
    return data, mixscape(data)


def _agreement(data: ad.AnnData) -> tuple[float, int]:
    obs = data.obs
    pert = obs["perturbation"].astype(str).to_numpy()
    glob = obs["mixscape_class_global"].astype(str).to_numpy()
    singlets = (glob != "unassigned") & (pert != "non-targeting")
    ko = glob[singlets] == "KO"
    return float((ko == ~obs["true_escape"].to_numpy(bool)[singlets]).mean()), int(singlets.sum())


def test_ko_calls_recover_planted_escapers(called):
    data, result = called
    agreement, n = _agreement(data)
    assert n > 1000
    assert agreement > 0.85
    pert = data.obs["perturbation"].astype(str).to_numpy()
    cls = data.obs["mixscape_class"].astype(str).to_numpy()
    assert set(cls[pert == "non-targeting"]) == {"NT"}
    # Cells without one perturbation stay out of the calls.
    off = np.isin(pert, ["multiple", "unassigned"]) | data.obs["guide_multiplet"].to_numpy(bool)
    assert off.any() and set(cls[off]) == {"unassigned"}
    # Class names carry the gene; posteriors follow the calls.
    post = data.obs["mixscape_posterior"].to_numpy(float)
    ko = np.char.endswith(cls.astype(str), " KO")
    assert np.all(post[ko] > 0.5) and np.all(post[np.char.endswith(cls.astype(str), " NP")] <= 0.5)
    assert np.isnan(post[pert == "non-targeting"]).all()
    table = data.uns["mixscape"]["perturbations"]
    assert len(table) == 3 and table["converged"].all()
    assert table["share_ko"].between(0.55, 0.85).all()  # 70% planted KO
    assert result.metrics["n_perturbations_with_ko"] == 3
    assert result.metrics["share_ko"] == pytest.approx(0.7, abs=0.1)
    assert "obs/mixscape_class" in result.written and "uns/mixscape" in result.written


def test_split_by_lane_and_a_perturbation_without_effect(prepared):
    data = prepared.copy()
    # Relabel a third of the controls as a sham perturbation: no DE genes, so all NP.
    pert = data.obs["perturbation"].astype(str).to_numpy().copy()
    ctrl = np.flatnonzero(pert == "non-targeting")
    pert[ctrl[::3]] = "SHAM"
    data.obs["perturbation"] = pert
    result = mixscape(data, split_by="sample", key_added="mx")
    cls = data.obs["mx_class"].astype(str).to_numpy()
    assert set(cls[pert == "SHAM"]) == {"SHAM NP"}
    assert any("SHAM" in w and "DE genes" in w for w in result.warnings)
    table = data.uns["mx"]["perturbations"].set_index("perturbation")
    assert table.loc["SHAM", "status"] == "too few DE genes"
    assert _agreement_mx(data) > 0.85


def _agreement_mx(data: ad.AnnData) -> float:
    obs = data.obs
    glob = obs["mx_class_global"].astype(str).to_numpy()
    real = (glob != "unassigned") & ~np.isin(
        obs["perturbation"].astype(str), ["non-targeting", "SHAM"]
    )
    return float(((glob[real] == "KO") == ~obs["true_escape"].to_numpy(bool)[real]).mean())


def test_fixed_mixture_finds_the_shifted_component():
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.normal(0, 0.3, 300), rng.normal(1, 0.3, 700)])
    post, fit = fit_fixed_mixture(x, 0.0, 0.3)
    assert fit["mu_ko"] == pytest.approx(1.0, abs=0.05)
    assert fit["weight_ko"] == pytest.approx(0.7, abs=0.05)
    assert ((post > 0.5) == (np.arange(1000) >= 300)).mean() > 0.9


def test_errors_name_the_missing_input(prepared):
    data = prepared.copy()
    del data.obs["perturbation"]
    with pytest.raises(MissingPrerequisiteError, match="guide_assignment"):
        mixscape(data)
    data = prepared.copy()
    del data.obsm["X_pca"]
    with pytest.raises(MissingPrerequisiteError) as info:
        mixscape(data)
    assert "pca" in info.value.remedy
    with pytest.raises(InvalidDataError, match="control cells"):
        mixscape(prepared.copy(), control="scrambled")
    with pytest.raises(InvalidParameterError, match="split_by"):
        mixscape(prepared.copy(), split_by="no_such_column")
    data = prepared.copy()
    data.obs["mixscape_class"] = "user"
    with pytest.raises(InvalidParameterError, match="already exists"):
        mixscape(data)


def test_raw_counts_in_x_are_log_normalized_first(prepared):
    data = prepared.copy()
    data.X = data.layers["counts"].copy()  # X back to raw counts; the signature must not use them
    mixscape(data)
    agreement, _ = _agreement(data)
    assert agreement > 0.85
