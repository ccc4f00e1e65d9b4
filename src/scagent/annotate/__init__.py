"""Cluster annotation: name each cluster's cell type from its markers, check every name, and report how far to trust it.

The offline annotator scores the marker database with the Cell Ontology's help; an LLM
(when one is configured) answers in chunks with the database's candidates as evidence;
guardrails check every label whatever its source. See ``docs/annotate.md``.
"""

from __future__ import annotations

from scagent.annotate.engine import (
    DEFAULT_KEY,
    annotate_anndata,
    annotate_markers,
    context_defaults,
    validate_labels,
    write_annotation,
)
from scagent.annotate.guardrails import LabelChecker
from scagent.annotate.llm_annotator import PROMPT_VERSION, LLMAnnotationBatch, LLMClusterAnswer
from scagent.annotate.markers import ClusterMarkers, markers_from_adata, read_marker_table
from scagent.annotate.offline import OfflineAnnotator, OfflinePrediction, OfflineSettings
from scagent.annotate.report import (
    UNKNOWN,
    Candidate,
    ClusterAnnotation,
    DatasetReport,
    DatasetStats,
    GuardrailCheck,
    GuardrailConfig,
)

__all__ = [
    "DEFAULT_KEY",
    "PROMPT_VERSION",
    "UNKNOWN",
    "Candidate",
    "ClusterAnnotation",
    "ClusterMarkers",
    "DatasetReport",
    "DatasetStats",
    "GuardrailCheck",
    "GuardrailConfig",
    "LLMAnnotationBatch",
    "LLMClusterAnswer",
    "LabelChecker",
    "OfflineAnnotator",
    "OfflinePrediction",
    "OfflineSettings",
    "annotate_anndata",
    "annotate_markers",
    "context_defaults",
    "markers_from_adata",
    "read_marker_table",
    "validate_labels",
    "write_annotation",
]
