"""The annotation engine: markers in, a checked label per cluster out, from the LLM when one is configured and the marker database otherwise.

Every run goes the same way: gather each cluster's ranked markers; score them against
the marker database (the offline answer, which is also the LLM's retrieved evidence and
its fallback); ask the LLM in chunks when one is configured; run the guardrails on every
label whatever its source; assemble a :class:`~scagent.annotate.report.DatasetReport`.
"""

from __future__ import annotations

import os
import time
import uuid
import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from scagent.annotate.guardrails import GuardrailOutcome, LabelChecker, protein_marker_genes
from scagent.annotate.llm_annotator import PROMPT_VERSION, ChunkResult, annotate_with_llm
from scagent.annotate.markers import (
    ClusterMarkers,
    markers_from_adata,
    markers_from_mapping,
    read_marker_table,
)
from scagent.annotate.offline import OfflineAnnotator, OfflinePrediction, OfflineSettings
from scagent.annotate.report import (
    UNKNOWN,
    ClusterAnnotation,
    DatasetReport,
    DatasetStats,
    GuardrailConfig,
)
from scagent.errors import InvalidDataError, InvalidParameterError
from scagent.knowledge import MarkerDB
from scagent.knowledge import genes as kgenes

if TYPE_CHECKING:
    from anndata import AnnData

    from scagent.llm import LLMClient

__all__ = [
    "DEFAULT_KEY",
    "annotate_anndata",
    "annotate_markers",
    "context_defaults",
    "validate_labels",
    "write_annotation",
]

#: Default ``key_added``: obs columns ``annotation_label``, ``annotation_cl_id``,
#: ``annotation_status``, ``annotation_confidence`` and ``uns['annotation']``.
DEFAULT_KEY = "annotation"
#: The id under which write-back records its keys in ``uns['scagent_keys']``.
TOOL_ID = "annotate"

Progress = Callable[[int, int], None]


# ---------------------------------------------------------------------------- helpers


def _resolve_db(marker_db: MarkerDB | str | os.PathLike[str] | None) -> MarkerDB:
    if marker_db is None:
        return MarkerDB.default()
    if isinstance(marker_db, MarkerDB):
        return marker_db
    return MarkerDB.default().merge(MarkerDB.load(marker_db))


def _describe_db(db: MarkerDB) -> str:
    return f"{len(db)} rows; sources {', '.join(db.sources)}"


def _guardrail_config(guardrails: GuardrailConfig | Mapping[str, Any] | None) -> GuardrailConfig:
    if guardrails is None:
        return GuardrailConfig()
    if isinstance(guardrails, GuardrailConfig):
        return guardrails
    try:
        return GuardrailConfig(**dict(guardrails))
    except Exception as exc:  # pydantic's message names the field
        raise InvalidParameterError(f"guardrails: {exc}") from None


def _species(species: str | None, genes: Sequence[str]) -> str:
    if species is None:
        guess = kgenes.guess_species_from_symbols(genes)
        if guess not in ("human", "mouse"):
            raise InvalidParameterError(
                "species is not given and cannot be told from the gene symbols",
                remedy="pass --species human or --species mouse",
            )
        return guess
    return kgenes.normalize_species(species)


def _client(llm: str | LLMClient | None, base_url: str | None, cache_dir: Any) -> LLMClient | None:
    if llm is None:
        return None
    if isinstance(llm, str):
        if llm.strip().lower() == "offline":
            return None
        from scagent.llm import get_client

        return get_client(llm, base_url=base_url, cache_dir=cache_dir)
    if getattr(llm, "backend", None) == "offline":
        return None
    return llm


def _request_id() -> str:
    return os.environ.get("SCAGENT_REQUEST_ID") or uuid.uuid4().hex


def _usage(client: Any) -> dict[str, int]:
    try:
        return dict(client.usage.as_dict())
    except Exception:
        return {}


