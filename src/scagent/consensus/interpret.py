"""Interpretation of a verified consensus run: per-cluster DE, marker-DB candidates, an optional LLM, and hard evidence invariants.

The run folder is only read, never written. Every claim the interpretation makes is
checked before anything is written: a cited marker must be in that cluster's DE table at
the cited rank (and a cited marker-DB entry in the database used), and a next step's
evidence reference must resolve to a real file, row, column and value of the typed run.
A claim that fails stops the command (:class:`InvariantViolation`, exit 7) and names the
claim. Exit codes: :mod:`scagent.consensus.errors`.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from scagent._atomic import atomic_write_text
from scagent.consensus._files import sha256_path
from scagent.consensus.align import align_labels
from scagent.consensus.errors import (
    AdataMismatch,
    CoverageBelowThreshold,
    InterpretError,
    InvariantViolation,
    LLMUnavailable,
    MarkerDBUnavailable,
)
from scagent.consensus.run import TypedRun, load_run
from scagent.errors import InvalidParameterError, LLMError, ScagentError

if TYPE_CHECKING:
    from anndata import AnnData

    from scagent.knowledge import MarkerDB
    from scagent.llm import LLMClient

__all__ = [
    "BANNERS",
    "BANNER_LLM",
    "BANNER_NO_LLM",
    "ClusterAssignment",
    "EvidenceMarker",
    "InterpretResult",
    "InterpretedAssignments",
    "NextStep",
    "check_invariants",
    "cluster_de",
    "contradiction_regions",
    "deterministic_candidates",
    "interpret_run",
    "resolve_ref",
]

#: First line of interpreted_report.md: with an LLM, and without one (--no-llm).
BANNER_LLM = "[A+I: Interpreted on verified consensus]"
BANNER_NO_LLM = "[I-noLLM: Structural interpretation on verified consensus]"
BANNERS = (BANNER_LLM, BANNER_NO_LLM)
PROMPT_CLUSTER = "interpret.cluster.v1"
PROMPT_SYNTHESIS = "interpret.synthesis.v1"
#: Run files a next step's evidence reference may point into (all are checksummed in plan.json).
REF_FILES = ("cross_method_nmi.csv", "member_scores.csv", "cluster_summary.csv")
_REF = re.compile(r"^(?P<file>[^:]+):row=(?P<row>.+),col=(?P<col>[^,]+),value=(?P<value>[^,]+)$")
_UNASSIGNED = "unassigned"


# --------------------------------------------------------------------------- schema


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class EvidenceMarker(_Model):
    """One marker claim: a gene of the cluster's DE table and the marker-DB entry it matches."""

    gene: str = Field(description="Gene symbol exactly as in the cluster's DE table.")
    de_rank: int = Field(ge=1, description="Its rank in that cluster's DE table (1 = top).")
    db_source: str | None = Field(description="Source of the marker-DB entry, or null if none.")
    db_celltype: str | None = Field(description="Cell type of the marker-DB entry, or null.")
    weight: float = Field(ge=0, le=1, description="Weight of the marker-DB entry (0 without one).")


class ClusterEvidence(_Model):
    markers: list[EvidenceMarker]
    mean_local_purity: float = Field(
        description="Mean share of a cell's kNN neighbours in its cluster."
    )
    member_agreement: float = Field(
        description="Mean share of members agreeing with the consensus per cell."
    )


class Candidate(_Model):
    cell_type: str
    cell_ontology_id: str | None
    score: float = Field(description="Sum over hit genes of weight x 1/de_rank.")
    genes: list[str]


class ClusterAssignment(_Model):
    cluster: str
    n_cells: int
    cell_type: str
    cell_ontology_id: str | None = None
    confidence: float = Field(ge=0, le=1)
    status: Literal["interpreted", "low_confidence"]
    demotion_reasons: list[str] = Field(default_factory=list)
    evidence: ClusterEvidence
    candidates: list[Candidate] = Field(default_factory=list)
    source: Literal["llm", "marker_db"]
    rationale: str = ""


class NextStep(_Model):
    action: str
    rationale: str = ""
    evidence_refs: list[str] = Field(
        description="Each 'FILE:row=ROW,col=COL,value=VALUE' into a file of the typed run."
    )


class Coverage(_Model):
    interpretable: int
    total: int
    fraction: float
    floor: float


class InterpretedAssignments(_Model):
    """The schema of ``interpreted_assignments.json``."""

    schema_version: int = 1
    banner: Literal[
        "[A+I: Interpreted on verified consensus]",
        "[I-noLLM: Structural interpretation on verified consensus]",
    ]
    run_id: str
    operator: str
    tissue: str | None
    species: str
    clusters: list[ClusterAssignment]
    next_steps: list[NextStep] = Field(max_length=3)
    coverage: Coverage


class LLMEvidence(_Model):
    markers: list[EvidenceMarker]


class LLMClusterAnswer(_Model):
    """What the LLM answers for one cluster."""

    cell_type: str
    cell_ontology_id: str | None = None
    confidence: float = Field(ge=0, le=1)
    evidence: LLMEvidence
    rationale: str = ""


class LLMSynthesis(_Model):
    """What the LLM answers in the synthesis call."""

    summary: str = ""
    next_steps: list[NextStep] = Field(max_length=3)


# --------------------------------------------------------------------------- preflight


