"""The experimental design behind a cross-condition test: samples, conditions, covariates and the contrast.

Pseudobulk DE and compositional tests both treat the *sample* (a biological replicate)
as the unit of replication, never the cell. This module finds the sample and condition
columns, builds one row per sample, checks that samples are nested in conditions and
replicated, and resolves which two condition levels are compared.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from scagent.errors import InvalidDataError, InvalidParameterError
from scagent.tools._data import obs_column

if TYPE_CHECKING:
    from anndata import AnnData

    from scagent.data.state import DataState

#: The paper every refusal to test unreplicated conditions cites.
SQUAIR_2021 = (
    "Squair et al. (2021) Confronting false discoveries in single-cell differential "
    "expression. Nat Commun 12:5692"
)

__all__ = ["SQUAIR_2021", "Design", "model_matrix", "refuse_unreplicated", "resolve_design"]


@dataclass(frozen=True)
class Design:
    """A two-level contrast across replicated samples.

    Attributes
    ----------
    sample_key, condition_key
        obs columns of the samples (replicates) and of the condition.
    reference, test
        The compared levels of ``condition_key``: effects are ``test`` over ``reference``.
    samples
        One row per sample (index: sample name) with the condition and each covariate.
    covariates
        Sample-level obs columns added to the model (e.g. batch).
    """

    sample_key: str
    condition_key: str
    reference: str
    test: str
    samples: pd.DataFrame
    covariates: tuple[str, ...] = ()

    def n_per_condition(self) -> dict[str, int]:
        """Samples per condition level."""
        return self.samples[self.condition_key].value_counts().to_dict()


def _pick_column(
    adata: AnnData,
    value: str,
    found: list[str],
    role: str,
    param: str,
    tool_id: str,
) -> str:
    return obs_column(
        adata,
        value,
        lambda: found,
        param=param,
        missing=InvalidDataError(
            f"{tool_id} found no {role} column in obs (columns: "
            f"{', '.join(map(str, adata.obs.columns[:20]))})",
            remedy=f"pass {param}=<the obs column that holds the {role} of each cell>",
        ),
    )


def _sample_rows(
    adata: AnnData, sample_key: str, condition_key: str, covariates: tuple[str, ...], tool_id: str
) -> pd.DataFrame:
    """One row per sample; a sample in two conditions or a covariate varying within a sample is an error."""
    cols = [condition_key, *covariates]
    obs = adata.obs[[sample_key, *cols]].copy()
    obs[sample_key] = obs[sample_key].astype(str)
    for col in cols:
        if obs[col].isna().any():
            raise InvalidDataError(
                f"obs['{col}'] has {int(obs[col].isna().sum())} missing values",
                remedy=f"fill or drop the cells with no {col} before {tool_id}",
            )
    per_sample = obs.groupby(sample_key, observed=True)[cols].nunique()
    for col in cols:
        mixed = per_sample.index[per_sample[col] > 1].tolist()
        if mixed:
            what = "condition" if col == condition_key else "covariate"
            raise InvalidDataError(
                f"samples {mixed[:5]} of obs['{sample_key}'] span several levels of the {what} "
                f"obs['{col}']; a sample must belong to one level",
                remedy=f"check that '{sample_key}' identifies biological samples (replicates)"
                + (
                    f" and that '{col}' is a sample-level covariate" if col != condition_key else ""
                ),
            )
    rows = obs.groupby(sample_key, observed=True)[cols].first()
    rows[condition_key] = rows[condition_key].astype(str)
    for col in covariates:
        if not pd.api.types.is_numeric_dtype(rows[col]):
            rows[col] = rows[col].astype(str)
    return rows


def _contrast(
    levels: list[str], reference: str | None, test: str | None, condition_key: str, tool_id: str
) -> tuple[str, str]:
    for name, value in (("reference", reference), ("test_level", test)):
        if value is not None and value not in levels:
            raise InvalidParameterError(
                f"{name}='{value}' is not a level of obs['{condition_key}']",
                remedy=f"choose one of: {', '.join(levels[:30])}",
            )
    if len(levels) < 2:
        raise InvalidDataError(
            f"obs['{condition_key}'] has a single level ({', '.join(levels)}); {tool_id} needs "
            "two conditions to compare",
            remedy="choose the obs column that separates the conditions (condition_key=...)",
        )
    ref = reference if reference is not None else next((lv for lv in levels if lv != test), None)
    others = [lv for lv in levels if lv != ref]
    if test is None:
        if len(others) > 1:
            raise InvalidParameterError(
                f"obs['{condition_key}'] has {len(levels)} levels ({', '.join(levels[:10])}); "
                f"{tool_id} compares two",
                remedy="pass test_level=<level> (and reference=<level>) to choose the contrast",
            )
        test = others[0]
    if ref == test:
        raise InvalidParameterError(
            f"reference and test_level are both '{ref}'", remedy="choose two different levels"
        )
    assert ref is not None
    return ref, test


def model_matrix(
    rows: pd.DataFrame, condition_key: str, reference: str, covariates: tuple[str, ...] = ()
) -> tuple[np.ndarray, list[str]]:
    """Treatment-coded design matrix of per-sample ``rows``: intercept, condition, covariates.

    Condition levels other than ``reference`` and the levels of each categorical covariate
    (but its first) get one indicator column each; numeric covariates enter as they are.
    Covariates with a single value among ``rows`` are left out (nothing to adjust).

    Returns
    -------
    The matrix (samples x coefficients) and the coefficient names (``condition[<level>]``,
    ``<covariate>[<level>]`` or ``<covariate>``).
    """
    columns = [np.ones(len(rows))]
    names = ["intercept"]
    cond = rows[condition_key].astype(str)
    for level in sorted(set(cond) - {reference}):
        columns.append((cond == level).to_numpy(float))
        names.append(f"condition[{level}]")
    for cov in covariates:
        values = rows[cov]
        if values.nunique() < 2:
            continue
        if pd.api.types.is_numeric_dtype(values):
            columns.append(values.to_numpy(float))
            names.append(cov)
            continue
        for level in sorted(set(values.astype(str)))[1:]:
            columns.append((values.astype(str) == level).to_numpy(float))
            names.append(f"{cov}[{level}]")
    return np.column_stack(columns), names


def confounded_terms(matrix: np.ndarray, names: list[str]) -> list[str]:
    """Coefficients that are linear combinations of earlier ones (empty when full rank)."""
    bad = []
    for j in range(1, matrix.shape[1]):
        keep = [i for i in range(j) if names[i] not in bad]
        if np.linalg.matrix_rank(matrix[:, [*keep, j]]) <= len(keep):
            bad.append(names[j])
    return bad


def refuse_unreplicated(
    design_counts: dict[str, int], design: Design, minimum: int, tool_id: str
) -> None:
    """Raise when either compared condition has fewer than ``minimum`` samples (pseudoreplication)."""
    short = {
        lv: design_counts.get(lv, 0)
        for lv in (design.reference, design.test)
        if design_counts.get(lv, 0) < minimum
    }
    if not short:
        return
    names = design.samples.index[design.samples[design.condition_key].isin(list(short))].tolist()
    have = ", ".join(f"'{lv}': {n} sample(s)" for lv, n in short.items())
    raise InvalidDataError(
        f"{tool_id} refuses to compare '{design.test}' with '{design.reference}': {have} "
        f"(samples {names[:6]} in obs['{design.sample_key}']), and each condition needs at "
        f"least {minimum} independent samples (biological replicates). Testing cells instead "
        "treats the cells of one sample as independent replicates (pseudoreplication): any "
        "difference between two samples, biological or technical, becomes 'significant', and "
        f"false discoveries multiply ({SQUAIR_2021})",
        remedy=f"add biological replicates (>= {minimum} samples per condition, 3 or more "
        "recommended) and give their obs column as sample_key; with one sample per condition, "
        "report fold changes descriptively and make no condition-level claim",
    )


def resolve_design(
    adata: AnnData,
    state: DataState,
    *,
    sample_key: str,
    condition_key: str,
    reference: str | None,
    test_level: str | None,
    covariates: tuple[str, ...] = (),
    min_replicates: int = 2,
    tool_id: str,
) -> Design:
    """Find the design columns, build the per-sample table and refuse unreplicated contrasts.

    Raises
    ------
    InvalidParameterError
        A named column or level does not exist, or the contrast is ambiguous.
    InvalidDataError
        No sample or condition column; a sample spans conditions; fewer than
        ``min_replicates`` samples in a compared condition (pseudoreplication).
    """
    sample_found = [c.name for c in (*state.sample_columns, *state.donor_columns)]
    sample_key = _pick_column(adata, sample_key, sample_found, "sample", "sample_key", tool_id)
    condition_found = [c.name for c in state.condition_columns]
    condition_key = _pick_column(
        adata, condition_key, condition_found, "condition", "condition_key", tool_id
    )
    if sample_key == condition_key:
        raise InvalidDataError(
            f"sample_key and condition_key are both '{sample_key}': every condition would be a "
            f"single sample, with no replicates ({SQUAIR_2021})",
            remedy="pass the obs column of the biological samples as sample_key",
        )
    for cov in covariates:
        if cov not in adata.obs:
            raise InvalidParameterError(
                f"covariate '{cov}' is not an obs column",
                remedy=f"choose from: {', '.join(map(str, adata.obs.columns[:20]))}",
            )
        if cov in (sample_key, condition_key):
            raise InvalidParameterError(
                f"covariate '{cov}' is the sample or condition column",
                remedy="list only extra sample-level covariates, such as batch",
            )
    rows = _sample_rows(adata, sample_key, condition_key, tuple(covariates), tool_id)
    cond = adata.obs[condition_key]
    levels = (
        [str(c) for c in cond.cat.categories if (cond == c).any()]
        if isinstance(cond.dtype, pd.CategoricalDtype)
        else sorted(map(str, cond.unique()))
    )
    ref, test = _contrast(levels, reference, test_level, condition_key, tool_id)
    design = Design(
        sample_key=sample_key,
        condition_key=condition_key,
        reference=ref,
        test=test,
        samples=rows,
        covariates=tuple(covariates),
    )
    refuse_unreplicated(design.n_per_condition(), design, min_replicates, tool_id)
    return design
