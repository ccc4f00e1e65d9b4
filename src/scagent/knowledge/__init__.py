"""Offline knowledge for annotation: marker databases, the Cell Ontology, gene sets and gene symbols."""

from __future__ import annotations

from scagent.knowledge.loaders import MARKER_COLUMNS, read_markers, sniff_format
from scagent.knowledge.markerdb import MarkerDB, MarkerQuery, MarkerValidation, knowledge_dir
from scagent.knowledge.ontology import (
    OntologyMatch,
    broad_type,
    label_to_cl,
    normalize_tissue,
    score_prediction,
)

__all__ = [
    "MARKER_COLUMNS",
    "MarkerDB",
    "MarkerQuery",
    "MarkerValidation",
    "OntologyMatch",
    "broad_type",
    "knowledge_dir",
    "label_to_cl",
    "normalize_tissue",
    "read_markers",
    "score_prediction",
    "sniff_format",
]