def _record(
    m: ClusterMarkers,
    *,
    label: str,
    ontology_id: str | None,
    confidence: float,
    evidence: list[str],
    pred: OfflinePrediction | None,
    source: str,
    reason: str,
    outcome: GuardrailOutcome,
    top_n: int,
) -> ClusterAnnotation:
    return ClusterAnnotation(
        cluster_id=m.cluster_id,
        n_cells=m.n_cells,
        label=label,
        ontology_id=outcome.ontology_id or ontology_id,
        ontology_name=outcome.ontology_name,
        confidence=float(np.clip(confidence, 0.0, 1.0)),
        status=outcome.status,
        evidence_markers=evidence,
        candidates=pred.candidates if pred else [],
        source=source,  # type: ignore[arg-type]
        reason=reason,
        top_markers=m.genes[:top_n],
        guardrails=outcome.check,
    )


# ---------------------------------------------------------------------------- core


def _annotate(
    clusters: list[ClusterMarkers],
    *,
    species: str | None,
    tissue: str | None,
    var_names: Sequence[str] | None,
    db: MarkerDB,
    llm: str | LLMClient | None,
    base_url: str | None,
    guardrails: GuardrailConfig,
    top_n_markers: int,
    chunk_size: int,
    max_concurrency: int,
    cache_dir: Any,
    offline_settings: OfflineSettings | None,
    progress: Progress | None,
    groupby: str | None,
    marker_source: str,
    timings: dict[str, float],
    protein_markers: Mapping[str, Mapping[str, Sequence[str]]] | None = None,
) -> DatasetReport:
    t_start = time.perf_counter()
    proteins = protein_markers or {}
    if not isinstance(top_n_markers, int) or top_n_markers < 1:
        raise InvalidParameterError(f"top_n_markers must be >= 1, got {top_n_markers!r}")
    if not isinstance(chunk_size, int) or chunk_size < 1:
        raise InvalidParameterError(f"chunk_size must be >= 1, got {chunk_size!r}")
    if not isinstance(max_concurrency, int) or max_concurrency < 1:
        raise InvalidParameterError(f"max_concurrency must be >= 1, got {max_concurrency!r}")
    if not clusters:
        raise InvalidDataError("there are no clusters to annotate")
    if not any(m.genes for m in clusters):
        raise InvalidDataError(
            "no cluster has any marker gene",
            remedy="give expression data with a cluster column, or a marker table with genes",
        )
    all_genes = [g for m in clusters for g in m.genes[:top_n_markers]]
    run_species = _species(species, all_genes)
    report_warnings: list[str] = []
    settings = offline_settings or OfflineSettings(top_n=top_n_markers)
    offline = OfflineAnnotator(db, settings)
    client = _client(llm, base_url, cache_dir)
    total = len(clusters)
    done = 0

    def tick(k: int = 1) -> None:
        nonlocal done
        done += k
        if progress is not None:
            progress(min(done, total), total)

    # 1. Offline answers: the default labels, the LLM's evidence and its fallback.
    t0 = time.perf_counter()
    preds: dict[str, OfflinePrediction] = {}
    for m in clusters:
        sp = _species(m.species, m.genes) if m.species else run_species
        preds[m.cluster_id] = offline.predict(
            m.genes[:top_n_markers],
            species=sp,
            tissue=m.tissue or tissue,
            negative_genes=m.negative_genes,
        )
        if client is None:
            tick()
    timings["offline_s"] = round(time.perf_counter() - t0, 4)
    n_known = sum(1 for p in preds.values() if p.candidates)
    if n_known == 0:
        report_warnings.append(
            f"none of the clusters' markers is a known {run_species} marker in the database: "
            "check --species and the gene symbols"
        )

    # 2. The LLM, when one is configured.
    chunk_results: list[ChunkResult] = []
    usage_before = _usage(client) if client is not None else {}
    if client is not None:
        t0 = time.perf_counter()
        cache_extra = {
            "species": run_species,
            "tissue": tissue,
            "guardrails": guardrails.model_dump(),
            "top_n_markers": top_n_markers,
            "marker_db": _describe_db(db),
        }
        with_genes = [m for m in clusters if m.genes]
        for m in clusters:
            if not m.genes:
                tick()
        chunk_results = annotate_with_llm(
            client,
            with_genes,
            preds,
            species=run_species,
            tissue=tissue,
            n_markers=top_n_markers,
            chunk_size=chunk_size,
            max_concurrency=max_concurrency,
            cache_extra=cache_extra,
            on_chunk_done=tick,
        )
        timings["llm_s"] = round(time.perf_counter() - t0, 4)
    usage_after = _usage(client) if client is not None else {}

    # 3. Guardrails on every label, whatever its source.
    t0 = time.perf_counter()
    checkers: dict[str, LabelChecker] = {}

    def checker(sp: str) -> LabelChecker:
        if sp not in checkers:
            checkers[sp] = LabelChecker(db, guardrails, sp, var_names)
        return checkers[sp]

    llm_answer: dict[str, tuple[Any, ChunkResult]] = {}
    for cr in chunk_results:
        for cid in cr.cluster_ids:
            llm_answer[cid] = (cr.answers.get(cid), cr)
    stats = DatasetStats(request_id=_request_id())
    records: list[ClusterAnnotation] = []
    for m in clusters:
        sp = _species(m.species, m.genes) if m.species else run_species
        chk = checker(sp)
        pred = preds[m.cluster_id]
        top = m.genes[:top_n_markers]
        proposed: str | None = None
        if m.cluster_id in llm_answer:
            ans, cr = llm_answer[m.cluster_id]
            if ans is not None:
                source = "cache" if cr.response is not None and cr.response.cached else "llm"
                outcome = chk.check(
                    ans.label,
                    top,
                    cited=ans.supporting_markers,
                    ontology_id=ans.cell_ontology_id,
                    all_markers=m.genes,
                    protein_markers=proteins.get(m.cluster_id),
                )
                reason = ans.reasoning or "answer of the LLM"
                rec = _record(
                    m,
                    label=ans.label if outcome.status != "unknown" else UNKNOWN,
                    ontology_id=None,
                    confidence=ans.confidence,
                    evidence=list(ans.supporting_markers),
                    pred=pred,
                    source=source,
                    reason=reason,
                    outcome=outcome,
                    top_n=top_n_markers,
                )
            else:
                # The chunk failed or the model skipped this cluster: the offline answer, flagged.
                why = (
                    f"LLM request failed ({type(cr.error).__name__}: {_short(cr.error)})"
                    if cr.error is not None
                    else "the LLM answer did not include this cluster"
                )
                rec = _offline_record(
                    m, pred, chk, top_n_markers, fallback=why, proteins=proteins.get(m.cluster_id)
                )
                stats.overrides += 1
        else:
            rec = _offline_record(m, pred, chk, top_n_markers, proteins=proteins.get(m.cluster_id))
        if rec.status == "flagged" and guardrails.force_unknown_on_fail:
            proposed = rec.label
            rec.label = UNKNOWN
            rec.ontology_id = None
            rec.ontology_name = None
            rec.status = "unknown"
            rec.reason = f"forced Unknown: {'; '.join(rec.guardrails.problems)} ({rec.reason})"
            stats.overrides += 1
        if proposed is not None:
            rec.proposed_label = proposed
        records.append(rec)
    timings["guardrails_s"] = round(time.perf_counter() - t0, 4)

    stats.n_clusters = len(records)
    stats.n_supported = sum(r.status == "supported" for r in records)
    stats.n_flagged = sum(r.status == "flagged" for r in records)
    stats.n_unknown = sum(r.status == "unknown" for r in records)
    if client is not None:
        stats.cache_hits = sum(
            1 for cr in chunk_results if cr.response is not None and cr.response.cached
        )
        stats.cache_misses = len(chunk_results) - stats.cache_hits
        stats.llm_failures = sum(1 for cr in chunk_results if cr.error is not None)
        stats.llm_requests = usage_after.get("requests", 0) - usage_before.get("requests", 0)
        stats.llm_input_tokens = usage_after.get("input_tokens", 0) - usage_before.get(
            "input_tokens", 0
        )
        stats.llm_output_tokens = usage_after.get("output_tokens", 0) - usage_before.get(
            "output_tokens", 0
        )
        for cr in chunk_results:
            if cr.error is not None:
                report_warnings.append(
                    f"LLM failed for clusters {', '.join(cr.cluster_ids)}: {_short(cr.error)}; "
                    "they carry the offline answer, flagged"
                )
        cache = getattr(client, "cache", None)
        if cache is not None and getattr(cache, "writable", True) is False:
            report_warnings.append(
                f"the LLM cache folder {getattr(cache, 'folder', '')} is not writable; "
                "answers were not stored"
            )
    timings["annotate_s"] = round(time.perf_counter() - t_start, 4)
    stats.timings = timings
    return DatasetReport(
        groupby=groupby,
        species=run_species,
        tissue=tissue,
        backend=getattr(client, "backend", "offline") if client is not None else "offline",
        model=getattr(client, "model", None) if client is not None else None,
        prompt_version=PROMPT_VERSION if client is not None else None,
        marker_db=_describe_db(db),
        marker_source=marker_source,
        guardrail_config=guardrails,
        clusters=records,
        stats=stats,
        warnings=report_warnings,
    )


