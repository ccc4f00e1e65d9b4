"""A typed consensus run: members, one operator, scores, and a folder of checksummed files that interpretation can trust.

:func:`consensus` computes (AnnData in, labels written to ``obs``); :func:`write_run`
writes the run folder with ``plan.json`` last (its presence marks a complete run);
:func:`load_run` reads a folder back and refuses one that is not intact.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from scipy import sparse

from scagent._atomic import atomic_path, atomic_write_text
from scagent.consensus._files import sha256_path
from scagent.consensus.errors import TooFewMembersError, TypedRunInvalid
from scagent.consensus.members import MemberInputs, MemberResult, parse_members, run_members
from scagent.consensus.operators import OPERATORS, OperatorResult, coassoc, kmode, pairwise_nmi
from scagent.errors import InvalidParameterError, MissingPrerequisiteError

if TYPE_CHECKING:
    from anndata import AnnData

__all__ = [
    "PLAN_KIND",
    "RUN_FILES",
    "SCHEMA_VERSION",
    "ConsensusResult",
    "TypedRun",
    "consensus",
    "load_run",
    "prepare_inputs",
    "write_run",
]

#: Version of the run folder's layout; interpretation refuses versions it does not know.
SCHEMA_VERSION = 1
SUPPORTED_SCHEMA_VERSIONS = (1,)
#: ``plan.json['kind']`` of a typed consensus run.
PLAN_KIND = "scagent.consensus.run"
#: The files every run holds besides plan.json (``adata.h5ad`` is added with --write-adata).
RUN_FILES = (
    "consensus_labels.tsv",
    "member_scores.csv",
    "cross_method_nmi.csv",
    "cluster_summary.csv",
    "member_labels.tsv",
)
_VERSIONED = (
    "scagent", "numpy", "scipy", "pandas", "anndata", "scanpy", "scikit-learn", "igraph",
    "leidenalg", "pynndescent", "squidpy",
)  # fmt: skip


# --------------------------------------------------------------------------- inputs


def prepare_inputs(
    adata: AnnData,
    *,
    use_rep: str = "auto",
    n_pcs: int = 30,
    n_neighbors: int = 15,
    seed: int = 0,
) -> tuple[MemberInputs, dict[str, Any]]:
    """The embedding and kNN graph every member shares, from ``adata`` (never modified).

    ``use_rep='auto'`` takes ``obsm['X_pca_harmony']`` or ``obsm['X_pca']``; when neither
    exists, PCA is computed on a working copy: log-normalized values (from wherever the
    inspector finds them), 2,000 highly variable genes, ``n_pcs`` components. The graph is
    always built here, with :func:`scagent.tools.neighbors`, so that it is recorded.

    Returns
    -------
    The inputs and a JSON-ready record of how they were made.
    """
    import anndata as ad
    import scanpy as sc

    from scagent.tools.graph import AUTO_REPRESENTATIONS, neighbors

    if adata.n_obs < 10:
        raise InvalidParameterError(
            f"consensus clustering needs at least 10 cells, got {adata.n_obs}"
        )
    info: dict[str, Any] = {"n_neighbors": n_neighbors}
    rep = (
        next((k for k in AUTO_REPRESENTATIONS if k in adata.obsm), None)
        if use_rep == "auto"
        else use_rep
    )
    if rep is not None:
        if rep not in adata.obsm:
            raise MissingPrerequisiteError(
                f"use_rep '{rep}' is not in obsm (present: {', '.join(adata.obsm) or 'none'})",
                remedy="pass an existing obsm key or use_rep='auto'",
            )
        emb = np.asarray(adata.obsm[rep])[:, :n_pcs]
        info |= {"use_rep": rep, "source": f"obsm['{rep}']", "n_pcs": int(emb.shape[1])}
    else:
        from scagent.data import ensure_ready_for

        ready = ensure_ready_for(adata, needs="log_normalized")
        work = ad.AnnData(X=ready.X, var=pd.DataFrame(index=ready.var_names))
        n_top = min(2000, work.n_vars)
        sc.pp.highly_variable_genes(work, n_top_genes=n_top)
        n_comps = max(2, min(n_pcs, work.n_obs - 1, n_top - 1))
        sc.pp.pca(work, n_comps=n_comps, mask_var="highly_variable", random_state=seed)
        emb = work.obsm["X_pca"]
        info |= {
            "use_rep": "X_pca",
            "source": f"computed: log-normalized ({ready.uns.get('scagent_prepared_from', 'X')}), "
            f"{n_top} HVGs, PCA {n_comps}",
            "n_pcs": int(n_comps),
        }
    emb = np.ascontiguousarray(emb, dtype=np.float32)
    if not np.isfinite(emb).all():
        raise InvalidParameterError(f"the embedding {info['source']} holds NaN or Inf values")
    tmp = ad.AnnData(obs=pd.DataFrame(index=adata.obs_names.copy()), obsm={"X_pca": emb})
    neighbors(
        tmp, use_rep="X_pca", n_neighbors=min(n_neighbors, adata.n_obs - 1), random_state=seed
    )
    graph = sparse.csr_matrix(tmp.obsp["connectivities"])
    spatial = (
        np.asarray(adata.obsm["spatial"], dtype=np.float64) if "spatial" in adata.obsm else None
    )
    info["spatial"] = spatial is not None
    return MemberInputs(emb, graph, spatial, n_neighbors), info


def local_purity(labels: np.ndarray, graph: sparse.csr_matrix) -> np.ndarray:
    """Per cell, the share of its graph neighbours that carry its label."""
    g = sparse.csr_matrix(graph)
    deg = np.diff(g.indptr)
    rows = np.repeat(np.arange(g.shape[0]), deg)
    same = labels[g.indices] == labels[rows]
    return np.bincount(rows, weights=same, minlength=g.shape[0]) / np.maximum(deg, 1)


# --------------------------------------------------------------------------- result


@dataclass
class ConsensusResult:
    """Everything a consensus run produced, in memory."""

    obs_names: pd.Index
    members: list[MemberResult]
    operator: str
    operator_params: dict[str, Any]
    result: OperatorResult
    local_purity: np.ndarray
    cross_nmi: pd.DataFrame
    member_scores: pd.DataFrame
    inputs_info: dict[str, Any]
    seed: int
    timings: dict[str, float] = field(default_factory=dict)
    #: The shared kNN graph the members and ``coassoc`` used (kept in memory, not written).
    graph: sparse.csr_matrix | None = field(default=None, repr=False)

    @property
    def labels(self) -> pd.Series:
        """Consensus labels as strings (``'0'`` is the largest cluster), indexed by observation."""
        return pd.Series(
            self.result.labels.astype(str), index=self.obs_names, name="consensus_label"
        )

    @property
    def succeeded(self) -> list[MemberResult]:
        return [m for m in self.members if m.status == "succeeded"]

    @property
    def n_clusters(self) -> int:
        return int(self.result.labels.max()) + 1

    def labels_table(self) -> pd.DataFrame:
        """``consensus_labels.tsv``: observation, consensus label, agreement, local purity."""
        return pd.DataFrame(
            {
                "observation": self.obs_names.astype(str),
                "consensus_label": self.result.labels.astype(str),
                "agreement": self.result.agreement,
                "local_purity": self.local_purity,
            }
        )

    def cluster_summary(self) -> pd.DataFrame:
        """``cluster_summary.csv``: cells, mean agreement and mean local purity per consensus cluster."""
        t = self.labels_table()
        g = t.groupby("consensus_label", sort=False)
        out = pd.DataFrame(
            {
                "n_cells": g.size(),
                "mean_agreement": g["agreement"].mean(),
                "mean_local_purity": g["local_purity"].mean(),
            }
        )
        out = out.loc[sorted(out.index, key=int)]
        out.index.name = "cluster"
        return out

    def member_labels(self) -> pd.DataFrame:
        """``member_labels.tsv``: every succeeded member's raw labels, by observation."""
        out = pd.DataFrame(
            {m.spec.id: m.labels for m in self.succeeded}, index=self.obs_names.astype(str)
        )
        out.index.name = "observation"
        return out


