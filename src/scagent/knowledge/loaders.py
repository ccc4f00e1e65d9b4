"""Readers that turn public marker files (PanglaoDB, CellMarker 2.0, ScType, GMT, plain tables) into one schema.

Every reader returns a DataFrame with the columns of :data:`MARKER_COLUMNS`; cell types
are mapped to Cell Ontology ids where the match is confident, tissues to UBERON ids where
known, and genes to current symbols in their species' case.
"""

from __future__ import annotations

import csv
import functools
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from scagent.errors import InputNotFoundError, KnowledgeError
from scagent.knowledge import genes as _genes
from scagent.knowledge import ontology as _onto

__all__ = [
    "MARKER_COLUMNS",
    "MarkerFormat",
    "finalize_table",
    "read_cellmarker",
    "read_gmt_markers",
    "read_markers",
    "read_panglaodb",
    "read_plain",
    "read_sctype",
    "sniff_format",
]

#: The one schema every marker source is read into.
MARKER_COLUMNS: tuple[str, ...] = (
    "species",
    "tissue",
    "uberon_id",
    "cell_type",
    "cell_ontology_id",
    "gene",
    "polarity",
    "weight",
    "source",
    "reference",
)

MarkerFormat = Literal["panglaodb", "cellmarker", "sctype", "gmt", "plain"]

PANGLAODB_REFERENCE = "doi:10.1093/database/baz046"
SCTYPE_REFERENCE = "doi:10.1038/s41467-022-28803-w"
CELLMARKER_REFERENCE = "doi:10.1093/nar/gkac947"

_PANGLAO_REQUIRED = ("species", "official gene symbol", "cell type")
_SCTYPE_REQUIRED = ("tissueType", "cellName", "geneSymbolmore1")
_CELLMARKER_REQUIRED = ("species", "cell_name")
_PLAIN_ALIASES = {
    "cell_type": ("cell_type", "celltype", "cell type", "cell_name", "cellname", "label", "cell"),
    "gene": ("gene", "genes", "symbol", "gene_symbol", "marker", "markers", "gene symbol"),
    "weight": ("weight", "score", "importance"),
    "tissue": ("tissue", "organ", "tissue_type", "tissuetype"),
    "species": ("species", "organism"),
    "polarity": ("polarity", "direction", "sign"),
    "cell_ontology_id": ("cell_ontology_id", "cl_id", "cellontology_id", "cell_ontology_term_id"),
    "uberon_id": ("uberon_id", "tissue_ontology_term_id", "uberonongology_id"),
    "source": ("source", "database"),
    "reference": ("reference", "pmid", "doi", "citation"),
}


def _check_path(path: str | os.PathLike[str]) -> Path:
    p = Path(path)
    if not p.exists():
        raise InputNotFoundError(f"marker file {str(p)!r} does not exist")
    if p.is_file() and p.stat().st_size == 0:
        raise KnowledgeError(
            f"marker file {str(p)!r} is empty",
            remedy="pass a file with a header row and at least one marker",
        )
    return p


def _is_excel(path: Path) -> bool:
    return path.suffix.lower() in {".xlsx", ".xlsm", ".xls"}


def _read_table(path: Path) -> pd.DataFrame:
    """A delimited text file with the delimiter sniffed (tab, comma or semicolon)."""
    with open(path, newline="", encoding="utf-8-sig", errors="replace") as fh:
        head = fh.read(8192)
    if not head.strip():
        raise KnowledgeError(f"marker file {str(path)!r} is empty")
    try:
        sep = csv.Sniffer().sniff(head.splitlines()[0], delimiters="\t,;").delimiter
    except csv.Error:
        sep = "\t" if "\t" in head else ","
    try:
        df = pd.read_csv(path, sep=sep, dtype=str, keep_default_na=False, comment=None)
    except pd.errors.EmptyDataError as err:
        raise KnowledgeError(f"marker file {str(path)!r} is empty") from err
    except pd.errors.ParserError as err:
        raise KnowledgeError(f"marker file {str(path)!r} cannot be parsed: {err}") from err
    if df.empty:
        raise KnowledgeError(
            f"marker file {str(path)!r} has a header but no rows",
            remedy="add at least one marker row",
        )
    return df


