"""One trajectory step: PAGA topology, then diffusion pseudotime from a root named as a biologist would.

A biologist names the start of a process by a cell type ("HSPC"), a cluster ("3") or a
marker gene ("CD34"), not by a cell index. This tool turns that name into a root group,
runs PAGA (:func:`scagent.tools.trajectory.paga`) and diffusion pseudotime
(:func:`scagent.tools.trajectory.diffusion_pseudotime`) from it, and reports the order in
which groups are reached. With spliced/unspliced layers and scVelo installed it adds RNA
velocity pseudotime (deterministic model; scVelo's stochastic default fails on our stack).
"""

from __future__ import annotations

import difflib
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, Field

from scagent.errors import (
    DataStateError,
    InvalidDataError,
    InvalidParameterError,
    MissingDependencyError,
)
from scagent.tools._data import claim_key, mark_owned, ready_for, state_of
from scagent.tools.base import ParamsModel, Tool, ToolResult, parse_params
from scagent.tools.registry import register
from scagent.tools.trajectory import DIFFUSION_PSEUDOTIME, PAGA, _groups_column

if TYPE_CHECKING:
    from anndata import AnnData

__all__ = ["TrajectoryParams", "trajectory"]


class TrajectoryParams(ParamsModel):
    groups: str = Field(
        "auto",
        description="obs column of the clusters PAGA connects; 'auto' takes 'leiden' or the "
        "first clustering.",
    )
    root_cell_type: str | None = Field(
        None, description="A level of `cell_type_key` where the process starts, e.g. 'HSPC'."
    )
    cell_type_key: str = Field(
        "auto",
        description="obs column holding root_cell_type; 'auto' takes the inspector's first "
        "cell-type column, else a column named cell_type.",
    )
    root_cluster: str | None = Field(None, description="A level of `groups` to start from.")
    root_gene: str | None = Field(
        None,
        description="A marker of the earliest cells (e.g. CD34); the root group is the group of "
        "`groups` with the highest mean log-normalized expression of it.",
    )
    root_cell: str | None = Field(None, description="obs name of the root cell itself.")
    n_comps: int = Field(15, ge=2, le=100, description="Diffusion components to compute.")
    n_dcs: int = Field(
        10,
        ge=2,
        le=100,
        description="Diffusion components used for pseudotime; 10 is scanpy's default "
        "(Haghverdi et al. 2016).",
    )
    velocity: Literal["auto", "on", "off"] = Field(
        "auto",
        description="RNA velocity with scVelo: 'auto' runs it when layers 'spliced' and "
        "'unspliced' exist and scVelo is installed; 'on' requires both.",
    )
    key_added: str = Field("trajectory", description="uns key of the summary.")
    export_dir: str | None = Field(
        None, description="Folder for the trajectory plot (PNG, SVG); None writes no file."
    )
    overwrite: bool = Field(
        False, description="Replace obs['dpt_pseudotime'] or uns[key_added] not written by scagent."
    )


def _levels(series: pd.Series) -> list[str]:
    return sorted(map(str, series.astype(str).unique()))


def _unknown_level(kind: str, value: str, column: str, levels: list[str]) -> InvalidParameterError:
    close = difflib.get_close_matches(value, levels, n=3, cutoff=0.5)
    hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    return InvalidParameterError(
        f"{kind} '{value}' is not a level of obs['{column}']{hint}",
        remedy=f"choose one of: {', '.join(levels[:30])}",
    )


def _cell_type_column(adata: AnnData, value: str) -> str:
    if value != "auto":
        if value not in adata.obs:
            raise InvalidParameterError(
                f"cell_type_key '{value}' is not an obs column",
                remedy=f"choose one of: {', '.join(map(str, adata.obs.columns[:20]))}",
            )
        return value
    state = state_of(adata)
    found = [c.name for c in state.breadcrumbs.cell_types if c.name in adata.obs]
    found += [c for c in ("cell_type", "celltype", "cell_types") if c in adata.obs]
    if not found:
        raise InvalidParameterError(
            "trajectory found no cell-type column for root_cell_type",
            remedy="pass cell_type_key=<obs column>, or give root_cluster / root_gene instead",
        )
    return found[0]


def _root_by_gene(adata: AnnData, gene: str, groups: str) -> tuple[str, pd.Series]:
    """The group of ``groups`` with the highest mean log-normalized expression of ``gene``."""
    from scipy import sparse

    state = state_of(adata)
    if gene in adata.var_names:
        work = ready_for(adata, state, "log_normalized")
        column = work[:, gene].X
    elif (
        adata.raw is not None
        and gene in adata.raw.var_names
        and state.raw_state == "log_normalized"
    ):
        column = adata.raw[:, gene].X
    else:
        close = difflib.get_close_matches(gene, list(map(str, adata.var_names)), n=3)
        hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        raise InvalidParameterError(
            f"root_gene '{gene}' is not a gene of this data{hint}",
            remedy="give a gene symbol as it appears in var_names",
        )
    values = column.toarray().ravel() if sparse.issparse(column) else np.asarray(column).ravel()
    means = pd.Series(values, index=adata.obs_names).groupby(adata.obs[groups].astype(str)).mean()
    if not (means > 0).any():
        raise InvalidDataError(f"root_gene '{gene}' is not expressed in any group of '{groups}'")
    return str(means.idxmax()), means.sort_values(ascending=False)