def _score_members(
    members: list[MemberResult], consensus_labels: np.ndarray, cross: pd.DataFrame
) -> pd.DataFrame:
    from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

    rows = []
    for m in members:
        row: dict[str, Any] = {
            "member": m.spec.id,
            "method": m.spec.method,
            "status": m.status,
            "n_clusters": m.n_clusters if m.n_clusters is not None else np.nan,
            "nmi": np.nan,
            "ari": np.nan,
            "composite": np.nan,
            "mean_nmi_to_members": np.nan,
        }
        if m.labels is not None:
            nmi = normalized_mutual_info_score(consensus_labels, m.labels)
            ari = adjusted_rand_score(consensus_labels, m.labels)
            others = cross.loc[m.spec.id].drop(m.spec.id)
            row |= {
                "nmi": nmi,
                "ari": ari,
                # Composite: the mean of NMI (shared information) and ARI (pairwise agreement).
                "composite": (nmi + ari) / 2,
                "mean_nmi_to_members": float(others.mean()) if len(others) else np.nan,
            }
        rows.append(row)
    return pd.DataFrame(rows).set_index("member")


def consensus(
    adata: AnnData,
    members: str | Sequence[str] | None = None,
    operator: str = "kmode",
    *,
    seed: int = 0,
    use_rep: str = "auto",
    n_pcs: int = 30,
    n_neighbors: int = 15,
    resolution: float = 1.0,
    key_added: str | None = None,
    inplace: bool = True,
    overwrite: bool = False,
    progress: Callable[[MemberResult], None] | None = None,
) -> ConsensusResult:
    """Cluster with several members and combine them into consensus labels.

    Parameters
    ----------
    adata
        The data; an embedding is taken from ``obsm`` or computed on a working copy
        (:func:`prepare_inputs`).
    members
        Member specs, ``"method:key=value:..."`` (comma-separated string or list); None
        gives :data:`~scagent.consensus.members.DEFAULT_MEMBERS` (plus a BANKSY-style
        spatial member when ``obsm['spatial']`` exists).
    operator
        ``"kmode"`` (k-modes over Hungarian-aligned labels) or ``"coassoc"`` (Leiden on
        the kNN graph weighted by co-association).
    seed
        Seed of every member (unless a member sets its own) and of the operator.
    use_rep, n_pcs, n_neighbors
        The shared embedding and graph.
    resolution
        Leiden resolution of the ``coassoc`` operator.
    key_added
        obs column of the labels; default ``consensus_<operator>``.
    inplace
        Write the labels into ``adata``.
    overwrite
        Replace an ``obs[key_added]`` that scagent did not write.
    progress
        Called with each member's result as it finishes.

    Returns
    -------
    ConsensusResult
        With ``inplace``, also writes ``obs[key_added]`` (categorical), ``obs[key_added +
        '_agreement']`` (share of members agreeing per cell) and ``uns[key_added]``
        (parameters, members and their scores, the cross-method NMI matrix).

    Raises
    ------
    TooFewMembersError
        Fewer than two members succeeded; the message lists each failure.
    InvalidParameterError
        An unknown operator or member, or a bad parameter.
    """
    if operator not in OPERATORS:
        raise InvalidParameterError(
            f"unknown consensus operator {operator!r}", remedy=f"use one of {', '.join(OPERATORS)}"
        )
    specs = parse_members(members, seed, spatial="spatial" in adata.obsm)
    key = key_added or f"consensus_{operator}"
    if inplace:
        from scagent.tools._data import claim_key

        claim_key(adata, "obs", key, "consensus_clustering", overwrite=overwrite)
    timings: dict[str, float] = {}
    t = time.perf_counter()
    inputs, info = prepare_inputs(
        adata, use_rep=use_rep, n_pcs=n_pcs, n_neighbors=n_neighbors, seed=seed
    )
    timings["prepare_s"] = time.perf_counter() - t
    results = run_members(inputs, specs, progress)
    timings["members_s"] = sum(m.time_s for m in results)
    ok = [m for m in results if m.status == "succeeded"]
    if len(ok) < 2:
        failures = "; ".join(f"{m.spec.id}: {m.error}" for m in results if m.status == "failed")
        raise TooFewMembersError(
            f"only {len(ok)} of {len(results)} clustering members succeeded, at least 2 are "
            f"needed to build a consensus (failed: {failures or 'none'})"
        )
    labels = [m.labels for m in ok]
    t = time.perf_counter()
    nmi = pairwise_nmi(labels)
    timings["cross_nmi_s"] = time.perf_counter() - t
    op_params: dict[str, Any]
    if operator == "kmode":
        out = kmode(labels, nmi=nmi)
        out.info["reference_member"] = ok[out.info.pop("reference")].spec.id
        op_params = {"max_iter": 20, "reference": "medoid member (highest mean NMI)"}
    else:
        out = coassoc(labels, inputs.graph, resolution=resolution, seed=seed)
        op_params = {
            "resolution": resolution,
            "seed": seed,
            "min_weight": 0.0,
            "min_cluster_size": 5,
        }
    timings["operator_s"] = out.time_s + (timings["cross_nmi_s"] if operator == "kmode" else 0.0)
    t = time.perf_counter()
    ids = [m.spec.id for m in ok]
    cross = pd.DataFrame(nmi, index=pd.Index(ids, name="member"), columns=ids)
    scores = _score_members(results, out.labels, cross)
    purity = local_purity(out.labels, inputs.graph)
    timings["scoring_s"] = time.perf_counter() - t
    res = ConsensusResult(
        obs_names=adata.obs_names.copy(),
        members=results,
        operator=operator,
        operator_params=op_params,
        result=out,
        local_purity=purity,
        cross_nmi=cross,
        member_scores=scores,
        inputs_info=info,
        seed=seed,
        timings=timings,
        graph=inputs.graph,
    )
    if inplace:
        _write_obs(adata, res, key)
    return res