def _header(path: Path) -> list[str]:
    if _is_excel(path):
        import openpyxl

        try:
            wb = openpyxl.load_workbook(path, read_only=True)
        except Exception as err:  # openpyxl raises several unrelated types on a bad file
            raise KnowledgeError(f"cannot open {str(path)!r} as an Excel workbook: {err}") from err
        cols: list[str] = []
        for ws in wb.worksheets:
            for row in ws.iter_rows(min_row=1, max_row=1, values_only=True):
                cols.extend(str(c) for c in row if c is not None)
        wb.close()
        return cols
    with open(path, encoding="utf-8-sig", errors="replace") as fh:
        first = fh.readline().rstrip("\r\n")
    if "\t" in first:
        return first.split("\t")
    return next(csv.reader([first]))


def sniff_format(path: str | os.PathLike[str]) -> MarkerFormat:
    """Say which marker format a file is in, from its extension and header row.

    Raises
    ------
    KnowledgeError
        When the header fits no known format; the message lists the columns found and
        the columns each format expects.
    """
    p = _check_path(path)
    if p.suffix.lower() == ".gmt":
        return "gmt"
    cols = _header(p)
    lower = {c.strip().lower() for c in cols}
    if {c.lower() for c in _PANGLAO_REQUIRED} <= lower:
        return "panglaodb"
    if {c.lower() for c in _SCTYPE_REQUIRED} <= lower:
        return "sctype"
    if (
        {"cell_name"} <= lower
        and ({"marker", "symbol"} & lower)
        and ({"tissue_class", "tissue_type", "cellontology_id"} & lower)
    ):
        return "cellmarker"
    if _plain_columns(cols) is not None:
        return "plain"
    if (
        not _is_excel(p)
        and _first_line_has_tabs(p)
        and len(cols) >= 3
        and not _looks_like_header(cols)
    ):
        return "gmt"  # a GMT saved with another extension: name, description, genes...
    raise KnowledgeError(
        f"{str(p)!r} is not a marker file scagent knows: columns found {cols[:20]}; expected "
        f"PanglaoDB {list(_PANGLAO_REQUIRED)}, ScType {list(_SCTYPE_REQUIRED)}, CellMarker "
        "['species', 'tissue_type', 'cell_name', 'marker' or 'Symbol'] or a plain table "
        "['cell_type', 'gene'] (optional: weight, tissue, species, polarity)",
        remedy="rename the columns, or pass format= explicitly",
    )


def _first_line_has_tabs(path: Path) -> bool:
    with open(path, encoding="utf-8-sig", errors="replace") as fh:
        return "\t" in fh.readline()


def _looks_like_header(cols: list[str]) -> bool:
    known = {a for aliases in _PLAIN_ALIASES.values() for a in aliases}
    return any(c.strip().lower() in known for c in cols)


def _plain_columns(cols: Iterable[str]) -> dict[str, str] | None:
    """Map schema column -> file column for a plain table, or ``None`` if cell_type/gene are missing."""
    by_lower = {c.strip().lower(): c for c in cols}
    found: dict[str, str] = {}
    for target, aliases in _PLAIN_ALIASES.items():
        for a in aliases:
            if a in by_lower:
                found[target] = by_lower[a]
                break
    if "cell_type" in found and "gene" in found:
        return found
    return None


@functools.lru_cache(maxsize=65536)
def _map_cell_type(label: str) -> tuple[str, str]:
    """(cell_ontology_id or '', display label) for a source label; ids only when confident."""
    match = _onto.label_to_cl(label)
    return (match.cl_id or "", label) if match.confident else ("", label)


@functools.lru_cache(maxsize=4096)
def _map_tissue(text: str) -> tuple[str, str]:
    t = _onto.normalize_tissue(text)
    if t is None:
        return "", ""
    return t.name, t.uberon_id or ""