def _load_adata(
    run: TypedRun, adata_path: str | os.PathLike[str] | None
) -> tuple[AnnData, Path, str]:
    from scagent.data import read

    recorded = run.plan.get("input", {}).get("path")
    path = Path(adata_path) if adata_path is not None else (Path(recorded) if recorded else None)
    if path is None:
        raise AdataMismatch("the run records no input path and no --adata was given")
    if not path.exists():
        raise AdataMismatch(f"the AnnData {str(path)!r} does not exist")
    try:
        adata = read(path)
    except ScagentError as exc:
        raise AdataMismatch(f"the AnnData {str(path)!r} cannot be read: {exc.message}") from None
    obs = pd.Index(adata.obs_names.astype(str))
    missing = ~run.labels["observation"].isin(obs)
    if missing.any():
        n = int(missing.sum())
        examples = ", ".join(run.labels.loc[missing, "observation"].head(3))
        raise AdataMismatch(
            f"{n} of {len(missing)} labelled cells of the run are not in {str(path)!r} (e.g. {examples})"
        )
    return adata, path.resolve(), sha256_path(path)


def _marker_db(
    tissue: str | None, markers: str | os.PathLike[str] | None, species: str
) -> tuple[MarkerDB, dict[str, Any]]:
    from scagent.knowledge import MarkerDB, normalize_tissue

    if markers is not None:
        path = Path(markers)
        try:
            db = MarkerDB.load(path)
        except ScagentError as exc:
            raise MarkerDBUnavailable(
                f"--markers {str(path)!r} is unusable: {exc.message}"
            ) from None
        sub = db.subset(species=species)
        if not len(sub):
            sub = db  # a plain marker list may carry no species
        record = {"kind": "file", "path": str(path.resolve()), "sha256": sha256_path(path)}
    else:
        match = normalize_tissue(tissue)
        sub = MarkerDB.default().subset(species=species, tissue=tissue)
        if match is None or not len(sub):
            raise MarkerDBUnavailable(
                f"the marker DB has no {species} markers for tissue {tissue!r}"
                + (f" (read as {match.name!r})" if match is not None else "")
            )
        record = {
            "kind": "bundled" if not len(MarkerDB.built()) else "bundled+built",
            "tissue": match.name,
            "uberon_id": match.uberon_id,
        }
    pos = sub.table[sub.table["polarity"].astype(str) == "positive"]
    if not len(pos):
        raise MarkerDBUnavailable(
            "the marker DB holds no positive markers for this tissue and species"
        )
    canonical = pos[["species", "tissue", "cell_type", "gene", "weight", "source"]].astype(str)
    digest = hashlib.sha256(canonical.to_csv(index=False).encode()).hexdigest()
    record |= {
        "rows": len(pos),
        "cell_types": int(pos["cell_type"].nunique()),
        "table_sha256": digest,
    }
    return sub, record


def _llm_client(llm: str | None, base_url: str | None, client: LLMClient | None) -> LLMClient:
    from scagent.llm import get_client

    try:
        client = client or get_client(llm, base_url=base_url)
    except ScagentError as exc:
        raise LLMUnavailable(f"no LLM client: {exc.message}") from None
    if client.backend == "offline":
        raise LLMUnavailable(
            "no LLM is configured (the offline backend cannot interpret free text)",
            remedy="pass --llm openai:MODEL / anthropic:MODEL / ollama:MODEL (or set SCAGENT_LLM), "
            "or pass --no-llm for the structural interpretation",
        )
    try:
        client.ping()
    except ScagentError as exc:
        raise LLMUnavailable(f"the LLM is not reachable: {exc.message}") from None
    return client


# --------------------------------------------------------------------------- evidence


def cluster_de(adata: AnnData, labels: pd.DataFrame, top_k: int = 20) -> pd.DataFrame:
    """Top-``top_k`` genes per consensus cluster, by scanpy's Wilcoxon test on log-normalized data.

    The data are brought into the log-normalized state by the inspector
    (:func:`scagent.data.ensure_ready_for`), so scaled or raw-count input both work.

    Returns
    -------
    pandas.DataFrame
        Columns ``cluster``, ``de_rank`` (1 = top), ``gene``, ``score``, ``logfoldchange``,
        ``pval_adj``; clusters in numeric order.
    """
    import anndata as ad
    import scanpy as sc

    from scagent.data import ensure_ready_for

    sub = adata[labels["observation"].to_numpy()]
    ready = ensure_ready_for(sub, needs="log_normalized")
    work = ad.AnnData(
        X=ready.X,
        obs=pd.DataFrame(
            {"cluster": pd.Categorical(labels["consensus_label"].to_numpy())}, index=ready.obs_names
        ),
        var=pd.DataFrame(index=ready.var_names.astype(str)),
    )
    work.uns["log1p"] = {"base": None}
    counts = work.obs["cluster"].value_counts()
    groups = [str(g) for g in counts.index if counts[g] >= 2]
    if len(counts) < 2:
        raise AdataMismatch("the run has a single consensus cluster: nothing to compare")
    sc.tl.rank_genes_groups(
        work,
        "cluster",
        groups=groups,
        reference="rest",
        method="wilcoxon",
        use_raw=False,
        pts=False,
    )
    df = sc.get.rank_genes_groups_df(work, group=None)
    if "group" not in df.columns:
        df.insert(0, "group", groups[0])
    df["group"] = df["group"].astype(str)
    df["de_rank"] = df.groupby("group", sort=False).cumcount() + 1
    df = df[df["de_rank"] <= top_k]
    out = pd.DataFrame(
        {
            "cluster": df["group"].to_numpy(),
            "de_rank": df["de_rank"].to_numpy(),
            "gene": df["names"].astype(str).to_numpy(),
            "score": df["scores"].to_numpy(dtype=float),
            "logfoldchange": df["logfoldchanges"].to_numpy(dtype=float),
            "pval_adj": df["pvals_adj"].to_numpy(dtype=float),
        }
    )
    out["_c"] = out["cluster"].astype(int)
    return out.sort_values(["_c", "de_rank"]).drop(columns="_c").reset_index(drop=True)


