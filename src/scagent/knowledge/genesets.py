"""Gene sets from GMT files, as a dict or as the long ``source``/``target``/``weight`` table decoupler takes."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from scagent._atomic import atomic_write_text
from scagent.errors import InputNotFoundError, KnowledgeError
from scagent.knowledge import genes as _genes

__all__ = [
    "convert_sets",
    "filter_sets",
    "from_long",
    "overrepresentation",
    "read_gmt",
    "to_long",
    "write_gmt",
]


def read_gmt(path: str | os.PathLike[str]) -> dict[str, list[str]]:
    """Read a GMT file: one set per line, ``name<TAB>description<TAB>gene<TAB>gene...``.

    Genes keep their order; duplicates within a set and empty fields are dropped.

    Raises
    ------
    KnowledgeError
        For an empty file, a line with fewer than three fields or no gene (the message
        gives the line number), or a set name that appears twice.
    """
    p = Path(path)
    if not p.exists():
        raise InputNotFoundError(f"gene-set file {str(p)!r} does not exist")
    sets: dict[str, list[str]] = {}
    with open(p, encoding="utf-8-sig", errors="replace") as fh:
        for lineno, line in enumerate(fh, start=1):
            line = line.rstrip("\r\n")
            if not line.strip() or line.startswith("#"):
                continue
            fields = line.split("\t")
            name = fields[0].strip()
            genes = [g.strip() for g in fields[2:] if g.strip()]
            if len(fields) < 3 or not name or not genes:
                raise KnowledgeError(
                    f"{str(p)!r} line {lineno} is not a GMT record: expected "
                    f"'name<TAB>description<TAB>gene...' with at least one gene, found "
                    f"{len(fields)} tab-separated field(s)",
                    remedy=f"fix or delete line {lineno}; GMT fields are separated by tabs",
                )
            if name in sets:
                raise KnowledgeError(
                    f"{str(p)!r} line {lineno}: gene set {name!r} appears twice",
                    remedy="give every gene set a unique name",
                )
            sets[name] = list(dict.fromkeys(genes))
    if not sets:
        raise KnowledgeError(
            f"gene-set file {str(p)!r} is empty", remedy="pass a non-empty GMT file"
        )
    return sets


def write_gmt(
    gene_sets: Mapping[str, Sequence[str]],
    path: str | os.PathLike[str],
    descriptions: Mapping[str, str] | None = None,
) -> None:
    """Write gene sets to a GMT file atomically."""
    lines = []
    for name, genes in gene_sets.items():
        desc = (descriptions or {}).get(name, "")
        lines.append("\t".join([name, desc, *genes]))
    atomic_write_text(path, "\n".join(lines) + "\n")


def to_long(gene_sets: Mapping[str, Sequence[str]], weight: float = 1.0) -> pd.DataFrame:
    """Gene sets as a long table with columns ``source``, ``target``, ``weight`` (decoupler's net format)."""
    rows = [(name, g, weight) for name, genes in gene_sets.items() for g in genes]
    return pd.DataFrame(rows, columns=["source", "target", "weight"])


def from_long(
    net: pd.DataFrame, source: str = "source", target: str = "target"
) -> dict[str, list[str]]:
    """The inverse of :func:`to_long`: a long table back to ``{set: [genes]}``."""
    missing = [c for c in (source, target) if c not in net.columns]
    if missing:
        raise KnowledgeError(
            f"gene-set table lacks columns {missing}; columns found {list(net.columns)}"
        )
    return {
        str(k): list(dict.fromkeys(v.astype(str)))
        for k, v in net.groupby(source, sort=False)[target]
    }


def filter_sets(
    gene_sets: Mapping[str, Sequence[str]],
    universe: Sequence[str] | None = None,
    min_size: int = 5,
    max_size: int = 500,
) -> dict[str, list[str]]:
    """Keep sets whose size (within ``universe``, when given) lies in ``[min_size, max_size]``."""
    keep = set(universe) if universe is not None else None
    out = {}
    for name, genes in gene_sets.items():
        gs = [g for g in genes if keep is None or g in keep]
        if min_size <= len(gs) <= max_size:
            out[name] = gs
    return out


def overrepresentation(
    queries: Mapping[Any, Sequence[str]],
    gene_sets: Mapping[str, Sequence[str]],
    universe: Sequence[str],
) -> pd.DataFrame:
    """One-sided hypergeometric test of every query gene list against every gene set.

    The one over-representation test of scagent (DE genes in the enrichment tool, an SAE
    feature's top genes in its validation). Both the query and the set are cut to
    ``universe`` (the genes that could have been picked: those tested, those measured).
    Written with scipy rather than decoupler's ``mt.ora``: decoupler 2.2.0 selects the
    bottom instead of the top features (scverse/decoupler#346) and draws the background
    from a fixed ``n_bg``, not from the genes actually tested.

    Parameters
    ----------
    queries
        ``{name: genes}``: the genes picked (e.g. ``{"up": [...], "down": [...]}``).
    gene_sets
        ``{set name: genes}``.
    universe
        The background.

    Returns
    -------
    One row per query x set, in input order: ``query``, ``gene_set``, ``overlap``,
    ``n_query`` and ``set_size`` (within the universe), ``expected`` overlap,
    ``log2_enrichment`` = log2((overlap + 0.5) / (expected + 0.5)), ``odds_ratio``
    (Haldane-corrected), ``pvalue`` = P(X >= overlap) (Fisher's exact test, greater; 1
    for an empty query or set), ``genes`` (the shared genes, in query order).
    """
    import numpy as np
    from scipy import sparse, stats

    index = {g: i for i, g in enumerate(dict.fromkeys(map(str, universe)))}
    n = len(index)

    def members(lists: Sequence[Sequence[str]]) -> sparse.csr_matrix:
        rows, cols = [], []
        for r, genes in enumerate(lists):
            idx = {index[g] for g in map(str, genes) if g in index}
            rows += [r] * len(idx)
            cols += sorted(idx)
        return sparse.csr_matrix(
            (np.ones(len(rows), dtype=np.int32), (rows, cols)), shape=(len(lists), n)
        )

    q_names, s_names = list(queries), list(gene_sets)
    Q, S = members([queries[k] for k in q_names]), members([gene_sets[k] for k in s_names])
    # Every query x set overlap in one sparse product, not a loop over pairs.
    overlap = (Q @ S.T).toarray().ravel()
    n_query = np.repeat(np.asarray(Q.sum(axis=1)).ravel(), len(s_names))
    set_size = np.tile(np.asarray(S.sum(axis=1)).ravel(), len(q_names))
    expected = set_size * n_query / n if n else np.zeros_like(overlap, dtype=float)
    b, c = n_query - overlap, set_size - overlap
    d = n - overlap - b - c
    # P(X >= 0) = 1 and no gene is shared where nothing overlaps (most pairs of a large
    # screen): compute the test and the gene lists only where the overlap is positive, and
    # the test once per distinct (overlap, set size, query size).
    pvalue = np.ones(overlap.size)
    hit = np.flatnonzero(overlap > 0)
    if hit.size:
        triples, inverse = np.unique(
            np.column_stack([overlap[hit], set_size[hit], n_query[hit]]),
            axis=0,
            return_inverse=True,
        )
        sf = stats.hypergeom.sf(triples[:, 0] - 1, max(n, 1), triples[:, 1], triples[:, 2])
        pvalue[hit] = sf[np.ravel(inverse)]
    shared = np.full(overlap.size, "", dtype=object)
    S_csc = S.tocsc()
    for qi, q in enumerate(q_names):
        # The query's genes in its own order; the sets x those genes membership gives every
        # shared gene list of this query in one sparse slice.
        names = [g for g in dict.fromkeys(map(str, queries[q])) if g in index]
        if not names:
            continue
        block = S_csc[:, [index[g] for g in names]].tocsr()
        block.sort_indices()
        names = np.asarray(names, dtype=object)
        for si in np.flatnonzero(np.diff(block.indptr)):
            cols = block.indices[block.indptr[si] : block.indptr[si + 1]]
            shared[qi * len(s_names) + si] = ",".join(names[cols])
    return pd.DataFrame(
        {
            "query": np.repeat(np.array(q_names, dtype=object), len(s_names)),
            "gene_set": np.tile(np.array(s_names, dtype=object), len(q_names)),
            "overlap": overlap,
            "n_query": n_query,
            "set_size": set_size,
            "expected": expected,
            "log2_enrichment": np.log2((overlap + 0.5) / (expected + 0.5)),
            "odds_ratio": ((overlap + 0.5) * (d + 0.5)) / ((b + 0.5) * (c + 0.5)),
            "pvalue": pvalue,
            "genes": shared,
        }
    )


def convert_sets(
    gene_sets: Mapping[str, Sequence[str]], from_species: str, to_species: str
) -> dict[str, list[str]]:
    """Convert every set's genes between human and mouse (ortholog table, then the case rule)."""
    return {
        name: list(dict.fromkeys(_genes.convert_species(genes, from_species, to_species)))
        for name, genes in gene_sets.items()
    }
