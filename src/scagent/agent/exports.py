"""Exports for papers and for re-running elsewhere: a methods section written from the provenance, and a reproducibility bundle.

Both read only the committed record (the branch's snapshots and their PROV metadata),
never the conversation, so the same project always gives the same text.

The bundle is a folder that re-creates the analysis on another machine::

    bundle/
      README.md          what is here and how to run it
      project.json       the project's settings and experiment context
      context.json       the experiment context alone (for `scagent init --context`)
      provenance.jsonld  W3C PROV of the project (PROV-JSON-LD)
      steps.json         each step: tool, parameters, versions, and the hash of every part
      run.sh             the exact `scagent init` / `scagent run` commands, then `scagent replay`
      environment.json   Python, platform, and the versions of the libraries the steps used
      requirements.txt   the same versions, pinned for pip
      methods.md         the methods section
      data/import.h5ad   the imported data (step 0), unless left out
"""

from __future__ import annotations

import json
import platform
import shlex
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

from scagent._atomic import atomic_path, atomic_write_text
from scagent.errors import InvalidParameterError

if TYPE_CHECKING:
    from scagent.session import Session, StepRecord

__all__ = ["bundle_commands", "environment_versions", "methods_text", "write_bundle"]

#: Libraries always listed in the environment (the steps add what they captured).
CORE_LIBRARIES = (
    "scagent", "anndata", "scanpy", "numpy", "scipy", "pandas", "scikit-learn",
    "leidenalg", "igraph", "harmonypy", "umap-learn", "pynndescent", "pydantic", "prov",
)  # fmt: skip

#: One sentence per tool, filled from the recorded parameters (``p``), metrics (``m``)
#: and the tool's main library and version (``lib``: " using scanpy 1.11.5").
#: Unknown tools get a generic sentence.
_TEMPLATES: dict[str, str] = {
    "qc_metrics": (
        "Per-cell quality-control metrics (total counts, detected genes and the percentage "
        "of counts from mitochondrial genes, prefix {p[mito_prefix]}) were computed from the "
        "raw counts{lib}."
    ),
    "filter_cells": (
        "Low-quality cells were removed{lib} ({filter_rule}); {m[n_removed]} of "
        "{m[n_cells_before]} cells were removed and {m[n_cells_after]} kept."
    ),
    "filter_genes": "Genes detected in fewer than {p[min_cells]} cells were removed{lib}.",
    "doublets": (
        "Doublets were scored with Scrublet{lib} (expected doublet rate "
        "{p[expected_doublet_rate]}, {p[n_prin_comps]} principal components, random seed "
        "{p[random_state]}); {m[n_doublets]} cells were called doublets."
    ),
    "normalize": (
        "Counts were normalized to {target} per cell and log1p-transformed{lib}; raw counts "
        "were kept in layers['{p[counts_layer]}']."
    ),
    "hvg": (
        "{m[n_hvg]} highly variable genes were selected{lib} (flavor {m[flavor]}, asked for "
        "the top {p[n_top_genes]}{batch})."
    ),
    "pca": (
        "Principal component analysis was computed on {m[n_genes_used]} highly variable "
        "genes{lib} ({p[n_comps]} components, {p[svd_solver]} solver{scaled}, random seed "
        "{p[random_state]})."
    ),
    "harmony": (
        "Batch effects across obs['{p[batch_key]}'] were corrected with Harmony{lib} (theta "
        "{p[theta]}, at most {p[max_iter_harmony]} iterations, random seed {p[random_state]})."
    ),
    "neighbors": (
        "A k-nearest-neighbour graph was built{lib} ({p[n_neighbors]} neighbours, "
        "{p[metric]} distance, on {m[use_rep]})."
    ),
    "leiden": (
        "Cells were clustered with the Leiden algorithm{lib} (resolution {m_resolution}, "
        "{p[n_iterations]} iterations, random seed {p[random_state]}), giving "
        "{m[n_clusters]} clusters."
    ),
    "umap": (
        "A UMAP embedding was computed for visualisation{lib} (min_dist {p[min_dist]}, "
        "spread {p[spread]}, random seed {p[random_state]})."
    ),
    "markers": (
        "Marker genes of each group of obs['{m[groupby]}'] were ranked{lib} with the "
        "{p[method]} test against {p[reference]}."
    ),
    "paga": "Cluster connectivity was summarised with PAGA{lib}.",
    "diffusion_pseudotime": (
        "Diffusion pseudotime was computed from a diffusion map{lib} ({p[n_comps]} "
        "components, {p[n_dcs]} used)."
    ),
    "annotate": (
        "Clusters were annotated with cell types from their top {p[top_n_markers]} marker "
        "genes ({backend}, cross-checked against a marker database){lib}."
    ),
}