def _positive_rows(db: MarkerDB) -> pd.DataFrame:
    t = db.table
    pos = t[t["polarity"].astype(str) == "positive"]
    return pd.DataFrame(
        {
            "gene_key": pos["gene"].astype(str).str.upper().to_numpy(),
            "cell_type": pos["cell_type"].astype(str).to_numpy(),
            "cell_ontology_id": pos["cell_ontology_id"].astype(str).to_numpy(),
            "source": pos["source"].astype(str).to_numpy(),
            "weight": pos["weight"].astype(float).to_numpy(),
        }
    )


def deterministic_candidates(
    de: pd.DataFrame, db: MarkerDB, top_n: int = 5
) -> dict[str, list[dict[str, Any]]]:
    """Per cluster, marker-DB cell types whose genes are among its top DE genes, best first.

    A cell type scores the sum, over its genes in the cluster's DE table, of the DB
    entry's weight x 1/de_rank (the heaviest entry per gene counts once). Each candidate
    carries its evidence markers in the :class:`EvidenceMarker` shape.
    """
    rows = _positive_rows(db)
    out: dict[str, list[dict[str, Any]]] = {}
    for cluster, g in de.groupby("cluster", sort=False):
        top = pd.DataFrame({"gene": g["gene"].to_numpy(), "de_rank": g["de_rank"].to_numpy()})
        top["gene_key"] = top["gene"].str.upper()
        hits = top.merge(rows, on="gene_key")
        cands = []
        if len(hits):
            hits["type_key"] = np.where(
                hits["cell_ontology_id"].isin(["", "nan", "None"]),
                "label:" + hits["cell_type"].str.lower(),
                hits["cell_ontology_id"],
            )
            hits = hits.sort_values(["weight", "source"], ascending=[False, True])
            best = hits.drop_duplicates(["type_key", "gene_key"], keep="first")
            for key, h in best.groupby("type_key", sort=False):
                h = h.sort_values("de_rank")
                score = float((h["weight"] / h["de_rank"]).sum())
                name = h.sort_values(["weight", "de_rank"], ascending=[False, True])[
                    "cell_type"
                ].iloc[0]
                cl = None if str(key).startswith("label:") else str(key)
                evidence = [
                    {
                        "gene": r.gene,
                        "de_rank": int(r.de_rank),
                        "db_source": r.source,
                        "db_celltype": r.cell_type,
                        "weight": round(float(r.weight), 4),
                    }
                    for r in h.itertuples()
                ]
                cands.append(
                    {
                        "cell_type": name,
                        "cell_ontology_id": cl,
                        "score": score,
                        "evidence": evidence,
                    }
                )
            cands.sort(key=lambda c: (-c["score"], c["cell_type"]))
        out[str(cluster)] = cands[:top_n]
    return out


def contradiction_regions(run: TypedRun, min_pair_agreement: float = 0.8) -> pd.DataFrame:
    """Clusters where two members disagree: per cluster and member pair, the share of the cluster's cells the pair labels alike.

    Each member is aligned to the consensus (Hungarian); a row is written where the two
    members agree on fewer than ``min_pair_agreement`` of the cluster's cells, with the
    pair's NMI over all cells (from ``cross_method_nmi.csv``) beside it.
    """
    labels = run.labels
    cons_codes, cons = np.unique(labels["consensus_label"].to_numpy(), return_inverse=True)
    members = run.member_labels.loc[labels["observation"].to_numpy()]
    aligned = {}
    for col in members.columns:
        _, codes = np.unique(members[col].to_numpy(), return_inverse=True)
        aligned[col] = align_labels(cons, codes)[0]
    rows = []
    names = list(aligned)
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            same = aligned[a] == aligned[b]
            share = np.bincount(cons, weights=same, minlength=len(cons_codes)) / np.bincount(
                cons, minlength=len(cons_codes)
            )
            nmi = (
                float(run.cross_nmi.loc[a, b])
                if a in run.cross_nmi.index and b in run.cross_nmi.columns
                else math.nan
            )
            for code in np.flatnonzero(share < min_pair_agreement):
                rows.append(
                    {
                        "cluster": str(cons_codes[code]),
                        "member_a": a,
                        "member_b": b,
                        "pair_agreement_in_cluster": float(share[code]),
                        "pair_nmi": nmi,
                        "n_cells": int((cons == code).sum()),
                    }
                )
    cols = ["cluster", "member_a", "member_b", "pair_agreement_in_cluster", "pair_nmi", "n_cells"]
    df = pd.DataFrame(rows, columns=cols)
    return df.sort_values(["pair_agreement_in_cluster", "cluster"]).reset_index(drop=True)


# --------------------------------------------------------------------------- references


def _decimals(text: str) -> int:
    text = text.strip().lower()
    if "e" in text:
        return 12
    return len(text.split(".", 1)[1]) if "." in text else 0


