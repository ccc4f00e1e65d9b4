"""CITE-seq antibody names mapped to the genes they measure, so protein markers can stand as gene evidence.

Panels name the same antibody many ways (``CD8a``, ``CD8``, ``CD8a_TotalSeqB``,
``Hu.CD8a``, ``CD8A-RPA-T8``); :func:`protein_genes` strips the usual decorations and
looks the rest up in ``data/protein_genes.tsv`` (antibody, encoding genes, aliases).
Isotype controls (``Mouse_IgG1_isotype``, ``IgG2a``) measure no gene and are recognised by
:func:`is_isotype_control`.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable

import pandas as pd

from scagent.errors import KnowledgeError
from scagent.knowledge import genes as kgenes

__all__ = [
    "is_isotype_control",
    "map_proteins",
    "protein_gene_table",
    "protein_genes",
]

_PREFIXES = ("anti-human", "anti-mouse", "anti_human", "anti_mouse", "anti-", "hu.", "hu_", "adt_")
_SUFFIXES = (
    "_totalseqa", "_totalseqb", "_totalseqc", "-totalseqa", "-totalseqb", "-totalseqc",
    "_totalseq", "-totalseq", "_adt", "-adt", ".adt", "_prot", "_protein", "_antibody",
)  # fmt: skip
_SPLIT = re.compile(r"[_\-.\s/|:]+")
_ISOTYPE = re.compile(
    r"isotype|(?<![a-z])ctrl(?![a-z])|control|^(mouse|rat|hamster|armenian[_\s-]?hamster|ms|rt)[_.\s-]*ig[gm]"
    r"|^igg\d?[a-d]?(?:[_.\s-]*(?:kappa|lambda|k|l))?$",
    re.IGNORECASE,
)


def _key(text: str) -> str:
    return re.sub(r"[^0-9a-z]", "", str(text).lower())


@functools.lru_cache(maxsize=1)
def protein_gene_table() -> pd.DataFrame:
    """The bundled table: one row per antibody with ``protein``, ``genes`` (list) and ``aliases`` (list).

    Raises
    ------
    KnowledgeError
        If the bundled file is malformed.
    """
    path = kgenes._data_path("protein_genes.tsv")
    with path.open() as handle:
        table = pd.read_csv(handle, sep="\t", comment="#", dtype=str).fillna("")
    if list(table.columns) != ["protein", "genes", "aliases"] or (table["genes"] == "").any():
        raise KnowledgeError(
            f"{path.name}: needs columns protein, genes, aliases; every row a gene"
        )
    table["genes"] = table["genes"].str.split(",")
    table["aliases"] = table["aliases"].map(lambda s: [a for a in s.split(",") if a])
    return table


@functools.lru_cache(maxsize=1)
def _lookup() -> dict[str, tuple[str, tuple[str, ...]]]:
    out: dict[str, tuple[str, tuple[str, ...]]] = {}
    for row in protein_gene_table().itertuples(index=False):
        entry = (row.protein, tuple(row.genes))
        out.setdefault(_key(row.protein), entry)
        for alias in row.aliases:
            out.setdefault(_key(alias), entry)
    return out


def _strip(name: str) -> str:
    text = str(name).strip()
    changed = True
    while changed:
        changed = False
        low = text.lower()
        for pre in _PREFIXES:
            if low.startswith(pre) and len(text) > len(pre):
                text, changed = text[len(pre) :], True
                break
        low = text.lower()
        for suf in _SUFFIXES:
            if low.endswith(suf) and len(text) > len(suf):
                text, changed = text[: -len(suf)], True
                break
    return text


def is_isotype_control(name: str) -> bool:
    """Whether an antibody name is an isotype control (``IgG1``, ``Mouse_IgG2a_isotype_Ctrl``).

    Plain ``IgD`` and ``IgM`` are B-cell markers, not controls.
    """
    return bool(_ISOTYPE.search(str(name).strip()))


def protein_genes(name: str, species: str = "human") -> list[str]:
    """The genes an antibody measures, main gene first; ``[]`` when the name is not known.

    Parameters
    ----------
    name
        The antibody as the panel names it; prefixes (``anti-human``, ``Hu.``), suffixes
        (``_TotalSeqB``, ``_ADT``) and trailing clone or barcode names (``CD4-RPA-T4``,
        ``CD3_A0034``) are ignored. A name that is itself an official gene symbol maps to it.
    species
        ``human`` or ``mouse`` (mouse genes are the orthologs of the human ones).

    Examples
    --------
    >>> protein_genes("CD8a_TotalSeqB")
    ['CD8A']
    >>> protein_genes("Mouse_IgG1_isotype")
    []
    """
    sp = kgenes.normalize_species(species)
    if is_isotype_control(name):
        return []
    table = _lookup()
    text = _strip(name)
    hit = table.get(_key(text))
    if hit is None:
        tokens = [t for t in _SPLIT.split(text) if t]
        for k in range(len(tokens) - 1, 0, -1):
            hit = table.get(_key("".join(tokens[:k])))
            if hit is not None:
                break
    if hit is not None:
        genes = list(hit[1])
    elif kgenes.is_official_symbol(text.upper(), "human"):
        genes = [text.upper()]
    else:
        return []
    if sp == "mouse":
        genes = list(dict.fromkeys(m for g in genes for m in kgenes.human_to_mouse(g)))
    return genes


def map_proteins(names: Iterable[str], species: str = "human") -> dict[str, list[str]]:
    """:func:`protein_genes` for each name: ``{name: genes}`` (``[]`` for unknown names and controls)."""
    return {str(n): protein_genes(str(n), species) for n in names}