def _short(err: BaseException | None, n: int = 160) -> str:
    text = str(err) if err is not None else ""
    return text if len(text) <= n else text[: n - 3] + "..."


def _offline_record(
    m: ClusterMarkers,
    pred: OfflinePrediction,
    chk: LabelChecker,
    top_n: int,
    *,
    fallback: str | None = None,
    proteins: Mapping[str, Sequence[str]] | None = None,
) -> ClusterAnnotation:
    top = m.genes[:top_n]
    if pred.is_unknown:
        from scagent.annotate.guardrails import unknown_outcome

        reason = m.note or pred.reason
        outcome = unknown_outcome(reason)
        if fallback:
            reason = f"{fallback}; offline: {reason}"
        return _record(
            m,
            label=UNKNOWN,
            ontology_id=None,
            confidence=0.0,
            evidence=[],
            pred=pred,
            source="offline",
            reason=reason,
            outcome=outcome,
            top_n=top_n,
        )
    outcome = chk.check(
        pred.label,
        top,
        cited=pred.evidence_markers,
        ontology_id=pred.ontology_id,
        all_markers=m.genes,
        protein_markers=proteins,
    )
    reason = pred.reason
    if fallback:
        outcome.status = "flagged"
        outcome.check.problems.insert(0, f"fallback to the offline answer: {fallback}")
        reason = f"{fallback}; offline answer: {reason}"
    return _record(
        m,
        label=pred.label,
        ontology_id=pred.ontology_id,
        confidence=pred.confidence,
        evidence=[g for g in pred.evidence_markers if g in set(top)] or pred.evidence_markers,
        pred=pred,
        source="offline",
        reason=reason,
        outcome=outcome,
        top_n=top_n,
    )


