"""MarkerDB: every marker source in one table, with label queries, validation and fast candidate scoring.

The table has one schema for all sources (:data:`~scagent.knowledge.loaders.MARKER_COLUMNS`).
For scoring, each species gets a sparse gene x cell-type weight matrix, built once per
database, so that ranking cell types for a list of genes is a sparse row slice and a
mat-vec: tens of microseconds of arithmetic, well under a millisecond per list.
"""

from __future__ import annotations

import functools
import math
import os
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from scagent.errors import InputNotFoundError, KnowledgeError
from scagent.knowledge import genes as _genes
from scagent.knowledge import ontology as _onto
from scagent.knowledge.loaders import MARKER_COLUMNS, finalize_table, read_markers, read_plain

__all__ = [
    "BUNDLED_TABLE",
    "MarkerDB",
    "MarkerQuery",
    "MarkerValidation",
    "knowledge_dir",
]

#: File name of the curated table shipped in ``scagent/knowledge/data``.
BUNDLED_TABLE = "markers_curated.tsv"
#: File name of the database ``scagent knowledge build`` writes.
BUILT_TABLE = "markers.parquet"

_CATEGORICAL = tuple(c for c in MARKER_COLUMNS if c != "weight")


def knowledge_dir() -> Path:
    """Folder of the locally built knowledge: ``$SCAGENT_HOME/knowledge`` (default ``~/.cache/scagent``)."""
    home = os.environ.get("SCAGENT_HOME") or os.path.join(
        os.path.expanduser("~"), ".cache", "scagent"
    )
    return Path(home) / "knowledge"


def _coerce(table: pd.DataFrame) -> pd.DataFrame:
    """The marker schema with categorical string columns and a float32 weight, or an error naming what is wrong."""
    missing = [c for c in MARKER_COLUMNS if c not in table.columns]
    if missing:
        raise KnowledgeError(
            f"marker table lacks columns {missing}; columns found {list(table.columns)}; "
            f"expected {list(MARKER_COLUMNS)}"
        )
    out = table.loc[:, list(MARKER_COLUMNS)].copy()
    for col in _CATEGORICAL:
        values = out[col].astype(object).where(out[col].notna(), "").astype(str)
        out[col] = pd.Categorical(values)
    out["weight"] = pd.to_numeric(out["weight"], errors="coerce").fillna(1.0).astype(np.float32)
    bad_species = set(out["species"].cat.categories) - {"human", "mouse"}
    if bad_species:
        raise KnowledgeError(
            f"marker table has species {sorted(bad_species)}; expected human or mouse"
        )
    bad_pol = set(out["polarity"].cat.categories) - {"positive", "negative"}
    if bad_pol:
        raise KnowledgeError(
            f"marker table has polarity {sorted(bad_pol)}; expected positive or negative"
        )
    return out.reset_index(drop=True)


@dataclass
class MarkerQuery:
    """Markers of one cell type across sources (the answer of :meth:`MarkerDB.query`).

    Attributes
    ----------
    query
        The label asked for.
    match
        How the label resolved in the Cell Ontology.
    cell_type
        The resolved name (CL label, or the label itself when it has no id).
    cell_ontology_id
        The CL id, or ``None``.
    markers
        One row per (gene, polarity): ``gene``, ``polarity``, ``n_sources`` (agreement:
        how many sources name it), ``sources``, ``weight`` (highest), ``specificity``
        (1 = marks only this type in the DB, near 0 = marks most types), ``confidence``
        (0-1) and ``tissues``; positives first, best first.
    per_source
        Source -> its positive genes for this type.
    n_rows
        Database rows behind the answer.
    tissue_matched
        False when a tissue was asked for but no row of this type names it (all
        tissues are then shown).
    """

    query: str
    match: _onto.OntologyMatch
    cell_type: str
    cell_ontology_id: str | None
    markers: pd.DataFrame
    per_source: dict[str, list[str]]
    n_rows: int
    tissue_matched: bool = True

    @property
    def positive(self) -> list[str]:
        """Positive marker genes, best first."""
        return self.markers.loc[self.markers["polarity"] == "positive", "gene"].tolist()

    @property
    def negative(self) -> list[str]:
        """Negative marker genes."""
        return self.markers.loc[self.markers["polarity"] == "negative", "gene"].tolist()

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "query": self.query,
            "cell_type": self.cell_type,
            "cell_ontology_id": self.cell_ontology_id,
            "match": {"method": self.match.method, "score": self.match.score},
            "n_rows": self.n_rows,
            "tissue_matched": self.tissue_matched,
            "per_source": self.per_source,
            "markers": _records(self.markers),
        }


