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
