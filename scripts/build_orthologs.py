"""Derive the compact human<->mouse symbol table shipped as package data.

Source: the Ensembl 105 human->mouse ortholog table that celltypist ships in
``celltypist/data/samples/Ensembl105_Human2Mouse_Genes.csv`` (two columns, human
symbol and mouse symbol, no header; an empty mouse column means no ortholog) and the
GENCODE v44 id -> name table beside it (``GENCODEv44_Gene_id2name.csv``).
Both come from Ensembl / GENCODE (open data) through the celltypist package
(MIT licence, https://github.com/Teichlab/celltypist).

Writes ``src/scagent/knowledge/data/orthologs_human_mouse.tsv.gz`` (human, mouse:
only the pairs the case rule gets wrong, plus every one-to-many pair) and
``src/scagent/knowledge/data/human_symbols.txt.gz`` (the GENCODE v44 gene names, used
to check that a symbol is official).

Usage::

    python scripts/build_orthologs.py [FOLDER]

FOLDER holds the celltypist sample files; without it the script looks in an installed
celltypist (import it with CELLTYPIST_FOLDER set to a temporary folder so that it does
not create ~/.celltypist).
"""

from __future__ import annotations

import csv
import gzip
import io
import os
import sys
import tempfile
from pathlib import Path

OUT = Path(__file__).resolve().parents[1] / "src" / "scagent" / "knowledge" / "data"


def _samples_folder(argv: list[str]) -> Path:
    if argv:
        return Path(argv[0])
    os.environ.setdefault("CELLTYPIST_FOLDER", tempfile.mkdtemp(prefix="celltypist_"))
    import celltypist

    return Path(celltypist.__file__).parent / "data" / "samples"


def _title(symbol: str) -> str:
    return symbol[:1].upper() + symbol[1:].lower()


def main(argv: list[str]) -> None:
    folder = _samples_folder(argv)
    pairs: list[tuple[str, str]] = []
    with open(folder / "Ensembl105_Human2Mouse_Genes.csv", newline="") as fh:
        for row in csv.reader(fh):
            if len(row) >= 2 and row[0] and row[1]:
                pairs.append((row[0].strip(), row[1].strip()))
    pairs = sorted(set(pairs))
    n_human: dict[str, int] = {}
    n_mouse: dict[str, int] = {}
    for h, m in pairs:
        n_human[h] = n_human.get(h, 0) + 1
        n_mouse[m] = n_mouse.get(m, 0) + 1
    # Keep a pair only where the plain case rule (HUMAN <-> Mouse) would not recover it,
    # or where a gene has several partners; everything else is implied by the rule.
    kept = [
        (h, m)
        for h, m in pairs
        if h.upper() != m.upper() or n_human[h] > 1 or n_mouse[m] > 1 or _title(h) != m
    ]
    buf = io.StringIO()
    buf.write(
        "# Ensembl 105 human->mouse orthologs via celltypist; only pairs the case rule misses\n"
    )
    buf.write("human\tmouse\n")
    for h, m in kept:
        buf.write(f"{h}\t{m}\n")
    (OUT / "orthologs_human_mouse.tsv.gz").write_bytes(
        gzip.compress(buf.getvalue().encode(), compresslevel=9, mtime=0)
    )
    # Every mouse symbol that has a human ortholog (official MGI symbols), for symbol checks.
    mouse = sorted({m for _, m in pairs})
    (OUT / "mouse_symbols.txt.gz").write_bytes(
        gzip.compress(("\n".join(mouse) + "\n").encode(), compresslevel=9, mtime=0)
    )
    names: set[str] = set()
    with open(folder / "GENCODEv44_Gene_id2name.csv", newline="") as fh:
        for row in csv.reader(fh):
            if len(row) >= 2 and row[1]:
                names.add(row[1].strip())
    names.update(h for h, _ in pairs)
    (OUT / "human_symbols.txt.gz").write_bytes(
        gzip.compress(("\n".join(sorted(names)) + "\n").encode(), compresslevel=9, mtime=0)
    )
    print(
        f"{len(pairs)} ortholog pairs, {len(kept)} kept; {len(names)} human symbols; {len(mouse)} mouse symbols"
    )


if __name__ == "__main__":
    main(sys.argv[1:])
