"""PBMC-like cells with T- and B-cell receptors (10x V(D)J contigs), simulated with planted expanded clones.

Expression comes from :func:`scagent.data.simulate` (gamma-Poisson raw counts of PBMC cell
types across replicate samples). Every T cell then gets a TRA and a TRB contig and every B
cell an IGH and an IGK or IGL contig, with V/J/C genes from real IMGT names and CDR3s built
the way they look in real repertoires (a germline-encoded start such as ``CASS``, a random
N-region, the J gene's end such as ``YEQYF``; nucleotides by reverse translation). As in
Cell Ranger output some cells have no contig, some miss a chain (orphan), some have an extra
chain (dual alpha, both light chains) or several (multichain), and a few carry a
non-productive contig; NK cells, monocytes and DCs have none. Most clones are single cells;
the planted expanded clones (one CD8 T clone in one sample, a B clone in another, and one
CD8 clone shared by all samples) are the truth that :func:`truth_recovery` scores.
"""

from __future__ import annotations

import math
import os
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from scagent.data.simulate import simulate
from scagent.errors import InvalidDataError, InvalidParameterError

if TYPE_CHECKING:
    from anndata import AnnData

__all__ = [
    "B_CELL_TYPES",
    "T_CELL_TYPES",
    "simulate_repertoire",
    "simulate_repertoire_contigs",
    "truth_recovery",
    "write_10x_contigs",
]

#: Simulator cell types that carry a TCR / a BCR.
T_CELL_TYPES = ("CD4 naive T cell", "CD4 memory T cell", "CD8 T cell", "regulatory T cell")
B_CELL_TYPES = ("B cell", "plasma cell")

#: Share of T/B cells whose contigs Cell Ranger assembles (10x reports 60-90%).
_CAPTURE_RATE = 0.85
#: Chain configurations of a captured cell (the rest is a single pair); orphan VJ is more
#: common than orphan VDJ because TRA / light-chain transcripts are less abundant.
_CONFIG_RATES = {
    "orphan VJ": 0.08,
    "orphan VDJ": 0.05,
    "extra VJ": 0.05,
    "extra VDJ": 0.02,
    "multichain": 0.01,
}
#: Share of captured cells with one extra non-productive contig (filtered by scirpy).
_NON_PRODUCTIVE_RATE = 0.03

# Real IMGT gene names, with the germline-encoded end of the CDR3 each J gene contributes.
_TRAV = ("TRAV1-2", "TRAV12-1", "TRAV12-2", "TRAV13-1", "TRAV21", "TRAV29/DV5",
         "TRAV38-2/DV8", "TRAV8-4", "TRAV19", "TRAV26-1")  # fmt: skip
_TRAJ = {"TRAJ33": "DSNYQLIW", "TRAJ20": "SNDYKLSF", "TRAJ42": "GSQGNLIF",
         "TRAJ49": "TGNQFYF", "TRAJ12": "DSSYKLIF", "TRAJ39": "NNAGNMLTF"}  # fmt: skip
_TRBV = ("TRBV20-1", "TRBV7-9", "TRBV5-1", "TRBV28", "TRBV6-5", "TRBV19", "TRBV4-1",
         "TRBV12-3", "TRBV9", "TRBV27")  # fmt: skip
_TRBD = ("TRBD1", "TRBD2")
_TRBJ = {"TRBJ2-7": "YEQYF", "TRBJ2-1": "YNEQFF", "TRBJ1-1": "NTEAFF",
         "TRBJ2-3": "STDTQYF", "TRBJ1-2": "NYGYTF", "TRBJ2-5": "QETQYF"}  # fmt: skip
_IGHV = ("IGHV3-23", "IGHV1-69", "IGHV4-34", "IGHV3-30", "IGHV1-18", "IGHV4-39",
         "IGHV3-7", "IGHV5-51")  # fmt: skip
