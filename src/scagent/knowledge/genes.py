"""Gene symbols across species: case rules, human<->mouse orthologs, aliases and Ensembl ids.

Marker tables, gene sets and AnnData objects name genes in many ways (``CD56``,
``Ncam1``, ``ENSG00000149294``); everything in :mod:`scagent.knowledge` meets on the
current official symbol of one species, written in that species' case.
"""

from __future__ import annotations

import functools
import gzip
import re
from collections.abc import Iterable, Sequence
from importlib import resources
from typing import TYPE_CHECKING, Literal

import pandas as pd

from scagent.errors import InvalidParameterError

if TYPE_CHECKING:
    from anndata import AnnData

__all__ = [
    "Species",
    "convert_species",
    "detect_gene_id_type",
    "guess_species_from_symbols",
    "human_to_mouse",
    "is_ensembl_id",
    "is_official_symbol",
    "known_symbols",
    "mouse_to_human",
    "normalize_species",
    "normalize_symbol",
    "normalize_symbols",
    "resolve_alias",
    "symbols_from_var",
]

Species = Literal["human", "mouse"]

_SPECIES_NAMES = {
    "human": "human",
    "hs": "human",
    "hsa": "human",
    "homo sapiens": "human",
    "h. sapiens": "human",
    "9606": "human",
    "ncbitaxon:9606": "human",
    "mouse": "mouse",
    "mm": "mouse",
    "mmu": "mouse",
    "mus musculus": "mouse",
    "m. musculus": "mouse",
    "10090": "mouse",
    "ncbitaxon:10090": "mouse",
}

_ENSEMBL_HUMAN = re.compile(r"^ENSG\d{11}(\.\d+)?$")
_ENSEMBL_MOUSE = re.compile(r"^ENSMUSG\d{11}(\.\d+)?$")
_ENSEMBL_ANY = re.compile(r"^ENS[A-Z]*G\d{11}(\.\d+)?$")
# Human open reading frame names keep a lower-case "orf" (C10orf10), and mouse RIKEN
# clone names keep "Rik" (1700001C19Rik): the plain case rules would break both.
_HUMAN_ORF = re.compile(r"^(C\d+|CX|CY)ORF(\d+)$", re.IGNORECASE)
_MOUSE_RIK = re.compile(r"^(.*\d.*?)RIK(\d*)$", re.IGNORECASE)

#: var columns that commonly hold gene symbols, in the order they are tried.
SYMBOL_COLUMNS = (
    "gene_symbols",
    "gene_symbol",
    "symbol",
    "symbols",
    "feature_name",
    "gene_name",
    "gene_names",
    "gene",
    "genes",
    "name",
)


def _data_path(name: str):
    return resources.files("scagent.knowledge") / "data" / name


def normalize_species(species: str) -> Species:
    """Map a species name (``human``, ``Hs``, ``Homo sapiens``, ``NCBITaxon:9606``...) to ``human``/``mouse``.

    Raises
    ------
    InvalidParameterError
        For a species scagent has no marker knowledge of.
    """
    key = str(species).strip().lower().replace("_", " ")
    if key in _SPECIES_NAMES:
        return _SPECIES_NAMES[key]  # type: ignore[return-value]
    raise InvalidParameterError(
        f"unknown species {species!r}; expected human or mouse",
        remedy="pass species='human' or species='mouse'",
    )


def normalize_symbol(symbol: str, species: str) -> str:
    """Write ``symbol`` in its species' case: human upper case, mouse title case.

    ``C10orf10`` and ``1700001C19Rik`` keep their lower-case parts; mitochondrial genes
    become ``MT-CO1`` (human) and ``mt-Co1`` (mouse).
    """
    sp = normalize_species(species)
    s = str(symbol).strip()
    if not s or _ENSEMBL_ANY.match(s.upper()):
        return s.upper()
    if sp == "human":
        s = s.upper()
        m = _HUMAN_ORF.match(s)
        if m:
            s = f"{m.group(1).upper()}orf{m.group(2).upper()}"
        return s
    if s.lower().startswith("mt-"):
        rest = s[3:]
        return "mt-" + rest[:1].upper() + rest[1:].lower()
    m = _MOUSE_RIK.match(s)
    if m:
        return f"{m.group(1).upper()}Rik{m.group(2)}"
    return s[:1].upper() + s[1:].lower()


