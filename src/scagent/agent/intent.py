"""The offline intent parser: common requests in plain words, mapped deterministically to a tool and its parameters.

No model is involved: an ordered list of patterns, each naming the tool (or agent
command) it means and how to read parameters from the words ("resolution 0.8",
"for cluster 3", "by batch", ``key=value``). Requests it does not recognise get a
clarification that lists what it can do. The tools are named by id and checked against
the registry only when they run, so a request for a tool that is not installed gets a
clear "not available" instead of an import error here.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from scagent.data.state import DataState

__all__ = ["CAPABILITIES", "Intent", "capabilities_text", "parse_intent"]

#: What the parser understands, as examples shown when it cannot understand a request.
CAPABILITIES: tuple[tuple[str, str], ...] = (
    ("run QC", "qc_metrics"),
    ("filter cells / filter genes", "filter_cells, filter_genes"),
    ("find doublets", "doublets"),
    ("normalize", "normalize"),
    ("highly variable genes (n 2000)", "hvg"),
    ("run PCA", "pca"),
    ("integrate by batch", "harmony"),
    ("build the neighbour graph", "neighbors"),
    ("cluster at resolution 0.8", "leiden"),
    ("consensus clustering", "consensus_clustering"),
    ("compute a UMAP", "umap"),
    ("find markers for cluster 3", "markers"),
    ("annotate the clusters", "annotate"),
    ("trajectory / pseudotime from cluster 2", "paga, diffusion_pseudotime"),
    ("DE between CAF subtypes", "de_within_cluster"),
    ("DE between conditions (pseudobulk)", "pseudobulk_de"),
    ("enrichment of the DE genes", "enrichment"),
    ("cell-type composition by condition", "composition"),
    ("compare branches A and B", "branch comparison"),
    ("what did we do?", "the steps so far"),
    ("what next?", "suggested next steps"),
    ("undo", "move the branch back one step"),
)


def capabilities_text() -> str:
    """The capability list as lines ``"  run QC  -> qc_metrics"``."""
    width = max(len(e) for e, _ in CAPABILITIES)
    return "\n".join(f"  {example:<{width}}  -> {target}" for example, target in CAPABILITIES)


@dataclass
class Intent:
    """What a request means.

    Attributes
    ----------
    kind
        ``tool`` (run ``tool_id`` with ``params``), ``command`` (an agent command such as
        ``history`` or ``compare`` with ``args``) or ``clarify`` (not understood;
        ``message`` says so and lists what the parser can do).
    focus
        What to show after the step (``{"cluster": "3"}`` for markers of cluster 3).
    hints
        Parameters that depend on a tool's schema, by meaning (``groupby``,
        ``sample_key``, ``condition_key``, ``groups``); mapped onto the tool's actual
        parameter names when it runs (see :func:`scagent.agent.requirements.fit_params`).
    """

    kind: Literal["tool", "command", "clarify"]
    text: str = ""
    tool_id: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    hints: dict[str, Any] = field(default_factory=dict)
    command: str | None = None
    args: list[str] = field(default_factory=list)
    focus: dict[str, Any] = field(default_factory=dict)
    message: str = ""

    def describe(self) -> str:
        """How the request was understood, in words."""
        if self.kind == "tool":
            shown = {**self.params, **self.hints}
            params = ", ".join(f"{k}={v!r}" for k, v in shown.items())
            return f"{self.tool_id}" + (f" ({params})" if params else "")
        if self.kind == "command":
            return f"{self.command}" + (f" {' '.join(self.args)}" if self.args else "")
        return "not understood"


# ---------------------------------------------------------------------------- helpers
_NUMBER = r"(\d+(?:\.\d+)?|\.\d+)"


def _number(text: str) -> float | int:
    value = float(text)
    return int(value) if value.is_integer() and "." not in text else value


def _find_number(text: str, *names: str) -> float | int | None:
    """The number after one of ``names`` ("resolution 0.8", "res=0.8", "resolution of 0.8")."""
    for name in names:
        m = re.search(rf"\b{name}\b\s*(?:=|:|of|to|at)?\s*{_NUMBER}", text)
        if m:
            return _number(m.group(1))
    return None


def _key_values(text: str) -> dict[str, Any]:
    """Explicit ``key=value`` pairs in the request (values parsed as JSON where they parse)."""
    out: dict[str, Any] = {}
    for key, value in re.findall(r"\b([a-z_][a-z0-9_]*)=(\S+)", text):
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = {"true": True, "false": False, "none": None}.get(value.lower(), value)
    return out


def _column_named(word: str, state: DataState | None) -> str | None:
    """An obs column the inspector knows whose name is ``word`` (case-insensitive)."""
    if state is None:
        return None
    for col in _all_columns(state):
        if col.name.lower() == word.lower():
            return col.name
    return None


def _all_columns(state: DataState) -> list[Any]:
    crumbs = state.breadcrumbs
    return [
        *state.sample_columns,
        *state.batch_columns,
        *state.condition_columns,
        *state.donor_columns,
        *crumbs.cell_types,
        *crumbs.clusterings,
    ]


def _group_column(phrase: str, state: DataState | None) -> str | None:
    """The obs column that ``phrase`` ("CAF subtypes", "clusters", "cell types") refers to."""
    if state is None:
        return None
    crumbs = state.breadcrumbs
    words = [w for w in re.findall(r"[\w\-]+", phrase.lower()) if len(w) > 1]
    # A column named in the phrase, or one whose levels contain a word of it (CAF -> the
    # column with levels "myCAF", "iCAF").
    for col in _all_columns(state):
        if col.name.lower() in words:
            return col.name
    for col in [*crumbs.cell_types, *crumbs.clusterings]:
        levels = " ".join(col.levels).lower()
        if any(w in levels for w in words if w not in ("between", "the", "and", "of", "types")):
            return col.name
    if any(w.startswith("cluster") for w in words) and crumbs.clusterings:
        return crumbs.clusterings[0].name
    if crumbs.cell_types:
        return crumbs.cell_types[0].name
    if crumbs.clusterings:
        return crumbs.clusterings[0].name
    return None


def _first(columns: list[Any]) -> str | None:
    multi = [c for c in columns if c.n_levels >= 2]
    return (multi or columns)[0].name if columns else None


#: Short names the rules read numbers from; not parameters of their own.
_SHORTHANDS = frozenset({"res", "r", "k", "n", "top", "comps", "pcs", "components"})

# ---------------------------------------------------------------------------- rules
Rule = Callable[[str, "DataState | None"], "Intent | None"]


def _tool(tool_id: str, **kw: Any) -> Intent:
    return Intent("tool", tool_id=tool_id, **kw)


def _cmd(command: str, *args: str) -> Intent:
    return Intent("command", command=command, args=list(args))


def _compare(t: str, s: DataState | None) -> Intent | None:
    m = re.search(
        r"\bcompare\b(?:\s+(?:the\s+)?branch(?:es)?)?\s+([\w.\-@/]+)\s+(?:and|with|vs\.?|to|versus)\s+"
        r"(?:branch\s+)?([\w.\-@/]+)",
        t,
    )
    if m:
        return _cmd("compare", m.group(1), m.group(2))
    if re.search(r"\bcompare\b.*\bbranch", t):
        return Intent(
            "clarify", message="Which two branches? Say e.g. 'compare branches main and hires'."
        )
    return None


def _history(t: str, s: DataState | None) -> Intent | None:
    if re.search(
        r"what (?:did|have) (?:we|i|you) (?:do|done)|what has been done|\bhistory\b|"
        r"steps so far|what happened|summar(?:y|ise|ize) (?:the )?(?:analysis|steps)",
        t,
    ):
        return _cmd("history")
    return None


def _next(t: str, s: DataState | None) -> Intent | None:
    if re.search(r"what(?:'s| is| should i do)? next|next steps?|what now|suggest", t):
        return _cmd("next")
    return None


def _status(t: str, s: DataState | None) -> Intent | None:
    if re.search(r"^(?:show )?status$|where are we|what is the data|describe the data", t):
        return _cmd("status")
    return None


def _undo(t: str, s: DataState | None) -> Intent | None:
    if re.search(r"^(?:please )?(?:undo|go back|revert)(?: (?:the )?last step)?\b", t):
        return _cmd("undo")
    return None


#: Words people use for each paradigm (besides its own name).
_PARADIGM_WORDS = {
    "perturbation_screen": r"perturb\w*|crispr|perturb-seq|screen",
    "immune_repertoire": r"repertoire|clonotype\w*|vdj|v\(d\)j|tcr|bcr|[tb][ -]cell receptor",
    "multimodal": r"multimodal|cite-?seq|adt|proteins?",
    "communication": r"communication|ligand\w*|liana|cell-cell",
    "atlas": r"atlas|integration",
    "disease_vs_healthy": r"disease|case[- ]control|healthy",
    "temporal_longitudinal": r"temporal|longitudinal|time[- ]course",
    "developmental_trajectory": r"developmental|trajectory|lineage|pseudotime",
}


def _pipeline(t: str, s: DataState | None) -> Intent | None:
    # A request to run, not a question about the pipeline ("what does the pipeline do?").
    if not re.search(r"\b(?:pipeline|paradigm)\b", t) or not re.match(
        r"^(?:please |now |ok |okay )?(?:run|start|launch|execute|do|go on with|resume|continue)\b",
        t,
    ):
        return None
    resume = ["--resume"] if re.match(r"^(?:please )?(?:resume|continue|go on)\b", t) else []
    hits = []
    for order, (paradigm, words) in enumerate(_PARADIGM_WORDS.items()):
        own = re.search(rf"\b{paradigm.replace('_', '[ _-]')}\b", t)
        other = re.search(rf"\b(?:{words})\b", t)
        # the paradigm's own name beats a word; otherwise the word named first wins
        if own:
            hits.append((0, own.start(), order, paradigm))
        elif other:
            hits.append((1, other.start(), order, paradigm))
    if hits:
        return _cmd("pipeline", min(hits)[3], *resume)
    return _cmd("pipeline", *resume)  # the project's own paradigm


def _export(t: str, s: DataState | None) -> Intent | None:
    m = re.search(r"\b(?:export|write)\b.*\b(methods|bundle|provenance)\b", t)
    return _cmd("export", m.group(1)) if m else None


def _help(t: str, s: DataState | None) -> Intent | None:
    if re.search(r"^(?:help|what can you do|\?)\??$", t):
        return Intent("clarify", message="Here is what I can do without a language model:")
    return None


def _level_column(words: list[str], columns: list[Any]) -> tuple[str, list[str]] | None:
    """The first column whose levels match every word (exact, case-insensitive), with the levels."""
    for col in columns:
        by_lower = {lv.lower(): lv for lv in col.levels}
        if all(w in by_lower for w in words):
            return col.name, [by_lower[w] for w in words]
    return None


def _de(t: str, s: DataState | None) -> Intent | None:
    """Three kinds of DE: between subtypes of a population (subcluster, then test), between
    two groups of cells (markers of one against the other), between conditions (pseudobulk)."""
    if not re.search(
        r"\bde\b|\bdge\b|differential(?:ly)? expr|pseudo-?bulk|diff(?:erential)? expression|"
        r"differentially expressed",
        t,
    ):
        return None
    crumbs = s.breadcrumbs if s is not None else None
    labelled = [*crumbs.cell_types, *crumbs.clusterings] if crumbs is not None else []
    sub = re.search(
        r"(?:between|among|of|within|across)\s+(?:the\s+)?([\w\-+]+(?:\s+[\w\-+]+){0,2}?)\s+"
        r"(?:sub-?types|sub-?clusters|sub-?populations|subsets|states)",
        t,
    )
    if sub and "pseudobulk" not in t and "pseudo-bulk" not in t:
        word = sub.group(1)
        params: dict[str, Any] = {}
        hints: dict[str, Any] = {}
        for col in labelled:
            hits = [lv for lv in col.levels if word in lv.lower()]
            if hits:
                params["labels"] = hits
                hints["groupby"] = col.name
                break
        if not params:
            return Intent(
                "clarify",
                message=f"No cell-type or cluster label mentions {word!r}: annotate the "
                "clusters first ('annotate the clusters'), or name the labels, e.g. "
                "/run de_within_cluster groupby=COLUMN labels='[\"LABEL\"]'.",
            )
        return _tool("de_within_cluster", params=params, hints=hints)
    hints = {}
    if s is not None:
        sample = _first(s.sample_columns) or _first(s.donor_columns)
        if sample:
            hints["sample_key"] = sample
        condition = _first(s.condition_columns)
        if condition:
            hints["condition_key"] = condition
    pair = re.search(r"between\s+([\w\-+]+)\s+(?:and|vs\.?|versus)\s+([\w\-+]+)", t)
    if pair and s is not None:
        words = [pair.group(1), pair.group(2)]
        found = _level_column(words, s.condition_columns)
        if found:  # two conditions: the first is the reference
            hints["condition_key"] = found[0]
            params = {"reference": found[1][0], "test_level": found[1][1]}
            group = _group_column("cell types", s)
            if group:
                hints["groupby"] = group
            return _tool("pseudobulk_de", params=params, hints=hints)
        found = _level_column(words, labelled)
        if found:  # two groups of cells: markers of the second against the first
            return _tool(
                "markers",
                params={"groupby": found[0], "reference": found[1][0]},
                focus={"cluster": found[1][1]},
            )
    if re.search(r"between (?:the )?(?:clusters|cell[- ]?types|groups)", t) and not re.search(
        r"condition|pseudo-?bulk", t
    ):
        return _tool("markers")
    group = _group_column("cell types", s)
    if group:
        hints["groupby"] = group
    return _tool("pseudobulk_de", hints=hints)


def _enrichment(t: str, s: DataState | None) -> Intent | None:
    if re.search(r"enrich|pathway|gene set|gsea|\bora\b", t):
        return _tool("enrichment")
    return None


def _composition(t: str, s: DataState | None) -> Intent | None:
    if re.search(r"composition|proportion|abundance|cell-type shares|cell type shares", t):
        hints: dict[str, Any] = {}
        if s is not None:
            if s.condition_columns:
                hints["condition_key"] = _first(s.condition_columns)
            if s.sample_columns:
                hints["sample_key"] = _first(s.sample_columns)
        return _tool("composition", hints=hints)
    return None


def _qc(t: str, s: DataState | None) -> Intent | None:
    if re.search(r"filter(?:ing)?\s+(?:the\s+)?genes|remove\s+(?:rare|lowly)", t):
        params: dict[str, Any] = {}
        n = _find_number(t, "min_cells", "min cells", "in at least")
        if n is not None:
            params["min_cells"] = int(n)
        return _tool("filter_genes", params=params)
    if re.search(
        r"filter(?:ing)?\s+(?:the\s+)?(?:low[- ]quality\s+)?cells|remove\s+(?:low[- ]quality\s+|bad\s+)?cells|"
        r"qc filter",
        t,
    ):
        params = {}
        mt = re.search(rf"{_NUMBER}\s*%\s*(?:mito|mt)", t) or re.search(
            rf"(?:mito\w*|mt)\s*(?:above|over|>|more than)\s*{_NUMBER}", t
        )
        if mt:
            params["max_pct_mt"] = _number(mt.group(1))
        genes = _find_number(t, "min_genes", "min genes") or (
            _number(m.group(1))
            if (m := re.search(rf"(?:fewer than|less than|<)\s*{_NUMBER}\s*genes", t))
            else None
        )
        if genes is not None:
            params["min_genes"] = int(genes)
        if params:
            params["mode"] = "thresholds"
        return _tool("filter_cells", params=params)
    if re.search(r"\bqc\b|quality control|quality metrics|qc metrics", t):
        return _tool("qc_metrics")
    return None


def _doublets(t: str, s: DataState | None) -> Intent | None:
    if re.search(r"doublet|scrublet", t):
        params: dict[str, Any] = {}
        if re.search(r"\bremove|drop|filter", t):
            params["remove"] = True
        return _tool("doublets", params=params)
    return None


def _normalize(t: str, s: DataState | None) -> Intent | None:
    if re.search(r"normali[sz]", t):
        params: dict[str, Any] = {}
        n = _find_number(t, "target_sum", "target sum", "to")
        if n is not None and n >= 100:
            params["target_sum"] = float(n)
        return _tool("normalize", params=params)
    return None


def _hvg(t: str, s: DataState | None) -> Intent | None:
    if re.search(r"\bhvgs?\b|highly variable|variable genes|feature selection", t):
        params: dict[str, Any] = {}
        n = _find_number(t, "n_top_genes", "n", "top") or (
            _number(m.group(1))
            if (m := re.search(rf"{_NUMBER}\s+(?:highly|variable|hvg)", t))
            else None
        )
        if n is not None:
            params["n_top_genes"] = int(n)
        return _tool("hvg", params=params)
    return None


def _pca(t: str, s: DataState | None) -> Intent | None:
    if re.search(r"\bpca\b|principal comp", t):
        params: dict[str, Any] = {}
        n = _find_number(t, "n_comps", "components", "comps", "pcs") or (
            _number(m.group(1))
            if (m := re.search(rf"{_NUMBER}\s+(?:components|pcs|comps)", t))
            else None
        )
        if n is not None:
            params["n_comps"] = int(n)
        return _tool("pca", params=params)
    return None


def _harmony(t: str, s: DataState | None) -> Intent | None:
    if re.search(r"harmony|integrat|batch[- ]correct|batch effect|remove (?:the )?batch", t):
        params: dict[str, Any] = {}
        m = re.search(r"\b(?:by|on|over|across|using|with)\s+(?:the\s+)?([\w\-]+)", t)
        named = _column_named(m.group(1), s) if m else None
        if named:
            params["batch_key"] = named
        elif s is not None:
            guess = _first(s.batch_columns) or _first(s.sample_columns) or _first(s.donor_columns)
            if guess:
                params["batch_key"] = guess
        return _tool("harmony", params=params)
    return None


def _neighbors(t: str, s: DataState | None) -> Intent | None:
    if re.search(r"neighbou?rs?|knn|k-nn|nearest", t):
        params: dict[str, Any] = {}
        n = _find_number(t, "n_neighbors", "k") or (
            _number(m.group(1)) if (m := re.search(rf"{_NUMBER}\s+neighbou?rs", t)) else None
        )
        if n is not None:
            params["n_neighbors"] = int(n)
        return _tool("neighbors", params=params)
    return None


def _markers(t: str, s: DataState | None) -> Intent | None:
    if re.search(r"\bmarkers?\b|marker genes|rank genes|top genes", t):
        focus: dict[str, Any] = {}
        m = re.search(r"cluster\s*#?\s*([\w\-+]+)", t)
        if m and m.group(1) not in ("s", "es"):
            focus["cluster"] = m.group(1)
        params: dict[str, Any] = {}
        by = re.search(r"\bby\s+([\w\-]+)", t)
        named = _column_named(by.group(1), s) if by else None
        if named:
            params["groupby"] = named
        return _tool("markers", params=params, focus=focus)
    return None


def _cluster(t: str, s: DataState | None) -> Intent | None:
    if re.search(r"consensus", t) and re.search(r"cluster", t):
        return _tool("consensus_clustering")
    if re.search(r"\bcluster|\bleiden|recluster|re-cluster|communit", t):
        params: dict[str, Any] = {}
        res = _find_number(t, "resolution", "res", "r")
        if res is not None:
            params["resolution"] = float(res)
        sweep = re.search(
            r"(?:sweep|resolutions?)\s*(?:of|from)?\s*((?:\d*\.?\d+\s*(?:,|and)\s*)+\d*\.?\d+)", t
        )
        if sweep:
            params["resolutions"] = [float(x) for x in re.findall(r"\d*\.?\d+", sweep.group(1))]
            params.pop("resolution", None)
        return _tool("leiden", params=params)
    return None


def _umap(t: str, s: DataState | None) -> Intent | None:
    if re.search(r"\bumap\b|embedding|visuali[sz]", t):
        return _tool("umap")
    return None


def _trajectory(t: str, s: DataState | None) -> Intent | None:
    if re.search(r"pseudotime|diffusion", t):
        params: dict[str, Any] = {}
        m = re.search(
            r"(?:from|root(?:ed)?(?: at| in)?|starting (?:at|from))\s+(?:cluster\s+)?([\w\-+]+)", t
        )
        if m:
            params["root_group"] = m.group(1)
        return _tool("diffusion_pseudotime", params=params)
    if re.search(r"\bpaga\b|trajector|lineage", t):
        return _tool("paga")
    return None


def _annotate(t: str, s: DataState | None) -> Intent | None:
    if re.search(
        r"annotat|cell[- ]?types?\b|label (?:the )?clusters|name (?:the )?clusters|identify (?:the )?cells",
        t,
    ):
        params: dict[str, Any] = {}
        m = re.search(
            r"\b(?:in|from|tissue)\s+(?:the\s+)?(blood|lung|liver|kidney|brain|heart|skin|intestine|colon|pancreas|bone marrow|spleen|lymph node|breast|tumou?r)",
            t,
        )
        if m:
            params["tissue"] = m.group(1)
        return _tool("annotate", params=params)
    return None


def _run_tool(t: str, s: DataState | None) -> Intent | None:
    """``run TOOL_ID ...`` for any registered tool id, spelled as the registry does."""
    m = re.match(
        r"^(?:run|do|compute|perform)\s+([a-z_][a-z0-9_]*)((?:\s+[a-z_][a-z0-9_]*=\S+)*)$", t
    )
    if not m:
        return None
    from scagent.tools import tool_ids

    if m.group(1) in tool_ids():
        return _tool(m.group(1))
    return None


#: Rules in order: commands first, then specific analyses before general words
#: ("DE between cell types" is DE, not annotation; "markers for cluster 3" is markers,
#: not clustering).
RULES: tuple[Rule, ...] = (
    _help,
    _compare,
    _history,
    _undo,
    _export,
    _status,
    _pipeline,
    _run_tool,
    _de,
    _enrichment,
    _composition,
    _markers,
    _annotate,
    _doublets,
    _qc,
    _normalize,
    _hvg,
    _pca,
    _harmony,
    _neighbors,
    _trajectory,
    _cluster,
    _umap,
    _next,
)


def parse_intent(text: str, state: DataState | None = None) -> Intent:
    """Map a request in plain words to a tool with parameters, an agent command, or a clarification.

    Parameters
    ----------
    text
        The request ("cluster at resolution 0.8", "find markers for cluster 3").
    state
        The inspector's view of the data, used to fill columns (batch, sample, groups).

    Returns
    -------
    Intent
        ``kind="clarify"`` with a message listing what the parser can do when it does not
        understand; explicit ``key=value`` pairs in the text become parameters.
    """
    raw = text.strip()
    t = re.sub(r"\s+", " ", raw.lower()).strip(" .!")
    if not t:
        return Intent("clarify", text=raw, message="Empty request.")
    for rule in RULES:
        intent = rule(t, state)
        if intent is not None:
            intent.text = raw
            if intent.kind == "tool":
                # Explicit key=value pairs, except the shorthands a rule already read
                # ("res=0.8" became resolution).
                explicit = _key_values(raw)
                intent.params.update({k: v for k, v in explicit.items() if k not in _SHORTHANDS})
            if intent.kind == "clarify" and not intent.message:
                intent.message = "I did not understand that."
            return intent
    return Intent(
        "clarify",
        text=raw,
        message=f"I could not map {raw!r} to an analysis step.",
    )
