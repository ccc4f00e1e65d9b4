"""The offline annotator: rank cell types from the marker database, then choose how specific to be with the Cell Ontology.

Step 1 scores every cell type in the database on the cluster's ranked markers
(:meth:`~scagent.knowledge.MarkerDB.score_candidates`: marker rank, row weights,
specificity, negative markers, tissue). Step 2 treats the candidates as a tree: a cell
type's support is its own score plus that of its candidate subtypes in the ontology
(evidence for "alveolar macrophage" is evidence for "macrophage"). The lineage with the
most support wins, and the answer descends to a subtype only while that subtype holds
most of the lineage's evidence; when the evidence is spread over siblings, the parent is
the honest answer. Confidence comes from the strength of the evidence and its margin
over the best unrelated lineage.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from scagent.annotate.report import UNKNOWN, Candidate
from scagent.knowledge import MarkerDB
from scagent.knowledge import ontology as onto

__all__ = ["OfflineAnnotator", "OfflinePrediction", "OfflineSettings"]

# Terms that only group lineages (leukocyte, myeloid cell...): never the answer of a lineage
# vote unless nothing more specific has evidence.
_GROUPING_TERMS = frozenset(
    {
        "CL:0000738",  # leukocyte
        "CL:0000842",  # mononuclear leukocyte
        "CL:0000766",  # myeloid leukocyte
        "CL:0000548",  # animal cell
        "CL:0002320",  # connective tissue cell
        "CL:0000145",  # professional antigen presenting cell
        "CL:0000000",
    }
)


@dataclass(frozen=True)
class OfflineSettings:
    """Settings of the offline annotator (recorded in the report).

    Attributes
    ----------
    top_n
        Markers per cluster the scorer reads (best first).
    n_candidates
        Cell types taken from the database per cluster before the ontology step.
    tissue_boost
        Relative boost of types known in the tissue (passed to the scorer).
    negative_penalty
        Weight of negative evidence relative to positive.
    max_steps
        Ontology distance (is_a steps) within which a subtype's evidence counts for a parent.
    refine_share, dominance
        Descend from a type to its best subtype when that subtype's support is at least
        ``refine_share`` of the type's and ``dominance`` times that of the next sibling:
        a subtype is named only when the evidence singles it out.
    min_score
        Below this raw score the best candidate is too weak to name: ``Unknown``.
    unknown_below
        Below this confidence the answer is ``Unknown`` (default 0: only ``min_score``
        decides; weak labels are left to the guardrails, which flag them).
    """

    top_n: int = 20
    n_candidates: int = 25
    tissue_boost: float = 0.5
    negative_penalty: float = 1.0
    max_steps: int = 3
    refine_share: float = 0.3
    dominance: float = 1.5
    prefer_tissue_types: bool = True
    pool_weight: float = 0.5
    min_score: float = 0.05
    unknown_below: float = 0.0

    def as_dict(self) -> dict[str, float | int]:
        return dict(self.__dict__)


@dataclass
class OfflinePrediction:
    """The offline answer for one cluster."""

    label: str
    ontology_id: str | None
    ontology_name: str | None
    confidence: float
    evidence_markers: list[str]
    candidates: list[Candidate]
    reason: str
    raw: pd.DataFrame = field(default_factory=pd.DataFrame, repr=False)

    @property
    def is_unknown(self) -> bool:
        return self.label == UNKNOWN


@functools.lru_cache(maxsize=65536)
def _ancestors(cl_id: str) -> dict[str, int]:
    if not cl_id or not onto.is_valid_cl(cl_id):
        return {}
    return onto.ancestors(cl_id)


def _unknown(reason: str, candidates: list[Candidate] | None = None) -> OfflinePrediction:
    return OfflinePrediction(UNKNOWN, None, None, 0.0, [], candidates or [], reason)


class OfflineAnnotator:
    """Name a cluster from its ranked markers with a :class:`~scagent.knowledge.MarkerDB`.

    Parameters
    ----------
    db
        The marker database (default: :meth:`MarkerDB.default`, the bundled table plus
        whatever ``scagent knowledge build`` added).
    settings
        :class:`OfflineSettings`.

    Examples
    --------
    >>> ann = OfflineAnnotator()  # doctest: +SKIP
    >>> ann.predict(["MS4A1", "CD79A", "CD19", "BANK1"], species="human").label  # doctest: +SKIP
    'B cell'
    """

    def __init__(self, db: MarkerDB | None = None, settings: OfflineSettings | None = None):
        self.db = db if db is not None else MarkerDB.default()
        self.settings = settings or OfflineSettings()

    def predict(
        self,
        genes: Sequence[str],
        *,
        species: str,
        tissue: str | None = None,
        negative_genes: Sequence[str] | None = None,
    ) -> OfflinePrediction:
        """The best label for a ranked marker list, with candidates and a calibrated confidence.

        Parameters
        ----------
        genes
            Marker genes, best first.
        species
            ``human`` or ``mouse``.
        tissue
            Free text or UBERON id; types known there are preferred.
        negative_genes
            Genes depleted in the cluster (types they mark are penalised).
        """
        st = self.settings
        genes = list(genes)[: st.top_n]
        if not genes:
            return _unknown("no marker genes for this cluster")
        cands = self.db.score_candidates(
            genes,
            species=species,
            tissue=tissue,
            top_k=st.n_candidates,
            negative_genes=list(negative_genes or [])[: st.top_n] or None,
            tissue_boost=st.tissue_boost,
            negative_penalty=st.negative_penalty,
        )
        if cands.empty:
            return _unknown("none of the top markers is a known marker in the database")
        return self._choose(cands)

    def _choose(self, cands: pd.DataFrame) -> OfflinePrediction:
        st = self.settings
        ids = [str(x) if isinstance(x, str) else "" for x in cands["cell_ontology_id"]]
        names = [str(x) for x in cands["cell_type"]]
        raw = np.clip(cands["score"].to_numpy(float), 0.0, None)
        n = len(ids)
        # desc[i]: candidates that are strict subtypes of candidate i within max_steps.
        anc = [_ancestors(i) for i in ids]
        desc: list[list[int]] = [[] for _ in range(n)]
        for j in range(n):
            for i in range(n):
                if i != j and ids[i] and ids[i] != ids[j]:
                    d = anc[j].get(ids[i])
                    if d is not None and d <= st.max_steps:
                        desc[i].append(j)
        agg = np.array([raw[i] + st.pool_weight * sum(raw[j] for j in desc[i]) for i in range(n)])
        eligible = [i for i in range(n) if ids[i] not in _GROUPING_TERMS] or list(range(n))
        root = max(eligible, key=lambda i: (agg[i], raw[i], -i))
        if raw.max() < st.min_score:
            return _unknown(
                f"best candidate {names[int(raw.argmax())]} scores {raw.max():.3f} "
                f"< min_score {st.min_score}",
                self._candidates(cands, agg),
            )
        # Within the winning lineage, the best-scoring type, among those known in the
        # tissue when any is: a heart cell is not called a "lung interstitial macrophage".
        subtree = [root, *desc[root]]
        in_tissue = cands["in_tissue"].to_numpy(bool)
        local = [i for i in subtree if in_tissue[i]] if st.prefer_tissue_types else []
        pool = local or subtree
        cur = max(pool, key=lambda i: (raw[i], -i))
        # Evidence spread over sibling subtypes: answer their common parent.
        parents = [p for p in pool if cur in desc[p]]
        if parents:
            parent = min(parents, key=lambda p: anc[cur].get(ids[p], 99))
            rivals = [
                j
                for j in desc[parent]
                if j != cur and j in pool and cur not in desc[j] and j not in desc[cur]
            ]
            if rivals and max(raw[j] for j in rivals) * st.dominance > raw[cur]:
                cur = parent
        related = {root, *desc[root]}
        for i in range(n):
            # A candidate the root descends from is the same lineage, not a competitor.
            if ids[root] and ids[i] and ids[i] in anc[root]:
                related.add(i)
        competitors = [agg[i] for i in range(n) if i not in related]
        runner = max(competitors) if competitors else 0.0
        margin = max(0.0, 1.0 - runner / agg[root]) if agg[root] > 0 else 0.0
        hit = cands["hit_genes"].iloc[cur]
        evidence = list(
            dict.fromkeys([*hit, *(g for j in desc[cur] for g in cands["hit_genes"].iloc[j])])
        )
        # Confidence: strength of the lineage's evidence, halved for each marker gene fewer
        # than about three (one gene is fragile evidence), scaled by the margin over the
        # best unrelated lineage and, gently, by how much of the lineage the answer holds.
        strength = 1.0 - math.exp(-agg[root] / 0.4)
        n_genes = len(set(evidence))
        gene_factor = 1.0 - 0.5**n_genes
        depth_share = (agg[cur] / agg[root]) ** 0.25 if agg[root] > 0 else 0.0
        confidence = float(
            np.clip(strength * gene_factor * (0.3 + 0.7 * margin) * depth_share, 0.0, 1.0)
        )
        candidates = self._candidates(cands, agg)
        cl = ids[cur] or None
        if confidence < st.unknown_below:
            return _unknown(
                f"best lineage {names[root]} is too weak or contested (confidence "
                f"{confidence:.2f} < {st.unknown_below})",
                candidates,
            )
        if cur == root:
            how = (
                f"best supported lineage (support {agg[root]:.2f}"
                + (f", {len(desc[root])} subtypes pooled" if desc[root] else "")
                + ")"
            )
            if desc[root]:
                how += "; no subtype holds most of the evidence"
        else:
            how = (
                f"subtype of {names[root]} holding {agg[cur] / agg[root]:.0%} of the "
                f"lineage's support ({agg[root]:.2f})"
            )
        reason = (
            f"{how}; runner-up lineage "
            + (f"at {runner / agg[root]:.0%} of it" if competitors else "none")
            + f"; markers: {', '.join(evidence[:6])}"
        )
        return OfflinePrediction(
            label=names[cur],
            ontology_id=cl,
            ontology_name=onto.cl_label(cl) if cl else None,
            confidence=round(confidence, 4),
            evidence_markers=evidence,
            candidates=candidates,
            reason=reason,
            raw=cands,
        )

    @staticmethod
    def _children(i: int, desc: list[list[int]]) -> list[int]:
        """The maximal subtypes of ``i`` among the candidates (no other subtype above them)."""
        below = set(desc[i])
        return [j for j in desc[i] if not any(j in desc[k] for k in below if k != j)]

    @staticmethod
    def _candidates(cands: pd.DataFrame, agg: np.ndarray, k: int = 5) -> list[Candidate]:
        order = np.argsort(-agg, kind="stable")[:k]
        return [
            Candidate(
                label=str(cands["cell_type"].iloc[i]),
                ontology_id=str(cands["cell_ontology_id"].iloc[i]) or None,
                score=round(float(agg[i]), 4),
                hit_genes=list(cands["hit_genes"].iloc[i]),
            )
            for i in order
        ]