def resolve_ref(ref: str, run: TypedRun) -> str | None:
    """Check one evidence reference against the typed run; None when it resolves, else why not.

    A reference is ``FILE:row=ROW,col=COL,value=VALUE``. FILE must be one of
    :data:`REF_FILES` (checksummed in plan.json); ROW a row label (first column), COL a
    column, and VALUE the cell's value at the precision cited (``0.61`` matches 0.6132,
    at least two decimals for a fraction), or equal text.
    """
    m = _REF.match(ref.strip())
    if m is None:
        return f"{ref!r} is not FILE:row=ROW,col=COL,value=VALUE"
    name, row, col, value = (m.group(k).strip() for k in ("file", "row", "col", "value"))
    tables = {
        "cross_method_nmi.csv": run.cross_nmi,
        "member_scores.csv": run.member_scores,
        "cluster_summary.csv": run.cluster_summary,
    }
    if name not in tables:
        return f"{ref!r}: {name} is not a file of the typed run ({', '.join(REF_FILES)})"
    table = tables[name].copy()
    table.index = table.index.astype(str)
    if row not in table.index:
        return f"{ref!r}: {name} has no row {row!r}"
    if col not in table.columns:
        return f"{ref!r}: {name} has no column {col!r}"
    actual = table.loc[row, col]
    try:
        cited = float(value)
        number = float(actual)
    except (TypeError, ValueError):
        return (
            None
            if str(actual) == value
            else f"{ref!r}: {name}[{row}, {col}] is {actual!r}, not {value!r}"
        )
    if not math.isfinite(number):
        return f"{ref!r}: {name}[{row}, {col}] is {actual!r}"
    d = _decimals(value)
    if d < 2 and number != round(number):
        return f"{ref!r}: cite {name}[{row}, {col}] with at least two decimals (it is {number:.6g})"
    if d >= 12:
        ok = math.isclose(cited, number, rel_tol=1e-6, abs_tol=1e-12)
    else:
        ok = abs(round(number, d) - cited) <= 0.5 * 10 ** (-d) + 1e-12
    return None if ok else f"{ref!r}: {name}[{row}, {col}] is {number:.6g}, not {value}"


# --------------------------------------------------------------------------- invariants


def check_invariants(
    assignments: InterpretedAssignments, de: pd.DataFrame, db: MarkerDB, run: TypedRun
) -> None:
    """Raise :class:`InvariantViolation` naming the first claim that its evidence does not back.

    1. Every cluster of the run is interpreted once and has non-empty evidence markers.
    2. Every cited marker is in that cluster's DE table at the cited rank; a cited
       marker-DB entry (source, cell type, gene) exists in the database used, with the
       cited weight.
    3. Every next step has evidence_refs, and every ref resolves (:func:`resolve_ref`).
    4. The banner is one of :data:`BANNERS`.
    """
    if assignments.banner not in BANNERS:
        raise InvariantViolation(f"banner {assignments.banner!r} is not one of the two allowed")
    ranks = {(str(r.cluster), int(r.de_rank)): str(r.gene) for r in de.itertuples()}
    rows = _positive_rows(db)
    db_weights = rows.groupby(["gene_key", "cell_type", "source"])["weight"].max().to_dict()
    expected = set(run.labels["consensus_label"].astype(str))
    seen = [c.cluster for c in assignments.clusters]
    if set(seen) != expected or len(seen) != len(expected):
        raise InvariantViolation(
            f"the interpretation covers clusters {sorted(set(seen), key=_num)} but the run has "
            f"{sorted(expected, key=_num)}"
        )
    for c in assignments.clusters:
        if not c.evidence.markers:
            raise InvariantViolation(
                f"cluster {c.cluster} ({c.cell_type!r}) cites no evidence markers"
            )
        for m in c.evidence.markers:
            at_rank = ranks.get((c.cluster, m.de_rank))
            if at_rank != m.gene:
                where = [r for (cl, r), g in ranks.items() if cl == c.cluster and g == m.gene]
                found = (
                    f"it is at rank {where[0]}" if where else "it is not in that cluster's DE table"
                )
                raise InvariantViolation(
                    f"cluster {c.cluster} ({c.cell_type!r}) cites marker {m.gene} at DE rank "
                    f"{m.de_rank}, but {found} (rank {m.de_rank} is {at_rank or 'absent'})"
                )
            if m.db_source is None and m.db_celltype is None:
                continue
            w = db_weights.get((m.gene.upper(), str(m.db_celltype), str(m.db_source)))
            if w is None or abs(w - m.weight) > 1e-3:
                what = (
                    "no such entry" if w is None else f"its weight is {w:.3g}, not {m.weight:.3g}"
                )
                raise InvariantViolation(
                    f"cluster {c.cluster} ({c.cell_type!r}) cites marker-DB entry {m.gene} -> "
                    f"{m.db_celltype!r} from {m.db_source!r}: {what}"
                )
    for i, step in enumerate(assignments.next_steps, 1):
        if not step.evidence_refs:
            raise InvariantViolation(f"next step {i} ({step.action!r}) has no evidence_refs")
        for ref in step.evidence_refs:
            why = resolve_ref(ref, run)
            if why is not None:
                raise InvariantViolation(f"next step {i} ({step.action!r}) cites {why}")


def _num(x: str) -> tuple[int, str]:
    return (int(x), x) if str(x).isdigit() else (10**9, str(x))


# --------------------------------------------------------------------------- assignments


def _same_type(
    a: str | None, b: str | None, a_id: str | None = None, b_id: str | None = None
) -> bool:
    from scagent.knowledge import label_to_cl
    from scagent.knowledge.ontology import normalize_label

    if not a or not b:
        return False
    if normalize_label(a) == normalize_label(b):
        return True
    ids_a = {a_id} if a_id else set()
    ids_b = {b_id} if b_id else set()
    ma, mb = label_to_cl(a), label_to_cl(b)
    if ma.confident and ma.cl_id:
        ids_a.add(ma.cl_id)
    if mb.confident and mb.cl_id:
        ids_b.add(mb.cl_id)
    return bool(ids_a & ids_b)


def _fallback_evidence(de: pd.DataFrame, cluster: str, n: int = 3) -> list[dict[str, Any]]:
    g = de[de["cluster"] == cluster].head(n)
    return [
        {
            "gene": r.gene,
            "de_rank": int(r.de_rank),
            "db_source": None,
            "db_celltype": None,
            "weight": 0.0,
        }
        for r in g.itertuples()
    ]


