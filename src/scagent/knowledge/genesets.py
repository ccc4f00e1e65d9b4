"""Gene sets from GMT files, as a dict or as the long ``source``/``target``/``weight`` table decoupler takes."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import pandas as pd

from scagent._atomic import atomic_write_text
from scagent.errors import InputNotFoundError, KnowledgeError
from scagent.knowledge import genes as _genes

__all__ = ["convert_sets", "filter_sets", "from_long", "read_gmt", "to_long", "write_gmt"]


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


def convert_sets(
    gene_sets: Mapping[str, Sequence[str]], from_species: str, to_species: str
) -> dict[str, list[str]]:
    """Convert every set's genes between human and mouse (ortholog table, then the case rule)."""
    return {
        name: list(dict.fromkeys(_genes.convert_species(genes, from_species, to_species)))
        for name, genes in gene_sets.items()
    }