def finalize_table(df: pd.DataFrame, *, map_cell_types: bool = True) -> pd.DataFrame:
    """Bring a table to the marker schema: fill ids, normalise tissue and genes, drop duplicates.

    Missing CL ids are filled from confident ontology matches of ``cell_type``; tissues
    are normalised to canonical names with UBERON ids; gene symbols are written in the
    case of their species; duplicate rows keep the highest weight.
    """
    out = df.copy()
    for col in MARKER_COLUMNS:
        if col not in out.columns:
            out[col] = "" if col != "weight" else 1.0
    out = out[list(MARKER_COLUMNS)]
    for col in MARKER_COLUMNS:
        if col != "weight":
            out[col] = out[col].fillna("").astype(str).str.strip()
    out["weight"] = pd.to_numeric(out["weight"], errors="coerce").fillna(1.0).clip(0.0, 1.0)
    out = out[(out["gene"] != "") & (out["cell_type"] != "")]
    if map_cell_types:
        missing = out["cell_ontology_id"] == ""
        if missing.any():
            labels = out.loc[missing, "cell_type"].unique()
            mapping = {lab: _map_cell_type(lab)[0] for lab in labels}
            out.loc[missing, "cell_ontology_id"] = out.loc[missing, "cell_type"].map(mapping)
    tissues = out["tissue"].unique()
    tissue_map = {t: _map_tissue(t) for t in tissues}
    has_uberon = out["uberon_id"] != ""
    out["uberon_id"] = np.where(
        has_uberon, out["uberon_id"], out["tissue"].map(lambda t: tissue_map[t][1])
    )
    out["tissue"] = out["tissue"].map(lambda t: tissue_map[t][0] or t.lower())
    out["polarity"] = (
        out["polarity"]
        .str.lower()
        .replace(
            {"": "positive", "+": "positive", "-": "negative", "pos": "positive", "neg": "negative"}
        )
    )
    bad = ~out["polarity"].isin(["positive", "negative"])
    if bad.any():
        raise KnowledgeError(
            f"polarity must be positive or negative; found {sorted(out.loc[bad, 'polarity'].unique())[:5]}"
        )
    out = out.sort_values("weight", ascending=False, kind="stable")
    out = out.drop_duplicates(
        subset=["species", "tissue", "cell_type", "gene", "polarity", "source"], keep="first"
    )
    return out.reset_index(drop=True)


def _split_species(value: str) -> list[str]:
    """PanglaoDB species field ('Mm Hs', 'Hs', 'Mm') -> list of scagent species names."""
    v = str(value).strip()
    out = []
    if "Hs" in v.split():
        out.append("human")
    if "Mm" in v.split():
        out.append("mouse")
    # A few rows carry no (or a garbled) species; PanglaoDB's default is both species.
    return out or ["human", "mouse"]


def read_panglaodb(
    path: str | os.PathLike[str], *, resolve_aliases: bool = True, min_canonical: bool = False
) -> pd.DataFrame:
    """Read the PanglaoDB marker TSV (``PanglaoDB_markers_27_Mar_2020.tsv``).

    A row marked for both species (``Mm Hs``) becomes one human and one mouse row; human
    symbols stay as given (upper case, aliases resolved), mouse symbols are converted
    through the ortholog table. Weights combine the canonical-marker flag with the
    species' sensitivity: ``0.4 + 0.3 * canonical + 0.3 * sensitivity``.

    Parameters
    ----------
    path
        The PanglaoDB TSV.
    resolve_aliases
        Map previous symbols (``TUSC5`` -> ``TRARG1``) to current ones.
    min_canonical
        Keep only canonical markers.
    """
    p = _check_path(path)
    df = _read_table(p)
    missing = [c for c in _PANGLAO_REQUIRED if c not in df.columns]
    if missing:
        raise KnowledgeError(
            f"{str(p)!r} is not a PanglaoDB table: columns found {list(df.columns)[:20]}, "
            f"missing {missing}"
        )
    if min_canonical and "canonical marker" in df.columns:
        df = df[pd.to_numeric(df["canonical marker"], errors="coerce").fillna(0) >= 1]
    canonical = pd.to_numeric(df.get("canonical marker", 0), errors="coerce").fillna(0).clip(0, 1)
    rows = []
    organ = df["organ"] if "organ" in df.columns else pd.Series("", index=df.index)
    for sp in ("human", "mouse"):
        mask = df["species"].map(lambda v, sp=sp: sp in _split_species(v))
        sub = df[mask]
        sens_col = f"sensitivity_{sp}"
        sens = (
            pd.to_numeric(sub[sens_col], errors="coerce").fillna(0).clip(0, 1)
            if sens_col in sub.columns
            else pd.Series(0.0, index=sub.index)
        )
        symbols = sub["official gene symbol"].astype(str).str.strip()
        genes = _map_genes(symbols, sp, resolve_aliases=resolve_aliases)
        rows.append(
            pd.DataFrame(
                {
                    "species": sp,
                    "tissue": organ[sub.index].astype(str),
                    "cell_type": sub["cell type"].astype(str).str.strip(),
                    "gene": genes,
                    "polarity": "positive",
                    "weight": 0.4 + 0.3 * canonical[sub.index] + 0.3 * sens,
                    "source": "panglaodb",
                    "reference": PANGLAODB_REFERENCE,
                }
            )
        )
    return finalize_table(pd.concat(rows, ignore_index=True))