def _write_obs(adata: AnnData, res: ConsensusResult, key: str) -> None:
    from scagent.tools._data import mark_owned

    labels = res.result.labels.astype(str)
    order = [str(i) for i in range(res.n_clusters)]
    adata.obs[key] = pd.Categorical(labels, categories=order)
    adata.obs[f"{key}_agreement"] = res.result.agreement.astype(np.float32)
    s = res.member_scores
    adata.uns[key] = {
        "params": {
            "operator": res.operator,
            "seed": res.seed,
            **{k: v for k, v in res.inputs_info.items() if isinstance(v, (str, int, float, bool))},
        },
        "members": np.asarray(s.index.astype(str)),
        "member_status": np.asarray(s["status"].astype(str)),
        "member_nmi": s["nmi"].to_numpy(dtype=float),
        "member_ari": s["ari"].to_numpy(dtype=float),
        "member_composite": s["composite"].to_numpy(dtype=float),
        "cross_method_nmi": res.cross_nmi.to_numpy(),
        "cross_method_members": np.asarray(res.cross_nmi.index.astype(str)),
    }
    mark_owned(
        adata,
        "consensus_clustering",
        ("obs", key),
        ("obs", f"{key}_agreement"),
        ("uns", key),
    )


# --------------------------------------------------------------------------- the run folder