@functools.cache
def _ortholog_maps() -> tuple[dict[str, tuple[str, ...]], dict[str, tuple[str, ...]]]:
    """human -> mouse and mouse -> human symbols for the pairs the case rule misses."""
    raw = gzip.decompress(_data_path("orthologs_human_mouse.tsv.gz").read_bytes()).decode()
    h2m: dict[str, list[str]] = {}
    m2h: dict[str, list[str]] = {}
    for line in raw.splitlines():
        if not line or line.startswith("#") or line == "human\tmouse":
            continue
        h, m = line.split("\t")
        h2m.setdefault(h, []).append(m)
        m2h.setdefault(m, []).append(h)
    return (
        {k: tuple(v) for k, v in h2m.items()},
        {k: tuple(v) for k, v in m2h.items()},
    )


def human_to_mouse(symbol: str) -> list[str]:
    """Mouse orthologs of a human symbol (Ensembl 105); the case rule where the table has none."""
    h2m, _ = _ortholog_maps()
    s = normalize_symbol(symbol, "human")
    return list(h2m.get(s, (normalize_symbol(s, "mouse"),)))


def mouse_to_human(symbol: str) -> list[str]:
    """Human orthologs of a mouse symbol (Ensembl 105); the case rule where the table has none."""
    _, m2h = _ortholog_maps()
    s = normalize_symbol(symbol, "mouse")
    return list(m2h.get(s, (normalize_symbol(s, "human"),)))


def convert_species(genes: Iterable[str], from_species: str, to_species: str) -> list[str]:
    """Convert symbols between human and mouse, keeping order and the first ortholog of each.

    Genes without an ortholog in the table fall back to the case rule (``GENE`` <-> ``Gene``).
    """
    src, dst = normalize_species(from_species), normalize_species(to_species)
    if src == dst:
        return [normalize_symbol(g, dst) for g in genes]
    fn = human_to_mouse if src == "human" else mouse_to_human
    return [fn(g)[0] for g in genes]


@functools.cache
def _alias_table() -> dict[str, tuple[tuple[str, ...], str]]:
    table: dict[str, tuple[tuple[str, ...], str]] = {}
    for line in _data_path("aliases.tsv").read_text().splitlines():
        if not line or line.startswith("#") or line.startswith("alias\t"):
            continue
        parts = line.split("\t")
        alias, targets = parts[0], parts[1]
        species = parts[2] if len(parts) > 2 else ""
        table[_alias_key(alias)] = (tuple(t for t in targets.split(",") if t), species or "human")
    return table


def _alias_key(text: str) -> str:
    return re.sub(r"\s+", " ", str(text).strip().upper())


def resolve_alias(symbol: str, species: str = "human") -> list[str]:
    """Current official symbols for an alias or previous symbol (``CD56`` -> ``["NCAM1"]``).

    An alias naming a complex returns every chain (``CD3`` -> ``CD3E, CD3D, CD3G``). A
    symbol that is not a known alias comes back alone, case-normalised.

    Parameters
    ----------
    symbol
        Gene symbol, alias or antigen name.
    species
        ``human`` or ``mouse``: the case and species of the returned symbols.
    """
    sp = normalize_species(species)
    hit = _alias_table().get(_alias_key(symbol))
    if hit is None:
        return [normalize_symbol(symbol, sp)]
    targets, target_species = hit
    if target_species == sp:
        return [normalize_symbol(t, sp) for t in targets]
    if target_species == "mouse":  # a mouse-only antigen (Ly6a/Sca-1) asked for in human
        return [normalize_symbol(symbol, sp)]
    out: list[str] = []
    for t in targets:
        for m in human_to_mouse(t):
            if m not in out:
                out.append(m)
    return out


def normalize_symbols(
    genes: Iterable[str], species: str, *, resolve_aliases: bool = True
) -> list[str]:
    """Case-normalise (and optionally alias-resolve) genes, dropping blanks and duplicates, keeping order."""
    sp = normalize_species(species)
    out: list[str] = []
    seen: set[str] = set()
    for g in genes:
        if g is None or (isinstance(g, float) and pd.isna(g)):
            continue
        g = str(g).strip()
        if not g:
            continue
        resolved = resolve_alias(g, sp) if resolve_aliases else [normalize_symbol(g, sp)]
        for r in resolved:
            if r not in seen:
                seen.add(r)
                out.append(r)
    return out