# ---------------------------------------------------------------------------- public API


def _var_names(adata: AnnData) -> list[str]:
    names = list(map(str, adata.var_names))
    if adata.raw is not None:
        names += list(map(str, adata.raw.var_names))
    return names


def context_defaults(
    species: str | None, tissue: str | None, project: str | os.PathLike[str] = "."
) -> tuple[str | None, str | None]:
    """Species and tissue from the experiment context of the project at ``project``, where the caller gave none.

    Used by the front doors (CLI, session); the library functions never read the
    current folder on their own. Without a project, or without the session package,
    the values are returned unchanged.
    """
    if species is not None and tissue is not None:
        return species, tissue
    try:  # the session package is optional here: annotation works without a project
        from scagent.session.project import Project, find_project_root

        root = find_project_root(project)
        if root is None:
            return species, tissue
        ctx = Project.open(root).config.context
    except Exception:
        return species, tissue
    if species is None and ctx.organism is not None:
        species = ctx.organism.taxon_id
    if tissue is None and ctx.tissue is not None:
        tissue = ctx.tissue.label
    return species, tissue


def annotate_anndata(
    adata: AnnData,
    groupby: str,
    *,
    tissue: str | None = None,
    species: str | None = None,
    llm: str | LLMClient | None = None,
    base_url: str | None = None,
    top_n_markers: int = 20,
    chunk_size: int = 10,
    max_concurrency: int = 4,
    cache_dir: str | os.PathLike[str] | None = None,
    guardrails: GuardrailConfig | Mapping[str, Any] | None = None,
    marker_db: MarkerDB | str | os.PathLike[str] | None = None,
    markers_key: str = "rank_genes_groups",
    key_added: str | None = DEFAULT_KEY,
    overwrite: bool = False,
    offline_settings: OfflineSettings | None = None,
    progress: Progress | None = None,
    protein_markers_key: str | None = "protein_markers",
) -> DatasetReport:
    """Name the cell type of each cluster of ``obs[groupby]``, check each name, and write them back.

    Markers come from ``uns[markers_key]`` when it is a rank_genes_groups result for
    ``groupby``; otherwise a Wilcoxon test runs on log-normalized values prepared from
    whatever state ``X`` is in (``adata`` itself is not changed by it).

    Parameters
    ----------
    adata
        The data, with a cluster column.
    groupby
        The obs column of clusters.
    tissue
        Free text (``"PBMC"``, ``"lung"``) or a UBERON id; types known there are preferred.
    species
        ``human`` or ``mouse``; default: the inspector's guess from the gene symbols.
    llm
        ``None`` or ``"offline"`` (the marker-database annotator), a backend spec
        (``openai:MODEL``, ``anthropic:MODEL``, ``ollama:MODEL``...) or an LLM client.
    base_url
        Server address for OpenAI-compatible backends.
    top_n_markers
        Markers per cluster given to the annotators.
    chunk_size
        Clusters per LLM request.
    max_concurrency
        LLM requests in flight at once.
    cache_dir
        LLM answer cache folder (default ``$SCAGENT_HOME/cache/llm``).
    guardrails
        :class:`~scagent.annotate.report.GuardrailConfig` or a dict of its fields.
    marker_db
        A :class:`~scagent.knowledge.MarkerDB`, or a marker file merged into the default one.
    markers_key
        uns key of an existing rank_genes_groups result.
    key_added
        Prefix of the obs columns written (``<key>_label``, ``<key>_cl_id``,
        ``<key>_status``, ``<key>_confidence``) and the uns key of the report;
        ``None`` writes nothing.
    overwrite
        Replace obs columns of those names that scagent did not write.
    offline_settings
        Settings of the offline annotator.
    progress
        ``progress(done, total)`` called as clusters are answered.
    protein_markers_key
        uns key of a protein-marker result (CITE-seq, ``protein_markers`` tool) for the same
        ``groupby``: each cluster's top antibodies, mapped to their genes, count as
        canonical-marker evidence in the guardrails
        (``guardrails.protein_markers_found``). Ignored when absent or for another grouping;
        ``None`` never reads it.

    Returns
    -------
    DatasetReport
        Also stored as JSON in ``adata.uns[key_added]['report']``.

    Raises
    ------
    InvalidParameterError
        ``groupby`` missing, unknown species, a bad option.
    InvalidDataError
        No expression to test and no markers; markers none of which are in ``var_names``.
    """
    timings: dict[str, float] = {}
    if groupby not in adata.obs.columns:
        cols = ", ".join(map(str, adata.obs.columns[:20])) or "(none)"
        raise InvalidParameterError(
            f"groupby {groupby!r} is not an obs column", remedy=f"choose one of: {cols}"
        )
    if species is not None:
        species = kgenes.normalize_species(species)
    db = _resolve_db(marker_db)
    t0 = time.perf_counter()
    clusters, source = markers_from_adata(
        adata, groupby, key=markers_key, n_genes=max(100, top_n_markers)
    )
    timings["markers_s"] = round(time.perf_counter() - t0, 4)
    var_names = _var_names(adata)
    vset = set(var_names)
    genes = {g for m in clusters for g in m.genes}
    if genes and not (genes & vset):
        raise InvalidDataError(
            f"none of the {len(genes)} marker genes in {source} is in var_names "
            f"(e.g. {', '.join(sorted(genes)[:3])})",
            remedy="recompute the markers on this object (sc.tl.rank_genes_groups) or drop "
            f"uns['{markers_key}']",
        )
    if species is None:
        from scagent.data import inspect_adata

        st = inspect_adata(adata)
        species = st.species if st.species in ("human", "mouse") else None
    proteins = {}
    if protein_markers_key:
        proteins = protein_marker_genes(
            adata.uns.get(protein_markers_key),
            groupby,
            species=species or "human",
            labels=adata.obs[groupby],  # stale markers of a re-run clustering are no evidence
        )
    report = _annotate(
        clusters,
        species=species,
        tissue=tissue,
        var_names=var_names,
        db=db,
        llm=llm,
        base_url=base_url,
        guardrails=_guardrail_config(guardrails),
        top_n_markers=top_n_markers,
        chunk_size=chunk_size,
        max_concurrency=max_concurrency,
        cache_dir=cache_dir,
        offline_settings=offline_settings,
        progress=progress,
        groupby=groupby,
        marker_source=source,
        timings=timings,
        protein_markers=proteins,
    )
    if proteins:
        report.marker_source += f" + protein markers uns['{protein_markers_key}']"
    if key_added:
        t0 = time.perf_counter()
        write_annotation(adata, report, groupby, key_added=key_added, overwrite=overwrite)
        report.stats.timings["write_s"] = round(time.perf_counter() - t0, 4)
        adata.uns[key_added]["report"] = report.to_json(indent=None)
    return report