def _deterministic_answer(
    cluster: str, cands: list[dict[str, Any]], de: pd.DataFrame
) -> dict[str, Any]:
    if not cands:
        return {
            "cell_type": _UNASSIGNED,
            "cell_ontology_id": None,
            "confidence": 0.0,
            "evidence": {"markers": _fallback_evidence(de, cluster)},
            "rationale": "no marker-DB cell type has a gene among the cluster's top DE genes",
        }
    s1 = cands[0]["score"]
    s2 = cands[1]["score"] if len(cands) > 1 else 0.0
    # Confidence: the top candidate's share of the two best scores (1.0 when unopposed).
    conf = s1 / (s1 + s2) if s1 + s2 > 0 else 0.0
    top = cands[0]
    runner = f"; runner-up {cands[1]['cell_type']} ({s2:.2f})" if len(cands) > 1 else ""
    return {
        "cell_type": top["cell_type"],
        "cell_ontology_id": top["cell_ontology_id"],
        "confidence": round(conf, 4),
        "evidence": {"markers": top["evidence"]},
        "rationale": f"top marker-DB candidate by weight x 1/de_rank ({s1:.2f}){runner}",
    }


def _demotions(
    answer: dict[str, Any],
    agreement: float,
    *,
    min_confidence: float,
    min_agreement: float,
    min_markers: int,
) -> list[str]:
    reasons = []
    if answer["cell_type"].strip().lower() in {_UNASSIGNED, "unknown", "", "none"}:
        reasons.append("no cell type")
    if answer["confidence"] < min_confidence:
        reasons.append(f"confidence {answer['confidence']:.2f} < {min_confidence}")
    support = [
        m
        for m in answer["evidence"]["markers"]
        if m.get("db_source")
        and _same_type(
            m.get("db_celltype"), answer["cell_type"], None, answer.get("cell_ontology_id")
        )
    ]
    if len({m["gene"] for m in support}) < min_markers:
        reasons.append(
            f"{len(support)} marker-DB marker(s) of {answer['cell_type']!r} cited (needs {min_markers})"
        )
    if agreement < min_agreement:
        reasons.append(f"member agreement {agreement:.2f} < {min_agreement}")
    return reasons


def _cluster_prompt(ctx: dict[str, Any]) -> str:
    return (
        f"Interpret consensus cluster {ctx['cluster']} of a single-cell RNA-seq dataset "
        f"({ctx['species']}, tissue {ctx['tissue'] or 'unspecified'}).\n"
        "Name its cell type. Cite as evidence.markers only genes of the DE table below, each "
        "with its exact de_rank, and for each the marker-DB entry (db_source, db_celltype, "
        "weight) exactly as listed among the candidates' evidence; use null db fields and "
        "weight 0 for a gene without an entry. Do not cite any other gene.\n"
        f"Context (JSON):\n```json\n{json.dumps(ctx, indent=1)}\n```"
    )


def _synthesis_prompt(ctx: dict[str, Any]) -> str:
    return (
        "These are the interpreted clusters of a consensus clustering and the agreement "
        f"between its clustering members. Propose at most {ctx['max_next_steps']} next "
        "analysis steps. Each must cite evidence_refs of the form "
        "FILE:row=ROW,col=COL,value=VALUE, where FILE is cross_method_nmi.csv, "
        "member_scores.csv or cluster_summary.csv, ROW and COL are a row and column of the "
        "tables below and VALUE the value there (at least two decimals).\n"
        f"Context (JSON):\n```json\n{json.dumps(ctx, indent=1, default=float)}\n```"
    )


def _table_records(df: pd.DataFrame, index_name: str) -> list[dict[str, Any]]:
    out = df.copy()
    out.index = out.index.astype(str)
    out.index.name = index_name
    return json.loads(out.reset_index().to_json(orient="records", double_precision=4))


def _deterministic_next_steps(
    run: TypedRun, clusters: list[ClusterAssignment], k: int
) -> list[dict[str, Any]]:
    steps = []
    cross = run.cross_nmi
    ids = list(cross.index.astype(str))
    if len(ids) >= 2:
        vals = cross.to_numpy(dtype=float).copy()
        np.fill_diagonal(vals, np.inf)
        i, j = np.unravel_index(np.argmin(vals), vals.shape)
        v = vals[i, j]
        steps.append(
            {
                "action": f"Compare members {ids[i]} and {ids[j]} on the contradiction regions before trusting the boundaries they disagree on",
                "rationale": f"they share the least information of any member pair (NMI {v:.3f})",
                "evidence_refs": [f"cross_method_nmi.csv:row={ids[i]},col={ids[j]},value={v:.4f}"],
            }
        )
    summary = run.cluster_summary
    if len(summary):
        worst = summary["mean_agreement"].astype(float).idxmin()
        v = float(summary.loc[worst, "mean_agreement"])
        steps.append(
            {
                "action": f"Sub-cluster or inspect consensus cluster {worst}: its cells are the least agreed on",
                "rationale": f"mean member agreement {v:.3f}",
                "evidence_refs": [
                    f"cluster_summary.csv:row={worst},col=mean_agreement,value={v:.4f}"
                ],
            }
        )
    scores = run.member_scores.dropna(subset=["composite"])
    if len(scores):
        low = scores["composite"].astype(float).idxmin()
        v = float(scores.loc[low, "composite"])
        steps.append(
            {
                "action": f"Re-run or drop member {low}, which agrees least with the consensus",
                "rationale": f"composite (mean of NMI and ARI with the consensus) {v:.3f}",
                "evidence_refs": [f"member_scores.csv:row={low},col=composite,value={v:.4f}"],
            }
        )
    return steps[:k]