@functools.lru_cache(maxsize=262144)
def _map_gene(symbol: str, species: str, resolve_aliases: bool) -> str:
    """Human symbols resolve aliases; mouse symbols go through the human ortholog table when given in upper case."""
    if species == "human":
        return (
            _genes.resolve_alias(symbol, "human")[0]
            if resolve_aliases
            else _genes.normalize_symbol(symbol, "human")
        )
    if symbol.isupper() or any(c.isdigit() for c in symbol[:1]):
        human = _genes.resolve_alias(symbol, "human")[0] if resolve_aliases else symbol.upper()
        return _genes.human_to_mouse(human)[0]
    return _genes.normalize_symbol(symbol, "mouse")


def _map_genes(symbols: pd.Series, species: str, *, resolve_aliases: bool) -> pd.Series:
    return symbols.map(lambda s: _map_gene(s, species, resolve_aliases))


def read_sctype(
    path: str | os.PathLike[str],
    *,
    sheet: str | None = None,
    species: str = "human",
    resolve_aliases: bool = True,
) -> pd.DataFrame:
    """Read the ScType database (``ScTypeDB_full.xlsx``): positive and negative markers per tissue.

    ``geneSymbolmore1`` holds the positive markers and ``geneSymbolmore2`` the negative
    ones, both comma-separated. ScType is a human table; pass ``species='mouse'`` to
    convert it through the ortholog table.

    Raises
    ------
    KnowledgeError
        When no sheet has the ScType columns (the message names the sheets found).
    """
    p = _check_path(path)
    sp = _genes.normalize_species(species)
    if _is_excel(p):
        xl = pd.ExcelFile(p)
        sheets = [sheet] if sheet else xl.sheet_names
        if sheet and sheet not in xl.sheet_names:
            raise KnowledgeError(
                f"{str(p)!r} has no sheet {sheet!r}; sheets found: {xl.sheet_names}",
                remedy="pass one of the sheet names found",
            )
        df = None
        for name in sheets:
            cand = xl.parse(name, dtype=str)
            if all(c in cand.columns for c in _SCTYPE_REQUIRED):
                df = cand
                break
        if df is None:
            raise KnowledgeError(
                f"{str(p)!r} has no ScType sheet: sheets found {xl.sheet_names}, none with "
                f"the columns {list(_SCTYPE_REQUIRED)}",
                remedy="pass the ScType database (ScTypeDB_full.xlsx) or name the sheet",
            )
    else:
        df = _read_table(p)
        missing = [c for c in _SCTYPE_REQUIRED if c not in df.columns]
        if missing:
            raise KnowledgeError(
                f"{str(p)!r} is not a ScType table: columns found {list(df.columns)}, missing {missing}"
            )
    df = df.fillna("")
    records = []
    for _, row in df.iterrows():
        for col, polarity in (("geneSymbolmore1", "positive"), ("geneSymbolmore2", "negative")):
            raw = str(row.get(col, "") or "")
            seen: set[str] = set()
            for g in raw.split(","):
                g = g.strip()
                if not g or g.upper() in {"NA", "NAN", "NONE"}:
                    continue
                gene = _map_gene(g.upper(), "human", resolve_aliases)
                if sp == "mouse":
                    gene = _genes.human_to_mouse(gene)[0]
                if gene in seen:
                    continue
                seen.add(gene)
                records.append(
                    (sp, row["tissueType"], str(row["cellName"]).strip(), gene, polarity)
                )
    out = pd.DataFrame(records, columns=["species", "tissue", "cell_type", "gene", "polarity"])
    out["weight"] = 1.0
    out["source"] = "sctype"
    out["reference"] = SCTYPE_REFERENCE
    return finalize_table(out)


