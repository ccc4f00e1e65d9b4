"""Guardrails: check every proposed label, from any source, against the data and the marker database.

A label passes when the genes it cites are real top markers of the cluster, it maps to
a Cell Ontology term, enough of its canonical markers (from the database) are among the
cluster's top markers, and none of its negative markers is. The answer is a status:
``supported``, ``flagged`` (with the problems named) or ``unknown``. With CITE-seq data
the cluster's top antibodies, mapped to the genes they measure, count as canonical-marker
evidence too (a CD8 T cell label whose cluster tops CD8a protein).
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from scagent.annotate.report import UNKNOWN, GuardrailCheck, GuardrailConfig, Status
from scagent.knowledge import MarkerDB
from scagent.knowledge import genes as kgenes
from scagent.knowledge import ontology as onto

__all__ = [
    "PROTEIN_TOP_N",
    "UNKNOWN",
    "GuardrailOutcome",
    "LabelChecker",
    "protein_marker_genes",
    "unknown_outcome",
]

#: How many of a cluster's top protein markers count as evidence (a panel has tens of
#: antibodies, not thousands of genes: only the few best separate a cluster).
PROTEIN_TOP_N = 3


@dataclass
class GuardrailOutcome:
    """The check of one label and the status it earns."""

    check: GuardrailCheck
    status: Status
    ontology_id: str | None
    ontology_name: str | None


def _norm(gene: str) -> str:
    return str(gene).strip().upper()


class LabelChecker:
    """Runs the guardrails for one species against one marker database.

    Parameters
    ----------
    db
        The marker database whose canonical markers are the cross-check.
    config
        Thresholds (:class:`~scagent.annotate.report.GuardrailConfig`).
    species
        ``human`` or ``mouse``.
    var_names
        Every gene measured (``None`` when only a marker table was given: then the
        table's genes stand in for it).
    """

    def __init__(
        self,
        db: MarkerDB,
        config: GuardrailConfig,
        species: str,
        var_names: Iterable[str] | None = None,
    ) -> None:
        self.db = db
        self.config = config
        self.species = kgenes.normalize_species(species)
        self.var_upper = {_norm(g) for g in var_names} if var_names is not None else None
        self._markers = functools.lru_cache(maxsize=4096)(self._label_markers)

    def _label_markers(self, label: str, cl_id: str | None) -> tuple[frozenset, frozenset, int]:
        q = self.db.query(cl_id or label, species=self.species)
        pos = {_norm(g) for g in q.positive}
        neg = {_norm(g) for g in q.negative}
        if not pos and cl_id:
            # The term itself has no rows: its close subtypes' markers, else its nearest
            # ancestor's, are the canonical markers (a CD8 cytotoxic T cell is a CD8 T cell).
            for other in self._neighbours(cl_id):
                q = self.db.query(other, species=self.species)
                pos |= {_norm(g) for g in q.positive}
                neg |= {_norm(g) for g in q.negative}
        neg -= pos
        return frozenset(pos), frozenset(neg), len(pos)

    def _neighbours(self, cl_id: str, max_steps: int = 2) -> list[str]:
        t = self.db.table
        ids = set(t.loc[t["species"] == self.species, "cell_ontology_id"].astype(str)) - {""}
        below = []
        for x in ids:
            d = _safe_ancestors(x).get(cl_id)
            if d is not None and d <= max_steps:
                below.append(x)
        if below:
            return sorted(below)
        up = [(d, a) for a, d in _safe_ancestors(cl_id).items() if a in ids and d <= max_steps]
        up = [x for x in up if not onto.is_generic(x[1])]
        return [min(up)[1]] if up else []

    def check(
        self,
        label: str,
        top_markers: Sequence[str],
        *,
        cited: Sequence[str] = (),
        ontology_id: str | None = None,
        all_markers: Sequence[str] | None = None,
        protein_markers: Mapping[str, Sequence[str]] | None = None,
    ) -> GuardrailOutcome:
        """Check ``label`` for a cluster whose markers (best first) are ``top_markers``.

        Parameters
        ----------
        label
            The proposed cell type (free text).
        top_markers
            The cluster's markers, best first; the first ``config.top_n`` are checked.
        cited
            Genes the annotator cites as evidence.
        ontology_id
            A CL id proposed with the label (checked; the label is mapped when absent).
        all_markers
            Every gene of the cluster's list (stands in for ``var_names`` without expression).
        protein_markers
            The cluster's top protein markers, ``{antibody: genes it measures}`` (CITE-seq;
            see :func:`protein_marker_genes`). An antibody whose gene is a canonical marker
            of the label counts as one more canonical marker found.
        """
        cfg = self.config
        chk = GuardrailCheck()
        if not label or label.strip().lower() in {"unknown", "unassigned", "na", "none", ""}:
            chk.problems.append("no label")
            return GuardrailOutcome(chk, "unknown", None, None)
        cl_id, cl_name = self._map(label, ontology_id)
        chk.maps_to_ontology = cl_id is not None
        if cl_id is None and cfg.require_ontology:
            chk.problems.append(f"label {label!r} maps to no Cell Ontology term")
        top = [_norm(g) for g in top_markers[: cfg.top_n]]
        top_set = set(top)
        universe = self.var_upper
        if universe is None:
            universe = {_norm(g) for g in (all_markers or top_markers)}
        for g in cited:
            ng = _norm(g)
            if ng in top_set:
                continue
            if ng not in universe:
                chk.hallucinated_genes.append(str(g))
            else:
                chk.uncited_genes.append(str(g))
        if chk.hallucinated_genes:
            chk.problems.append(
                "cites genes that are not in the data: " + ", ".join(chk.hallucinated_genes)
            )
        if chk.uncited_genes and cfg.flag_uncited_genes:
            chk.problems.append(
                f"cites genes that are not among the cluster's top {cfg.top_n} markers: "
                + ", ".join(chk.uncited_genes)
            )
        pos, neg, n_pos = self._markers(label, cl_id)
        chk.n_canonical_markers = n_pos
        chk.canonical_markers_found = [g for g in top if g in pos]
        chk.negative_markers_found = [g for g in top if g in neg]
        found = set(chk.canonical_markers_found)
        for antibody, genes in (protein_markers or {}).items():
            hit = next((_norm(g) for g in genes if _norm(g) in pos), None)
            if hit is not None:
                chk.protein_markers_found.append(f"{antibody} ({hit})")
                found.add(hit)
        k = len(found)
        if k >= cfg.min_high_confidence:
            chk.support = "high"
        elif k >= cfg.min_supported:
            chk.support = "supported"
        elif k >= 1:
            chk.support = "weak"
        if n_pos == 0:
            chk.problems.append(f"the marker database has no markers for {label!r}")
        elif k < cfg.min_supported:
            chk.problems.append(
                f"{k} of {label!r}'s {n_pos} canonical markers among the top {cfg.top_n} "
                + ("genes and top proteins " if protein_markers else "")
                + f"(needs {cfg.min_supported})"
            )
        if len(chk.negative_markers_found) > cfg.max_negative:
            chk.problems.append(
                f"negative markers of {label!r} are top markers: "
                + ", ".join(chk.negative_markers_found)
            )
        status: Status = "flagged" if chk.problems else "supported"
        return GuardrailOutcome(chk, status, cl_id, cl_name)

    @staticmethod
    def _map(label: str, ontology_id: str | None) -> tuple[str | None, str | None]:
        if ontology_id:
            oid = str(ontology_id).strip().upper().replace("_", ":")
            if onto.is_valid_cl(oid):
                # Trust the id only when it agrees with the label's own mapping or the
                # label does not map at all: a mismatched id is a hallucination too.
                m = onto.label_to_cl(label)
                if not m.confident or m.cl_id == oid or _close(m.cl_id, oid):
                    return oid, onto.cl_label(oid)
        m = onto.label_to_cl(label)
        if m.confident and m.cl_id:
            return m.cl_id, m.name
        return None, None


@functools.lru_cache(maxsize=65536)
def _safe_ancestors(cl_id: str) -> dict[str, int]:
    return onto.ancestors(cl_id) if onto.is_valid_cl(cl_id) else {}


def _close(a: str | None, b: str) -> bool:
    if not a:
        return False
    try:
        d = onto.distance(a, b)
    except Exception:
        return False
    return d is not None and d <= 2


def protein_marker_genes(
    entry: Any,
    groupby: str,
    *,
    n_top: int = PROTEIN_TOP_N,
    species: str = "human",
    labels: Sequence[Any] | None = None,
) -> dict[str, dict[str, list[str]]]:
    """Each cluster's top protein markers with their genes, from a ``protein_markers`` result.

    Parameters
    ----------
    entry
        ``adata.uns['protein_markers']`` (rank_genes_groups layout on CLR values, with
        ``params['groupby']`` and optionally ``protein_genes``: antibody -> genes).
    groupby
        The clustering being annotated; a result for another grouping gives ``{}``.
    labels
        The current labels of ``obs[groupby]`` (one per cell). When given and the result
        records which labels it was computed on (``params['groupby_fingerprint']`` or
        ``params['group_sizes']``), a result of another clustering stored under the same
        column name (leiden re-run into ``'leiden'``, cells subset) gives ``{}`` with a
        :class:`UserWarning`: stale protein markers must not support new labels.
    n_top
        Antibodies per cluster; only those up in the cluster (positive score, adjusted
        p < 0.05) count.

    Returns
    -------
    dict
        ``{cluster: {antibody: [genes]}}``, best antibody first; antibodies that map to no
        gene are left out. Empty when ``entry`` is not such a result.
    """
    from scagent.knowledge.proteins import protein_genes

    if not isinstance(entry, Mapping) or "names" not in entry:
        return {}
    params = entry.get("params", {})
    if params.get("groupby") != groupby:
        return {}
    if labels is not None and not _same_clustering(params, labels):
        warnings.warn(
            f"uns protein markers were computed on another clustering stored in "
            f"obs['{groupby}'] (it changed since); they are not used as evidence. Re-run "
            "protein_markers on the current clustering to use them.",
            UserWarning,
            stacklevel=2,
        )
        return {}
    known = entry.get("protein_genes", {})
    names, scores = entry["names"], entry.get("scores")
    padj = entry.get("pvals_adj")
    out: dict[str, dict[str, list[str]]] = {}
    for group in names.dtype.names:
        top: dict[str, list[str]] = {}
        for i in range(min(n_top, len(names[group]))):
            if scores is not None and not float(scores[group][i]) > 0:
                continue
            if padj is not None and not float(padj[group][i]) < 0.05:
                continue
            antibody = str(names[group][i])
            text = known.get(antibody) if isinstance(known, Mapping) else None
            genes = text.split(",") if text else protein_genes(antibody, species)
            if genes:
                top[antibody] = genes
        out[str(group)] = top
    return out


def _same_clustering(params: Mapping[str, Any], labels: Sequence[Any]) -> bool:
    """Whether ``labels`` are the ones a protein_markers result recorded (when it recorded any)."""
    from collections import Counter

    from scagent.tools.multimodal import labels_fingerprint

    fingerprint = params.get("groupby_fingerprint")
    if fingerprint:
        return str(fingerprint) == labels_fingerprint(labels)
    sizes = params.get("group_sizes")
    if isinstance(sizes, Mapping):
        current = Counter(str(x) for x in labels)
        return {str(k): int(v) for k, v in sizes.items()} == dict(current)
    return True  # an older result without a record: trusted by column name, as before


def unknown_outcome(reason: str) -> GuardrailOutcome:
    """The outcome of a cluster with no label."""
    return GuardrailOutcome(GuardrailCheck(problems=[reason]), "unknown", None, None)