def _velocity(adata: AnnData, mode: str) -> tuple[list[str], list[str]]:
    """scVelo deterministic velocity and velocity pseudotime; (written, warnings)."""
    has_layers = {"spliced", "unspliced"} <= set(adata.layers)
    if mode == "off" or (mode == "auto" and not has_layers):
        return [], []
    if not has_layers:
        raise DataStateError(
            "velocity='on' needs layers 'spliced' and 'unspliced'",
            remedy="load the velocyto / STARsolo Velocyto output, or pass velocity='off'",
        )
    try:
        import scvelo as scv
    except ImportError:
        if mode == "on":
            raise MissingDependencyError(
                "velocity='on' needs scVelo, which is not installed", remedy="pip install scvelo"
            ) from None
        return [], [
            "spliced/unspliced layers found but scVelo is not installed; RNA velocity "
            "skipped (pip install scvelo)"
        ]

    def keys() -> set[str]:
        return {
            f"{slot}/{k}"
            for slot in ("obs", "var", "layers", "obsm", "uns")
            for k in getattr(adata, slot).keys()
        }

    before = keys()
    verbosity = scv.settings.verbosity
    scv.settings.verbosity = 0  # scVelo logs every step to stdout
    try:
        scv.pp.moments(adata, n_pcs=None, n_neighbors=None)
        # scVelo's default stochastic mode fails on this stack; the deterministic one works.
        scv.tl.velocity(adata, mode="deterministic")
        scv.tl.velocity_graph(adata, show_progress_bar=False)
        scv.tl.velocity_pseudotime(adata)
    finally:
        scv.settings.verbosity = verbosity
    written = sorted(keys() - before)
    return written, []