def read_cellmarker(
    path: str | os.PathLike[str],
    *,
    species: str | None = None,
    include_cancer: bool = False,
    resolve_aliases: bool = True,
) -> pd.DataFrame:
    """Read a CellMarker 2.0 table (``Cell_marker_Human.xlsx``, ``Cell_marker_All.xlsx`` or a CSV export).

    Uses its documented columns: ``species``, ``tissue_class``, ``tissue_type``,
    ``uberonongology_id``, ``cancer_type``, ``cell_type`` ("Normal cell"/"Cancer cell"),
    ``cell_name``, ``cellontology_id``, ``marker``, ``Symbol`` and ``PMID``. One row per
    (species, tissue, cell, gene) remains; its weight grows with the number of papers
    naming it (``1 - 0.5 ** n_papers``) and its reference lists them.

    Parameters
    ----------
    species
        Keep one species only (``human``/``mouse``); by default both.
    include_cancer
        Keep markers of cancer cells (dropped by default).
    """
    p = _check_path(path)
    if _is_excel(p):
        xl = pd.ExcelFile(p)
        df = None
        for name in xl.sheet_names:
            cand = xl.parse(name, dtype=str)
            if all(c in cand.columns for c in _CELLMARKER_REQUIRED):
                df = cand
                break
        if df is None:
            raise KnowledgeError(
                f"{str(p)!r} has no CellMarker sheet: sheets found {xl.sheet_names}, none "
                f"with the columns {list(_CELLMARKER_REQUIRED)} and 'marker' or 'Symbol'",
                remedy="pass a CellMarker 2.0 download (Cell_marker_Human.xlsx)",
            )
    else:
        df = _read_table(p)
    df = df.fillna("")
    gene_col = "Symbol" if "Symbol" in df.columns else "marker" if "marker" in df.columns else None
    missing = [c for c in _CELLMARKER_REQUIRED if c not in df.columns]
    if missing or gene_col is None:
        raise KnowledgeError(
            f"{str(p)!r} is not a CellMarker table: columns found {list(df.columns)[:20]}, "
            f"expected {list(_CELLMARKER_REQUIRED)} and 'marker' or 'Symbol'"
        )
    if not include_cancer and "cell_type" in df.columns:
        df = df[~df["cell_type"].str.lower().str.contains("cancer")]
    df = df.assign(_species=df["species"].map(_cellmarker_species))
    if species is not None:
        df = df[df["_species"] == _genes.normalize_species(species)]
    df = df[df["_species"] != ""]
    genes_raw = df[gene_col].where(df[gene_col].str.strip() != "", df.get("marker", ""))
    tissue = df["tissue_type"] if "tissue_type" in df.columns else df.get("tissue_class", "")
    out = pd.DataFrame(
        {
            "species": df["_species"],
            "tissue": tissue,
            "uberon_id": df.get("uberonongology_id", "").map(_clean_ontology_id)
            if "uberonongology_id" in df.columns
            else "",
            "cell_type": df["cell_name"].str.strip(),
            "cell_ontology_id": df["cellontology_id"].map(_clean_ontology_id)
            if "cellontology_id" in df.columns
            else "",
            "gene_raw": genes_raw.astype(str),
            "pmid": df["PMID"].astype(str) if "PMID" in df.columns else "",
        }
    )
    out["gene"] = [
        _map_gene(g.strip(), sp, resolve_aliases) if g.strip() else ""
        for g, sp in zip(out["gene_raw"], out["species"], strict=True)
    ]
    out = out[out["gene"] != ""]
    keys = ["species", "tissue", "uberon_id", "cell_type", "cell_ontology_id", "gene"]
    grouped = (
        out.groupby(keys, sort=False, observed=True)["pmid"]
        .agg(lambda s: sorted({x for x in s if x and x.lower() not in {"nan", "na"}}))
        .reset_index()
    )
    grouped["weight"] = grouped["pmid"].map(lambda refs: 1 - 0.5 ** max(1, len(refs)))
    grouped["reference"] = grouped["pmid"].map(
        lambda refs: ";".join(f"PMID:{r}" for r in refs[:5]) or CELLMARKER_REFERENCE
    )
    grouped["polarity"] = "positive"
    grouped["source"] = "cellmarker"
    return finalize_table(grouped.drop(columns="pmid"))


def _cellmarker_species(value: str) -> str:
    v = str(value).strip().lower()
    if v in {"human", "homo sapiens", "hs"}:
        return "human"
    if v in {"mouse", "mus musculus", "mm"}:
        return "mouse"
    return ""


def _clean_ontology_id(value: str) -> str:
    v = str(value).strip().replace("_", ":")
    return v if v[:3] in {"CL:", "UBE"} else ""