# --------------------------------------------------------------------------- the command


@dataclass
class InterpretResult:
    """What :func:`interpret_run` wrote and decided."""

    output: Path
    assignments: InterpretedAssignments
    de: pd.DataFrame
    contradictions: pd.DataFrame
    audit: dict[str, Any]
    files: dict[str, str] = field(default_factory=dict)


def _check_args(
    run_dir: Path,
    output: Path,
    tissue: Any,
    markers: Any,
    top_k_markers: int,
    top_k_next_steps: int,
    coverage_floor: float,
) -> None:
    if (tissue is None) == (markers is None):
        raise InvalidParameterError(
            "give exactly one of --tissue and --markers",
            remedy="e.g. --tissue blood, or --markers markers.tsv",
        )
    if not 1 <= top_k_markers <= 500:
        raise InvalidParameterError(f"--top-k-markers {top_k_markers} is out of range (1-500)")
    if not 0 <= top_k_next_steps <= 3:
        raise InvalidParameterError(f"--top-k-next-steps {top_k_next_steps} is out of range (0-3)")
    if not 0.0 <= coverage_floor <= 1.0:
        raise InvalidParameterError(f"--coverage-floor {coverage_floor} is out of range (0-1)")
    r, o = run_dir.resolve(), output.resolve()
    if o == r or r in o.parents:
        raise InvalidParameterError(
            f"--output {output} is inside RUN_DIR {run_dir}; interpretation never writes into a typed run",
            remedy="choose an output folder outside RUN_DIR",
        )