def _versions() -> dict[str, str]:
    out = {}
    for name in _VERSIONED:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out


def _canonical(obj: Any) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str).encode()


def plan_checksum(plan: dict[str, Any]) -> str:
    """SHA-256 of the plan's canonical JSON without its own ``plan_sha256`` field."""
    return hashlib.sha256(
        _canonical({k: v for k, v in plan.items() if k != "plan_sha256"})
    ).hexdigest()


def _write_table(df: pd.DataFrame, path: Path, *, sep: str, index: bool) -> None:
    with atomic_path(path) as tmp:
        df.to_csv(tmp, sep=sep, index=index, float_format="%.6g", lineterminator="\n")


def write_run(
    result: ConsensusResult,
    output: str | os.PathLike[str],
    *,
    input_path: str | os.PathLike[str] | None = None,
    adata: AnnData | None = None,
    overwrite: bool = False,
) -> dict[str, Any]:
    """Write the run folder and return its plan.

    Files: ``consensus_labels.tsv``, ``member_scores.csv``, ``cross_method_nmi.csv``,
    ``cluster_summary.csv``, ``member_labels.tsv``, ``adata.h5ad`` (when ``adata`` is
    given: the input with the labels in ``obs``), then ``plan.json`` with the checksum of
    every file and of itself. Each file is written atomically.

    Raises
    ------
    InvalidParameterError
        ``output`` already holds a run and ``overwrite`` is False.
    """
    out = Path(output)
    if (out / "plan.json").exists() and not overwrite:
        raise InvalidParameterError(
            f"{out} already holds a consensus run (plan.json)",
            remedy="choose another --output folder, or pass --overwrite",
        )
    out.mkdir(parents=True, exist_ok=True)
    # A plan from an earlier run must not outlive the files about to be replaced.
    (out / "plan.json").unlink(missing_ok=True)
    _write_table(result.labels_table(), out / "consensus_labels.tsv", sep="\t", index=False)
    _write_table(result.member_scores, out / "member_scores.csv", sep=",", index=True)
    _write_table(result.cross_nmi, out / "cross_method_nmi.csv", sep=",", index=True)
    _write_table(result.cluster_summary(), out / "cluster_summary.csv", sep=",", index=True)
    _write_table(result.member_labels(), out / "member_labels.tsv", sep="\t", index=True)
    files = list(RUN_FILES)
    if adata is not None:
        from scagent.data.io import write_h5ad

        write_h5ad(adata, out / "adata.h5ad")
        files.append("adata.h5ad")
    input_record: dict[str, Any] = {"path": None, "sha256": None}
    if input_path is not None:
        p = Path(input_path).resolve()
        input_record = {"path": str(p), "sha256": sha256_path(p)}
    input_record |= {"n_obs": len(result.obs_names)}
    op = result.result
    plan: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "kind": PLAN_KIND,
        "typed": True,
        "run_id": f"{_dt.datetime.now(tz=_dt.UTC):%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:8]}",
        "created_at": _dt.datetime.now(tz=_dt.UTC).isoformat(timespec="seconds"),
        "input": input_record,
        "embedding": result.inputs_info,
        "seed": result.seed,
        "members": [m.record() for m in result.members],
        "operator": {
            "name": result.operator,
            "params": result.operator_params,
            "info": op.info,
            "n_clusters": result.n_clusters,
            "mean_agreement": float(op.agreement.mean()),
        },
        "timings": {k: round(v, 4) for k, v in result.timings.items()},
        "library_versions": _versions(),
        "outputs": {
            name: {"sha256": sha256_path(out / name), "bytes": (out / name).stat().st_size}
            for name in files
        },
    }
    plan["plan_sha256"] = plan_checksum(plan)
    atomic_write_text(out / "plan.json", json.dumps(plan, indent=2, default=str) + "\n")
    return plan