def annotate_markers(
    markers: str | os.PathLike[str] | pd.DataFrame | Mapping[str, Sequence[str] | str],
    *,
    tissue: str | None = None,
    species: str | None = None,
    llm: str | LLMClient | None = None,
    base_url: str | None = None,
    top_n_markers: int = 20,
    chunk_size: int = 10,
    max_concurrency: int = 4,
    cache_dir: str | os.PathLike[str] | None = None,
    guardrails: GuardrailConfig | Mapping[str, Any] | None = None,
    marker_db: MarkerDB | str | os.PathLike[str] | None = None,
    var_names: Sequence[str] | None = None,
    offline_settings: OfflineSettings | None = None,
    progress: Progress | None = None,
) -> DatasetReport:
    """Name each cluster of a marker table (no expression data needed).

    Parameters
    ----------
    markers
        A marker file (CSV/TSV: wide ``cluster,genes`` or long per-gene rows such as
        Seurat ``FindAllMarkers`` or scanpy output; see
        :func:`~scagent.annotate.markers.read_marker_table`), a DataFrame of the same, or
        ``{cluster: [genes best first]}``. Per-row ``tissue`` / ``species`` columns
        override the arguments for their cluster.
    var_names
        Genes measured, when known (for the hallucinated-gene check); default: the
        table's genes.

    Other parameters are those of :func:`annotate_anndata`.

    Returns
    -------
    DatasetReport
    """
    timings: dict[str, float] = {}
    if species is not None:
        species = kgenes.normalize_species(species)
    db = _resolve_db(marker_db)
    t0 = time.perf_counter()
    if isinstance(markers, Mapping):
        clusters = markers_from_mapping(markers, n_genes=max(100, top_n_markers))
        source = "mapping"
    else:
        clusters = read_marker_table(markers, n_genes=max(100, top_n_markers))
        source = "table" if isinstance(markers, pd.DataFrame) else f"table {Path(markers).name}"
    timings["markers_s"] = round(time.perf_counter() - t0, 4)
    for m in clusters:
        if m.species is not None:
            m.species = kgenes.normalize_species(m.species)
    if var_names is not None:
        vset = {str(v).upper() for v in var_names}
        genes = {g for m in clusters for g in m.genes}
        if genes and not any(g.upper() in vset for g in genes):
            raise InvalidDataError(
                f"none of the {len(genes)} marker genes is in var_names",
                remedy="check that the marker table belongs to this dataset",
            )
    return _annotate(
        clusters,
        species=species,
        tissue=tissue,
        var_names=var_names,
        db=db,
        llm=llm,
        base_url=base_url,
        guardrails=_guardrail_config(guardrails),
        top_n_markers=top_n_markers,
        chunk_size=chunk_size,
        max_concurrency=max_concurrency,
        cache_dir=cache_dir,
        offline_settings=offline_settings,
        progress=progress,
        groupby=None,
        marker_source=source,
        timings=timings,
    )