_IGHD = ("IGHD3-10", "IGHD2-2", "IGHD6-19", "IGHD3-22")
_IGHJ = {"IGHJ4": "FDYW", "IGHJ6": "YYYYGMDVW", "IGHJ3": "AFDIW", "IGHJ5": "NWFDPW"}
_IGHC = (("IGHM", 0.55), ("IGHD", 0.10), ("IGHG1", 0.20), ("IGHA1", 0.15))
_IGKV = ("IGKV1-39", "IGKV3-20", "IGKV3-11", "IGKV1-5", "IGKV4-1")
_IGKJ = {"IGKJ1": "WTF", "IGKJ2": "YTF", "IGKJ4": "LTF"}
_IGLV = {"IGLV2-14": "SSYTSSS", "IGLV1-44": "AAWDDSL", "IGLV3-21": "QVWDSSS",
         "IGLV2-11": "CSYAGSY"}  # fmt: skip
_IGLJ = {"IGLJ2": "VVF", "IGLJ3": "WVF", "IGLJ1": "YVF"}
_IGLC = ("IGLC2", "IGLC3", "IGLC1")
#: N-region amino acids, roughly by their frequency in CDR3 loops.
_N_AA = "GSADTRNEQLPYKVFHWIM"
_N_WEIGHTS = np.array([12, 11, 8, 7, 6, 6, 5, 5, 5, 5, 4, 4, 3, 3, 3, 2, 2, 2, 1], float)
_CODONS = {
    "A": ("GCT", "GCC", "GCA", "GCG"), "C": ("TGT", "TGC"), "D": ("GAT", "GAC"),
    "E": ("GAA", "GAG"), "F": ("TTT", "TTC"), "G": ("GGT", "GGC", "GGA", "GGG"),
    "H": ("CAT", "CAC"), "I": ("ATT", "ATC", "ATA"), "K": ("AAA", "AAG"),
    "L": ("TTA", "TTG", "CTT", "CTC", "CTA", "CTG"), "M": ("ATG",), "N": ("AAT", "AAC"),
    "P": ("CCT", "CCC", "CCA", "CCG"), "Q": ("CAA", "CAG"),
    "R": ("CGT", "CGC", "CGA", "CGG", "AGA", "AGG"),
    "S": ("TCT", "TCC", "TCA", "TCG", "AGT", "AGC"), "T": ("ACT", "ACC", "ACA", "ACG"),
    "V": ("GTT", "GTC", "GTA", "GTG"), "W": ("TGG",), "Y": ("TAT", "TAC"),
}  # fmt: skip
#: Contig table columns, in Cell Ranger's order.
_COLUMNS = ("barcode", "is_cell", "contig_id", "high_confidence", "length", "chain",
            "v_gene", "d_gene", "j_gene", "c_gene", "full_length", "productive", "cdr3",
            "cdr3_nt", "reads", "umis")  # fmt: skip


