"""Trajectories: PAGA's graph of cluster connectivity, and diffusion pseudotime from a chosen root."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
from pydantic import Field

from scagent.errors import InvalidDataError, InvalidParameterError, MissingPrerequisiteError
from scagent.tools._data import claim_key, mark_owned, state_of
from scagent.tools.base import ParamsModel, Tool, ToolResult, parse_params
from scagent.tools.registry import register

if TYPE_CHECKING:
    from anndata import AnnData


def _groups_column(adata: AnnData, groups: str, tool_id: str) -> str:
    if groups != "auto":
        if groups not in adata.obs:
            raise InvalidParameterError(
                f"'{groups}' is not an obs column",
                remedy=f"choose one of: {', '.join(map(str, adata.obs.columns[:20]))}",
            )
        return groups
    if "leiden" in adata.obs:
        return "leiden"
    state = state_of(adata)
    found = [c.name for c in state.breadcrumbs.clusterings if c.name in adata.obs]
    if not found:
        raise MissingPrerequisiteError(
            f"{tool_id} needs a clustering to group the cells", remedy="run leiden first"
        )
    return found[0]


def _neighbors_key(adata: AnnData, key: str | None, tool_id: str) -> str:
    nkey = key or "neighbors"
    if nkey not in adata.uns:
        raise MissingPrerequisiteError(
            f"{tool_id} needs a neighbors graph in uns['{nkey}']", remedy="run neighbors first"
        )
    return nkey


class PagaParams(ParamsModel):
    groups: str = Field(
        "auto",
        description="obs column of the groups (clusters); 'auto' takes 'leiden' or the first clustering.",
    )
    neighbors_key: str | None = Field(None, description="uns key of the neighbors graph.")


def paga(adata: AnnData, **params: Any) -> ToolResult:
    """Partition-based graph abstraction (:func:`scanpy.tl.paga`): how strongly groups connect.

    Parameters
    ----------
    adata
        The data; modified in place.
    **params
        See :class:`PagaParams`.

    Returns
    -------
    ToolResult
        Writes ``uns['paga']`` (``connectivities``, ``connectivities_tree``, ``groups``) and
        ``uns['<groups>_sizes']``.
    """
    import scanpy as sc

    p = parse_params(PagaParams, params, "paga")
    groups = _groups_column(adata, p.groups, "paga")
    nkey = _neighbors_key(adata, p.neighbors_key, "paga")
    if adata.obs[groups].dtype.name != "category":
        adata.obs[groups] = adata.obs[groups].astype(str).astype("category")
    sc.tl.paga(adata, groups=groups, neighbors_key=nkey)
    conn = adata.uns["paga"]["connectivities"]
    dense = conn.toarray() if hasattr(conn, "toarray") else np.asarray(conn)
    n_edges = int((np.triu(dense, 1) > 0.1).sum())
    return ToolResult(
        summary=f"PAGA graph of {dense.shape[0]} groups of '{groups}' with {n_edges} edges of "
        "connectivity > 0.1",
        metrics={"groups": groups, "n_groups": int(dense.shape[0]), "n_edges_above_0.1": n_edges},
        written=["uns/paga", f"uns/{groups}_sizes"],
    )


class DiffusionPseudotimeParams(ParamsModel):
    root_cell: str | None = Field(
        None, description="obs name (or integer position) of the root cell, e.g. a stem cell."
    )
    root_group: str | None = Field(
        None,
        description="A group of `groupby` to start from; the root is its most extreme cell on "
        "the first diffusion component (Haghverdi et al. 2016).",
    )
    groupby: str = Field(
        "auto", description="obs column holding root_group; 'auto' takes 'leiden'."
    )
    n_comps: int = Field(15, ge=2, le=100, description="Diffusion components to compute.")
    n_dcs: int = Field(10, ge=2, le=100, description="Diffusion components used for pseudotime.")
    neighbors_key: str | None = Field(None, description="uns key of the neighbors graph.")
    overwrite: bool = Field(
        False, description="Replace an obs['dpt_pseudotime'] not written by scagent."
    )


def _root_index(adata: AnnData, p: DiffusionPseudotimeParams) -> tuple[int, str]:
    if (p.root_cell is None) == (p.root_group is None):
        raise InvalidParameterError(
            "diffusion_pseudotime needs exactly one of root_cell or root_group",
            remedy="pass root_group=<a cluster of early cells> or root_cell=<a cell name>",
        )
    if p.root_cell is not None:
        if p.root_cell in adata.obs_names:
            return int(adata.obs_names.get_loc(p.root_cell)), "root_cell"
        if p.root_cell.lstrip("-").isdigit() and -adata.n_obs <= int(p.root_cell) < adata.n_obs:
            return int(p.root_cell) % adata.n_obs, "root_cell (position)"
        raise InvalidParameterError(
            f"root_cell '{p.root_cell}' is neither a cell name nor a position in 0..{adata.n_obs - 1}"
        )
    groupby = _groups_column(adata, p.groupby, "diffusion_pseudotime")
    labels = adata.obs[groupby].astype(str).to_numpy()
    in_group = labels == str(p.root_group)
    if not in_group.any():
        levels = sorted(set(labels))
        raise InvalidParameterError(
            f"root_group '{p.root_group}' is not a level of obs['{groupby}']",
            remedy=f"choose one of: {', '.join(levels[:30])}",
        )
    # Column 0 of X_diffmap is the trivial stationary component; DC1 is column 1.
    dc1 = adata.obsm["X_diffmap"][:, 1]
    idx = np.flatnonzero(in_group)
    # The group's extreme cell, on the side of DC1 where the group lies.
    low_side = np.median(dc1[idx]) < np.median(dc1)
    pick = idx[np.argmin(dc1[idx])] if low_side else idx[np.argmax(dc1[idx])]
    return int(pick), f"root_group '{p.root_group}' of '{groupby}'"


def diffusion_pseudotime(adata: AnnData, **params: Any) -> ToolResult:
    """Diffusion map (:func:`scanpy.tl.diffmap`) and diffusion pseudotime (:func:`scanpy.tl.dpt`).

    Parameters
    ----------
    adata
        The data; modified in place.
    **params
        See :class:`DiffusionPseudotimeParams`; give ``root_cell`` or ``root_group``.

    Returns
    -------
    ToolResult
        Writes ``obsm['X_diffmap']``, ``uns['diffmap_evals']``, ``uns['iroot']`` and
        ``obs['dpt_pseudotime']``.
    """
    import scanpy as sc

    p = parse_params(DiffusionPseudotimeParams, params, "diffusion_pseudotime")
    if (p.root_cell is None) == (p.root_group is None):
        _root_index(adata, p)  # raises the clear error before any work
    nkey = _neighbors_key(adata, p.neighbors_key, "diffusion_pseudotime")
    warnings = []
    if (
        w := claim_key(
            adata, "obs", "dpt_pseudotime", "diffusion_pseudotime", overwrite=p.overwrite
        )
    ) is not None:
        warnings.append(w)
    n_dcs = min(p.n_dcs, p.n_comps)
    sc.tl.diffmap(adata, n_comps=p.n_comps, neighbors_key=nkey)
    root, how = _root_index(adata, p)
    adata.uns["iroot"] = root
    sc.tl.dpt(adata, n_dcs=n_dcs, neighbors_key=nkey)
    pt = adata.obs["dpt_pseudotime"].to_numpy()
    finite = np.isfinite(pt)
    if not finite.any():
        raise InvalidDataError(
            "diffusion pseudotime is infinite for every cell; the graph is disconnected from the root"
        )
    if not finite.all():
        warnings.append(
            f"{int((~finite).sum())} cells are unreachable from the root (pseudotime inf); "
            "they lie in another connected component"
        )
    return ToolResult(
        summary=f"diffusion pseudotime from cell '{adata.obs_names[root]}' ({how}) in obs['dpt_pseudotime']",
        metrics={
            "root_index": root,
            "root_cell": str(adata.obs_names[root]),
            "n_unreachable": int((~finite).sum()),
        },
        warnings=warnings,
        written=[
            "obsm/X_diffmap",
            "uns/diffmap_evals",
            "uns/iroot",
            "obs/dpt_pseudotime",
            mark_owned(adata, "diffusion_pseudotime", ("obs", "dpt_pseudotime")),
        ],
    )


PAGA = register(
    Tool(
        id="paga",
        name="PAGA",
        category="trajectory",
        framework="scanpy",
        fn=paga,
        params=PagaParams,
        requires=("neighbors", "clustering"),
        produces=("paga",),
        reference="Wolf et al. (2019) PAGA: graph abstraction reconciles clustering with trajectory "
        "inference through a topology preserving map of single cells. Genome Biol 20:59",
        description="Graph of cluster connectivity, a coarse map of possible trajectories.",
    )
)

DIFFUSION_PSEUDOTIME = register(
    Tool(
        id="diffusion_pseudotime",
        name="Diffusion pseudotime",
        category="trajectory",
        framework="scanpy",
        fn=diffusion_pseudotime,
        params=DiffusionPseudotimeParams,
        requires=("neighbors",),
        produces=("diffmap", "diffusion_pseudotime"),
        reference="Haghverdi et al. (2016) Diffusion pseudotime robustly reconstructs lineage "
        "branching. Nat Methods 13:845-848",
        description="Diffusion map and pseudotime from a root cell or the extreme cell of a root group.",
    )
)