@functools.cache
def known_symbols(species: str) -> frozenset[str]:
    """Official symbols scagent knows offline.

    Human: every GENCODE v44 gene name. Mouse: every MGI symbol with a human ortholog in
    Ensembl 105 (mouse-only genes such as ``Ly6a`` are missing, so treat absence as
    "unknown", not "wrong").
    """
    sp = normalize_species(species)
    name = "human_symbols.txt.gz" if sp == "human" else "mouse_symbols.txt.gz"
    return frozenset(gzip.decompress(_data_path(name).read_bytes()).decode().split())


def is_official_symbol(symbol: str, species: str) -> bool:
    """Whether ``symbol`` is, exactly as written, an official symbol in :func:`known_symbols`."""
    return symbol in known_symbols(species)


def is_ensembl_id(name: str) -> bool:
    """Whether ``name`` is an Ensembl gene id (``ENSG...``, ``ENSMUSG...``, with or without version)."""
    return bool(_ENSEMBL_ANY.match(str(name)))


def detect_gene_id_type(
    names: Sequence[str], sample: int = 500
) -> Literal["ensembl_human", "ensembl_mouse", "ensembl", "symbol", "empty"]:
    """Say what a list of gene names holds, from a sample of up to ``sample`` names."""
    names = [str(n) for n in list(names)[:sample]]
    if not names:
        return "empty"
    n = len(names)
    if sum(bool(_ENSEMBL_HUMAN.match(x)) for x in names) > 0.8 * n:
        return "ensembl_human"
    if sum(bool(_ENSEMBL_MOUSE.match(x)) for x in names) > 0.8 * n:
        return "ensembl_mouse"
    if sum(bool(_ENSEMBL_ANY.match(x)) for x in names) > 0.8 * n:
        return "ensembl"
    return "symbol"


def guess_species_from_symbols(genes: Iterable[str]) -> Species | Literal["mixed", "unknown"]:
    """Guess the species from symbol case: human symbols are upper case, mouse title case.

    Returns ``mixed`` when both styles are common (each above 10% of the cased symbols),
    ``unknown`` when too few symbols carry letters to tell.
    """
    upper = title = 0
    for g in genes:
        g = str(g)
        letters = [c for c in g if c.isalpha()]
        if len(letters) < 2 or g.lower().startswith("mt-") or _ENSEMBL_ANY.match(g):
            continue
        if all(c.isupper() for c in letters):
            upper += 1
        elif letters[0].isupper() and all(c.islower() for c in letters[1:]):
            title += 1
        elif g.endswith("Rik") or "orf" in g:
            title += g.endswith("Rik")
            upper += "orf" in g
    total = upper + title
    if total < 3:
        return "unknown"
    if upper / total > 0.1 and title / total > 0.1:
        return "mixed"
    return "human" if upper >= title else "mouse"


def symbols_from_var(adata: AnnData, column: str | None = None) -> pd.Index:
    """Gene symbols for ``adata.var_names``, mapping Ensembl ids through a symbol column of ``var``.

    Parameters
    ----------
    adata
        Any AnnData; it is not modified.
    column
        The ``var`` column holding symbols. By default the first of
        :data:`SYMBOL_COLUMNS` that holds symbols is used when ``var_names`` are Ensembl
        ids; when ``var_names`` already are symbols they are returned as they are.

    Returns
    -------
    pandas.Index
        One symbol per variable, in ``var`` order. A variable with no symbol keeps its id.

    Raises
    ------
    InvalidParameterError
        When ``column`` is not a column of ``adata.var``.
    """
    var_names = pd.Index(adata.var_names.astype(str))
    if column is not None:
        if column not in adata.var.columns:
            raise InvalidParameterError(
                f"column {column!r} is not in adata.var (columns: {list(adata.var.columns)})",
                remedy="pass one of the var columns that holds gene symbols",
            )
        return _fill_symbols(adata.var[column], var_names)
    if detect_gene_id_type(var_names).startswith("ensembl"):
        for col in SYMBOL_COLUMNS:
            if col in adata.var.columns:
                values = adata.var[col].astype(str)
                if detect_gene_id_type(values.tolist()) == "symbol":
                    return _fill_symbols(adata.var[col], var_names)
        # No symbol column: say nothing rather than guess; the ids stay as they are.
        return var_names
    return var_names


def _fill_symbols(values: pd.Series, fallback: pd.Index) -> pd.Index:
    out = values.astype(object).where(values.notna(), None).tolist()
    return pd.Index(
        [
            str(v) if v not in (None, "", "nan") else str(f)
            for v, f in zip(out, fallback, strict=True)
        ]
    )