class _Draw:
    """Random receptor chains: one method per locus, each a dict of 10x contig fields."""

    def __init__(self, rng: np.random.Generator) -> None:
        self.rng = rng
        self._p = _N_WEIGHTS / _N_WEIGHTS.sum()

    def _n_region(self, low: int, high: int) -> str:
        n = int(self.rng.integers(low, high + 1))
        return "".join(self.rng.choice(list(_N_AA), size=n, p=self._p))

    def _nt(self, aa: str) -> str:
        return "".join(self.rng.choice(_CODONS[a]) for a in aa)

    def _pick(self, options: Sequence[str]) -> str:
        return str(options[int(self.rng.integers(len(options)))])

    def _chain(self, locus: str, v: str, d: str, j: str, c: str, cdr3: str) -> dict[str, Any]:
        return {"chain": locus, "v_gene": v, "d_gene": d, "j_gene": j, "c_gene": c,
                "cdr3": cdr3, "cdr3_nt": self._nt(cdr3)}  # fmt: skip

    def tra(self) -> dict[str, Any]:
        j = self._pick(list(_TRAJ))
        cdr3 = "CA" + self._pick("VLMGE") + self._n_region(3, 7) + _TRAJ[j]
        return self._chain("TRA", self._pick(_TRAV), "", j, "TRAC", cdr3)

    def trb(self) -> dict[str, Any]:
        j = self._pick(list(_TRBJ))
        cdr3 = "CASS" + self._n_region(3, 8) + _TRBJ[j]
        c = "TRBC1" if j.startswith("TRBJ1") else "TRBC2"
        return self._chain("TRB", self._pick(_TRBV), self._pick(_TRBD), j, c, cdr3)

    def igh(self, c: str | None = None) -> dict[str, Any]:
        j = self._pick(list(_IGHJ))
        cdr3 = "CAR" + self._n_region(5, 12) + _IGHJ[j]
        if c is None:
            names, weights = zip(*_IGHC, strict=True)
            c = str(self.rng.choice(names, p=np.array(weights) / sum(weights)))
        return self._chain("IGH", self._pick(_IGHV), self._pick(_IGHD), j, c, cdr3)

    def igk(self) -> dict[str, Any]:
        j = self._pick(list(_IGKJ))
        cdr3 = "CQQ" + self._n_region(4, 6) + _IGKJ[j]
        return self._chain("IGK", self._pick(_IGKV), "", j, "IGKC", cdr3)

    def igl(self) -> dict[str, Any]:
        v = self._pick(list(_IGLV))
        j = self._pick(list(_IGLJ))
        cdr3 = "C" + _IGLV[v] + self._n_region(1, 3) + _IGLJ[j]
        return self._chain("IGL", v, "", j, self._pick(_IGLC), cdr3)

    def vj(self, lineage: str) -> dict[str, Any]:
        if lineage == "T":
            return self.tra()
        return self.igk() if self.rng.random() < 0.6 else self.igl()  # kappa:lambda ~ 60:40

    def vdj(self, lineage: str, c: str | None = None) -> dict[str, Any]:
        return self.trb() if lineage == "T" else self.igh(c)

    def receptor(self, lineage: str, c: str | None = None) -> tuple[dict, dict]:
        """One clone's pair: (VJ chain, VDJ chain)."""
        return self.vj(lineage), self.vdj(lineage, c)


def _default_clones(n_samples: int) -> list[dict[str, Any]]:
    last = n_samples - 1
    clones = [
        {"id": "expanded_CD8_1", "cell_type": "CD8 T cell", "samples": [0], "share": 0.06},
        {"id": "expanded_B_1", "cell_type": "B cell", "samples": [last], "share": 0.05},
    ]
    if n_samples > 1:
        clones.append(
            {"id": "shared_CD8", "cell_type": "CD8 T cell", "samples": "all", "share": 0.03}
        )
    return clones


def _barcodes(rng: np.random.Generator, sample_idx: np.ndarray) -> list[str]:
    """Unique 16-nt 10x-like barcodes with Cell Ranger aggr's '-<sample number>' suffix."""
    n = len(sample_idx)
    seen: set[str] = set()
    out = []
    letters = np.array(list("ACGT"))
    while len(out) < n:
        code = "".join(letters[rng.integers(0, 4, 16)])
        if code in seen:
            continue
        seen.add(code)
        out.append(f"{code}-{int(sample_idx[len(out)]) + 1}")
    return out


def _validate_clones(
    clones: Sequence[Mapping[str, Any]], samples: list[str], types: set[str]
) -> list[dict[str, Any]]:
    out = []
    for i, spec in enumerate(clones):
        cell_type = str(spec.get("cell_type", ""))
        if cell_type not in (*T_CELL_TYPES, *B_CELL_TYPES):
            raise InvalidParameterError(
                f"expanded_clones[{i}]: cell_type '{cell_type}' carries no receptor",
                remedy=f"use one of: {', '.join((*T_CELL_TYPES, *B_CELL_TYPES))}",
            )
        if cell_type not in types:
            raise InvalidParameterError(
                f"expanded_clones[{i}]: cell_type '{cell_type}' is not simulated",
                remedy="pass cell_types that include it",
            )
        share = float(spec.get("share", 0.05))
        if not 0 < share < 0.5:
            raise InvalidParameterError(
                f"expanded_clones[{i}]: share {share} must be in (0, 0.5)",
            )
        chosen = spec.get("samples", [0])
        idx = list(range(len(samples))) if chosen == "all" else [int(s) for s in chosen]
        if not idx or any(not 0 <= s < len(samples) for s in idx):
            raise InvalidParameterError(
                f"expanded_clones[{i}]: samples {chosen!r} must be 'all' or indices below "
                f"n_samples={len(samples)}"
            )
        out.append({"id": str(spec.get("id", f"expanded_{i + 1}")), "cell_type": cell_type,
                    "samples": [samples[s] for s in idx], "share": share})  # fmt: skip
    ids = [c["id"] for c in out]
    if len(set(ids)) != len(ids):
        raise InvalidParameterError(f"expanded_clones ids repeat: {ids}")
    return out


