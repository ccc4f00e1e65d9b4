"""GMT gene sets: reading, long format, conversion, malformed lines."""

from __future__ import annotations

import pytest

from scagent.errors import KnowledgeError
from scagent.knowledge import genesets


def test_read_hallmark(shared_data):
    sets = genesets.read_gmt(shared_data / "h.all.v7.0.symbols.gmt")
    assert len(sets) == 50
    assert all(name.startswith("HALLMARK_") for name in sets)
    with open(shared_data / "h.all.v7.0.symbols.gmt") as fh:
        first = fh.readline().rstrip("\n").split("\t")
    assert sets[first[0]] == list(dict.fromkeys(g for g in first[2:] if g))


def test_long_roundtrip_and_filter(tmp_path):
    sets = {"A": ["X1", "X2", "X3"], "B": ["X2", "X4"]}
    long = genesets.to_long(sets)
    assert list(long.columns) == ["source", "target", "weight"]
    assert len(long) == 5
    assert genesets.from_long(long) == sets
    assert genesets.filter_sets(sets, min_size=3) == {"A": ["X1", "X2", "X3"]}
    assert genesets.filter_sets(sets, universe=["X2", "X4"], min_size=2) == {"B": ["X2", "X4"]}
    path = tmp_path / "out.gmt"
    genesets.write_gmt(sets, path)
    assert genesets.read_gmt(path) == sets


def test_convert_sets():
    assert genesets.convert_sets({"S": ["CD3E", "FCGR3A"]}, "human", "mouse") == {
        "S": ["Cd3e", "Fcgr4"]
    }


def test_malformed_line_reports_line_number(tmp_path):
    p = tmp_path / "bad.gmt"
    p.write_text("SET1\tdesc\tA\tB\nSET2 no tabs here\nSET3\tdesc\tC\n")
    with pytest.raises(KnowledgeError, match="line 2"):
        genesets.read_gmt(p)


def test_duplicate_and_empty(tmp_path):
    p = tmp_path / "dup.gmt"
    p.write_text("S\td\tA\nS\td\tB\n")
    with pytest.raises(KnowledgeError, match="twice"):
        genesets.read_gmt(p)
    e = tmp_path / "empty.gmt"
    e.write_text("\n")
    with pytest.raises(KnowledgeError, match="empty"):
        genesets.read_gmt(e)