class _Safe(dict):
    """Formatting mapping that prints a missing key as ``?`` instead of failing."""

    def __missing__(self, key: str) -> str:
        return "?"


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def _lib(step: StepRecord, framework: str | None) -> str:
    versions = step.versions
    for name in (framework, "scanpy", "harmonypy", "scagent"):
        if name and name in versions:
            return f" using {name} {versions[name]}"
    return ""


def _sentence(step: StepRecord) -> str:
    from scagent.errors import UnknownToolError
    from scagent.tools import get_tool

    p = _Safe({k: _fmt(v) for k, v in step.params.items()})
    m = _Safe({k: _fmt(v) for k, v in step.metrics.items()})
    try:
        tool = get_tool(step.tool_id)
        framework, name = tool.framework, tool.name
        defaults = tool.defaults()
    except UnknownToolError:
        framework, name, defaults = None, step.tool_id, {}
    template = _TEMPLATES.get(step.tool_id)
    extra = {
        "lib": _lib(step, framework),
        "target": "the median total count"
        if step.params.get("target_sum") is None
        else f"{_fmt(step.params['target_sum'])} counts",
        "batch": f", batch-aware over obs['{step.params['batch_key']}']"
        if step.params.get("batch_key")
        else "",
        "scaled": ", on scaled values" if step.params.get("scale") else "",
        "m_resolution": m["resolution"] if "resolution" in step.metrics else p["resolution"],
        "backend": "an LLM"
        if step.params.get("llm") not in (None, "offline")
        else "offline marker-database scoring",
        "filter_rule": _filter_rule(step.params),
    }
    if template is None:
        changed = {k: v for k, v in step.params.items() if defaults.get(k, object()) != v}
        shown = (
            ", ".join(f"{k}={_fmt(v)}" for k, v in sorted(changed.items())) or "default parameters"
        )
        return f"{name} ({step.tool_id}) was run with {shown}{extra['lib']}."
    return template.format_map(_Safe({"p": p, "m": m, **extra}))


def _filter_rule(params: dict[str, Any]) -> str:
    if params.get("mode") == "thresholds":
        rules = [
            f"{label} {params[key]}"
            for key, label in (
                ("min_counts", "at least counts"),
                ("max_counts", "at most counts"),
                ("min_genes", "at least genes"),
                ("max_genes", "at most genes"),
                ("max_pct_mt", "at most % mitochondrial"),
            )
            if params.get(key) is not None
        ]
        return "fixed thresholds: " + ", ".join(rules) if rules else "fixed thresholds"
    return (
        f"outliers beyond {_fmt(params.get('nmads', '?'))} median absolute deviations in "
        f"counts and genes, {_fmt(params.get('nmads_mt', '?'))} in mitochondrial percentage"
        + (f", per obs['{params['sample_key']}']" if params.get("sample_key") else "")
    )