def simulate_repertoire_contigs(
    n_cells: int = 2500,
    n_genes: int = 1500,
    *,
    n_samples: int = 2,
    expanded_clones: Sequence[Mapping[str, Any]] | None = None,
    capture_rate: float = _CAPTURE_RATE,
    seed: int = 0,
    **simulate_kwargs: Any,
) -> tuple[AnnData, pd.DataFrame]:
    """Expression cells and their 10x V(D)J contig table, as two Cell Ranger runs would give them.

    Parameters
    ----------
    n_cells, n_genes
        Size of the expression matrix (passed to :func:`scagent.data.simulate`).
    n_samples
        Replicate samples (``ctrl_1``, ``ctrl_2``...); barcodes end in ``-1``, ``-2``... as
        after ``cellranger aggr``.
    expanded_clones
        Planted clones: dicts with ``id``, ``cell_type`` (a T or B type of the simulation),
        ``samples`` (sample indices, or ``"all"`` for a clone shared by every sample) and
        ``share`` (of that type's cells in each of those samples; at least 3 cells). Default:
        ``expanded_CD8_1`` (CD8 T, first sample, 6%), ``expanded_B_1`` (B cell, last
        sample, 5%) and ``shared_CD8`` (CD8 T, all samples, 3% each).
    capture_rate
        Share of T and B cells outside the planted clones with any contig (planted cells
        always have one, so their size is known).
    seed
        Seed of both the counts and the receptors.
    **simulate_kwargs
        Further arguments of :func:`scagent.data.simulate` (``cell_types``, ``proportions``...).

    Returns
    -------
    adata
        Raw counts with the truth: ``obs['true_clone']`` (clone id of each cell with a
        receptor; planted ids for expanded clones), ``obs['true_chain_pairing']`` (scirpy's
        chain-pairing class the contigs give) and ``uns['simulation']['repertoire']``.
    contigs
        One row per contig with Cell Ranger's ``filtered_contig_annotations.csv`` columns.
    """
    if not 0 < capture_rate <= 1:
        raise InvalidParameterError(f"capture_rate {capture_rate} must be in (0, 1]")
    if not 1 <= int(n_samples) <= 26:
        raise InvalidParameterError(f"n_samples {n_samples} must be between 1 and 26")
    adata = simulate(
        n_cells, n_genes, samples_per_condition=int(n_samples), seed=seed, **simulate_kwargs
    )
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(7,)))
    samples = sorted(adata.obs["sample"].astype(str).unique())
    sample_idx = np.asarray(pd.Categorical(adata.obs["sample"].astype(str), samples).codes)
    adata.obs_names = _barcodes(rng, sample_idx)
    cell_type = adata.obs["cell_type"].astype(str).to_numpy()
    sample = adata.obs["sample"].astype(str).to_numpy()
    specs = _validate_clones(
        expanded_clones if expanded_clones is not None else _default_clones(len(samples)),
        samples,
        set(cell_type),
    )
    lineage = np.where(
        np.isin(cell_type, T_CELL_TYPES), "T", np.where(np.isin(cell_type, B_CELL_TYPES), "B", "")
    )
    draw = _Draw(rng)
    true_clone = np.full(adata.n_obs, None, dtype=object)

    # Planted clones: one receptor each, given to a share of the type's cells per sample.
    planted: dict[str, dict[str, Any]] = {}
    receptors: dict[str, tuple[dict, dict]] = {}
    for spec in specs:
        lin = "T" if spec["cell_type"] in T_CELL_TYPES else "B"
        # A class-switched IgG1 clone, as antigen-experienced expanded B cells are.
        receptors[spec["id"]] = draw.receptor(lin, "IGHG1" if lin == "B" else None)
        per_sample = {}
        for s in spec["samples"]:
            pool = np.flatnonzero(
                (cell_type == spec["cell_type"]) & (sample == s) & (true_clone == None)  # noqa: E711
            )
            size = max(3, round(spec["share"] * len(pool)))
            if size > len(pool):
                raise InvalidParameterError(
                    f"clone {spec['id']}: {size} cells wanted but only {len(pool)} free "
                    f"{spec['cell_type']} cells in {s}",
                    remedy="simulate more cells or lower the share",
                )
            true_clone[rng.choice(pool, size, replace=False)] = spec["id"]
            per_sample[s] = int(size)
        planted[spec["id"]] = {
            "cell_type": spec["cell_type"],
            "receptor_type": "TCR" if lin == "T" else "BCR",
            "samples": list(spec["samples"]),
            "size": int(sum(per_sample.values())),
            "size_per_sample": per_sample,
            "shared": len(spec["samples"]) > 1,
            "cdr3_vj": receptors[spec["id"]][0]["cdr3"],
            "cdr3_vdj": receptors[spec["id"]][1]["cdr3"],
        }

    # Background: every other captured T/B cell is its own clone.
    free = (lineage != "") & (true_clone == None)  # noqa: E711
    captured = free & (rng.random(adata.n_obs) < capture_rate)
    for n, i in enumerate(np.flatnonzero(captured)):
        true_clone[i] = f"clone_{n + 1:05d}"

    configs = list(_CONFIG_RATES)
    config_p = np.array([*_CONFIG_RATES.values(), 1 - sum(_CONFIG_RATES.values())])
    rows: list[dict[str, Any]] = []
    pairing = np.full(adata.n_obs, "no IR", dtype=object)
    barcodes = adata.obs_names.to_numpy()
    for i in np.flatnonzero(true_clone != None):  # noqa: E711
        lin = lineage[i]
        clone = true_clone[i]
        vj, vdj = receptors[clone] if clone in receptors else draw.receptor(lin)
        config = [*configs, "single pair"][int(rng.choice(len(config_p), p=config_p))]
        chains: list[tuple[dict, float]] = []  # (chain, mean UMIs)
        big = 1.0 if lin == "T" else 4.0  # plasmablast-like B cells carry more transcripts
        if config != "orphan VDJ":
            chains.append((vj, 5 * big))
        if config != "orphan VJ":
            chains.append((vdj, 9 * big))
        if config == "extra VJ":
            chains.append((draw.vj(lin), 2.5 * big))
        elif config == "extra VDJ":
            chains.append((draw.vdj(lin), 3 * big))
        elif config == "multichain":  # a doublet's worth of chains: three VJ and two VDJ
            chains += [(draw.vj(lin), 3 * big), (draw.vj(lin), 3 * big), (draw.vdj(lin), 4)]
        pairing[i] = config
        if rng.random() < _NON_PRODUCTIVE_RATE:
            chains.append(({**draw.vdj(lin), "productive": False}, 1.5))
        for k, (chain, mean_umis) in enumerate(chains):
            umis = 1 + int(rng.poisson(mean_umis))
            rows.append({
                "barcode": barcodes[i], "is_cell": True,
                "contig_id": f"{barcodes[i]}_contig_{k + 1}", "high_confidence": True,
                "length": int(rng.integers(480, 660)), "full_length": True,
                "productive": chain.get("productive", True),
                "reads": umis * int(rng.integers(4, 20)), "umis": umis,
                **{key: val for key, val in chain.items() if key != "productive"},
            })  # fmt: skip
    contigs = pd.DataFrame(rows, columns=list(_COLUMNS))

    adata.obs["true_clone"] = pd.Categorical(true_clone)
    adata.obs["true_chain_pairing"] = pd.Categorical(pairing)
    sim = adata.uns["simulation"]
    sim["truth_columns"] = [*sim["truth_columns"], "true_clone", "true_chain_pairing"]
    shared = [cid for cid, c in planted.items() if c["shared"]]
    sim["repertoire"] = {
        "expanded_clones": planted,
        "shared_clone": shared[0] if shared else "",
        "capture_rate": float(capture_rate),
        "chain_config_rates": dict(_CONFIG_RATES),
        "n_contigs": len(contigs),
        "n_cells_with_contigs": int((true_clone != None).sum()),  # noqa: E711
    }
    return adata, contigs