def interpret_run(
    run_dir: str | os.PathLike[str],
    output: str | os.PathLike[str],
    *,
    tissue: str | None = None,
    markers: str | os.PathLike[str] | None = None,
    adata: str | os.PathLike[str] | None = None,
    no_llm: bool = False,
    llm: str | None = None,
    base_url: str | None = None,
    client: LLMClient | None = None,
    seed: int = 0,
    top_k_markers: int = 20,
    top_k_next_steps: int = 3,
    coverage_floor: float = 0.5,
    species: str | None = None,
    min_confidence: float = 0.5,
    min_agreement: float = 0.5,
    min_markers: int = 2,
) -> InterpretResult:
    """Interpret a verified consensus run; write the report, assignments, DE, contradictions and audit.

    Parameters
    ----------
    run_dir
        Folder written by ``scagent consensus`` (only read).
    output
        Folder for the interpretation (created; must not be inside ``run_dir``).
    tissue, markers
        Exactly one: a tissue the marker DB knows (``immune``, ``blood``, ``brain``, ...),
        or a marker file (any format :meth:`MarkerDB.load` reads).
    adata
        The AnnData; default the run's recorded input path.
    no_llm
        Fill the schema from the marker-DB candidates instead of asking an LLM.
    llm, base_url, client
        The LLM (``--llm`` spec, or a ready client); it must be reachable.
    seed
        Seed sent with every LLM request (recorded).
    top_k_markers
        DE genes per cluster kept in ``de_per_cluster.csv`` and offered as evidence.
    top_k_next_steps
        Next steps at most (0-3).
    coverage_floor
        Share of clusters that must be interpretable.
    species
        ``human`` or ``mouse``; default the inspector's guess (human if unknown).
    min_confidence, min_agreement, min_markers
        A cluster is demoted to ``low_confidence`` when its confidence or member agreement
        is below these, or it cites fewer than ``min_markers`` marker-DB markers of its type.

    Raises
    ------
    InvalidParameterError (2), TypedRunInvalid (3), AdataMismatch (4), MarkerDBUnavailable (5),
    LLMUnavailable (6), InvariantViolation (7), CoverageBelowThreshold (8)
        See :mod:`scagent.consensus.errors`. With 8 the outputs have been written.
    """
    run_dir, output = Path(run_dir), Path(output)
    _check_args(run_dir, output, tissue, markers, top_k_markers, top_k_next_steps, coverage_floor)
    run = load_run(run_dir)
    data, adata_path, adata_sha = _load_adata(run, adata)
    if species is None:
        from scagent.data import inspect_adata

        guessed = inspect_adata(data).species
        species = guessed if guessed in ("human", "mouse") else "human"
    db, db_record = _marker_db(tissue, markers, species)
    llm_client = None if no_llm else _llm_client(llm, base_url, client)

    try:
        de = cluster_de(data, run.labels, top_k_markers)
    except ScagentError as exc:
        if isinstance(exc, InterpretError):
            raise
        raise AdataMismatch(
            f"the AnnData cannot serve differential expression: {exc.message}"
        ) from None
    cands = deterministic_candidates(de, db)
    summary = run.cluster_summary
    clusters = sorted(summary.index.astype(str), key=_num)
    stats = {
        c: (
            int(summary.loc[c, "n_cells"]),
            float(summary.loc[c, "mean_local_purity"]),
            float(summary.loc[c, "mean_agreement"]),
        )
        for c in clusters
    }
    contradictions = contradiction_regions(run)

    llm_records: list[dict[str, Any]] = []
    if llm_client is None:
        answers = {c: _deterministic_answer(c, cands.get(c, []), de) for c in clusters}
        source: Literal["llm", "marker_db"] = "marker_db"
    else:
        answers = _ask_clusters(
            llm_client, clusters, cands, de, stats, tissue, species, seed, llm_records
        )
        source = "llm"

    assignments_list = []
    for c in clusters:
        a = answers[c]
        n, purity, agree = stats[c]
        reasons = _demotions(
            a,
            agree,
            min_confidence=min_confidence,
            min_agreement=min_agreement,
            min_markers=min_markers,
        )
        assignments_list.append(
            ClusterAssignment(
                cluster=c,
                n_cells=n,
                cell_type=a["cell_type"],
                cell_ontology_id=a.get("cell_ontology_id"),
                confidence=float(a["confidence"]),
                status="low_confidence" if reasons else "interpreted",
                demotion_reasons=reasons,
                evidence=ClusterEvidence(
                    markers=[EvidenceMarker(**m) for m in a["evidence"]["markers"]],
                    mean_local_purity=round(purity, 4),
                    member_agreement=round(agree, 4),
                ),
                candidates=[
                    Candidate(
                        cell_type=x["cell_type"],
                        cell_ontology_id=x["cell_ontology_id"],
                        score=round(x["score"], 4),
                        genes=[e["gene"] for e in x["evidence"]],
                    )
                    for x in cands.get(c, [])[:3]
                ],
                source=source,
                rationale=a.get("rationale", ""),
            )
        )
    if llm_client is None:
        steps = _deterministic_next_steps(run, assignments_list, top_k_next_steps)
        synthesis_summary = ""
    else:
        steps, synthesis_summary = _ask_synthesis(
            llm_client,
            run,
            assignments_list,
            contradictions,
            tissue,
            species,
            seed,
            top_k_next_steps,
            llm_records,
        )
    interpretable = sum(c.status == "interpreted" for c in assignments_list)
    coverage = Coverage(
        interpretable=interpretable,
        total=len(assignments_list),
        fraction=round(interpretable / max(len(assignments_list), 1), 4),
        floor=coverage_floor,
    )
    assignments = InterpretedAssignments(
        banner=BANNER_NO_LLM if llm_client is None else BANNER_LLM,
        run_id=run.run_id,
        operator=run.operator,
        tissue=db_record.get("tissue"),
        species=species,
        clusters=assignments_list,
        next_steps=[NextStep(**s) for s in steps],
        coverage=coverage,
    )
    check_invariants(assignments, de, db, run)

    below = coverage.fraction < coverage_floor
    audit = {
        "schema_version": 1,
        "created_at": _dt.datetime.now(tz=_dt.UTC).isoformat(timespec="seconds"),
        "typed_run": {
            "run_id": run.run_id,
            "path": str(run.path.resolve()),
            "plan_sha256": run.plan.get("plan_sha256"),
            "schema_version": run.plan.get("schema_version"),
            "operator": run.operator,
        },
        "adata": {
            "path": str(adata_path),
            "sha256": adata_sha,
            "matches_run_input": adata_sha == run.plan.get("input", {}).get("sha256"),
        },
        "marker_db": db_record,
        "llm": None
        if llm_client is None
        else {
            "backend": llm_client.backend,
            "model": llm_client.model,
            "seed": seed,
            "prompt_versions": [PROMPT_CLUSTER, PROMPT_SYNTHESIS],
            "calls": llm_records,
            "usage": llm_client.usage.as_dict(),
        },
        "seed": seed,
        "parameters": {
            "top_k_markers": top_k_markers,
            "top_k_next_steps": top_k_next_steps,
            "coverage_floor": coverage_floor,
            "min_confidence": min_confidence,
            "min_agreement": min_agreement,
            "min_markers": min_markers,
        },
        "namespaces": {
            "interpretation": "A+I" if llm_client is not None else "I-noLLM",
            "banner": assignments.banner,
            "clusters": f"consensus:{run.run_id}:{run.operator}",
            "labels_column": f"consensus_{run.operator}",
            "marker_db": f"markerdb:{db_record['table_sha256'][:12]}",
        },
        "coverage": coverage.model_dump(),
        "status": "coverage_below_threshold" if below else "ok",
    }
    result = InterpretResult(output, assignments, de, contradictions, audit)
    _write_outputs(result, run, synthesis_summary)
    if below:
        raise CoverageBelowThreshold(
            f"{interpretable} of {coverage.total} clusters are interpretable ({coverage.fraction:.0%}), "
            f"below the floor of {coverage_floor:.0%}"
        )
    return result


def _ask_clusters(
    client: LLMClient,
    clusters: list[str],
    cands: dict[str, list[dict[str, Any]]],
    de: pd.DataFrame,
    stats: dict[str, tuple[int, float, float]],
    tissue: str | None,
    species: str,
    seed: int,
    records: list[dict[str, Any]],
) -> dict[str, dict[str, Any]]:
    from scagent.llm import InvalidLLMOutputError, map_concurrent

    requests, contexts = [], []
    for c in clusters:
        n, purity, agree = stats[c]
        g = de[de["cluster"] == c]
        ctx = {
            "cluster": c,
            "n_cells": n,
            "member_agreement": round(agree, 4),
            "mean_local_purity": round(purity, 4),
            "tissue": tissue,
            "species": species,
            "de_table": [
                {
                    "gene": r.gene,
                    "de_rank": int(r.de_rank),
                    "logfoldchange": round(float(r.logfoldchange), 3),
                }
                for r in g.itertuples()
            ],
            "candidates": cands.get(c, []),
        }
        contexts.append(ctx)
        requests.append(
            {
                "messages": _cluster_prompt(ctx),
                "system": "You are an expert in single-cell biology. Claim only what the given evidence shows.",
                "json_schema": LLMClusterAnswer,
                "prompt_version": PROMPT_CLUSTER,
                "seed": seed,
                "context": ctx,
                "cache_key_extra": {"species": species, "tissue": tissue},
            }
        )
    responses = map_concurrent(client, requests, max_workers=4, return_exceptions=True)
    out = {}
    for c, resp in zip(clusters, responses, strict=True):
        if isinstance(resp, InvalidLLMOutputError):
            raise InvariantViolation(
                f"the LLM's answer for cluster {c} does not fit the schema: {resp.message}"
            )
        if isinstance(resp, LLMError):
            raise LLMUnavailable(f"the LLM failed on cluster {c}: {resp.message}")
        if isinstance(resp, BaseException):
            raise resp
        records.append({"cluster": c, **resp.record()})
        out[c] = resp.parsed.model_dump()
    return out