def methods_text(session: Session, branch: str | None = None) -> str:
    """A methods section for ``branch`` (default: current), written from its provenance.

    Deterministic: the same steps give the same text (no dates or run times). Lists the
    steps in order with their parameters and library versions, then the software used
    and the references of the tools.

    Parameters
    ----------
    session
        The project.
    branch
        The branch to describe.
    """
    from scagent.errors import UnknownToolError
    from scagent.tools import get_tool

    branch = branch or session.branch
    history = session.history(branch)
    chain = session.store.history(session.head(branch))
    n_obs, n_vars = chain[0].shape
    context = session.project.config.context
    about = []
    if context.organism is not None:
        about.append(context.organism.name)
    if context.tissue is not None:
        about.append(context.tissue.label)
    if context.platform:
        about.append(context.platform)
    lines = ["## Methods", "", "### Single-cell RNA-seq analysis", ""]
    opening = (
        f"The data ({n_obs:,} cells × {n_vars:,} genes"
        + (f"; {', '.join(about)}" if about else "")
        + f") were analysed with scagent {history[0].versions.get('scagent', '')}".rstrip()
        + " following a recorded, replayable chain of steps (branch "
        f"'{branch}', {len(history) - 1} steps after import)."
    )
    sentences = [opening]
    references: dict[str, str] = {}
    for step in history[1:]:
        sentences.append(_sentence(step))
        try:
            ref = get_tool(step.tool_id).reference
        except UnknownToolError:
            ref = ""
        if ref:
            references.setdefault(step.tool_id, ref)
    final_n = chain[-1].shape
    sentences.append(f"The final data held {final_n[0]:,} cells × {final_n[1]:,} genes.")
    lines.append(" ".join(sentences))
    lines += ["", "### Steps and parameters", ""]
    for step in history[1:]:
        params = ", ".join(f"{k}={_fmt(v)}" for k, v in sorted(step.params.items()))
        lines.append(f"{step.step}. `{step.tool_id}`: {params or '(no parameters)'}")
    versions: dict[str, str] = {}
    for step in history:
        versions.update(step.versions)
    python = next((s for s in (m.meta.get("python") for m in chain) if s), None)
    lines += ["", "### Software", ""]
    soft = ", ".join(f"{k} {v}" for k, v in sorted(versions.items()))
    lines.append(
        (f"Python {python}; " if python else "") + (soft or "(no versions recorded)") + "."
    )
    if references:
        lines += ["", "### References", ""]
        for ref in dict.fromkeys(references.values()):
            lines.append(f"- {ref}")
    return "\n".join(lines) + "\n"


def environment_versions(packages: tuple[str, ...] = ()) -> dict[str, Any]:
    """Python, platform, and installed versions of the core libraries and ``packages``."""
    versions: dict[str, str] = {}
    for name in dict.fromkeys((*CORE_LIBRARIES, *packages)):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return {
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "packages": dict(sorted(versions.items())),
    }


def _param_arg(key: str, value: Any) -> str:
    """``--param key=value`` as `scagent run` reads it back (JSON where it parses, else text)."""
    text = value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))
    if isinstance(value, str):
        try:  # a string that reads as JSON ("0", "true") must stay a string
            json.loads(value)
            text = json.dumps(value)
        except json.JSONDecodeError:
            pass
    return "--param " + shlex.quote(f"{key}={text}")


def bundle_commands(
    session: Session, branch: str | None = None, *, data: str = "$DATA"
) -> list[str]:
    """The ``scagent`` commands that rebuild ``branch``: init with the data, then each step.

    Every step is run with all its recorded parameters (defaults resolved), without
    ``--auto``: planned prerequisites were recorded as their own steps.
    """
    branch = branch or session.branch
    config = session.project.config
    init = ["scagent", "init", "--project", '"$WORK"', "--data", f'"{data}"']
    if config.paradigm:
        init += ["--paradigm", config.paradigm]
    init += ["--context", '"$HERE/context.json"']
    commands = [" ".join(init)]
    for step in session.history(branch)[1:]:
        args = [_param_arg(k, v) for k, v in step.params.items()]
        commands.append(" ".join(["scagent", "run", step.tool_id, "--project", '"$WORK"', *args]))
    return commands


_RUN_SH = """#!/usr/bin/env bash
# Re-creates branch '{branch}' of the scagent project, step by step, with the recorded
# parameters, then replays it to check that each step reproduces.
# Usage: ./run.sh [DATA.h5ad] [WORK_FOLDER]
set -euo pipefail
HERE="$(cd "$(dirname "${{BASH_SOURCE[0]}}")" && pwd)"
DATA="${{1:-$HERE/data/import.h5ad}}"
WORK="${{2:-$PWD/scagent_replay}}"
mkdir -p "$WORK"

{commands}

scagent replay --project "$WORK"
"""