def simulate_repertoire(
    n_cells: int = 2500,
    n_genes: int = 1500,
    *,
    n_samples: int = 2,
    expanded_clones: Sequence[Mapping[str, Any]] | None = None,
    capture_rate: float = _CAPTURE_RATE,
    seed: int = 0,
    **simulate_kwargs: Any,
) -> AnnData:
    """Raw counts with the receptor chains already in ``obsm['airr']`` (see :func:`simulate_repertoire_contigs`).

    The contigs go through the same path as a user's file: written as
    ``filtered_contig_annotations.csv``, read by :func:`scagent.data.vdj.read_vdj` and
    attached by :func:`scagent.data.vdj.attach_vdj`, so the simulated object is what a
    real analysis starts from.
    """
    from scagent.data.vdj import attach_vdj, read_vdj

    adata, contigs = simulate_repertoire_contigs(
        n_cells, n_genes, n_samples=n_samples, expanded_clones=expanded_clones,
        capture_rate=capture_rate, seed=seed, **simulate_kwargs,
    )  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="scagent_vdj_") as tmp:
        path = write_10x_contigs(contigs, Path(tmp) / "filtered_contig_annotations.csv")
        vdj = read_vdj(path)
    attach_vdj(adata, vdj)
    adata.uns["vdj"].pop("paths", None)  # a deleted temporary file is no provenance
    return adata