@dataclass
class TypedRun:
    """A verified run folder: its plan and its tables, read as written."""

    path: Path
    plan: dict[str, Any]
    labels: pd.DataFrame
    member_scores: pd.DataFrame
    cross_nmi: pd.DataFrame
    cluster_summary: pd.DataFrame
    member_labels: pd.DataFrame

    @property
    def run_id(self) -> str:
        return str(self.plan["run_id"])

    @property
    def operator(self) -> str:
        return str(self.plan["operator"]["name"])


def _invalid(run_dir: Path, why: str, remedy: str | None = None) -> TypedRunInvalid:
    return TypedRunInvalid(f"{run_dir} is not a valid typed consensus run: {why}", remedy=remedy)


def load_run(run_dir: str | os.PathLike[str]) -> TypedRun:
    """Read and verify a run folder written by :func:`write_run`.

    Checks, in order: ``plan.json`` exists and is a JSON object of kind
    :data:`PLAN_KIND` with a known ``schema_version``; every output file it lists exists
    with the recorded SHA-256; the plan's own checksum matches (it was not edited);
    at least two members succeeded; the tables parse.

    Raises
    ------
    TypedRunInvalid
        Naming the first check that failed.
    """
    run = Path(run_dir)
    plan_path = run / "plan.json"
    if not run.is_dir():
        raise _invalid(
            run, "the folder does not exist", "pass the --output folder of `scagent consensus`"
        )
    if not plan_path.is_file():
        raise _invalid(
            run, "plan.json is missing", "pass the --output folder of `scagent consensus`"
        )
    try:
        plan = json.loads(plan_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise _invalid(run, f"plan.json is not valid JSON ({exc})") from None
    if not isinstance(plan, dict) or plan.get("kind") != PLAN_KIND or plan.get("typed") is not True:
        raise _invalid(
            run,
            f"plan.json is not from a typed consensus run (kind {plan.get('kind') if isinstance(plan, dict) else None!r})",
        )
    version = plan.get("schema_version")
    if version not in SUPPORTED_SCHEMA_VERSIONS:
        raise _invalid(
            run,
            f"plan.json has schema_version {version!r}; this scagent reads {list(SUPPORTED_SCHEMA_VERSIONS)}",
            "upgrade scagent, or re-run `scagent consensus` with this version",
        )
    for key in ("run_id", "members", "operator", "outputs", "plan_sha256", "input"):
        if key not in plan:
            raise _invalid(run, f"plan.json has no {key!r}")
    outputs = plan["outputs"]
    missing = [f for f in RUN_FILES if f not in outputs]
    if missing:
        raise _invalid(run, f"plan.json lists no checksum for {', '.join(missing)}")
    for name, rec in outputs.items():
        f = run / name
        if not f.is_file():
            raise _invalid(run, f"{name} is missing")
        actual = sha256_path(f)
        if not isinstance(rec, dict) or actual != rec.get("sha256"):
            raise _invalid(
                run,
                f"the checksum of {name} differs from plan.json's (recorded "
                f"{str(rec.get('sha256') if isinstance(rec, dict) else rec)[:12]}..., found {actual[:12]}...); "
                "the file or the plan was edited after the run",
            )
    if plan_checksum(plan) != plan.get("plan_sha256"):
        raise _invalid(run, "plan.json was edited after the run (its own checksum does not match)")
    ok = [m for m in plan["members"] if isinstance(m, dict) and m.get("status") == "succeeded"]
    if len(ok) < 2:
        raise _invalid(run, f"only {len(ok)} member(s) succeeded")
    try:
        labels = pd.read_csv(
            run / "consensus_labels.tsv",
            sep="\t",
            dtype={"observation": str, "consensus_label": str},
        )
        scores = pd.read_csv(run / "member_scores.csv", index_col=0)
        cross = pd.read_csv(run / "cross_method_nmi.csv", index_col=0)
        summary = pd.read_csv(run / "cluster_summary.csv", index_col=0, dtype={"cluster": str})
        member_labels = pd.read_csv(
            run / "member_labels.tsv", sep="\t", index_col=0, dtype={"observation": str}
        )
    except (OSError, ValueError, pd.errors.ParserError) as exc:
        raise _invalid(run, f"a table does not parse ({exc})") from None
    need = {"observation", "consensus_label", "agreement", "local_purity"}
    if not need <= set(labels.columns) or labels.empty:
        raise _invalid(
            run, f"consensus_labels.tsv lacks columns {sorted(need - set(labels.columns))} or rows"
        )
    if labels["observation"].duplicated().any():
        raise _invalid(run, "consensus_labels.tsv lists an observation twice")
    summary.index = summary.index.astype(str)
    member_labels.index = member_labels.index.astype(str)
    return TypedRun(run, plan, labels, scores, cross, summary, member_labels)
