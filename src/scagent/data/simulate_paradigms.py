"""Simulated studies for the atlas and developmental-trajectory paradigms, their input checks, and scores of an analysis against the planted truth.

Both wrap :func:`scagent.data.simulate`: an atlas is several batches of the same cell types
with a batch effect Harmony can remove; a trajectory is the HSPC -> erythroid lineage with
a true pseudotime per cell and genes that change along it. ``truth_recovery`` reads a
finished analysis (the keys the paradigm's tools write) and says how much of the truth it
found.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from scagent.errors import InvalidDataError

if TYPE_CHECKING:
    from anndata import AnnData

__all__ = [
    "atlas_batch_key",
    "atlas_truth_recovery",
    "simulate_atlas",
    "simulate_trajectory",
    "trajectory_truth_recovery",
    "truth_recovery",
]

Score = dict[str, float | int | str]


def simulate_atlas(
    n_cells: int = 2000,
    n_genes: int = 1500,
    *,
    n_batches: int = 2,
    batch_effect: float = 0.1,
    seed: int = 0,
) -> AnnData:
    """Raw counts of PBMC-like cell types in ``n_batches`` batches (one sample per batch).

    ``batch_effect`` is the simulator's per-gene log-normal batch factor (sigma, natural log).
    At 0.1 the batches stand apart in PCA (kNN batch mixing 0.3-0.4 of the most possible) and
    Harmony mixes them (about 0.97); at 0.15 the batches are almost disjoint and Harmony
    succeeds for some seeds only; from 0.2 on the batches share no neighbourhood and Harmony
    (harmonypy 2.1) leaves them apart. The default is 0.1.

    Returns
    -------
    AnnData
        As :func:`scagent.data.simulate`; truth in ``obs['cell_type']``, ``obs['batch']``,
        ``obs['sample']`` and ``uns['simulation']``.
    """
    from scagent.data.simulate import simulate

    return simulate(
        n_cells,
        n_genes,
        n_batches=n_batches,
        batch_effect=batch_effect,
        samples_per_condition=n_batches,
        seed=seed,
    )


def simulate_trajectory(
    n_cells: int = 2000,
    n_genes: int = 1500,
    *,
    cell_types: Sequence[str] = ("HSPC", "erythroid"),
    seed: int = 0,
) -> AnnData:
    """Raw counts of the HSPC -> erythroid lineage (plus any other ``cell_types``).

    Returns
    -------
    AnnData
        As :func:`scagent.data.simulate` with ``trajectory=True``: the true position along
        the lineage in ``obs['pseudotime']`` (0 to 1; missing outside the lineage) and the
        genes changing at least 4-fold along it in ``uns['simulation']['trajectory_genes']``.
    """
    from scagent.data.simulate import simulate

    return simulate(n_cells, n_genes, cell_types=list(cell_types), trajectory=True, seed=seed)


# --------------------------------------------------------------------------- input checks


def atlas_batch_key(adata: AnnData) -> str:
    """The obs column an atlas integrates over (:func:`scagent.data.inspect.design_column`).

    Raises
    ------
    InvalidDataError
        If no batch, sample or donor column has 2 or more levels.
    """
    from scagent.data.inspect import design_column

    column = design_column(adata, "batch")
    if column is None:
        raise InvalidDataError(
            "no batch, sample or donor column with 2 or more levels",
            remedy="add an obs column naming each cell's batch or sample (e.g. obs['batch'])",
        )
    return column


# --------------------------------------------------------------------------- truth recovery


def _simulation(adata: AnnData) -> dict:
    sim = adata.uns.get("simulation")
    if not isinstance(sim, dict):
        raise InvalidDataError(
            "truth_recovery needs simulated data (uns['simulation'] is missing)",
            remedy="simulate the data with scagent.data.simulate_paradigms",
        )
    return sim


def atlas_truth_recovery(adata: AnnData, *, max_cells: int = 3000) -> Score:
    """Score an integrated, clustered and annotated atlas against the simulated truth.

    Batch mixing (scaled iLISI, scIB) and conservation of the true cell types (scaled cLISI,
    label ASW) are computed on ``X_pca`` and on the integrated embedding against the true
    ``batch`` and ``cell_type``, on the same seeded subsample of ``max_cells`` cells; the
    clusters (``leiden``) are scored by ARI/NMI against the true types, and the annotation
    (``annotation_cl_id``) against the true Cell Ontology ids.

    Returns
    -------
    dict
        ``ilisi_pca``, ``ilisi_integrated``, ``clisi_pca``, ``clisi_integrated``,
        ``label_asw_integrated``, ``ari_leiden``, ``nmi_leiden``, ``n_clusters``,
        ``n_true_types``, ``annotation_exact`` and ``annotation_score`` (when annotated: share
        of cells given their true CL id; mean of :func:`~scagent.knowledge.ontology.score_prediction`), ``integrated_key`` and,
        when ``uns['integration_metrics']`` exists, ``reported_delta_batch_score``.
    """
    from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

    from scagent.tools.integration_metrics import label_asw, lisi

    _simulation(adata)
    truth_type = adata.obs["cell_type"].astype(str).to_numpy()
    truth_batch = adata.obs["batch"].astype(str).to_numpy()
    n_batches, n_types = len(np.unique(truth_batch)), len(np.unique(truth_type))
    rng = np.random.default_rng(0)
    cells = np.sort(rng.choice(adata.n_obs, min(max_cells, adata.n_obs), replace=False))
    out: Score = {"n_true_types": n_types}
    integrated = next((k for k in adata.obsm if "harmony" in str(k).lower()), None)
    out["integrated_key"] = integrated or ""
    for name, key in (("pca", "X_pca"), ("integrated", integrated)):
        if key is None or key not in adata.obsm:
            continue
        emb = np.asarray(adata.obsm[key], dtype=np.float64)[cells]
        ilisi = float(np.median(lisi(emb, truth_batch[cells])))
        clisi = float(np.median(lisi(emb, truth_type[cells])))
        out[f"ilisi_{name}"] = (ilisi - 1) / max(n_batches - 1, 1)
        out[f"clisi_{name}"] = (n_types - clisi) / max(n_types - 1, 1)
        out[f"label_asw_{name}"] = label_asw(emb, truth_type[cells])
    if "leiden" in adata.obs:
        clusters = adata.obs["leiden"].astype(str).to_numpy()
        out["ari_leiden"] = float(adjusted_rand_score(truth_type, clusters))
        out["nmi_leiden"] = float(normalized_mutual_info_score(truth_type, clusters))
        out["n_clusters"] = len(np.unique(clusters))
    if "annotation_cl_id" in adata.obs and "cell_ontology_id" in adata.obs:
        from scagent.knowledge.ontology import score_prediction

        pairs = pd.DataFrame(
            {
                "called": adata.obs["annotation_cl_id"].astype(str).to_numpy(),
                "true": adata.obs["cell_ontology_id"].astype(str).to_numpy(),
            }
        )
        # 1 for the true term, 0.5 for an ancestor/descendant within 3 steps or the same broad
        # type ('monocyte' for 'classical monocyte'), 0 otherwise; once per distinct pair.
        score = {
            (a, b): score_prediction(a, b)
            for a, b in pairs.drop_duplicates().itertuples(index=False)
        }
        values = np.array([score[(a, b)] for a, b in pairs.itertuples(index=False)])
        out["annotation_exact"] = float(np.mean(values == 1.0))
        out["annotation_score"] = float(values.mean())
    entry = adata.uns.get("integration_metrics")
    if isinstance(entry, dict) and isinstance(entry.get("results"), pd.DataFrame):
        table = entry["results"]
        if len(table) > 1:
            out["reported_delta_batch_score"] = float(
                table["batch_score"].iloc[1:].max() - table["batch_score"].iloc[0]
            )
    return out


def trajectory_truth_recovery(
    adata: AnnData, *, pseudotime_key: str = "dpt_pseudotime", de_key: str = "trajectory_de"
) -> Score:
    """Score a trajectory analysis against the simulated lineage.

    Returns
    -------
    dict
        ``pseudotime_spearman``: Spearman correlation of ``obs[pseudotime_key]`` with the
        true lineage position over the lineage cells with a finite value; ``root_cell_type``
        (the true type of the root cell ``uns['iroot']``); from ``uns[de_key]``:
        ``de_recall`` (share of the simulator's trajectory genes, those changing 4-fold or
        more, called significant), ``de_precision_4fold`` (share of the calls with an
        estimated fold range of 4 or more that are such genes: the same threshold as the
        truth list), ``de_precision_all`` (share of all calls in the truth list: a lower
        bound, since 2-fold changes of the two types' gene programs are real but not
        recorded by the simulator) and ``n_de_called``.
    """
    from scipy.stats import spearmanr

    sim = _simulation(adata)
    out: Score = {}
    if "pseudotime" not in adata.obs or pseudotime_key not in adata.obs:
        raise InvalidDataError(
            f"trajectory_truth_recovery needs the true obs['pseudotime'] and obs['{pseudotime_key}']",
            remedy="simulate with simulate_trajectory and run the trajectory step first",
        )
    true_pt = pd.to_numeric(adata.obs["pseudotime"], errors="coerce")
    found = pd.to_numeric(adata.obs[pseudotime_key], errors="coerce").to_numpy(dtype=np.float64)
    truth = true_pt.to_numpy(dtype=np.float64)
    both = np.isfinite(found) & np.isfinite(truth)
    out["n_lineage_cells"] = int(np.isfinite(truth).sum())
    out["n_scored_cells"] = int(both.sum())
    out["pseudotime_spearman"] = (
        float(spearmanr(found[both], truth[both]).statistic) if both.sum() > 2 else float("nan")
    )
    if "iroot" in adata.uns:
        out["root_cell_type"] = str(adata.obs["cell_type"].iloc[int(adata.uns["iroot"])])
    genes = set(sim.get("trajectory_genes", {}))
    entry = adata.uns.get(de_key)
    if genes and isinstance(entry, dict) and isinstance(entry.get("results"), pd.DataFrame):
        table = entry["results"]
        called = table.loc[table["significant"], "gene"].astype(str)
        strong = table.loc[table["significant"] & (table["log2_fold_range"] >= 2.0), "gene"]
        out["n_truth_genes"] = len(genes)
        out["n_truth_tested"] = int(table["gene"].isin(genes).sum())
        out["n_de_called"] = int(called.size)
        out["de_recall"] = float(len(genes & set(called)) / len(genes))
        out["de_precision_all"] = float(called.isin(genes).mean()) if called.size else float("nan")
        out["de_precision_4fold"] = (
            float(strong.astype(str).isin(genes).mean()) if strong.size else float("nan")
        )
    return out


def truth_recovery(adata: AnnData) -> Score:
    """Score a finished analysis against the truth its simulator planted: the trajectory
    scores for a lineage simulation, the atlas scores otherwise.
    """
    sim = _simulation(adata)
    if sim.get("trajectory"):
        return trajectory_truth_recovery(adata)
    return atlas_truth_recovery(adata)