def write_10x_contigs(contigs: pd.DataFrame, path: str | os.PathLike[str]) -> Path:
    """Write a contig table as Cell Ranger's ``filtered_contig_annotations.csv`` (atomically).

    Booleans are written ``true``/``false`` and missing genes as empty fields, as Cell Ranger
    7 does. Returns the path.
    """
    from scagent._atomic import atomic_write_text

    out = contigs.copy()
    for col in out.columns:
        if out[col].dtype == bool:
            out[col] = out[col].map({True: "true", False: "false"})
    path = Path(path)
    atomic_write_text(path, out.to_csv(index=False))
    return path


def _majority(values: pd.Series) -> tuple[str, float]:
    counts = values.astype(str).value_counts()
    if counts.empty:
        return "", 0.0
    return str(counts.index[0]), float(counts.iloc[0] / counts.sum())


def truth_recovery(
    adata: AnnData,
    *,
    clone_key: str = "clone_id",
    sample_key: str = "sample",
    overlap_key: str = "repertoire_overlap",
    label_key: str = "annotation_label",
    tolerance: float = 0.25,
) -> dict[str, float | int | str]:
    """Score clonotypes against the planted truth of :func:`simulate_repertoire`.

    For each planted expanded clone, the clonotype most of its cells got is its call; the
    clone counts as recovered when that clonotype's size is within ``tolerance`` of the
    clone's size in the current cells (at least 2 cells: cells missing a chain may form
    their own clonotype), at least 90% of the clonotype's cells are the clone's, and its
    cells are of the planted type. The shared clone must also span every planted sample
    (and, where ``uns[overlap_key]`` exists, be named there as shared).

    Returns
    -------
    dict
        ``n_planted``, ``n_recovered``, ``recovery_rate``; per clone ``<id>_true_size``,
        ``<id>_found_size``, ``<id>_purity``, ``<id>_cell_type`` (true type of most of its
        cells), ``<id>_label`` (their majority ``obs[label_key]``, when that annotation
        exists), ``<id>_recovered`` (0/1);
        ``shared_clone``, ``shared_found_in_samples``, ``shared_recovered`` (0/1, when a
        shared clone was planted); ``clonotype_purity`` (of the cells in clonotypes of 2+
        cells, the share whose true clone is their clonotype's majority clone) and
        ``clonotype_completeness`` (of the cells of true clones of 2+ cells, the share in
        their clone's majority clonotype).

    Raises
    ------
    InvalidDataError
        No simulated repertoire truth, or ``obs[clone_key]`` absent.
    """
    rep = adata.uns.get("simulation", {}).get("repertoire")
    if not isinstance(rep, Mapping) or "true_clone" not in adata.obs:
        raise InvalidDataError(
            "truth_recovery needs uns['simulation']['repertoire'] and obs['true_clone'] "
            "from simulate_repertoire"
        )
    if clone_key not in adata.obs:
        raise InvalidDataError(
            f"obs['{clone_key}'] is absent: no clonotypes to score",
            remedy="run the clonotypes tool first",
        )
    obs = adata.obs
    truth = obs["true_clone"].astype(object)
    called = obs[clone_key].astype(object).where(obs[clone_key].notna(), None)
    out: dict[str, float | int | str] = {}
    n_recovered = 0
    clones: Mapping[str, Any] = rep["expanded_clones"]
    for cid, info in clones.items():
        members = truth == cid
        n_true = int(members.sum())
        calls = called[members].dropna()
        found, _ = _majority(calls) if len(calls) else ("", 0.0)
        in_found = called == found if found else pd.Series(False, index=obs.index)
        found_size = int(in_found.sum())
        purity = float((truth[in_found] == cid).mean()) if found_size else 0.0
        cell_type, _ = _majority(obs.loc[in_found, "cell_type"]) if found_size else ("", 0.0)
        tol = max(2, math.ceil(tolerance * n_true))
        ok = bool(
            found_size
            and abs(found_size - n_true) <= tol
            and purity >= 0.9
            and cell_type == info["cell_type"]
        )
        n_recovered += ok
        out |= {
            f"{cid}_true_size": n_true,
            f"{cid}_found_size": found_size,
            f"{cid}_purity": round(purity, 4),
            f"{cid}_cell_type": cell_type,
            f"{cid}_recovered": int(ok),
        }
        if label_key in obs and found_size:
            out[f"{cid}_label"] = _majority(obs.loc[in_found, label_key])[0]
        if info.get("shared"):
            spans = sorted(obs.loc[in_found, sample_key].astype(str).unique()) if found else []
            named = True
            overlap = adata.uns.get(overlap_key)
            if isinstance(overlap, Mapping) and "shared_clonotypes" in overlap:
                table = overlap["shared_clonotypes"]
                names = table["clone_id"].astype(str).tolist() if len(table) else []
                named = found in names
            shared_ok = ok and set(info["samples"]) <= set(spans) and named
            out |= {
                "shared_clone": cid,
                "shared_found_in_samples": ",".join(spans),
                "shared_recovered": int(shared_ok),
            }
    out |= {
        "n_planted": len(clones),
        "n_recovered": int(n_recovered),
        "recovery_rate": round(n_recovered / max(len(clones), 1), 4),
    }
    both = pd.DataFrame({"call": called, "truth": truth}).dropna()
    # Singletons are pure and complete by construction; scoring them would hide errors
    # among the few clones that matter, so both scores look at groups of 2+ cells.
    call_size = both.groupby("call")["call"].transform("size")
    truth_size = both.groupby("truth")["truth"].transform("size")
    multi_call = both[call_size >= 2]
    multi_truth = both[truth_size >= 2]
    purity = completeness = 1.0
    if len(multi_call):
        top = multi_call.groupby("call")["truth"].agg(lambda v: v.value_counts().iloc[0])
        purity = float(top.sum() / len(multi_call))
    if len(multi_truth):
        top = multi_truth.groupby("truth")["call"].agg(lambda v: v.value_counts().iloc[0])
        completeness = float(top.sum() / len(multi_truth))
    out["clonotype_purity"] = round(purity, 4)
    out["clonotype_completeness"] = round(completeness, 4)
    return out
