"""RNA velocity as its own step: scVelo's deterministic model on spliced/unspliced counts.

The work is :func:`scagent.tools.trajectory_root._velocity`, which the ``trajectory`` tool
also runs when it finds the layers; this tool makes velocity a step a plan can name, and
says exactly what is missing (the layers, or the ``velocity`` extra) when it cannot run.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field

from scagent.errors import DataStateError, MissingDependencyError
from scagent.tools._data import mark_owned
from scagent.tools.base import ParamsModel, Tool, ToolResult, parse_params
from scagent.tools.registry import register

if TYPE_CHECKING:
    from anndata import AnnData

__all__ = ["VELOCITY_LAYERS", "VelocityParams", "has_velocity_layers", "velocity"]

#: The layers scVelo needs, as velocyto, STARsolo (Velocyto) and alevin-fry name them.
VELOCITY_LAYERS = ("spliced", "unspliced")


class VelocityParams(ParamsModel):
    mode: Literal["deterministic"] = Field(
        "deterministic",
        description="scVelo model; only the deterministic one (La Manno et al. 2018) runs on "
        "our stack: scVelo's stochastic default fails with current numpy/scipy.",
    )


def has_velocity_layers(adata: AnnData) -> bool:
    """Whether ``adata`` holds the spliced and unspliced layers velocity needs."""
    return set(VELOCITY_LAYERS) <= set(adata.layers.keys())


def _require_scvelo() -> None:
    try:
        importlib.import_module("scvelo")
    except ImportError:
        raise MissingDependencyError(
            "velocity needs scVelo, which is not installed",
            remedy="pip install 'scagent[velocity]'",
        ) from None


def velocity(adata: AnnData, **params: Any) -> ToolResult:
    """RNA velocity (scVelo, deterministic) and velocity pseudotime on the neighbors graph.

    Parameters
    ----------
    adata
        The data with ``layers['spliced']`` and ``layers['unspliced']`` and a neighbors
        graph; modified in place.
    **params
        See :class:`VelocityParams`.

    Returns
    -------
    ToolResult
        Writes what scVelo writes: ``layers['Ms']``, ``layers['Mu']``, ``layers['velocity']``,
        ``uns['velocity_graph']``, ``obs['velocity_pseudotime']`` and more; ``written`` lists
        every new key.

    Raises
    ------
    DataStateError
        The spliced or unspliced layer is missing (checked first: without them scVelo is
        of no use).
    MissingDependencyError
        scVelo is not installed.
    """
    from scagent.tools.trajectory_root import _velocity

    p = parse_params(VelocityParams, params, "velocity")
    missing = [layer for layer in VELOCITY_LAYERS if layer not in adata.layers]
    if missing:
        raise DataStateError(
            f"velocity needs layers {' and '.join(repr(x) for x in VELOCITY_LAYERS)}; "
            f"missing: {', '.join(missing)}",
            remedy="load the velocyto / STARsolo Velocyto / alevin-fry output with spliced and "
            "unspliced counts, or skip the velocity step",
        )
    _require_scvelo()
    written, warnings = _velocity(adata, "on")
    written.append(mark_owned(adata, "velocity", *(tuple(w.split("/", 1)) for w in written)))
    pseudotime = adata.obs.get("velocity_pseudotime")
    metrics: dict[str, float | int | str] = {"mode": p.mode, "n_keys_written": len(written) - 1}
    if pseudotime is not None:
        metrics["velocity_pseudotime_median"] = float(pseudotime.median())
    return ToolResult(
        summary=f"scVelo {p.mode} velocity and velocity pseudotime ({len(written) - 1} keys)",
        metrics=metrics,
        warnings=warnings,
        written=written,
    )


VELOCITY = register(
    Tool(
        id="velocity",
        name="RNA velocity (scVelo)",
        category="trajectory",
        framework="scvelo",
        fn=velocity,
        params=VelocityParams,
        requires=("neighbors",),
        deterministic=True,
        captures=("scvelo", "scanpy", "anndata", "numpy"),
        reference="Bergen et al. (2020) Generalizing RNA velocity to transient cell states "
        "through dynamical modeling. Nat Biotechnol 38:1408-1414; La Manno et al. (2018) RNA "
        "velocity of single cells. Nature 560:494-498",
        description="RNA velocity and velocity pseudotime with scVelo's deterministic model, "
        "when spliced/unspliced layers exist.",
    )
)
