"""The ``annotate`` tool: cluster annotation as one registered step, with its backend, model and cache use in the record."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import Field

from scagent.errors import MissingPrerequisiteError
from scagent.tools._data import obs_column, state_of
from scagent.tools.base import ParamsModel, Tool, ToolResult, parse_params
from scagent.tools.registry import register

if TYPE_CHECKING:
    from anndata import AnnData


class AnnotateParams(ParamsModel):
    groupby: str = Field(
        "auto",
        description="obs column of the clusters; 'auto' takes 'leiden' when present, else the "
        "first clustering the inspector found.",
    )
    tissue: str | None = Field(
        None, description="Tissue (free text or UBERON id); types known there are preferred."
    )
    species: str | None = Field(None, description="human or mouse; default: from the genes.")
    llm: str | None = Field(
        None,
        description="None/'offline' for the marker-database annotator, or a backend spec "
        "(openai:MODEL, anthropic:MODEL, ollama:MODEL...). LLM labels pass the same guardrails.",
    )
    base_url: str | None = Field(None, description="Server URL for OpenAI-compatible backends.")
    top_n_markers: int = Field(
        20,
        ge=1,
        le=500,
        description="Markers per cluster; 10-30 is the usual range for marker-based annotation "
        "(Hou & Ji 2024 used the top 10).",
        json_schema_extra={"sweep": [10, 20, 50]},
    )
    chunk_size: int = Field(10, ge=1, le=200, description="Clusters per LLM request.")
    max_concurrency: int = Field(4, ge=1, le=64, description="LLM requests in flight at once.")
    cache_dir: str | None = Field(None, description="LLM answer cache folder.")
    min_supported: int = Field(
        2, ge=1, description="Canonical markers among the top-N needed for 'supported'."
    )
    min_high_confidence: int = Field(
        3, ge=1, description="Canonical markers among the top-N for high-confidence support."
    )
    force_unknown_on_fail: bool = Field(False, description="Label flagged clusters 'Unknown'.")
    marker_db: str | None = Field(
        None, description="Extra marker file merged into the default marker database."
    )
    key_added: str = Field(
        "annotation",
        description="Prefix of obs columns <key>_label, _cl_id, _status, _confidence; uns key.",
    )
    overwrite: bool = Field(False, description="Replace same-named columns not written by scagent.")
    protein_markers_key: str | None = Field(
        "protein_markers",
        description="uns key of protein markers (CITE-seq) for the same clusters; their top "
        "antibodies, mapped to genes, count as marker evidence. Ignored when absent.",
    )


def _groupby(adata: AnnData, groupby: str) -> str:
    def clusterings() -> list[str]:
        return ["leiden", *(c.name for c in state_of(adata).breadcrumbs.clusterings)]

    return obs_column(
        adata,
        groupby,
        clusterings,
        missing=MissingPrerequisiteError(
            "annotate needs a clustering column to group by", remedy="run leiden first"
        ),
    )


def annotate(adata: AnnData, **params: Any) -> ToolResult:
    """Name each cluster's cell type (:func:`scagent.annotate.annotate_anndata`) and check every name.

    Parameters
    ----------
    adata
        The data with a clustering; modified in place.
    **params
        See :class:`AnnotateParams`.

    Returns
    -------
    ToolResult
        Writes ``obs['<key>_label']``, ``obs['<key>_cl_id']``, ``obs['<key>_status']``,
        ``obs['<key>_confidence']`` and ``uns['<key>']`` (the report as JSON). Metrics
        carry the backend, model, prompt version, cache hits, LLM requests and tokens;
        ``tables['clusters']`` one row per cluster.
    """
    from scagent.annotate import GuardrailConfig, annotate_anndata

    p = parse_params(AnnotateParams, params, "annotate")
    groupby = _groupby(adata, p.groupby)
    guard = GuardrailConfig(
        top_n=p.top_n_markers,
        min_supported=p.min_supported,
        min_high_confidence=p.min_high_confidence,
        force_unknown_on_fail=p.force_unknown_on_fail,
    )
    report = annotate_anndata(
        adata,
        groupby,
        tissue=p.tissue,
        species=p.species,
        llm=p.llm,
        base_url=p.base_url,
        top_n_markers=p.top_n_markers,
        chunk_size=p.chunk_size,
        max_concurrency=p.max_concurrency,
        cache_dir=p.cache_dir,
        guardrails=guard,
        marker_db=p.marker_db,
        key_added=p.key_added,
        overwrite=p.overwrite,
        protein_markers_key=p.protein_markers_key,
    )
    s = report.stats
    metrics: dict[str, float | int | str] = {
        "groupby": groupby,
        "backend": report.backend,
        "model": report.model or "",
        "prompt_version": report.prompt_version or "",
        "n_clusters": s.n_clusters,
        "n_supported": s.n_supported,
        "n_flagged": s.n_flagged,
        "n_unknown": s.n_unknown,
        "cache_hits": s.cache_hits,
        "cache_misses": s.cache_misses,
        "llm_requests": s.llm_requests,
        "llm_input_tokens": s.llm_input_tokens,
        "llm_output_tokens": s.llm_output_tokens,
        "overrides": s.overrides,
        "request_id": s.request_id,
        "marker_source": report.marker_source,
    }
    with_protein = sum(1 for c in report.clusters if c.guardrails.protein_markers_found)
    if with_protein:
        metrics["n_protein_evidence"] = with_protein
    k = p.key_added
    written = [f"obs/{k}_{c}" for c in ("label", "cl_id", "status", "confidence")]
    written += [f"uns/{k}", "uns/scagent_keys"]
    return ToolResult(
        summary=f"annotated obs['{groupby}']: {report.summary()}",
        metrics=metrics,
        warnings=list(report.warnings),
        written=written,
        tables={"clusters": report.to_frame().to_dict(orient="records")},
    )


def _checks(adata: AnnData, params: Any, result: ToolResult) -> list[str]:
    out = []
    n, flagged = result.metrics.get("n_clusters", 0), result.metrics.get("n_flagged", 0)
    if isinstance(n, int) and isinstance(flagged, int) and n and flagged / n > 0.5:
        out.append(f"{flagged} of {n} cluster labels are flagged by the guardrails")
    return out


ANNOTATE = register(
    Tool(
        id="annotate",
        name="Cluster annotation",
        category="annotation",
        framework="scagent",
        fn=annotate,
        params=AnnotateParams,
        needs="log_normalized",
        produces=("cell_types",),
        deterministic=True,  # offline by default; an LLM answer is cached by content hash
        captures=("scanpy", "anndata", "numpy", "cellxgene_ontology_guide"),
        reference="Hou & Ji 2024 (doi:10.1038/s41592-024-02235-4); Ianevski et al. 2022 "
        "(ScType, doi:10.1038/s41467-022-28803-w)",
        description="Name each cluster's cell type from its markers (LLM when configured, "
        "marker-database scoring offline) and check every label against the data and the "
        "marker database.",
        checks=_checks,
    )
)
