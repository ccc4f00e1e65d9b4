"""The ``consensus_clustering`` tool: consensus clustering as a registered step, so the session records it with provenance."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field, field_validator

from scagent.consensus.members import DEFAULT_MEMBERS, parse_members
from scagent.consensus.run import consensus
from scagent.tools.base import ParamsModel, Tool, ToolResult, parse_params
from scagent.tools.registry import register

if TYPE_CHECKING:
    from anndata import AnnData

__all__ = ["CONSENSUS_CLUSTERING", "ConsensusParams", "consensus_clustering"]


class ConsensusParams(ParamsModel):
    members: list[str] | None = Field(
        None,
        description="Members as 'method:key=value:...' (leiden, louvain, kmeans, gmm, "
        f"agglomerative, banksy); None: {','.join(DEFAULT_MEMBERS)} (+ banksy with "
        "obsm['spatial']).",
    )
    operator: Literal["kmode", "coassoc"] = Field(
        "kmode",
        description="kmode: k-modes over Hungarian-aligned member labels; coassoc: Leiden on "
        "the kNN graph weighted by co-association.",
    )
    seed: int = Field(0, description="Seed of every member and of the operator (recorded).")
    use_rep: str = Field("auto", description="obsm embedding; 'auto': X_pca_harmony, else X_pca.")
    n_pcs: int = Field(30, ge=2, le=300, description="Leading components of the embedding used.")
    n_neighbors: int = Field(15, ge=2, le=200, description="Neighbours of the shared kNN graph.")
    resolution: float = Field(1.0, gt=0, le=10, description="Leiden resolution of coassoc.")
    key_added: str | None = Field(None, description="obs column; default consensus_<operator>.")
    overwrite: bool = Field(False, description="Replace an obs[key_added] not written by scagent.")

    @field_validator("members", mode="before")
    @classmethod
    def _split(cls, value: Any) -> Any:
        # The CLI passes "leiden:resolution=0.5,kmeans:k=auto"; the API passes a list.
        if isinstance(value, str):
            return [v for v in value.split(",") if v.strip()]
        return value

    @field_validator("members")
    @classmethod
    def _known(cls, value: list[str] | None) -> list[str] | None:
        if value is not None:
            parse_members(value)  # unknown methods or bad parameters fail before the run
        return value


def consensus_clustering(adata: AnnData, **params: Any) -> ToolResult:
    """Consensus of several clusterings (:func:`scagent.consensus.consensus`).

    Parameters
    ----------
    adata
        The data, with ``obsm['X_pca']`` (or ``X_pca_harmony``); modified in place.
    **params
        See :class:`ConsensusParams`.

    Returns
    -------
    ToolResult
        Writes ``obs[key_added]``, ``obs[key_added + '_agreement']`` and ``uns[key_added]``;
        ``tables['members']`` holds each member's status, NMI, ARI and composite score.
    """
    p = parse_params(ConsensusParams, params, "consensus_clustering")
    key = p.key_added or f"consensus_{p.operator}"
    res = consensus(
        adata,
        p.members,
        p.operator,
        seed=p.seed,
        use_rep=p.use_rep,
        n_pcs=p.n_pcs,
        n_neighbors=p.n_neighbors,
        resolution=p.resolution,
        key_added=key,
        overwrite=p.overwrite,
    )
    failed = [m for m in res.members if m.status == "failed"]
    scores = res.member_scores.reset_index()
    table = [
        {k: (None if isinstance(v, float) and v != v else v) for k, v in row.items()}
        for row in scores.to_dict(orient="records")
    ]
    return ToolResult(
        summary=f"{res.n_clusters} consensus clusters ({p.operator}) from "
        f"{len(res.succeeded)} of {len(res.members)} members in obs['{key}']",
        metrics={
            "n_clusters": res.n_clusters,
            "operator": p.operator,
            "members_succeeded": len(res.succeeded),
            "members_failed": len(failed),
            "mean_agreement": float(res.result.agreement.mean()),
            "members_time_s": round(res.timings["members_s"], 3),
            "operator_time_s": round(res.timings["operator_s"], 3),
        },
        warnings=[f"member {m.spec.id} failed: {m.error}" for m in failed],
        written=[f"obs/{key}", f"obs/{key}_agreement", f"uns/{key}", "uns/scagent_keys"],
        tables={"members": table},
    )


def _checks(adata: AnnData, p: Any, result: ToolResult) -> list[str]:
    from scagent.tools.cluster import clustering_checks

    return clustering_checks(
        adata, p.key_added or f"consensus_{p.operator}", "consensus_clustering"
    )


CONSENSUS_CLUSTERING = register(
    Tool(
        id="consensus_clustering",
        name="Consensus clustering",
        category="clustering",
        framework="scagent",
        fn=consensus_clustering,
        params=ConsensusParams,
        requires=("pca",),
        produces=("clustering",),
        checks=_checks,
        captures=("scanpy", "anndata", "numpy", "scikit-learn", "igraph", "leidenalg"),
        reference="Strehl & Ghosh (2002) Cluster ensembles. JMLR 3:583; Huang (1998) k-modes; "
        "Fred & Jain (2005) evidence accumulation (co-association)",
        description="Cluster with several members (Leiden, Louvain, k-means, GMM, agglomerative, "
        "BANKSY-style spatial) and combine them by k-modes or co-association, with per-member "
        "NMI/ARI and per-cell agreement.",
    )
)
