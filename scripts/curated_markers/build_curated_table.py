"""Expand the curated marker catalog into src/scagent/knowledge/data/markers_curated.tsv.

Run from the repository root:

    .venv/bin/python scripts/curated_markers/build_curated_table.py [--check]

With ``--check`` it only parses the catalog and prints, for every cell type, its
Cell Ontology label next to the curated name, so a curator can review the ids; it
writes nothing. The TSV is the package data; this script and catalog.py are how
it was made and how to change it.
"""

from __future__ import annotations

import argparse
import csv
import io
import sys
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from catalog import HUMAN, MOUSE, REFERENCES, TISSUES

from scagent.knowledge.loaders import MARKER_COLUMNS

REPO = Path(__file__).resolve().parents[2]
OUT = REPO / "src" / "scagent" / "knowledge" / "data" / "markers_curated.tsv"
COLUMNS = list(MARKER_COLUMNS)
WEIGHT_DEFINING = 1.0
WEIGHT_SUPPORTING = 0.7
WEIGHT_NEGATIVE = 0.8


@dataclass(frozen=True)
class Entry:
    """One curated cell type: its markers and the reference that reports them."""

    name: str
    cl_id: str
    defining: tuple[str, ...]
    supporting: tuple[str, ...]
    negative: tuple[str, ...]
    reference: str


def _parse_entry(line: str, default_ref: str, where: str) -> Entry:
    parts = [p.strip() for p in line.split("|")]
    if len(parts) < 4 or len(parts) > 5:
        raise ValueError(f"{where}: expected 4 or 5 '|' fields, got {len(parts)}: {line!r}")
    name, cl_id, positives, negatives = parts[:4]
    ref_key = parts[4] if len(parts) == 5 and parts[4] else default_ref
    if ref_key not in REFERENCES:
        raise ValueError(f"{where}: unknown reference key {ref_key!r}")
    defining, _, supporting = positives.partition(";")
    return Entry(
        name=name,
        cl_id=cl_id,
        defining=tuple(defining.split()),
        supporting=tuple(supporting.split()),
        negative=tuple(negatives.split()),
        reference=REFERENCES[ref_key],
    )


def parse_catalog(text: str, species: str) -> dict[str, list[Entry]]:
    """Parse one species' catalog text into tissue -> entries (templates expanded)."""
    templates: dict[str, list[Entry]] = {}
    tissues: dict[str, list[Entry]] = {}
    current: list[Entry] | None = None
    default_ref = ""
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        where = f"{species} catalog line {number}"
        if not line:
            continue
        if line.startswith("=="):
            words = line[2:].split()
            ref = [w for w in words if w.startswith("ref=")]
            default_ref = ref[0][4:] if ref else ""
            words = [w for w in words if not w.startswith("ref=")]
            if words[0] == "template":
                current = templates.setdefault(words[1], [])
            else:
                if words[0] != species:
                    raise ValueError(
                        f"{where}: block species {words[0]!r} in the {species} catalog"
                    )
                tissue = " ".join(words[1:])
                if tissue not in TISSUES:
                    raise ValueError(f"{where}: tissue {tissue!r} is not in TISSUES")
                current = tissues.setdefault(tissue, [])
        elif line.startswith("<<"):
            if current is None:
                raise ValueError(f"{where}: include outside a block")
            current.extend(templates[line[2:].strip()])
        else:
            if current is None:
                raise ValueError(f"{where}: entry outside a block")
            current.append(_parse_entry(line, default_ref, where))
    return tissues


def expand(species: str, tissues: dict[str, list[Entry]]) -> list[dict[str, str]]:
    """One row per (species, tissue, cell type, gene, polarity); duplicates are errors."""
    rows: list[dict[str, str]] = []
    seen: set[tuple[str, ...]] = set()
    for tissue, entries in tissues.items():
        for entry in entries:
            genes = [
                *((g, "positive", WEIGHT_DEFINING) for g in entry.defining),
                *((g, "positive", WEIGHT_SUPPORTING) for g in entry.supporting),
                *((g, "negative", WEIGHT_NEGATIVE) for g in entry.negative),
            ]
            for gene, polarity, weight in genes:
                key = (species, tissue, entry.name, gene, polarity)
                if key in seen:
                    raise ValueError(f"duplicate row {key}")
                seen.add(key)
                rows.append(
                    {
                        "species": species,
                        "tissue": tissue,
                        "uberon_id": TISSUES[tissue],
                        "cell_type": entry.name,
                        "cell_ontology_id": entry.cl_id,
                        "gene": gene,
                        "polarity": polarity,
                        "weight": f"{weight:g}",
                        "source": "scagent_curated",
                        "reference": entry.reference,
                    }
                )
    return rows


def build_rows() -> list[dict[str, str]]:
    """All rows of the curated table, human first, in catalog order."""
    return [
        *expand("human", parse_catalog(HUMAN, "human")),
        *expand("mouse", parse_catalog(MOUSE, "mouse")),
    ]


def to_tsv(rows: list[dict[str, str]]) -> str:
    """Serialise rows as the tab-separated table (header first, Unix newlines)."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=COLUMNS, delimiter="\t", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def review(rows: list[dict[str, str]]) -> None:
    """Print each cell type with its Cell Ontology label, flagging unknown or obsolete ids."""
    from cellxgene_ontology_guide.ontology_parser import OntologyParser

    parser = OntologyParser()
    pairs = sorted({(r["cell_ontology_id"], r["cell_type"]) for r in rows})
    for cl_id, name in pairs:
        try:
            label = parser.get_term_label(cl_id)
            flag = "OBSOLETE " if parser.is_term_deprecated(cl_id) else ""
        except ValueError:
            label, flag = "?", "INVALID "
        print(f"{flag}{cl_id}\t{name}\t<- {label}")


def main() -> None:
    """Build the table (or, with --check, review the ontology ids)."""
    cli = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    cli.add_argument("--check", action="store_true", help="print CL labels; write nothing")
    args = cli.parse_args()
    rows = build_rows()
    if args.check:
        review(rows)
        return
    from scagent._atomic import atomic_write_text

    OUT.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(OUT, to_tsv(rows))
    cell_types = {(r["cell_ontology_id"], r["cell_type"]) for r in rows}
    print(f"wrote {len(rows)} rows, {len(cell_types)} cell types to {OUT.relative_to(REPO)}")


if __name__ == "__main__":
    main()