_README = """# scagent reproducibility bundle

Branch `{branch}` of the project `{project}`: {n_steps} steps after the import.

- `run.sh [DATA.h5ad] [WORK]`: re-creates the analysis in WORK (default `./scagent_replay`)
  with the exact recorded parameters, then runs `scagent replay` there, which re-runs every
  step and checks that it reproduces (deterministic steps must match exactly).
- `requirements.txt` / `environment.json`: the library versions used.
- `steps.json`: every step's tool, parameters, versions and part hashes, to compare with a
  re-run (`scagent` snapshots are content-addressed).
- `provenance.jsonld`: the W3C PROV record; `project.json`: the settings and context.
- `methods.md`: the methods section.
{data_note}"""


def write_bundle(
    session: Session,
    out: str | Path,
    *,
    branch: str | None = None,
    include_data: bool = True,
) -> Path:
    """Write a reproducibility bundle for ``branch`` into folder ``out`` (see the module docstring).

    Parameters
    ----------
    session
        The project.
    out
        A folder that does not exist yet or is empty.
    branch
        The branch (default: current).
    include_data
        Write the imported data (step 0) as ``data/import.h5ad``; without it ``run.sh``
        takes the data file as its first argument.

    Returns
    -------
    Path
        The bundle folder.
    """
    branch = branch or session.branch
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise InvalidParameterError(
            f"bundle folder {str(out)!r} exists and is not empty",
            remedy="choose a new folder, or remove the old bundle",
        )
    out.mkdir(parents=True, exist_ok=True)
    history = session.history(branch)
    chain = session.store.history(session.head(branch))
    captured: set[str] = set()
    for step in history:
        captured.update(step.versions)

    atomic_write_text(out / "project.json", session.project.config_path.read_text(encoding="utf-8"))
    context = session.project.config.context.model_dump(mode="json", exclude_none=True)
    atomic_write_text(out / "context.json", json.dumps(context, indent=2) + "\n")
    atomic_write_text(out / "provenance.jsonld", session.export_provenance("jsonld"))
    steps = [
        {
            "step": s.step,
            "tool_id": s.tool_id,
            "params": s.params,
            "planned": s.planned,
            "deterministic": s.deterministic,
            "versions": s.versions,
            "snapshot": s.snapshot_id,
            "shape": list(m.shape),
            "parts": dict(m.parts),
        }
        for s, m in zip(history, chain, strict=True)
    ]
    atomic_write_text(out / "steps.json", json.dumps(steps, indent=1, default=str) + "\n")
    env = environment_versions(tuple(sorted(captured)))
    atomic_write_text(out / "environment.json", json.dumps(env, indent=2) + "\n")
    pins = [f"{k}=={v}" for k, v in env["packages"].items() if k != "scagent"]
    atomic_write_text(
        out / "requirements.txt",
        f"# scagent {env['packages'].get('scagent', '')} (install it first)\n"
        + "\n".join(pins)
        + "\n",
    )
    atomic_write_text(out / "methods.md", methods_text(session, branch))
    script = _RUN_SH.format(branch=branch, commands="\n".join(bundle_commands(session, branch)))
    atomic_write_text(out / "run.sh", script)
    (out / "run.sh").chmod(0o755)
    if include_data:
        (out / "data").mkdir(exist_ok=True)
        adata = session.store.read_snapshot(chain[0].id)
        with atomic_path(out / "data" / "import.h5ad", suffix=".h5ad") as tmp:
            adata.write_h5ad(tmp)
        data_note = "- `data/import.h5ad`: the imported data (step 0).\n"
    else:
        data_note = "- The data is not included: pass the original file to `run.sh`.\n"
    atomic_write_text(
        out / "README.md",
        _README.format(
            branch=branch,
            project=session.project.root.name,
            n_steps=len(history) - 1,
            data_note=data_note,
        ),
    )
    return out
