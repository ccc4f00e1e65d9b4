"""The typed answer of an annotation run: one record per cluster plus dataset statistics, as pydantic models.

The JSON schema of :class:`DatasetReport` is what ``scagent annotate --schema`` prints; the
report travels in ``adata.uns`` as JSON and on disk as ``--json-report``.
"""

from __future__ import annotations

import json
from typing import Any, Literal

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "REPORT_SCHEMA_VERSION",
    "Candidate",
    "ClusterAnnotation",
    "DatasetReport",
    "DatasetStats",
    "GuardrailCheck",
    "GuardrailConfig",
    "Source",
    "Status",
]

#: Bump when a field changes meaning; readers can refuse reports they do not understand.
REPORT_SCHEMA_VERSION = 1

Status = Literal["supported", "flagged", "unknown"]
Source = Literal["offline", "llm", "cache", "existing"]
#: Label of a cluster with no trustworthy answer.
UNKNOWN = "Unknown"


class GuardrailConfig(BaseModel):
    """Thresholds of the guardrails; recorded in every report and part of the LLM cache key."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    top_n: int = Field(
        20,
        ge=1,
        le=500,
        description="How many of the cluster's top markers the cross-check looks at.",
    )
    min_supported: int = Field(
        2, ge=1, description="Canonical markers among the top-N needed for 'supported'."
    )
    min_high_confidence: int = Field(
        3, ge=1, description="Canonical markers among the top-N for high-confidence support."
    )
    max_negative: int = Field(
        0,
        ge=0,
        description="Negative markers of the label tolerated among the top-N before flagging.",
    )
    require_ontology: bool = Field(True, description="Flag labels that map to no CL id.")
    flag_uncited_genes: bool = Field(
        True, description="Flag cited genes that are in the data but not among the top-N markers."
    )
    force_unknown_on_fail: bool = Field(
        False, description="Replace a flagged label by 'Unknown' (status 'unknown')."
    )


class Candidate(BaseModel):
    """A cell type the marker database ranked for a cluster."""

    label: str
    ontology_id: str | None = None
    score: float = Field(description="Evidence after ontology aggregation (higher is better).")
    hit_genes: list[str] = Field(default_factory=list)


class GuardrailCheck(BaseModel):
    """What the guardrails found for one label."""

    maps_to_ontology: bool = False
    canonical_markers_found: list[str] = Field(
        default_factory=list,
        description="The label's canonical positive markers among the cluster's top-N markers.",
    )
    n_canonical_markers: int = Field(0, description="The label's positive markers in the DB.")
    negative_markers_found: list[str] = Field(
        default_factory=list,
        description="The label's negative markers among the cluster's top-N markers.",
    )
    hallucinated_genes: list[str] = Field(
        default_factory=list, description="Cited genes that are not in the data at all."
    )
    uncited_genes: list[str] = Field(
        default_factory=list,
        description="Cited genes in the data but not among the cluster's top-N markers.",
    )
    protein_markers_found: list[str] = Field(
        default_factory=list,
        description="The label's canonical markers measured as protein among the cluster's top "
        "protein (ADT) markers, as 'ANTIBODY (GENE)'; they count towards the support.",
    )
    support: Literal["high", "supported", "weak", "none"] = "none"
    problems: list[str] = Field(default_factory=list)


class ClusterAnnotation(BaseModel):
    """The annotation of one cluster."""

    cluster_id: str
    n_cells: int | None = None
    label: str
    ontology_id: str | None = Field(None, description="Cell Ontology id (CL:...).")
    ontology_name: str | None = None
    confidence: float = Field(0.0, ge=0.0, le=1.0)
    status: Status = "unknown"
    evidence_markers: list[str] = Field(
        default_factory=list, description="Markers of the cluster that support the label."
    )
    candidates: list[Candidate] = Field(default_factory=list)
    source: Source = "offline"
    reason: str = ""
    top_markers: list[str] = Field(default_factory=list, description="The cluster's top markers.")
    guardrails: GuardrailCheck = Field(default_factory=GuardrailCheck)
    proposed_label: str | None = Field(
        None, description="The label before guardrails or a fallback replaced it."
    )


class DatasetStats(BaseModel):
    """Counts and timings of one run."""

    n_clusters: int = 0
    n_supported: int = 0
    n_flagged: int = 0
    n_unknown: int = 0
    cache_hits: int = 0
    cache_misses: int = 0
    llm_requests: int = 0
    llm_input_tokens: int = 0
    llm_output_tokens: int = 0
    llm_failures: int = Field(0, description="Chunks whose LLM answer failed (offline fallback).")
    overrides: int = Field(
        0, description="Clusters whose proposed label was replaced (fallback or forced Unknown)."
    )
    timings: dict[str, float] = Field(default_factory=dict, description="Seconds per phase.")
    request_id: str = ""


class DatasetReport(BaseModel):
    """Everything an annotation run found, per cluster and for the dataset."""

    schema_version: int = REPORT_SCHEMA_VERSION
    mode: Literal["annotate", "validate"] = "annotate"
    groupby: str | None = None
    species: str
    tissue: str | None = None
    backend: str = "offline"
    model: str | None = None
    prompt_version: str | None = None
    marker_db: str = ""
    marker_source: str = Field(
        "", description="Where the markers came from: uns key, 'computed' or 'table'."
    )
    guardrail_config: GuardrailConfig = Field(default_factory=GuardrailConfig)
    clusters: list[ClusterAnnotation] = Field(default_factory=list)
    stats: DatasetStats = Field(default_factory=DatasetStats)
    warnings: list[str] = Field(default_factory=list)

    def cluster(self, cluster_id: str) -> ClusterAnnotation:
        """The record of ``cluster_id``."""
        for c in self.clusters:
            if c.cluster_id == str(cluster_id):
                return c
        raise KeyError(cluster_id)

    def to_frame(self) -> pd.DataFrame:
        """One row per cluster (the ``--csv`` table)."""
        rows = []
        for c in self.clusters:
            rows.append(
                {
                    "cluster_id": c.cluster_id,
                    "n_cells": c.n_cells,
                    "label": c.label,
                    "ontology_id": c.ontology_id or "",
                    "ontology_name": c.ontology_name or "",
                    "confidence": round(c.confidence, 4),
                    "status": c.status,
                    "source": c.source,
                    "evidence_markers": ",".join(c.evidence_markers),
                    "candidates": "; ".join(f"{k.label} ({k.score:.2f})" for k in c.candidates[:3]),
                    "reason": c.reason,
                }
            )
        return pd.DataFrame(rows)

    def to_json(self, indent: int | None = 2) -> str:
        """The report as JSON text."""
        return self.model_dump_json(indent=indent)

    @classmethod
    def schema_json(cls) -> dict[str, Any]:
        """The JSON schema of the report (``scagent annotate --schema``)."""
        return cls.model_json_schema()

    def summary(self) -> str:
        """One sentence: clusters and their statuses."""
        s = self.stats
        return (
            f"{s.n_clusters} clusters: {s.n_supported} supported, {s.n_flagged} flagged, "
            f"{s.n_unknown} unknown ({self.backend}"
            + (f", {s.cache_hits} cache hits" if s.cache_hits else "")
            + ")"
        )

    @classmethod
    def from_json(cls, text: str) -> DatasetReport:
        """Read a report written by :meth:`to_json`."""
        return cls.model_validate(json.loads(text))