@dataclass
class MarkerValidation:
    """How well a list of marker genes fits a label (the answer of :meth:`MarkerDB.validate`).

    Attributes
    ----------
    label, cell_ontology_id
        The label checked and its CL id (``None`` when the ontology does not know it).
    markers
        The genes given, as resolved (aliases, case).
    known_markers
        The label's positive markers in the database.
    overlap
        Given genes that are known positive markers of the label.
    negative_overlap
        Given genes that the database lists as negative markers of the label.
    fraction
        ``len(overlap) / len(markers)``.
    p_value
        Hypergeometric probability of at least this overlap by chance, within the
        species' marker genes.
    label_rank
        Rank (1 = best) of the label among all cell types scored on these genes, or
        ``None`` when the label is not in the database.
    fits
        Whether the label fits: known, overlapping and ranked near the top.
    best_matches
        The best-scoring cell types for these genes (:meth:`MarkerDB.score_candidates`).
    message
        One sentence saying why it fits or not.
    """

    label: str
    cell_ontology_id: str | None
    markers: list[str]
    known_markers: list[str]
    overlap: list[str]
    negative_overlap: list[str]
    fraction: float
    p_value: float
    label_rank: int | None
    fits: bool
    best_matches: pd.DataFrame
    message: str

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "label": self.label,
            "cell_ontology_id": self.cell_ontology_id,
            "markers": self.markers,
            "known_markers": self.known_markers,
            "overlap": self.overlap,
            "negative_overlap": self.negative_overlap,
            "fraction": round(self.fraction, 4),
            "p_value": self.p_value,
            "label_rank": self.label_rank,
            "fits": self.fits,
            "message": self.message,
            "best_matches": _records(self.best_matches),
        }


def _records(df: pd.DataFrame) -> list[dict[str, Any]]:
    out = []
    for rec in df.to_dict(orient="records"):
        clean = {}
        for k, v in rec.items():
            if isinstance(v, (np.floating, float)):
                clean[k] = None if math.isnan(float(v)) else round(float(v), 6)
            elif isinstance(v, np.integer):
                clean[k] = int(v)
            elif isinstance(v, np.bool_):
                clean[k] = bool(v)
            else:
                clean[k] = v
        out.append(clean)
    return out


@dataclass
class _ScoringIndex:
    """Per-species precomputed scoring matrices (genes x cell types)."""

    species: str
    gene_index: dict[str, int]
    genes: np.ndarray
    type_keys: np.ndarray
    type_names: np.ndarray
    type_ids: np.ndarray
    n_markers: np.ndarray
    w_pos: sp.csr_matrix
    w_neg: sp.csr_matrix
    idf: np.ndarray
    type_tissues: list[frozenset[str]]
    tissue_masks: dict[str, np.ndarray] = field(default_factory=dict)

    def lookup(self, genes: Iterable[str]) -> tuple[np.ndarray, np.ndarray]:
        """Row indices of known genes and their positions in the input (unknown genes skipped)."""
        rows, pos = [], []
        gi = self.gene_index
        for i, g in enumerate(genes):
            j = gi.get(g)
            if j is None:
                j = gi.get(_normalize_for(g, self.species))
            if j is not None:
                rows.append(j)
                pos.append(i)
        return np.asarray(rows, dtype=np.int64), np.asarray(pos, dtype=np.int64)

    def tissue_mask(self, tissue: str) -> np.ndarray:
        match = _onto.normalize_tissue(tissue)
        key = match.name if match else str(tissue).lower()
        if key not in self.tissue_masks:
            wanted = {key, *(match.related if match else ())}
            if match and match.uberon_id:
                wanted.add(match.uberon_id)
            self.tissue_masks[key] = np.fromiter(
                (bool(t & wanted) for t in self.type_tissues),
                dtype=bool,
                count=len(self.type_tissues),
            )
        return self.tissue_masks[key]


