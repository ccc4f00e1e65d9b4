"""The LLM annotator: clusters in chunks, each prompt carrying the markers and the database's candidates as evidence.

One request answers ``chunk_size`` clusters; requests run on a bounded thread pool
(:func:`scagent.llm.map_concurrent`). The answer schema asks for a label, a confidence
and the supporting markers per cluster; what the model says is checked afterwards by the
guardrails like any other label. A chunk whose request fails for good (invalid JSON after
the repair turn, retries exhausted) is reported as failed, and the engine falls back to
the offline answer for its clusters.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, Field

from scagent.annotate.markers import ClusterMarkers
from scagent.annotate.offline import OfflinePrediction
from scagent.llm import LLMClient, LLMResponse, map_concurrent

__all__ = [
    "PROMPT_VERSION",
    "SYSTEM_PROMPT",
    "ChunkResult",
    "LLMAnnotationBatch",
    "LLMClusterAnswer",
    "annotate_with_llm",
    "build_prompt",
]

#: In the cache key and the provenance record; bump when the prompt or schema changes.
PROMPT_VERSION = "annotate.v1"

SYSTEM_PROMPT = (
    "You are an expert in single-cell RNA-seq cell-type annotation. For each cluster you "
    "get its top marker genes (best first, with log fold changes where known) and the "
    "cell types a curated marker database ranks highest for them. Name the most specific "
    "cell type the markers support; use a Cell Ontology (CL) name and give its CL id when "
    "you know it. If the markers do not support a specific subtype, answer the parent "
    "type. If nothing fits, answer 'Unknown'. Cite as supporting_markers only genes from "
    "that cluster's marker list. Answer every cluster, with its cluster_id unchanged."
)


class LLMClusterAnswer(BaseModel):
    """The model's answer for one cluster."""

    cluster_id: str = Field(description="The cluster_id exactly as given.")
    label: str = Field(description="Cell type name (Cell Ontology name preferred) or 'Unknown'.")
    cell_ontology_id: str | None = Field(None, description="CL id, e.g. CL:0000236.")
    confidence: float = Field(ge=0.0, le=1.0, description="0 to 1.")
    supporting_markers: list[str] = Field(
        default_factory=list, description="Genes from this cluster's list that support the label."
    )
    reasoning: str = Field("", description="One short sentence.")


class LLMAnnotationBatch(BaseModel):
    """The model's answer for one chunk of clusters."""

    clusters: list[LLMClusterAnswer]


@dataclass
class ChunkResult:
    """What one request gave: answers by cluster id, or the error that stopped it."""

    cluster_ids: list[str]
    answers: dict[str, LLMClusterAnswer]
    response: LLMResponse | None = None
    error: BaseException | None = None


def build_prompt(
    chunk: Sequence[ClusterMarkers],
    evidence: dict[str, OfflinePrediction],
    *,
    species: str,
    tissue: str | None,
    n_markers: int,
    n_candidates: int = 3,
) -> str:
    """The user turn for one chunk: context, then one JSON block per cluster."""
    blocks = []
    for m in chunk:
        pred = evidence.get(m.cluster_id)
        cands = [
            {"cell_type": c.label, "cl_id": c.ontology_id, "matched": c.hit_genes[:5]}
            for c in (pred.candidates[:n_candidates] if pred else [])
        ]
        blocks.append(
            {
                "cluster_id": m.cluster_id,
                "n_cells": m.n_cells,
                "tissue": m.tissue or tissue,
                "markers": m.as_prompt_rows(n_markers),
                "database_candidates": cands,
            }
        )
    head = f"Species: {species}. Tissue: {tissue or 'not given'}.\n"
    return (
        head + f"Annotate these {len(chunk)} clusters. Marker 'effect' is the log fold change of "
        "the cluster against all other cells. 'database_candidates' are retrieved evidence "
        "from a marker database, not the answer.\n" + json.dumps(blocks, indent=1)
    )


def annotate_with_llm(
    client: LLMClient,
    clusters: Sequence[ClusterMarkers],
    evidence: dict[str, OfflinePrediction],
    *,
    species: str,
    tissue: str | None,
    n_markers: int,
    chunk_size: int,
    max_concurrency: int,
    cache_extra: dict[str, Any],
    on_chunk_done: Callable[[int], None] | None = None,
) -> list[ChunkResult]:
    """Ask ``client`` about every cluster, ``chunk_size`` per request, ``max_concurrency`` at once.

    Returns
    -------
    list of ChunkResult
        In chunk order; a failed chunk has ``error`` set and no answers.
    """
    chunks = [list(clusters[i : i + chunk_size]) for i in range(0, len(clusters), chunk_size)]
    requests = []
    for chunk in chunks:
        prompt = build_prompt(chunk, evidence, species=species, tissue=tissue, n_markers=n_markers)
        requests.append(
            {
                "messages": prompt,
                "system": SYSTEM_PROMPT,
                "json_schema": LLMAnnotationBatch,
                "prompt_version": PROMPT_VERSION,
                "cache_key_extra": cache_extra,
                "seed": 0,
                "max_tokens": 400 + 250 * len(chunk),
                "context": {
                    "clusters": [
                        {"cluster_id": m.cluster_id, "genes": m.genes[:n_markers]} for m in chunk
                    ],
                    "species": species,
                    "tissue": tissue,
                },
            }
        )

    def done(i: int, _result: Any) -> None:
        if on_chunk_done is not None:
            on_chunk_done(len(chunks[i]))

    responses = map_concurrent(
        client, requests, max_workers=max_concurrency, return_exceptions=True, on_done=done
    )
    out = []
    for chunk, resp in zip(chunks, responses, strict=True):
        ids = [m.cluster_id for m in chunk]
        if isinstance(resp, BaseException):
            out.append(ChunkResult(ids, {}, None, resp))
            continue
        batch = resp.parsed
        answers: dict[str, LLMClusterAnswer] = {}
        wanted = set(ids)
        for a in getattr(batch, "clusters", []) or []:
            cid = str(a.cluster_id).strip()
            if cid in wanted and cid not in answers:
                answers[cid] = a
        out.append(ChunkResult(ids, answers, resp, None))
    return out