def read_gmt_markers(
    path: str | os.PathLike[str], *, species: str | None = None, source: str | None = None
) -> pd.DataFrame:
    """Read a GMT file of cell-type signatures as marker rows (set name = cell type).

    The species is guessed from symbol case when not given.
    """
    from scagent.knowledge.genesets import read_gmt

    sets = read_gmt(path)
    all_genes = [g for gs in sets.values() for g in gs]
    sp = _resolve_species(species, all_genes, path)
    rows = [(sp, name, _genes.normalize_symbol(g, sp)) for name, gs in sets.items() for g in gs]
    out = pd.DataFrame(rows, columns=["species", "cell_type", "gene"])
    out["source"] = source or f"gmt:{Path(path).stem}"
    out["reference"] = ""
    return finalize_table(out)


def _resolve_species(species: str | None, genes: list[str], path) -> str:
    if species is not None:
        return _genes.normalize_species(species)
    guess = _genes.guess_species_from_symbols(genes)
    if guess == "mixed":
        raise KnowledgeError(
            f"{str(path)!r} mixes human (UPPER) and mouse (Title) gene symbols and has no "
            "species column",
            remedy="add a species column, or split the file and pass species= for each",
        )
    if guess == "unknown":
        raise KnowledgeError(
            f"cannot tell the species of {str(path)!r} from its gene symbols",
            remedy="pass species='human' or species='mouse'",
        )
    return guess


def read_plain(
    path: str | os.PathLike[str],
    *,
    species: str | None = None,
    source: str | None = None,
    resolve_aliases: bool = False,
) -> pd.DataFrame:
    """Read a plain marker table: ``cell_type``, ``gene`` and optionally ``weight``, ``tissue``, ``species``...

    The full schema (:data:`MARKER_COLUMNS`, e.g. the bundled curated table) is a plain
    table too. Without a species column the species comes from ``species=`` or from the
    symbols' case; a file mixing human and mouse symbols then fails.

    Raises
    ------
    KnowledgeError
        For unknown columns (naming those found and those expected), an empty file, or
        mixed species without a species column.
    """
    p = _check_path(path)
    if _is_excel(p):
        df = pd.read_excel(p, dtype=str).fillna("")
        if df.empty:
            raise KnowledgeError(f"marker file {str(p)!r} has no rows")
    else:
        df = _read_table(p)
    cols = _plain_columns(df.columns)
    if cols is None:
        raise KnowledgeError(
            f"{str(p)!r} has unknown columns: found {list(df.columns)}; expected 'cell_type' "
            "and 'gene' (optional: weight, tissue, species, polarity, cell_ontology_id, "
            "uberon_id, source, reference)",
            remedy="rename the columns to cell_type and gene",
        )
    out = pd.DataFrame({target: df[col] for target, col in cols.items()})
    if "species" in out.columns and (out["species"].astype(str).str.strip() != "").all():
        out["species"] = out["species"].map(_genes.normalize_species)
    else:
        out["species"] = _resolve_species(species, out["gene"].astype(str).tolist(), p)
    out["gene"] = [
        _map_gene(str(g).strip(), sp, resolve_aliases)
        if resolve_aliases
        else _genes.normalize_symbol(str(g), sp)
        for g, sp in zip(out["gene"], out["species"], strict=True)
    ]
    if "source" not in out.columns or (out["source"].astype(str).str.strip() == "").all():
        out["source"] = source or p.stem
    if "weight" in out.columns:
        text = out["weight"].astype(str).str.strip()
        w = pd.to_numeric(text.where(text != "", None), errors="coerce")
        bad = w.isna() & (text != "")
        if bad.any():
            raise KnowledgeError(
                f"{str(p)!r}: column weight has non-numeric values "
                f"(rows {[int(i) + 2 for i in np.flatnonzero(bad.to_numpy())[:5]]})"
            )
        out["weight"] = w
    return finalize_table(out)


def read_markers(
    path: str | os.PathLike[str],
    *,
    format: MarkerFormat | None = None,
    species: str | None = None,
    source: str | None = None,
) -> pd.DataFrame:
    """Read any supported marker file into the marker schema, sniffing the format when not given."""
    fmt = format or sniff_format(path)
    if fmt == "panglaodb":
        return read_panglaodb(path)
    if fmt == "sctype":
        return read_sctype(path, species=species or "human")
    if fmt == "cellmarker":
        return read_cellmarker(path, species=species)
    if fmt == "gmt":
        return read_gmt_markers(path, species=species, source=source)
    if fmt == "plain":
        return read_plain(path, species=species, source=source)
    raise KnowledgeError(
        f"unknown marker format {fmt!r}; expected panglaodb, cellmarker, sctype, gmt or plain"
    )
