"""The one over-representation test: every query x set pair against Fisher's exact test."""

from __future__ import annotations

import numpy as np
from scipy import stats

from scagent.knowledge.genesets import overrepresentation


def test_matches_fisher_exact_for_every_pair() -> None:
    rng = np.random.default_rng(0)
    universe = [f"G{i}" for i in range(300)]
    sets = {f"S{j}": list(rng.choice(universe, size=20 + 5 * j, replace=False)) for j in range(4)}
    sets["outside"] = ["NOT_MEASURED_1", "NOT_MEASURED_2"]  # nothing in the universe
    planted = sets["S1"][:12] + list(rng.choice(universe, size=8, replace=False))
    queries = {"planted": planted, "random": list(rng.choice(universe, size=25, replace=False)),
               "empty": []}  # fmt: skip
    res = overrepresentation(queries, sets, universe).set_index(["query", "gene_set"])
    assert len(res) == 3 * 5
    for q, genes in queries.items():
        for s, members in sets.items():
            row = res.loc[(q, s)]
            a = len(set(genes) & set(members) & set(universe))
            table = [[a, len(set(genes)) - a], [len(set(members) & set(universe)) - a, 0]]
            table[1][1] = len(universe) - a - table[0][1] - table[1][0]
            assert row["overlap"] == a
            if len(genes) and table[0][0] + table[1][0]:
                assert np.isclose(row["pvalue"], stats.fisher_exact(table, "greater").pvalue)
            else:
                assert row["pvalue"] == 1.0
            if a:
                assert set(row["genes"].split(",")) == set(genes) & set(members)
    # the planted overlap is the one that stands out
    assert res.loc[("planted", "S1"), "pvalue"] < 1e-8
    assert res.loc[("planted", "S1"), "log2_enrichment"] > 2
    assert res.loc[("random", "S1"), "pvalue"] > 1e-3


def test_only_overlapping_pairs_are_tested_and_results_are_unchanged(monkeypatch) -> None:
    """Most pairs of a large screen share nothing: p = 1 and '' there, no test per pair."""
    rng = np.random.default_rng(1)
    universe = [f"G{i}" for i in range(2000)]
    sets = {f"S{j}": list(rng.choice(universe, size=15, replace=False)) for j in range(60)}
    queries = {i: list(rng.choice(universe, size=10, replace=False)) for i in range(40)}
    seen = []
    sf = stats.hypergeom.sf

    def counting_sf(k, *args):
        seen.append(np.size(k))
        return sf(k, *args)

    monkeypatch.setattr(stats.hypergeom, "sf", counting_sf)
    res = overrepresentation(queries, sets, universe)
    hit = res["overlap"] > 0
    assert 0 < hit.sum() < 0.5 * len(res)
    assert sum(seen) <= hit.sum()  # never evaluated where nothing overlaps
    assert (res.loc[~hit, "pvalue"] == 1.0).all() and (res.loc[~hit, "genes"] == "").all()
    # Every p-value and gene list still matches the pair's own test.
    for row in res[hit].itertuples():
        q, s = queries[row.query], sets[row.gene_set]
        shared = [g for g in q if g in set(s)]
        assert row.genes == ",".join(shared)
        table = [[len(shared), len(q) - len(shared)], [len(s) - len(shared), 0]]
        table[1][1] = len(universe) - len(q) - len(s) + len(shared)
        assert np.isclose(row.pvalue, stats.fisher_exact(table, "greater").pvalue)