def trajectory(adata: AnnData, **params: Any) -> ToolResult:
    """PAGA of the clusters and diffusion pseudotime from a root given as cell type, cluster or gene.

    Give exactly one of ``root_cell_type``, ``root_cluster``, ``root_gene`` or
    ``root_cell``. The root cell is the extreme cell of the root group on the first
    diffusion component (Haghverdi et al. 2016).

    Parameters
    ----------
    adata
        The data (with a neighbors graph); modified in place.
    **params
        See :class:`TrajectoryParams`.

    Returns
    -------
    ToolResult
        Writes what :func:`~scagent.tools.trajectory.paga` and
        :func:`~scagent.tools.trajectory.diffusion_pseudotime` write (``uns['paga']``,
        ``obsm['X_diffmap']``, ``uns['iroot']``, ``obs['dpt_pseudotime']``), with scVelo
        also ``obs['velocity_pseudotime']``, and ``uns[key_added]``: ``root`` (how it was
        chosen), ``root_cell``, ``groups`` and ``group_order`` (per group: median pseudotime,
        cells, rank). ``tables['group_order']`` repeats the order.

    Raises
    ------
    InvalidParameterError
        No root or several; a root cell type, cluster or gene that does not exist (the
        message lists the levels and close matches).
    MissingPrerequisiteError
        No neighbors graph or no clustering.
    """
    p = parse_params(TrajectoryParams, params, "trajectory")
    given = [
        name
        for name in ("root_cell_type", "root_cluster", "root_gene", "root_cell")
        if getattr(p, name) is not None
    ]
    if len(given) != 1:
        raise InvalidParameterError(
            "trajectory needs exactly one of root_cell_type, root_cluster, root_gene or root_cell"
            + (f" (got {', '.join(given)})" if given else ""),
            remedy="e.g. root_cell_type='HSPC', root_cluster='3' or root_gene='CD34'",
        )
    groups = _groups_column(adata, p.groups, "trajectory")
    # Resolve the root before any work, so a wrong name costs nothing.
    dpt_params: dict[str, Any] = {"n_comps": p.n_comps, "n_dcs": p.n_dcs, "overwrite": p.overwrite}
    gene_table: pd.Series | None = None
    if p.root_cell_type is not None:
        column = _cell_type_column(adata, p.cell_type_key)
        levels = _levels(adata.obs[column])
        if p.root_cell_type not in levels:
            raise _unknown_level("root_cell_type", p.root_cell_type, column, levels)
        dpt_params.update(root_group=p.root_cell_type, groupby=column)
        how = f"cell type '{p.root_cell_type}' of '{column}'"
    elif p.root_cluster is not None:
        levels = _levels(adata.obs[groups])
        if p.root_cluster not in levels:
            raise _unknown_level("root_cluster", p.root_cluster, groups, levels)
        dpt_params.update(root_group=p.root_cluster, groupby=groups)
        how = f"cluster '{p.root_cluster}' of '{groups}'"
    elif p.root_gene is not None:
        group, gene_table = _root_by_gene(adata, p.root_gene, groups)
        dpt_params.update(root_group=group, groupby=groups)
        how = f"cluster '{group}' of '{groups}', highest mean {p.root_gene}"
    else:
        if p.root_cell not in adata.obs_names:
            raise InvalidParameterError(f"root_cell '{p.root_cell}' is not a cell name (obs_names)")
        dpt_params.update(root_cell=p.root_cell)
        how = f"cell '{p.root_cell}'"
    warnings = []
    if (w := claim_key(adata, "uns", p.key_added, "trajectory", overwrite=p.overwrite)) is not None:
        warnings.append(w)

    paga_result = PAGA(adata, groups=groups)
    dpt_result = DIFFUSION_PSEUDOTIME(adata, **dpt_params)
    warnings += paga_result.warnings + dpt_result.warnings
    velocity_written, velocity_warnings = _velocity(adata, p.velocity)
    warnings += velocity_warnings

    pt = adata.obs["dpt_pseudotime"].replace([np.inf, -np.inf], np.nan)
    labels = adata.obs[groups].astype(str)
    order = (
        pd.DataFrame({"group": labels.to_numpy(), "pseudotime": pt.to_numpy()})
        .groupby("group")["pseudotime"]
        .agg(median_pseudotime="median", n_cells="size")
        .sort_values("median_pseudotime")
        .reset_index()
    )
    order["rank"] = np.arange(1, len(order) + 1)
    root_cell = str(adata.obs_names[int(adata.uns["iroot"])])
    adata.uns[p.key_added] = {
        "root": how,
        "root_cell": root_cell,
        "groups": groups,
        "group_order": order,
        "velocity": bool(velocity_written),
    }
    written = [*paga_result.written, *dpt_result.written, *velocity_written, f"uns/{p.key_added}"]
    written.append(mark_owned(adata, "trajectory", ("uns", p.key_added)))
    metrics: dict[str, float | int | str] = {
        "root": how,
        "root_cell": root_cell,
        "groups": groups,
        "order": " < ".join(order["group"].astype(str).tolist())[:500],
        "n_unreachable": int(dpt_result.metrics.get("n_unreachable", 0)),
        "velocity": "yes" if velocity_written else "no",
    }
    if gene_table is not None:
        metrics["root_gene_mean_in_root"] = float(gene_table.iloc[0])
    if p.export_dir is not None:
        files = export_trajectory(adata, p.export_dir, key=p.key_added)
        metrics["export_dir"] = str(p.export_dir)
        metrics["n_files"] = len(files)
    return ToolResult(
        summary=f"PAGA of '{groups}' and diffusion pseudotime from {how}; groups in order: "
        f"{metrics['order'][:200]}",
        metrics=metrics,
        warnings=warnings,
        written=list(dict.fromkeys(written)),
        tables={"group_order": order.to_dict("records")},
    )


def export_trajectory(
    adata: AnnData, out_dir: str | os.PathLike[str], *, key: str = "trajectory"
) -> list[Path]:
    """Write the trajectory plot (pseudotime on the embedding + PAGA graph) as PNG and SVG."""
    from scagent.report import plots as plotting

    entry = adata.uns.get(key, {})
    fig = plotting.trajectory_plot(adata, groups=entry.get("groups"))
    return plotting.save_figure(fig, Path(out_dir) / key)


def _check_trajectory(adata: AnnData, p: BaseModel, result: ToolResult) -> list[str]:
    order = adata.uns[p.key_added]["group_order"]  # type: ignore[attr-defined]
    if order["median_pseudotime"].isna().all():
        raise InvalidDataError("trajectory finished but no group has a finite pseudotime")
    return []


TRAJECTORY = register(
    Tool(
        id="trajectory",
        name="Trajectory (PAGA + diffusion pseudotime)",
        category="trajectory",
        framework="scanpy",
        fn=trajectory,
        params=TrajectoryParams,
        requires=("neighbors", "clustering"),
        produces=("paga", "diffmap", "diffusion_pseudotime"),
        checks=_check_trajectory,
        captures=("scanpy", "anndata", "numpy", "scvelo"),
        reference="Wolf et al. (2019) Genome Biol 20:59 (PAGA); Haghverdi et al. (2016) Nat "
        "Methods 13:845-848 (DPT); Bergen et al. (2020) Nat Biotechnol 38:1408-1414 (scVelo)",
        description="PAGA topology and diffusion pseudotime from a root cell type, cluster or "
        "marker gene; RNA velocity when spliced/unspliced layers and scVelo are present.",
    )
)