def _ask_synthesis(
    client: LLMClient,
    run: TypedRun,
    clusters: list[ClusterAssignment],
    contradictions: pd.DataFrame,
    tissue: str | None,
    species: str,
    seed: int,
    k: int,
    records: list[dict[str, Any]],
) -> tuple[list[dict[str, Any]], str]:
    from scagent.llm import InvalidLLMOutputError

    if k == 0:
        return [], ""
    ctx = {
        "max_next_steps": k,
        "tissue": tissue,
        "species": species,
        "clusters": [
            {
                "cluster": c.cluster,
                "cell_type": c.cell_type,
                "confidence": c.confidence,
                "status": c.status,
            }
            for c in clusters
        ],
        "member_scores.csv": _table_records(run.member_scores, "member"),
        "cross_method_nmi.csv": _table_records(run.cross_nmi, "member"),
        "cluster_summary.csv": _table_records(run.cluster_summary, "cluster"),
        "contradiction_regions": json.loads(
            contradictions.head(20).to_json(orient="records", double_precision=4)
        ),
    }
    try:
        resp = client.complete(
            _synthesis_prompt(ctx),
            system="You plan the next steps of a single-cell analysis. Every step must cite its evidence.",
            json_schema=LLMSynthesis,
            prompt_version=PROMPT_SYNTHESIS,
            seed=seed,
            context=ctx,
            cache_key_extra={"species": species, "tissue": tissue},
        )
    except InvalidLLMOutputError as exc:
        raise InvariantViolation(
            f"the LLM's synthesis does not fit the schema: {exc.message}"
        ) from None
    except LLMError as exc:
        raise LLMUnavailable(f"the LLM failed on the synthesis: {exc.message}") from None
    records.append({"cluster": None, **resp.record()})
    parsed: LLMSynthesis = resp.parsed
    return [s.model_dump() for s in parsed.next_steps[:k]], parsed.summary


# --------------------------------------------------------------------------- outputs


def _report(result: InterpretResult, run: TypedRun, synthesis_summary: str) -> str:
    a = result.assignments
    lines = [
        a.banner,
        "",
        f"# Interpretation of consensus run {a.run_id}",
        "",
        f"Operator `{a.operator}`, species {a.species}, tissue {a.tissue or 'from --markers'}; "
        f"{a.coverage.interpretable} of {a.coverage.total} clusters interpretable "
        f"({a.coverage.fraction:.0%}, floor {a.coverage.floor:.0%}).",
        "",
    ]
    if synthesis_summary:
        lines += [synthesis_summary.strip(), ""]
    lines += [
        "## Clusters",
        "",
        "| cluster | cells | cell type | confidence | status | agreement | purity | evidence (gene@rank) |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for c in a.clusters:
        ev = ", ".join(f"{m.gene}@{m.de_rank}" for m in c.evidence.markers[:6])
        lines.append(
            f"| {c.cluster} | {c.n_cells} | {c.cell_type} | {c.confidence:.2f} | {c.status} | "
            f"{c.evidence.member_agreement:.2f} | {c.evidence.mean_local_purity:.2f} | {ev} |"
        )
    demoted = [c for c in a.clusters if c.demotion_reasons]
    if demoted:
        lines += ["", "Low confidence:", ""]
        lines += [f"- cluster {c.cluster}: {'; '.join(c.demotion_reasons)}" for c in demoted]
    lines += ["", "## Next steps", ""]
    if not a.next_steps:
        lines.append("None proposed.")
    for i, s in enumerate(a.next_steps, 1):
        lines.append(f"{i}. {s.action} — {s.rationale} (evidence: {'; '.join(s.evidence_refs)})")
    n_contra = len(result.contradictions)
    lines += [
        "",
        "## Contradiction regions",
        "",
        f"{n_contra} (cluster, member pair) region(s) where two members agree on fewer than 80% "
        "of a cluster's cells: see contradiction_regions.csv.",
        "",
    ]
    return "\n".join(lines)


def _write_outputs(result: InterpretResult, run: TypedRun, synthesis_summary: str) -> None:
    out = result.output
    out.mkdir(parents=True, exist_ok=True)
    a = result.assignments
    texts = {
        "de_per_cluster.csv": result.de.to_csv(
            index=False, float_format="%.6g", lineterminator="\n"
        ),
        "contradiction_regions.csv": result.contradictions.to_csv(
            index=False, float_format="%.6g", lineterminator="\n"
        ),
        "interpreted_assignments.json": a.model_dump_json(indent=2) + "\n",
        "interpreted_report.md": _report(result, run, synthesis_summary),
    }
    for name, text in texts.items():
        atomic_write_text(out / name, text)
        result.files[name] = sha256_path(out / name)
    result.audit["outputs"] = dict(result.files)
    atomic_write_text(out / "audit.json", json.dumps(result.audit, indent=2, default=str) + "\n")
    result.files["audit.json"] = sha256_path(out / "audit.json")


def assignments_json_schema() -> dict[str, Any]:
    """The JSON schema of ``interpreted_assignments.json``."""
    return InterpretedAssignments.model_json_schema()