@functools.lru_cache(maxsize=131072)
def _normalize_for(gene: str, species: str) -> str:
    return _genes.normalize_symbol(gene, species)


def _type_key(cl_id: str, label: str) -> str:
    return cl_id if cl_id else "label:" + _onto.normalize_label(label)


class MarkerDB:
    """A marker database: one table in one schema for every source, plus fast lookups.

    Parameters
    ----------
    table
        A DataFrame with the columns of
        :data:`~scagent.knowledge.loaders.MARKER_COLUMNS`. String columns are stored as
        categoricals. ``None`` gives an empty database.

    Examples
    --------
    >>> db = MarkerDB.default()  # doctest: +SKIP
    >>> db.score_candidates(["GNLY", "NKG7", "KLRD1"], species="human").head(3)  # doctest: +SKIP
    """

    def __init__(self, table: pd.DataFrame | None = None) -> None:
        if table is None:
            table = pd.DataFrame({c: pd.Series(dtype=object) for c in MARKER_COLUMNS})
        self._table = _coerce(table)
        self._indices: dict[str, _ScoringIndex] = {}
        self._label_keys: pd.Series | None = None

    # -- construction -------------------------------------------------------------------
    @classmethod
    def bundled(cls) -> MarkerDB:
        """The curated marker table shipped with scagent (human and mouse, each row with a reference)."""
        return cls(_bundled_table())

    @classmethod
    def load(
        cls,
        path: str | os.PathLike[str],
        *,
        format: str | None = None,
        species: str | None = None,
        source: str | None = None,
    ) -> MarkerDB:
        """Load a marker file: PanglaoDB, CellMarker 2.0, ScType, GMT, plain TSV/CSV or a built parquet.

        The format is sniffed from the extension and header unless ``format`` is given
        (``panglaodb``, ``cellmarker``, ``sctype``, ``gmt``, ``plain``).
        """
        p = Path(path)
        if not p.exists():
            raise InputNotFoundError(f"marker file {str(p)!r} does not exist")
        if p.suffix.lower() == ".parquet":
            return cls(pd.read_parquet(p))
        return cls(read_markers(p, format=format, species=species, source=source))  # type: ignore[arg-type]

    @classmethod
    def built(cls, folder: str | os.PathLike[str] | None = None) -> MarkerDB:
        """The database ``scagent knowledge build`` wrote (empty when none was built)."""
        path = Path(folder) if folder is not None else knowledge_dir()
        table = path / BUILT_TABLE
        if not table.is_file():
            return cls()
        return cls(pd.read_parquet(table))

    @classmethod
    def default(cls) -> MarkerDB:
        """Bundled + whatever ``scagent knowledge build`` put in ``$SCAGENT_HOME/knowledge``."""
        db = cls.bundled()
        built = cls.built()
        return db.merge(built) if len(built) else db

    def merge(self, other: MarkerDB) -> MarkerDB:
        """A new database with the rows of both; exact duplicates (same source) are kept once."""
        if not len(other):
            return MarkerDB(self._table)
        if not len(self):
            return MarkerDB(other._table)
        both = pd.concat(
            [self._table.astype(object), other._table.astype(object)], ignore_index=True
        )
        both = both.drop_duplicates(
            subset=["species", "tissue", "cell_type", "gene", "polarity", "source"], keep="first"
        )
        return MarkerDB(both)

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the table to parquet atomically."""
        from scagent._atomic import atomic_path

        with atomic_path(path) as tmp:
            self._table.to_parquet(tmp, index=False)

    # -- inspection ------------------------------------------------------------------------
    @property
    def table(self) -> pd.DataFrame:
        """The marker table (categorical string columns, float32 weight). Do not modify it in place."""
        return self._table

    def __len__(self) -> int:
        return len(self._table)

    def __repr__(self) -> str:
        t = self._table
        return (
            f"MarkerDB({len(t)} rows, {t['cell_type'].nunique()} cell types, "
            f"species {sorted(t['species'].unique().tolist())}, sources {self.sources})"
        )

    @property
    def sources(self) -> list[str]:
        """The sources present, sorted."""
        return sorted(self._table["source"].unique().tolist())

    def summary(self) -> pd.DataFrame:
        """Rows, cell types and genes per source and species."""
        t = self._table
        g = t.groupby(["source", "species"], observed=True)
        return pd.DataFrame(
            {
                "rows": g.size(),
                "cell_types": g["cell_type"].nunique(),
                "genes": g["gene"].nunique(),
                "negative": g["polarity"].apply(lambda s: int((s == "negative").sum())),
            }
        ).reset_index()

    def subset(
        self,
        *,
        species: str | None = None,
        tissue: str | None = None,
        source: str | Sequence[str] | None = None,
    ) -> MarkerDB:
        """A database restricted to a species, a tissue (and its related tissues) or sources."""
        t = self._table
        mask = np.ones(len(t), dtype=bool)
        if species is not None:
            mask &= (t["species"] == _genes.normalize_species(species)).to_numpy()
        if tissue is not None:
            mask &= self._tissue_rows(tissue)
        if source is not None:
            wanted = [source] if isinstance(source, str) else list(source)
            mask &= t["source"].isin(wanted).to_numpy()
        return MarkerDB(t[mask])

    def _tissue_rows(self, tissue: str) -> np.ndarray:
        match = _onto.normalize_tissue(tissue)
        if match is None:
            return np.ones(len(self._table), dtype=bool)
        wanted = {match.name, *match.related}
        by_name = self._table["tissue"].isin(wanted).to_numpy()
        by_id = (
            (self._table["uberon_id"] == match.uberon_id).to_numpy()
            if match.uberon_id
            else np.zeros(len(self._table), dtype=bool)
        )
        return by_name | by_id

    # -- label lookups ------------------------------------------------------------------
    def _rows_for_label(self, label: str) -> tuple[np.ndarray, _onto.OntologyMatch]:
        match = _onto.label_to_cl(label)
        t = self._table
        if self._label_keys is None:
            cats = t["cell_type"].cat.categories
            self._label_keys = pd.Series(
                [_onto.normalize_label(c) for c in cats], index=cats, dtype=object
            )
        key = _onto.normalize_label(label)
        codes = t["cell_type"].cat.codes.to_numpy()
        by_label = np.isin(codes, np.flatnonzero((self._label_keys == key).to_numpy()))
        mask = by_label
        if match.confident and match.cl_id:
            mask = mask | (t["cell_ontology_id"] == match.cl_id).to_numpy()
        return mask, match

    def query(
        self, cell_type: str, species: str | None = None, tissue: str | None = None
    ) -> MarkerQuery:
        """Markers of a cell type from every source, with agreement across sources and a confidence.

        The label is matched through the Cell Ontology, so ``"NK cells"`` finds the rows of
        ``CL:0000623`` from any source, whatever each source calls them.

        Parameters
        ----------
        cell_type
            A free-text label or a CL id.
        species
            ``human`` or ``mouse``; both when ``None``.
        tissue
            Prefer rows of this tissue (free text or UBERON id); when the type has no
            row in it, rows of every tissue are returned and ``tissue_matched`` is False.
        """
        mask, match = self._rows_for_label(cell_type)
        t = self._table
        if species is not None:
            mask = mask & (t["species"] == _genes.normalize_species(species)).to_numpy()
        tissue_matched = True
        if tissue is not None:
            in_tissue = mask & self._tissue_rows(tissue)
            if in_tissue.any():
                mask = in_tissue
            else:
                tissue_matched = False
        rows = t[mask]
        name = match.name if match.confident and match.cl_id else cell_type
        markers = self._summarise_markers(rows, species)
        per_source = {
            str(src): list(dict.fromkeys(g["gene"].astype(str)))
            for src, g in rows[rows["polarity"] == "positive"].groupby("source", observed=True)
        }
        return MarkerQuery(
            query=cell_type,
            match=match,
            cell_type=name,
            cell_ontology_id=match.cl_id if match.confident else None,
            markers=markers,
            per_source=per_source,
            n_rows=len(rows),
            tissue_matched=tissue_matched,
        )

    def _summarise_markers(self, rows: pd.DataFrame, species: str | None) -> pd.DataFrame:
        cols = [
            "gene",
            "polarity",
            "n_sources",
            "sources",
            "weight",
            "specificity",
            "confidence",
            "tissues",
        ]
        if rows.empty:
            return pd.DataFrame(columns=cols)
        r = rows.astype(
            {"gene": str, "polarity": str, "source": str, "tissue": str, "species": str}
        )
        n_sources_total = max(1, r["source"].nunique())
        g = r.groupby(["gene", "polarity"], sort=False)
        out = pd.DataFrame(
            {
                "n_sources": g["source"].nunique(),
                "sources": g["source"].agg(lambda s: sorted(set(s))),
                "weight": g["weight"].max().astype(float),
                "tissues": g["tissue"].agg(lambda s: sorted({x for x in s if x})),
                "species": g["species"].first(),
            }
        ).reset_index()
        spec = []
        for gene, sp_name in zip(out["gene"], out["species"], strict=True):
            idx = self._index(sp_name)
            j = idx.gene_index.get(gene) if idx is not None else None
            spec.append(float(idx.idf[j]) if j is not None else float("nan"))
        out["specificity"] = spec
        agreement = out["n_sources"] / n_sources_total
        out["confidence"] = (
            0.4 * out["weight"] + 0.4 * agreement + 0.2 * out["specificity"].fillna(0.5)
        ).clip(0, 1)
        out["_pos"] = (out["polarity"] != "positive").astype(int)
        out = out.sort_values(
            ["_pos", "n_sources", "confidence", "gene"], ascending=[True, False, False, True]
        )
        return out[cols].reset_index(drop=True)

    # -- scoring ---------------------------------------------------------------------------
    def _index(self, species: str) -> _ScoringIndex | None:
        spn = _genes.normalize_species(species)
        if spn not in self._indices:
            idx = _build_index(self._table, spn)
            if idx is None:
                return None
            self._indices[spn] = idx
        return self._indices[spn]

    def prepare(self, species: Iterable[str] = ("human", "mouse")) -> MarkerDB:
        """Build the scoring matrices now rather than on the first lookup; returns ``self``."""
        for s in species:
            self._index(s)
        return self

    def _score_vector(
        self,
        idx: _ScoringIndex,
        ranked_genes: Sequence[str],
        *,
        tissue: str | None,
        negative_genes: Sequence[str] | None,
        tissue_boost: float,
        negative_penalty: float,
    ) -> tuple[np.ndarray, sp.csr_matrix, np.ndarray, sp.csr_matrix, np.ndarray]:
        rows, pos = idx.lookup(ranked_genes)
        # Rank weight: the first gene counts 1, the 10th about 0.29 (DCG-style log decay).
        r = 1.0 / np.log2(pos + 2.0)
        sub_pos = idx.w_pos[rows]
        sub_neg = idx.w_neg[rows]
        scores = np.asarray(sub_pos.T @ r).ravel()
        if tissue is not None:
            scores = np.where(idx.tissue_mask(tissue), scores * (1.0 + tissue_boost), scores)
        scores = scores - negative_penalty * np.asarray(sub_neg.T @ r).ravel()
        neg_rows = np.empty(0, dtype=np.int64)
        if negative_genes:
            neg_rows, _ = idx.lookup(negative_genes)
            if len(neg_rows):
                scores = (
                    scores - negative_penalty * np.asarray(idx.w_pos[neg_rows].sum(axis=0)).ravel()
                )
        return scores, sub_pos, rows, sub_neg, neg_rows

    def score_candidates(
        self,
        ranked_genes: Sequence[str],
        *,
        species: str,
        tissue: str | None = None,
        top_k: int = 10,
        negative_genes: Sequence[str] | None = None,
        tissue_boost: float = 0.5,
        negative_penalty: float = 1.0,
    ) -> pd.DataFrame:
        """Rank cell types for a ranked gene list (a cluster's top markers, best first).

        A cell type scores the sum, over the list's genes that are its positive markers,
        of rank weight (``1 / log2(rank + 1)``) x row weight (with a bonus for agreement
        across sources) x specificity (an IDF over cell types: a gene that marks 40 types
        says little), divided by the square root of the type's marker count so that a
        type with many rows (several sources or tissues) does not win by size alone.
        Its negative markers among the list subtract the same way; its positive markers
        among ``negative_genes`` subtract too; types known in ``tissue`` are boosted.

        Parameters
        ----------
        ranked_genes
            Gene symbols, best first. Unknown genes are ignored.
        species
            ``human`` or ``mouse``. A species absent from the database is served from
            the other species' rows through the ortholog table.
        tissue
            Free text (``"PBMC"``, ``"lung"``) or a UBERON id; boosts types seen there.
        top_k
            How many cell types to return.
        negative_genes
            Genes known to be absent or low in the cluster.
        tissue_boost
            Relative boost for types known in ``tissue`` (0.5 = +50%).
        negative_penalty
            Weight of negative evidence relative to positive.

        Returns
        -------
        pandas.DataFrame
            Columns ``cell_type``, ``cell_ontology_id``, ``score``, ``n_hits``,
            ``hit_genes``, ``negative_hits``, ``n_markers``, ``in_tissue``; best first;
            only types with at least one hit.
        """
        cols = [
            "cell_type",
            "cell_ontology_id",
            "score",
            "n_hits",
            "hit_genes",
            "negative_hits",
            "n_markers",
            "in_tissue",
        ]
        idx = self._index(species)
        if idx is None or not len(ranked_genes):
            return pd.DataFrame(columns=cols)
        scores, sub_pos, rows, sub_neg, neg_rows = self._score_vector(
            idx,
            ranked_genes,
            tissue=tissue,
            negative_genes=negative_genes,
            tissue_boost=tissue_boost,
            negative_penalty=negative_penalty,
        )
        hits = np.asarray((sub_pos > 0).sum(axis=0)).ravel()
        cand = np.flatnonzero(hits > 0)
        if not len(cand):
            return pd.DataFrame(columns=cols)
        k = min(top_k, len(cand))
        part = cand[np.argpartition(-scores[cand], k - 1)[:k]] if len(cand) > k else cand
        top = part[np.lexsort((idx.type_keys[part], -scores[part]))]
        dense_pos = sub_pos[:, top].toarray() > 0
        dense_neg = sub_neg[:, top].toarray() > 0
        gene_names = idx.genes[rows]
        neg_input = idx.w_pos[neg_rows][:, top].toarray() > 0 if len(neg_rows) else None
        neg_names = idx.genes[neg_rows] if len(neg_rows) else None
        hit_genes, neg_hits = [], []
        for c in range(len(top)):
            hit_genes.append(gene_names[dense_pos[:, c]].tolist())
            nh = gene_names[dense_neg[:, c]].tolist()
            if neg_input is not None:
                nh += [f"{g} (absent)" for g in neg_names[neg_input[:, c]].tolist()]
            neg_hits.append(nh)
        in_tissue = idx.tissue_mask(tissue)[top] if tissue is not None else np.zeros(len(top), bool)
        return pd.DataFrame(
            {
                "cell_type": idx.type_names[top],
                "cell_ontology_id": idx.type_ids[top],
                "score": scores[top].astype(float),
                "n_hits": hits[top].astype(int),
                "hit_genes": hit_genes,
                "negative_hits": neg_hits,
                "n_markers": idx.n_markers[top].astype(int),
                "in_tissue": in_tissue,
            }
        )

    def validate(
        self,
        markers: Sequence[str],
        label: str,
        *,
        species: str | None = None,
        tissue: str | None = None,
        top_k: int = 5,
    ) -> MarkerValidation:
        """Check a label against marker genes: overlap with its known markers, and better labels if it fits poorly.

        Parameters
        ----------
        markers
            The cluster's marker genes, best first (aliases such as ``CD56`` are resolved).
        label
            The proposed cell type (free text or CL id).
        species
            ``human`` or ``mouse``; guessed from the symbols' case when ``None``.
        tissue
            Optional tissue, as in :meth:`score_candidates`.
        top_k
            How many best-matching cell types to report.
        """
        if species is None:
            guess = _genes.guess_species_from_symbols(markers)
            species = guess if guess in ("human", "mouse") else "human"
        spn = _genes.normalize_species(species)
        genes = _genes.normalize_symbols(markers, spn, resolve_aliases=True)
        q = self.query(label, species=spn, tissue=tissue)
        known = q.positive
        known_set, neg_set = set(known), set(q.negative)
        overlap = [g for g in genes if g in known_set]
        neg_overlap = [g for g in genes if g in neg_set]
        fraction = len(overlap) / len(genes) if genes else 0.0
        idx = self._index(spn)
        p_value = 1.0
        label_rank = None
        if idx is not None and genes:
            from scipy.stats import hypergeom

            universe = len(idx.genes)
            known_in_universe = sum(1 for g in known_set if g in idx.gene_index)
            drawn = sum(1 for g in genes if g in idx.gene_index)
            if overlap and known_in_universe:
                p_value = float(hypergeom.sf(len(overlap) - 1, universe, known_in_universe, drawn))
            scores, _, _, _, _ = self._score_vector(
                idx,
                genes,
                tissue=tissue,
                negative_genes=None,
                tissue_boost=0.5,
                negative_penalty=1.0,
            )
            key = _type_key(q.cell_ontology_id or "", label)
            where = np.flatnonzero(idx.type_keys == key)
            if len(where) and known:
                label_rank = int((scores > scores[where[0]]).sum()) + 1
        best = self.score_candidates(genes, species=spn, tissue=tissue, top_k=top_k)
        if not known:
            fits = False
            message = f"no markers of {label!r} in the database; the best-matching types are listed"
        else:
            fits = bool(
                overlap
                and (fraction >= 0.25 or (label_rank is not None and label_rank <= 3))
                and len(neg_overlap) < max(1, len(overlap))
            )
            if fits:
                message = f"{len(overlap)}/{len(genes)} genes are known {q.cell_type} markers" + (
                    f" (rank {label_rank} of the cell types scored)" if label_rank else ""
                )
            else:
                top_name = best["cell_type"].iloc[0] if len(best) else "none"
                message = (
                    f"{label!r} fits poorly: {len(overlap)}/{len(genes)} known markers"
                    + (f", {len(neg_overlap)} negative markers present" if neg_overlap else "")
                    + f"; best match: {top_name}"
                )
        return MarkerValidation(
            label=label,
            cell_ontology_id=q.cell_ontology_id,
            markers=genes,
            known_markers=known,
            overlap=overlap,
            negative_overlap=neg_overlap,
            fraction=fraction,
            p_value=p_value,
            label_rank=label_rank,
            fits=fits,
            best_matches=best,
            message=message,
        )


_UMBRELLA_TERMS = frozenset(
    {
        "CL:0000738",  # leukocyte
        "CL:0000542",  # lymphocyte
        "CL:0000842",  # mononuclear leukocyte
        "CL:0000766",  # myeloid leukocyte
        "CL:0000763",  # myeloid cell
        "CL:0000945",  # lymphocyte of B lineage
        "CL:0000789",  # alpha-beta T cell
        "CL:0002320",  # connective tissue cell
        "CL:0000548",  # animal cell
    }
)


def _build_index(table: pd.DataFrame, species: str) -> _ScoringIndex | None:
    t = table[table["species"] == species]
    if t.empty:
        other = "mouse" if species == "human" else "human"
        t = table[table["species"] == other]
        if t.empty:
            return None
        # No rows for this species: serve it from the other's rows through orthologs.
        cats = t["gene"].cat.categories
        mapped = dict(zip(cats, _genes.convert_species(cats, other, species), strict=True))
        t = t.assign(gene=t["gene"].astype(str).map(mapped))
    t = t.astype(
        {
            "cell_type": str,
            "cell_ontology_id": str,
            "gene": str,
            "polarity": str,
            "source": str,
            "tissue": str,
            "uberon_id": str,
        }
    )
    keys = [
        _type_key(cid, ct) for cid, ct in zip(t["cell_ontology_id"], t["cell_type"], strict=True)
    ]
    t = t.assign(_key=keys)
    type_codes, type_keys = pd.factorize(t["_key"], sort=True)
    gene_codes, genes = pd.factorize(t["gene"], sort=True)
    t = t.assign(_t=type_codes, _g=gene_codes)
    n_types, n_genes = len(type_keys), len(genes)

    def matrix(rows: pd.DataFrame) -> tuple[sp.csr_matrix, np.ndarray]:
        if rows.empty:
            return sp.csr_matrix((n_genes, n_types), dtype=np.float64), np.zeros(n_types)
        g = rows.groupby(["_g", "_t"], sort=False)
        agg = pd.DataFrame({"w": g["weight"].max(), "n_src": g["source"].nunique()}).reset_index()
        # Several sources naming the same gene for a type is evidence; reward it, with
        # diminishing returns so that the largest database does not dominate.
        w = agg["w"].to_numpy(float) * (1.0 + 0.25 * np.log2(agg["n_src"].to_numpy(float)))
        m = sp.csr_matrix(
            (w, (agg["_g"].to_numpy(), agg["_t"].to_numpy())), shape=(n_genes, n_types)
        )
        counts = np.bincount(agg["_t"].to_numpy(), minlength=n_types)
        return m, counts

    pos_rows = t[t["polarity"] == "positive"]
    w_pos, n_pos = matrix(pos_rows)
    w_neg, _ = matrix(t[t["polarity"] == "negative"])
    # Specificity: an IDF over cell types, scaled to (0, 1].
    types_per_gene = np.asarray((w_pos > 0).sum(axis=1)).ravel()
    idf = np.log((1.0 + n_types) / (1.0 + types_per_gene)) / math.log(1.0 + n_types)
    idf = np.clip(idf, 0.02, 1.0) if n_types > 1 else np.ones(n_genes)
    norm = 1.0 / np.sqrt(np.maximum(n_pos, 1))
    # Umbrella terms (leukocyte, lymphocyte...) collect every child's markers in some
    # sources; a specific type with the same evidence should rank above them.
    umbrella = np.array([k in _UMBRELLA_TERMS or k in _onto.GENERIC_TERMS for k in type_keys])
    norm = np.where(umbrella, 0.7 * norm, norm)
    w_pos = sp.csr_matrix(sp.diags(idf) @ w_pos @ sp.diags(norm))
    w_neg = sp.csr_matrix(sp.diags(idf) @ w_neg @ sp.diags(norm))
    # Display names: the CL label where there is an id, else the most common source label.
    first_label = t.groupby("_t", sort=True)["cell_type"].agg(lambda s: s.value_counts().index[0])
    type_ids = np.array([k if not k.startswith("label:") else "" for k in type_keys], dtype=object)
    names = np.array(
        [
            (_onto.cl_label(cid) or first_label.iloc[i]) if cid else first_label.iloc[i]
            for i, cid in enumerate(type_ids)
        ],
        dtype=object,
    )
    tissues: list[set[str]] = [set() for _ in range(n_types)]
    for tc, tis, uid in t[["_t", "tissue", "uberon_id"]].drop_duplicates().itertuples(index=False):
        if tis:
            tissues[tc].add(tis)
        if uid:
            tissues[tc].add(uid)
    return _ScoringIndex(
        species=species,
        gene_index={g: i for i, g in enumerate(genes)},
        genes=np.asarray(genes, dtype=object),
        type_keys=np.asarray(type_keys, dtype=object),
        type_names=names,
        type_ids=type_ids,
        n_markers=n_pos,
        w_pos=w_pos,
        w_neg=w_neg,
        idf=idf,
        type_tissues=[frozenset(s) for s in tissues],
    )


@functools.cache
def _bundled_table() -> pd.DataFrame:
    path = resources.files("scagent.knowledge") / "data" / BUNDLED_TABLE
    if not path.is_file():
        warnings.warn(
            f"the bundled marker table {BUNDLED_TABLE} is missing from this installation; "
            "MarkerDB.bundled() is empty",
            stacklevel=3,
        )
        return _coerce(pd.DataFrame({c: pd.Series(dtype=object) for c in MARKER_COLUMNS}))
    with resources.as_file(path) as p:
        table = read_plain(p, source="scagent_curated")
    return _coerce(finalize_table(table))