def validate_labels(
    adata: AnnData,
    groupby: str,
    *,
    labels_key: str | None = None,
    tissue: str | None = None,
    species: str | None = None,
    top_n_markers: int = 20,
    guardrails: GuardrailConfig | Mapping[str, Any] | None = None,
    marker_db: MarkerDB | str | os.PathLike[str] | None = None,
    markers_key: str = "rank_genes_groups",
) -> DatasetReport:
    """Run the guardrails on labels already in the data (``--validate-only``); nothing is written.

    Parameters
    ----------
    groupby
        The obs column of clusters whose markers are tested.
    labels_key
        The obs column of the labels to check (default: ``groupby`` itself, e.g.
        ``cell_type``); a cluster's label is its most common value.

    Returns
    -------
    DatasetReport
        ``mode='validate'``; each cluster's ``status`` says whether its label is
        supported, ``candidates`` what the database would call it instead.
    """
    timings: dict[str, float] = {}
    labels_key = labels_key or groupby
    for col in (groupby, labels_key):
        if col not in adata.obs.columns:
            cols = ", ".join(map(str, adata.obs.columns[:20])) or "(none)"
            raise InvalidParameterError(
                f"{col!r} is not an obs column", remedy=f"choose one of: {cols}"
            )
    cfg = _guardrail_config(guardrails)
    db = _resolve_db(marker_db)
    t0 = time.perf_counter()
    clusters, source = markers_from_adata(
        adata, groupby, key=markers_key, n_genes=max(100, top_n_markers)
    )
    timings["markers_s"] = round(time.perf_counter() - t0, 4)
    if species is None:
        from scagent.data import inspect_adata

        st = inspect_adata(adata)
        species = st.species if st.species in ("human", "mouse") else None
    sp = _species(species, [g for m in clusters for g in m.genes])
    pairs = pd.DataFrame(
        {"g": adata.obs[groupby].astype(str).to_numpy(), "l": adata.obs[labels_key].astype(str)}
    )
    majority = pairs.groupby("g")["l"].agg(lambda s: s.value_counts().index[0])
    chk = LabelChecker(db, cfg, sp, _var_names(adata))
    offline = OfflineAnnotator(db, OfflineSettings(top_n=top_n_markers))
    stats = DatasetStats(request_id=_request_id())
    records = []
    t0 = time.perf_counter()
    for m in clusters:
        label = str(majority.get(m.cluster_id, UNKNOWN))
        top = m.genes[:top_n_markers]
        outcome = chk.check(label, top, all_markers=m.genes)
        pred = offline.predict(top, species=sp, tissue=tissue, negative_genes=m.negative_genes)
        reason = "; ".join(outcome.check.problems) or (
            f"{len(outcome.check.canonical_markers_found)} canonical markers among the top "
            f"{cfg.top_n}: {', '.join(outcome.check.canonical_markers_found)}"
        )
        if outcome.status == "flagged" and not pred.is_unknown:
            reason += f"; the marker database suggests {pred.label}"
        records.append(
            _record(
                m,
                label=label,
                ontology_id=None,
                confidence=1.0 if outcome.status == "supported" else 0.0,
                evidence=outcome.check.canonical_markers_found,
                pred=pred,
                source="existing",
                reason=reason,
                outcome=outcome,
                top_n=top_n_markers,
            )
        )
    timings["guardrails_s"] = round(time.perf_counter() - t0, 4)
    stats.n_clusters = len(records)
    stats.n_supported = sum(r.status == "supported" for r in records)
    stats.n_flagged = sum(r.status == "flagged" for r in records)
    stats.n_unknown = sum(r.status == "unknown" for r in records)
    stats.timings = timings
    return DatasetReport(
        mode="validate",
        groupby=groupby,
        species=sp,
        tissue=tissue,
        marker_db=_describe_db(db),
        marker_source=source,
        guardrail_config=cfg,
        clusters=records,
        stats=stats,
    )


