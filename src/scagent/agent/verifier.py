"""After each step: the tool's own output checks plus sanity rules a careful analyst applies, as warnings with a suggestion.

The rules look at the committed result, not at how it was asked for:

* more than 40% of the cells removed by a step;
* a clustering with a single cluster;
* a clustering that tracks a batch column (adjusted Rand index > 0.5): the clusters
  may be batches, not cell types.

Each finding says what was seen and what to do next; nothing is changed or undone.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from anndata import AnnData

    from scagent.data.state import DataState
    from scagent.session.session import RunRecord

__all__ = [
    "BATCH_ARI_LIMIT",
    "FILTERED_FRACTION_LIMIT",
    "Finding",
    "verify_step",
]

#: Share of cells a step may remove before the verifier warns.
FILTERED_FRACTION_LIMIT = 0.40
#: Agreement (ARI) between a clustering and a batch column above which clusters track batch.
BATCH_ARI_LIMIT = 0.5


@dataclass(frozen=True)
class Finding:
    """One thing the verifier noticed: a level, what was seen, and a suggestion."""

    level: str  # "warning" | "note"
    rule: str
    message: str
    suggestion: str = ""

    def text(self) -> str:
        return self.message + (f" — {self.suggestion}" if self.suggestion else "")


def _clustering_columns(record: RunRecord, adata: AnnData, state: DataState) -> list[str]:
    """obs columns written by the run that hold a clustering."""
    known = {c.name for c in state.breadcrumbs.clusterings}
    written = {p.split("/", 1)[1] for p in record.result.written if p.startswith("obs/")}
    clustering_tools = {"leiden", "louvain", "consensus_clustering"}
    out = []
    for name in sorted(written):
        if name not in adata.obs:
            continue
        if name in known or any(s.tool_id in clustering_tools for s in record.steps):
            col = adata.obs[name]
            if str(col.dtype) == "category" or col.dtype == object:
                out.append(name)
    return out


def verify_step(
    record: RunRecord, adata: AnnData, state: DataState, *, n_obs_before: int | None = None
) -> list[Finding]:
    """Check a committed run; returns the findings (empty when all looks sane).

    Parameters
    ----------
    record
        What :meth:`Session.run` returned.
    adata
        The data after the run (the branch head).
    state
        The inspector's view of ``adata``.
    n_obs_before
        Cells before the run, to judge filtering.
    """
    findings: list[Finding] = []
    for warning in record.result.warnings:
        findings.append(Finding("warning", "output_check", warning))

    if n_obs_before:
        removed = n_obs_before - adata.n_obs
        fraction = removed / n_obs_before
        if fraction > FILTERED_FRACTION_LIMIT:
            findings.append(
                Finding(
                    "warning",
                    "filtered_fraction",
                    f"{record.step.tool_id} removed {removed:,} of {n_obs_before:,} cells "
                    f"({fraction:.0%}, more than {FILTERED_FRACTION_LIMIT:.0%})",
                    "check the thresholds (e.g. `/run filter_cells dry_run=true` with looser "
                    "values) and `/undo` if too much was lost",
                )
            )

    for column in _clustering_columns(record, adata, state):
        labels = adata.obs[column].astype(str).to_numpy()
        n_clusters = len(np.unique(labels))
        if n_clusters <= 1:
            findings.append(
                Finding(
                    "warning",
                    "single_cluster",
                    f"obs[{column!r}] has a single cluster",
                    "raise the resolution (e.g. 'cluster at resolution 1.0') or check the "
                    "neighbors graph",
                )
            )
            continue
        for batch in state.batch_columns:
            if batch.n_levels < 2 or batch.name == column or batch.name not in adata.obs:
                continue
            from sklearn.metrics import adjusted_rand_score

            ari = float(adjusted_rand_score(adata.obs[batch.name].astype(str).to_numpy(), labels))
            if ari > BATCH_ARI_LIMIT:
                findings.append(
                    Finding(
                        "warning",
                        "tracks_batch",
                        f"obs[{column!r}] tracks the batch column obs[{batch.name!r}] "
                        f"(ARI {ari:.2f} > {BATCH_ARI_LIMIT})",
                        f"the clusters may be batches, not cell types: integrate with "
                        f"harmony (`/run harmony batch_key={batch.name}`), then cluster again",
                    )
                )
    return findings
