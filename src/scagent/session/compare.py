"""Branch comparison: where two branches diverge, how their steps' parameters differ, and how their clusterings agree.

Clusterings present in both heads (same obs column) are compared on their shared
cells with the adjusted Rand index (scikit-learn) and a label cross-table (pandas).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pandas as pd

if TYPE_CHECKING:
    from scagent.session.session import Session

__all__ = ["BranchComparison", "ClusteringAgreement", "StepDifference", "compare_branches"]

_MISSING = "(absent)"


@dataclass
class StepDifference:
    """Two steps at the same position after the divergence, and how they differ."""

    step: int
    tool_a: str | None
    tool_b: str | None
    #: parameter -> (value on A, value on B), only where they differ.
    params: dict[str, tuple[Any, Any]] = field(default_factory=dict)

    @property
    def same_tool(self) -> bool:
        return self.tool_a == self.tool_b


@dataclass
class ClusteringAgreement:
    """One obs clustering column present in both heads."""

    key_a: str
    key_b: str
    n_cells: int
    n_clusters_a: int
    n_clusters_b: int
    ari: float
    crosstab: pd.DataFrame

    def to_dict(self) -> dict[str, Any]:
        return {
            "key_a": self.key_a,
            "key_b": self.key_b,
            "n_cells": self.n_cells,
            "n_clusters_a": self.n_clusters_a,
            "n_clusters_b": self.n_clusters_b,
            "ari": self.ari,
            "crosstab": {
                str(r): {str(c): int(v) for c, v in row.items()}
                for r, row in self.crosstab.iterrows()
            },
        }


@dataclass
class BranchComparison:
    """The answer of :func:`compare_branches`."""

    a: str
    b: str
    head_a: str
    head_b: str
    #: The last snapshot both branches share, and its step number (None: different imports).
    common_ancestor: str | None
    common_step: int | None
    steps_a: list[str]
    steps_b: list[str]
    differences: list[StepDifference]
    clusterings: list[ClusteringAgreement]

    def describe(self, *, crosstabs: bool = False) -> list[str]:
        """The comparison in lines of text, for the CLI and the agent alike.

        Parameters
        ----------
        crosstabs
            Also give each shared clustering's label cross-table.
        """
        a, b = self.a, self.b
        if self.common_ancestor is None:
            lines = [f"{a} and {b} share no snapshot (different imports)"]
        else:
            lines = [
                f"{a} and {b} diverge after step {self.common_step} ({self.common_ancestor[:12]})"
            ]
        lines.append(f"{a}: {' -> '.join(self.steps_a) or '(no further steps)'}")
        lines.append(f"{b}: {' -> '.join(self.steps_b) or '(no further steps)'}")
        for diff in self.differences:
            if not diff.same_tool:
                lines.append(
                    f"step {diff.step}: {a} ran {diff.tool_a or '-'}, {b} ran {diff.tool_b or '-'}"
                )
            for key, (va, vb) in diff.params.items():
                lines.append(
                    f"step {diff.step} {diff.tool_a}: {key} = {va!r} ({a}) vs {vb!r} ({b})"
                )
        for agreement in self.clusterings:
            lines.append(
                f"obs['{agreement.key_a}']: ARI {agreement.ari:.3f} over {agreement.n_cells} cells "
                f"({agreement.n_clusters_a} vs {agreement.n_clusters_b} clusters)"
            )
            if crosstabs:
                lines.append(agreement.crosstab.to_string())
        return lines

    def to_dict(self) -> dict[str, Any]:
        return {
            "a": self.a,
            "b": self.b,
            "head_a": self.head_a,
            "head_b": self.head_b,
            "common_ancestor": self.common_ancestor,
            "common_step": self.common_step,
            "steps_a": self.steps_a,
            "steps_b": self.steps_b,
            "differences": [
                {
                    "step": d.step,
                    "tool_a": d.tool_a,
                    "tool_b": d.tool_b,
                    "params": {k: list(v) for k, v in d.params.items()},
                }
                for d in self.differences
            ],
            "clusterings": [c.to_dict() for c in self.clusterings],
        }


def _param_diff(a: dict[str, Any], b: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    return {
        k: (a.get(k, _MISSING), b.get(k, _MISSING))
        for k in sorted(set(a) | set(b))
        if a.get(k, _MISSING) != b.get(k, _MISSING)
    }


def _clustering_keys(adata: Any) -> list[str]:
    from scagent.data import inspect_adata

    return [c.name for c in inspect_adata(adata).breadcrumbs.clusterings]


def compare_branches(session: Session, a: str, b: str) -> BranchComparison:
    """Compare branches ``a`` and ``b`` of a project.

    Returns
    -------
    BranchComparison
        The common ancestor (last shared snapshot and its step number); the steps each
        branch has after it; per step position after the divergence, the tools and the
        parameters that differ; for each clustering column in both heads, the ARI and the
        cross-table of labels over the cells both heads keep.
    """
    from sklearn.metrics import adjusted_rand_score

    head_a, head_b = session.head(a), session.head(b)
    chain_a, chain_b = session.store.history(head_a), session.store.history(head_b)
    shared = 0
    for ma, mb in zip(chain_a, chain_b, strict=False):
        if ma.id != mb.id:
            break
        shared += 1
    ancestor = chain_a[shared - 1].id if shared else None

    def tool_of(m: Any) -> str:
        return (m.meta or {}).get("tool_id", "?")

    rest_a, rest_b = chain_a[shared:], chain_b[shared:]
    differences = []
    for offset in range(max(len(rest_a), len(rest_b))):
        ma = rest_a[offset] if offset < len(rest_a) else None
        mb = rest_b[offset] if offset < len(rest_b) else None
        pa = dict((ma.meta or {}).get("params") or {}) if ma else {}
        pb = dict((mb.meta or {}).get("params") or {}) if mb else {}
        differences.append(
            StepDifference(
                step=shared + offset,
                tool_a=tool_of(ma) if ma else None,
                tool_b=tool_of(mb) if mb else None,
                params=_param_diff(pa, pb) if ma and mb and tool_of(ma) == tool_of(mb) else {},
            )
        )

    clusterings = []
    if head_a != head_b:
        data_a = session.store.read_snapshot(head_a)
        data_b = session.store.read_snapshot(head_b)
        keys_b = set(_clustering_keys(data_b))
        cells = data_a.obs_names.intersection(data_b.obs_names)
        for key in _clustering_keys(data_a):
            if key not in keys_b or len(cells) == 0:
                continue
            labels_a = data_a.obs.loc[cells, key].astype(str)
            labels_b = data_b.obs.loc[cells, key].astype(str)
            clusterings.append(
                ClusteringAgreement(
                    key_a=key,
                    key_b=key,
                    n_cells=len(cells),
                    n_clusters_a=labels_a.nunique(),
                    n_clusters_b=labels_b.nunique(),
                    ari=float(adjusted_rand_score(labels_a, labels_b)),
                    crosstab=pd.crosstab(
                        labels_a.rename(f"{a}:{key}"), labels_b.rename(f"{b}:{key}")
                    ),
                )
            )
    return BranchComparison(
        a=a,
        b=b,
        head_a=head_a,
        head_b=head_b,
        common_ancestor=ancestor,
        common_step=shared - 1 if shared else None,
        steps_a=[tool_of(m) for m in rest_a],
        steps_b=[tool_of(m) for m in rest_b],
        differences=differences,
        clusterings=clusterings,
    )