# ---------------------------------------------------------------------------- write-back

OWNED_KEYS = "scagent_keys"


def _owner(adata: AnnData, slot: str, key: str) -> str | None:
    ledger = adata.uns.get(OWNED_KEYS, {})
    return ledger.get(slot, {}).get(key) if isinstance(ledger, Mapping) else None


def write_annotation(
    adata: AnnData,
    report: DatasetReport,
    groupby: str,
    *,
    key_added: str = DEFAULT_KEY,
    overwrite: bool = False,
) -> list[str]:
    """Write a report's labels into ``adata.obs`` and the report into ``adata.uns``.

    Writes ``obs['<key>_label']`` (categorical), ``obs['<key>_cl_id']``,
    ``obs['<key>_status']`` (supported / flagged / unknown), ``obs['<key>_confidence']``
    (float) and ``uns['<key>']`` (``report`` as JSON, ``groupby``, ``columns``).

    Returns
    -------
    list of str
        The slot paths written (``"obs/annotation_label"``...).

    Raises
    ------
    InvalidParameterError
        If a column of that name exists, was not written by scagent, and ``overwrite`` is False.
    """
    cols = {
        "label": f"{key_added}_label",
        "cl_id": f"{key_added}_cl_id",
        "status": f"{key_added}_status",
        "confidence": f"{key_added}_confidence",
    }
    for col in cols.values():
        if col in adata.obs.columns and _owner(adata, "obs", col) is None and not overwrite:
            raise InvalidParameterError(
                f"obs[{col!r}] already exists and was not written by scagent",
                remedy="pass key_added=<another prefix>, or overwrite=True to replace it",
            )
    if key_added in adata.uns and _owner(adata, "uns", key_added) is None and not overwrite:
        raise InvalidParameterError(
            f"uns[{key_added!r}] already exists and was not written by scagent",
            remedy="pass key_added=<another prefix>, or overwrite=True to replace it",
        )
    by_id = {c.cluster_id: c for c in report.clusters}
    codes = adata.obs[groupby].astype(str)
    labels = codes.map({k: v.label for k, v in by_id.items()}).fillna(UNKNOWN)
    adata.obs[cols["label"]] = pd.Categorical(labels.to_numpy())
    adata.obs[cols["cl_id"]] = pd.Categorical(
        codes.map({k: v.ontology_id or "" for k, v in by_id.items()}).fillna("").to_numpy()
    )
    adata.obs[cols["status"]] = pd.Categorical(
        codes.map({k: v.status for k, v in by_id.items()}).fillna("unknown").to_numpy(),
        categories=["supported", "flagged", "unknown"],
    )
    adata.obs[cols["confidence"]] = (
        codes.map({k: v.confidence for k, v in by_id.items()}).fillna(0.0).astype(float).to_numpy()
    )
    adata.uns[key_added] = {
        "report": report.to_json(indent=None),
        "groupby": groupby,
        "columns": list(cols.values()),
    }
    ledger = adata.uns.get(OWNED_KEYS)
    ledger = {k: dict(v) for k, v in ledger.items()} if isinstance(ledger, Mapping) else {}
    for col in cols.values():
        ledger.setdefault("obs", {})[col] = TOOL_ID
    ledger.setdefault("uns", {})[key_added] = TOOL_ID
    adata.uns[OWNED_KEYS] = ledger
    written = [f"obs/{c}" for c in cols.values()] + [f"uns/{key_added}", f"uns/{OWNED_KEYS}"]
    if report.stats.n_unknown == report.stats.n_clusters:
        warnings.warn("every cluster is Unknown", stacklevel=2)
    return written
