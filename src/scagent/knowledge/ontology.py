"""The Cell Ontology offline: free-text labels to CL ids, the is_a graph, broad types and scoring.

Built on ``cellxgene-ontology-guide``, which ships CL and UBERON inside its wheel. Its
parser is loaded once per process (a lazy module-level singleton) and every index built
on top of it is cached, so label lookups after the first cost microseconds.
"""

from __future__ import annotations

import difflib
import functools
import re
import unicodedata
from dataclasses import dataclass
from importlib import resources
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from cellxgene_ontology_guide.ontology_parser import OntologyParser

__all__ = [
    "BROAD_TYPES",
    "GENERIC_TERMS",
    "OntologyMatch",
    "TissueMatch",
    "ancestors",
    "broad_type",
    "broad_types",
    "cl_label",
    "descendants",
    "distance",
    "is_generic",
    "is_valid_cl",
    "label_to_cl",
    "lowest_common_ancestor",
    "normalize_label",
    "normalize_tissue",
    "ontology_versions",
    "parser",
    "score_prediction",
]

MatchMethod = Literal["exact", "synonym", "fuzzy", "none"]

#: Terms too general to count as a near miss (README "Scoring annotations": never 'cell').
GENERIC_TERMS: frozenset[str] = frozenset(
    {
        "CL:0000000",  # cell
        "CL:0000003",  # native cell
        "CL:0000548",  # animal cell
        "CL:0000255",  # eukaryotic cell
        "CL:0002371",  # somatic cell
        "CL:0002242",  # nucleate cell
        "CL:0000226",  # single nucleate cell
        "CL:0000228",  # multinucleate cell
        "CL:0000219",  # motile cell
        "CL:0000393",  # electrically responsive cell
        "CL:0000211",  # electrically active cell
        "CL:0000404",  # electrically signaling cell
        "CL:0000151",  # secretory cell (neurons and most epithelia are secretory)
        "CL:0000183",  # contractile cell
        "CL:0000630",  # supportive cell
        "CL:0000325",  # stuff accumulating cell
        "CL:0000988",  # hematopoietic cell
        "CL:0002319",  # neural cell
        "CL:0000039",  # germ line cell
        "CL:0000034",  # stem cell
        "CL:0011115",  # precursor cell
        "CL:0000144",  # cell by function (obsolete grouping)
        "CL:0000063",  # cell by histology
        "CL:0000413",  # haploid cell
        "CL:0000412",
    }
)

#: Broad classes, most specific first; each name lists the CL terms it covers. Names follow
#: the ``broad_type`` column of ``annotation_dev.csv`` so that scores compare with it.
BROAD_TYPES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("platelet", ("CL:0000233",)),
    ("megakaryocyte", ("CL:0000556", "CL:0000553")),
    ("erythroid cell", ("CL:0000764", "CL:0000232", "CL:0000765", "CL:0000547")),
    ("microglia", ("CL:0000129",)),
    ("dendritic cell", ("CL:0000451", "CL:0000784", "CL:0000990")),
    ("b cell", ("CL:0000236", "CL:0000786", "CL:0000980", "CL:0000945")),
    ("t/nk cell", ("CL:0000084", "CL:0000623", "CL:0000814", "CL:0000789", "CL:0000798")),
    ("innate lymphoid cell", ("CL:0001065",)),
    ("macrophage/monocyte", ("CL:0000235", "CL:0000576")),
    ("granulocyte", ("CL:0000094", "CL:0000097", "CL:0000775", "CL:0000771", "CL:0000767")),
    ("hepatocyte", ("CL:0000182",)),
    ("astrocyte", ("CL:0000127",)),
    ("oligodendrocyte", ("CL:0000128",)),
    ("stem cell", ("CL:0000037", "CL:0000034", "CL:0000048")),
    ("progenitor cell", ("CL:0002453", "CL:0011026", "CL:0000837", "CL:0000049", "CL:0000050")),
    ("neuron", ("CL:0000540",)),
    ("glial cell", ("CL:0000125", "CL:0000243")),
    ("endothelial cell", ("CL:0000115",)),
    ("pericyte", ("CL:0000669",)),
    ("myofibroblast cell", ("CL:0000186",)),
    ("fibroblast", ("CL:0000057", "CL:4023051", "CL:0000632")),
    ("fat cell", ("CL:0000136", "CL:0002334")),
    ("muscle cell", ("CL:0000187", "CL:0000188", "CL:0000746", "CL:0000192", "CL:0000594")),
    ("germ cell", ("CL:0000586", "CL:0000020", "CL:0000017", "CL:0000018")),
    ("extraembryonic cell", ("CL:0000349", "CL:0000351")),
    ("epithelial cell", ("CL:0000066",)),
    ("stromal cell", ("CL:0000499",)),
    ("mesenchymal cell", ("CL:0008019", "CL:0000134")),
    ("myeloid cell", ("CL:0000763",)),
    ("lymphocyte", ("CL:0000542",)),
    ("immune cell", ("CL:0000738",)),
    ("leukocyte", ("CL:0000738",)),
    ("secretory cell", ("CL:0000151",)),
    ("ciliated cell", ("CL:0000064",)),
    ("kidney cell", ("CL:1000497",)),
    ("blood vessel cell", ("CL:0000115", "CL:0000669", "CL:0000359")),
    ("antigen presenting cell", ("CL:0000145",)),
    ("mucosal cell", ("CL:0000066",)),
    ("bronchial cell", ("CL:0002328",)),
    ("uterus cell", ("CL:0002149", "CL:0000066")),
    ("ureteric bud cell", ("CL:0000066",)),
    ("radial glial cell", ("CL:0000681",)),
)

# Words that say a state, not a type: "Cycling T" is a T cell, "activated stellate" a stellate cell.
_STATE_WORDS = frozenset(
    {
        "cycling",
        "proliferating",
        "proliferative",
        "dividing",
        "activated",
        "active",
        "resting",
        "quiescent",
        "mature",
        "differentiating",
        "lineage",
        "like",
        "other",
        "type",
        "subset",
        "population",
        "cluster",
        "putative",
    }
)
_STOP_WORDS = frozenset({"cell", "the", "of", "a", "an", "and", "human", "mouse"})
# Short forms expanded inside longer labels ("CD14 Mono", "Lymphatic EC mature").
_TOKEN_EXPANSIONS = {
    "mono": "monocyte",
    "macro": "macrophage",
    "mac": "macrophage",
    "mφ": "macrophage",
    "nk": "natural killer",
    "dc": "dendritic",
    "ec": "endothelial",
    "endo": "endothelial",
    "fibro": "fibroblast",
    "fib": "fibroblast",
    "treg": "regulatory t",
    "tregs": "regulatory t",
    "astro": "astrocyte",
    "oligo": "oligodendrocyte",
    "micro": "microglial",
    "microglia": "microglial",
    "neutro": "neutrophil",
    "eryth": "erythroid",
    "mem": "memory",
    "nai": "naive",
    "naïve": "naive",
    "prolif": "proliferating",
    "smc": "smooth muscle",
    "ilc": "innate lymphoid",
    "epi": "epithelial",
    "cm": "cardiac muscle",
    "cardiomyocyte": "cardiac muscle",
    "myocyte": "muscle",
    "lymphatic": "lymphatic vessel",
    "vascual": "vascular",
    "intratelencephalon": "intratelencephalic",
    "extratelencephalon": "extratelencephalic",
}
_DASHES = dict.fromkeys(map(ord, "‐‑‒–—―−"), "-")


@dataclass(frozen=True)
class OntologyMatch:
    """A free-text label resolved to a Cell Ontology term.

    Attributes
    ----------
    cl_id
        The CL id, or ``None`` when no term fits well enough.
    name
        The term's CL label (``None`` with ``cl_id``).
    score
        Confidence from 0 to 1: 1.0 exact label, about 0.9 synonym or curated
        abbreviation, 0.6-0.85 fuzzy, below 0.5 for ``method='none'``.
    method
        ``exact``, ``synonym``, ``fuzzy`` or ``none``.
    query
        The text that was looked up.
    """

    cl_id: str | None
    name: str | None
    score: float
    method: MatchMethod
    query: str = ""

    @property
    def confident(self) -> bool:
        """Whether the match is good enough to attach the id to data (score >= 0.7)."""
        return self.cl_id is not None and self.score >= 0.7


@dataclass(frozen=True)
class TissueMatch:
    """A tissue resolved to a canonical lower-case name and (where known) its UBERON id."""

    name: str
    uberon_id: str | None
    related: tuple[str, ...] = ()


@functools.cache
def parser() -> OntologyParser:
    """The process-wide ``OntologyParser`` (built on first use; CL and UBERON ship in the wheel)."""
    from cellxgene_ontology_guide.ontology_parser import OntologyParser

    return OntologyParser()


def ontology_versions() -> dict[str, str]:
    """Versions of the shipped ontologies and of cellxgene-ontology-guide, for manifests."""
    from importlib.metadata import version

    schema = parser().cxg_schema
    out = {"cellxgene-ontology-guide": version("cellxgene-ontology-guide")}
    for name in ("CL", "UBERON"):
        out[name] = str(schema.supported_ontologies.get(name, {}).get("version", "unknown"))
    return out


@functools.cache
def _cl() -> dict[str, dict]:
    return parser().cxg_schema.ontology("CL")


@functools.cache
def _uberon() -> dict[str, dict]:
    return parser().cxg_schema.ontology("UBERON")


def is_valid_cl(cl_id: str) -> bool:
    """Whether ``cl_id`` is a current (not deprecated) term of the shipped Cell Ontology."""
    term = _cl().get(str(cl_id))
    return term is not None and not term.get("deprecated", False)


def cl_label(cl_id: str) -> str | None:
    """The CL label of ``cl_id``, or ``None`` for an unknown id."""
    term = _cl().get(str(cl_id))
    return None if term is None else term["label"]


def _singular(tok: str) -> str:
    if len(tok) <= 3 or not tok.isalpha():
        return tok
    if tok.endswith("ies") and len(tok) > 4:
        return tok[:-3] + "y"
    if tok.endswith("s") and not tok.endswith(("ss", "us", "is")):
        return tok[:-1]
    return tok


def _tokens(text: str) -> list[str]:
    s = unicodedata.normalize("NFKC", str(text)).translate(_DASHES).lower()
    s = s.replace("γδ", "gamma delta ").replace("αβ", "alpha beta ")
    # Cortical layers: "Layer 2-3" is written "L2/3" in CL, "Layer 6b" is "L6b".
    s = re.sub(r"\blayers?\s*(\d)\s*[-/]\s*(\d)\b", r"l\1/\2", s)
    s = re.sub(r"\blayers?\s*(\d[a-z]?)\b", r"l\1", s)
    s = re.sub(r"(?<=[a-z0-9])\+", " positive ", s)
    s = re.sub(r"(?<=[a-z0-9])-(?=\s|,|$)", " negative ", s)
    s = re.sub(r"(?<=\d)(bright|dim|hi|high|lo|low|neg|pos)\b", r" \1", s)
    # "L2/3" and "L5/6" name cortical layers: keep the slash between digits only.
    s = re.sub(r"(?<!\d)/|/(?!\d)", " ", s)
    s = re.sub(r"[^a-z0-9/φ]+", " ", s)
    return [_ROMAN.get(t, t) if t in _ROMAN else _singular(t) for t in s.split()]


# "type II pneumocyte" and "type 2 pneumocyte" are the same words to a reader.
_ROMAN = {"i": "1", "ii": "2", "iii": "3", "iv": "4"}


def normalize_label(text: str) -> str:
    """A cell-type label reduced for matching: lower case, singular, no punctuation or 'cell'."""
    return " ".join(t for t in _tokens(text) if t not in _STOP_WORDS)


def _expand(tokens: list[str]) -> list[str]:
    out: list[str] = []
    for t in tokens:
        out.extend(_TOKEN_EXPANSIONS.get(t, t).split())
    return out


@dataclass(frozen=True)
class _Entry:
    cl_id: str
    method: MatchMethod
    score: float


@functools.cache
def _abbreviations() -> dict[str, str]:
    path = resources.files("scagent.knowledge") / "data" / "cell_type_abbreviations.tsv"
    out: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line or line.startswith("#") or line.startswith("label\t"):
            continue
        label, cl_id = line.split("\t")[:2]
        out[normalize_label(label)] = cl_id
    return out


@functools.cache
def _index() -> tuple[dict[str, _Entry], dict[str, _Entry], dict[str, set[str]]]:
    """(normalised key -> entry, sorted-token key -> entry, token -> keys) over CL labels and synonyms."""
    by_key: dict[str, _Entry] = {}
    # Labels first so that a synonym never shadows another term's exact label.
    terms = [(k, v) for k, v in _cl().items() if not v.get("deprecated") and k.startswith("CL:")]
    for cl_id, term in terms:
        key = normalize_label(term["label"])
        if key and key not in by_key:
            by_key[key] = _Entry(cl_id, "exact", 0.98)
    for key, cl_id in _abbreviations().items():
        # Curated abbreviations beat CL synonyms (CL lists "DC2" for pDC) but never a label.
        if is_valid_cl(cl_id) and (key not in by_key or by_key[key].method != "exact"):
            by_key[key] = _Entry(cl_id, "synonym", 0.95)
    seen_syn: dict[str, set[str]] = {}
    for cl_id, term in terms:
        for syn in term.get("synonyms") or []:
            key = normalize_label(syn)
            if key:
                seen_syn.setdefault(key, set()).add(cl_id)
    for key, ids in seen_syn.items():
        if key in by_key:
            continue
        # A synonym shared by several terms is ambiguous: keep the most general one, lower score.
        cl_id = min(ids, key=lambda i: (len(_ancestor_map(i)), i))
        by_key[key] = _Entry(cl_id, "synonym", 0.9 if len(ids) == 1 else 0.75)
    by_set: dict[str, _Entry] = {}
    token_keys: dict[str, set[str]] = {}
    for key, entry in by_key.items():
        set_key = " ".join(sorted(set(key.split())))
        prev = by_set.get(set_key)
        if prev is None or entry.score > prev.score:
            by_set[set_key] = entry
        for tok in set(key.split()):
            token_keys.setdefault(tok, set()).add(key)
    return by_key, by_set, token_keys


def _make(entry: _Entry, score: float, method: MatchMethod, query: str) -> OntologyMatch:
    return OntologyMatch(entry.cl_id, cl_label(entry.cl_id), round(score, 3), method, query)


def _lookup(tokens: list[str], query: str, penalty: float) -> OntologyMatch | None:
    by_key, by_set, _ = _index()
    words = [t for t in tokens if t not in _STOP_WORDS]
    if not words:
        return None
    key = " ".join(words)
    if key in by_key:
        e = by_key[key]
        return _make(e, e.score * penalty, e.method if penalty == 1.0 else "fuzzy", query)
    set_key = " ".join(sorted(set(words)))
    if set_key in by_set:
        e = by_set[set_key]
        return _make(e, min(e.score, 0.85) * penalty, "fuzzy", query)
    return None


# Words CL writes that people leave out ("alpha-beta" T cells, "thymus-derived" naive T cells).
_SOFT_WORDS = frozenset({"alpha", "beta", "thymus", "derived", "human", "mature"})
# An extra word that names another cell type changes the meaning ("follicular" -> "follicular B cell").
_TYPE_NOUNS = frozenset(
    {
        "b",
        "t",
        "nk",
        "macrophage",
        "monocyte",
        "neuron",
        "interneuron",
        "fibroblast",
        "stem",
        "progenitor",
        "precursor",
        "endothelial",
        "epithelial",
        "muscle",
        "glial",
        "dendritic",
        "lymphocyte",
        "granulocyte",
        "neutrophil",
        "plasma",
        "mast",
        "erythroid",
        "germ",
    }
)


def _subset_match(words: list[str], query: str) -> OntologyMatch | None:
    """The term whose label holds every query word with the fewest extra words."""
    by_key, _, token_keys = _index()
    qset = set(words)
    if not qset or any(t not in token_keys for t in qset):
        return None
    keys = set.intersection(*(token_keys[t] for t in qset))
    if not keys:
        return None

    def extras(k: str) -> set[str]:
        return set(k.split()) - qset - _SOFT_WORDS

    best = min(keys, key=lambda k: (len(extras(k)), len(set(k.split())), -by_key[k].score, k))
    extra = extras(best)
    if len(extra) > 3:
        return None
    if not extra:
        score = 0.8
    elif len(extra) == 1:
        (word,) = extra
        risky = len(qset) < 2 or len(word) < 2 or word in _TYPE_NOUNS or word.isdigit()
        score = 0.6 if risky else 0.72
    else:
        score = 0.64 - 0.04 * (len(extra) - 2)
    if "like" in qset:  # "fibroblast-like" is a resemblance, not a type
        score = min(score, 0.6)
    return _make(by_key[best], score, "fuzzy", query)


def _close_match(words: list[str], query: str) -> tuple[OntologyMatch | None, float]:
    """Typo-tolerant match against keys that share a word (or a 4-letter prefix) with the query."""
    by_key, _, token_keys = _index()
    key = " ".join(words)
    candidates: set[str] = set()
    for t in words:
        candidates |= token_keys.get(t, set())
        if len(t) >= 4:
            for tok in difflib.get_close_matches(t, token_keys.keys(), n=3, cutoff=0.8):
                candidates |= token_keys[tok]
    if not candidates:
        return None, 0.0
    best, ratio = None, 0.0
    for cand in candidates:
        r = difflib.SequenceMatcher(None, key, cand).ratio()
        if r > ratio:
            best, ratio = cand, r
    # A typo makes a word the ontology does not know; a known word that differs is another
    # term ("rod photoreceptor" is not "R1 photoreceptor").
    if best is not None and any(t in token_keys and t not in best.split() for t in words):
        return None, ratio
    if best is not None and ratio >= 0.88:
        return _make(by_key[best], 0.85 * ratio, "fuzzy", query), ratio
    return None, ratio


@functools.lru_cache(maxsize=65536)
def label_to_cl(text: str) -> OntologyMatch:
    """Resolve a free-text cell-type label to a Cell Ontology term.

    Tries, in order: a CL id written as such; the exact CL label; a curated abbreviation
    table (``Treg``, ``CD14+ Mono``, ``pDC``, ``L2/3 IT``...); CL synonyms; the same with
    plurals, word order and short forms normalised; a label holding every word of the
    query; and a typo-tolerant match. Words naming a state ("cycling", "activated")
    are dropped last, at a lower score.

    Parameters
    ----------
    text
        The label, e.g. ``"NK cells"``.

    Returns
    -------
    OntologyMatch
        With ``cl_id=None``, ``method='none'`` and a score below 0.5 when nothing fits:
        an unknown label never gets a confident id.
    """
    query = str(text)
    raw = query.strip()
    if re.fullmatch(r"CL[:_]\d{7}", raw, flags=re.IGNORECASE):
        cl_id = raw.upper().replace("_", ":")
        if is_valid_cl(cl_id):
            return OntologyMatch(cl_id, cl_label(cl_id), 1.0, "exact", query)
        return OntologyMatch(None, None, 0.0, "none", query)
    if not raw:
        return OntologyMatch(None, None, 0.0, "none", query)
    lowered = raw.lower()
    for cl_id, term in _exact_labels().get(lowered, ()):
        return OntologyMatch(cl_id, term, 1.0, "exact", query)
    tokens = _tokens(raw)
    hit = _lookup(tokens, query, 1.0) or _lookup(_expand(tokens), query, 0.92)
    if hit:
        return hit
    # "Platelet/Megakaryocyte", "Parietal and chief cells": the first part that resolves.
    parts = [p for p in re.split(r"\s*(?<!\d)/(?!\d)\s*|\s+and\s+|\s*&\s*", raw) if p.strip()]
    if len(parts) > 1:
        for part in parts:
            sub = label_to_cl(part)
            if sub.confident:
                return OntologyMatch(
                    sub.cl_id, sub.name, round(sub.score * 0.85, 3), "fuzzy", query
                )
    core = [t for t in _expand(tokens) if t not in _STOP_WORDS]
    hit = _subset_match(core, query)
    if hit:
        return hit
    stripped = [t for t in core if t not in _STATE_WORDS]
    # "CD8 Effector 2": a trailing number is a cluster index, not part of the type.
    while len(stripped) > 1 and stripped[-1].isdigit() and stripped[-2] not in {"type", "group"}:
        stripped = stripped[:-1]
    if stripped and stripped != core:
        hit = _lookup(stripped, query, 0.85) or _subset_match(stripped, query)
        if hit:
            return OntologyMatch(hit.cl_id, hit.name, round(hit.score * 0.9, 3), "fuzzy", query)
    # "Sst+ GABAergic neuron": CL writes gene-named interneurons without "-positive".
    plain = [t for t in stripped or core if t != "positive"]
    if "gabaergic" in plain:
        plain = ["interneuron" if t == "neuron" else t for t in plain]
    if plain and plain != core:
        hit = _lookup(plain, query, 0.9) or _subset_match(plain, query)
        if hit:
            return OntologyMatch(hit.cl_id, hit.name, round(hit.score * 0.95, 3), "fuzzy", query)
    hit, ratio = _close_match(core, query)
    if hit:
        return hit
    return OntologyMatch(None, None, round(min(0.45, 0.5 * ratio), 3), "none", query)


@functools.cache
def _exact_labels() -> dict[str, tuple[tuple[str, str], ...]]:
    out: dict[str, list[tuple[str, str]]] = {}
    for cl_id, term in _cl().items():
        if not term.get("deprecated") and cl_id.startswith("CL:"):
            out.setdefault(term["label"].lower(), []).append((cl_id, term["label"]))
    return {k: tuple(v) for k, v in out.items()}


@functools.cache
def _ancestor_map(cl_id: str) -> dict[str, int]:
    term = _cl().get(cl_id)
    if term is None:
        return {}
    return {k: v for k, v in (term.get("ancestors") or {}).items() if k.startswith("CL:")}


def _check(cl_id: str) -> str:
    from scagent.errors import KnowledgeError

    if cl_id not in _cl():
        raise KnowledgeError(
            f"{cl_id!r} is not a Cell Ontology id",
            remedy="use a CL id such as CL:0000623, or label_to_cl(text) to find one",
        )
    return cl_id


def ancestors(cl_id: str, include_self: bool = False) -> dict[str, int]:
    """CL ancestors of ``cl_id`` with their distance in steps (``is_a`` and ``part_of``), nearest first."""
    anc = dict(_ancestor_map(_check(cl_id)))
    if include_self:
        anc[cl_id] = 0
    return dict(sorted(anc.items(), key=lambda kv: (kv[1], kv[0])))


def descendants(cl_id: str, include_self: bool = False) -> list[str]:
    """Every CL term below ``cl_id``."""
    return [
        d
        for d in parser().get_term_descendants(_check(cl_id), include_self=include_self)
        if d.startswith("CL:")
    ]


def distance(a: str, b: str) -> int | None:
    """Steps between two terms when one is an ancestor of the other; ``None`` when they are unrelated."""
    if a == b:
        return 0
    d = _ancestor_map(_check(a)).get(b)
    if d is not None:
        return d
    return _ancestor_map(_check(b)).get(a)


def lowest_common_ancestor(a: str, b: str) -> str | None:
    """The nearest shared ancestor of two terms (the closest of the ontology's LCAs), or ``None``."""
    anc_a = ancestors(a, include_self=True)
    anc_b = ancestors(b, include_self=True)
    shared = set(anc_a) & set(anc_b)
    if not shared:
        return None
    return min(shared, key=lambda t: (anc_a[t] + anc_b[t], max(anc_a[t], anc_b[t]), t))


def is_generic(cl_id: str) -> bool:
    """Whether ``cl_id`` is one of the generic root terms that never count as a near miss."""
    return cl_id in GENERIC_TERMS


def _under(cl_id: str, roots: tuple[str, ...]) -> bool:
    if cl_id in roots:
        return True
    anc = _ancestor_map(cl_id)
    return any(r in anc for r in roots)


def broad_types(cl_id: str | None) -> list[str]:
    """Every broad class (:data:`BROAD_TYPES`) that ``cl_id`` falls under, most specific first."""
    if not cl_id or cl_id not in _cl():
        return []
    return [name for name, roots in BROAD_TYPES if _under(cl_id, roots)]


def broad_type(cl_id: str | None) -> str | None:
    """The most specific broad class of a term (``t/nk cell``, ``b cell``, ``neuron``...), or ``None``."""
    found = broad_types(cl_id)
    return found[0] if found else None


def _broad_roots(name: str) -> tuple[str, ...]:
    key = name.strip().lower()
    for broad, roots in BROAD_TYPES:
        if broad == key:
            return roots
    match = label_to_cl(name)
    return (match.cl_id,) if match.confident and match.cl_id else ()


def _split_ids(value: str | None) -> list[str]:
    if value is None:
        return []
    return [v.strip() for v in re.split(r"[,;|]", str(value)) if v.strip().startswith("CL:")]


def score_prediction(
    pred_cl: str | None, true_cl: str | None, true_broad: str | None = None
) -> float:
    """Score a predicted CL id against the expert's, by the rule of ``annotation_dev.csv``.

    1.0 when the ids are equal; 0.5 when the prediction is an ancestor or descendant of
    the expert term within 3 steps (a generic root such as 'cell' never counts), or falls
    under the expert broad type; 0.0 otherwise and for a prediction with no id.

    Parameters
    ----------
    pred_cl
        Predicted CL id (or ``None``).
    true_cl
        Expert CL id; several ids may be comma-separated (the best one counts).
    true_broad
        Expert broad type (comma-separated names allowed). Without it the broad types of
        the two terms (:func:`broad_type`) are compared.
    """
    if not pred_cl or not str(pred_cl).startswith("CL:") or str(pred_cl) not in _cl():
        return 0.0
    pred = str(pred_cl)
    trues = [t for t in _split_ids(true_cl) if t in _cl()]
    if pred in trues:
        return 1.0
    for t in trues:
        d = distance(pred, t)
        if d is not None and d <= 3 and not is_generic(pred) and not is_generic(t):
            return 0.5
    if true_broad is not None and str(true_broad).strip() and str(true_broad) != "nan":
        for name in str(true_broad).split(","):
            roots = _broad_roots(name)
            if roots and _under(pred, roots):
                return 0.5
        return 0.0
    pred_broad = broad_type(pred)
    if pred_broad is not None and any(broad_type(t) == pred_broad for t in trues):
        return 0.5
    return 0.0


@functools.cache
def _tissue_table() -> tuple[dict[str, TissueMatch], dict[str, TissueMatch]]:
    path = resources.files("scagent.knowledge") / "data" / "tissues.tsv"
    by_name: dict[str, TissueMatch] = {}
    by_id: dict[str, TissueMatch] = {}
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line or line.startswith("#") or line.startswith("name\t"):
            continue
        parts = ([*line.split("\t"), "", "", "", ""])[:4]
        rows.append(parts)
    for name, uberon_id, synonyms, related in rows:
        match = TissueMatch(name, uberon_id or None, tuple(r for r in related.split("|") if r))
        by_id.setdefault(uberon_id, match)
        for key in [name, *synonyms.split("|")]:
            if key:
                by_name.setdefault(_tissue_key(key), match)
    return by_name, by_id


def _tissue_key(text: str) -> str:
    return " ".join(_singular(t) for t in re.sub(r"[^a-z0-9]+", " ", str(text).lower()).split())


@functools.lru_cache(maxsize=4096)
def normalize_tissue(text: str | None) -> TissueMatch | None:
    """Resolve a tissue (free text such as ``PBMC``, or a UBERON id) to a canonical name and UBERON id.

    Known tissues come from a curated table in package data; other text is looked up
    among UBERON labels and synonyms; failing that, the lower-cased text is kept with no id.
    """
    if text is None:
        return None
    raw = str(text).strip()
    if not raw or raw.lower() in {"nan", "none", "unknown", "na"}:
        return None
    by_name, by_id = _tissue_table()
    if re.fullmatch(r"UBERON[:_]\d{7}", raw, flags=re.IGNORECASE):
        uid = raw.upper().replace("_", ":")
        if uid in by_id:
            return by_id[uid]
        term = _uberon().get(uid)
        return TissueMatch(term["label"].lower() if term else uid.lower(), uid if term else None)
    key = _tissue_key(raw)
    if key in by_name:
        return by_name[key]
    uid = _uberon_labels().get(key)
    if uid is not None:
        return by_id.get(uid) or TissueMatch(_uberon()[uid]["label"].lower(), uid)
    return TissueMatch(raw.lower(), None)


@functools.cache
def _uberon_labels() -> dict[str, str]:
    out: dict[str, str] = {}
    for uid, term in _uberon().items():
        if term.get("deprecated") or not uid.startswith("UBERON:"):
            continue
        out.setdefault(_tissue_key(term["label"]), uid)
    for uid, term in _uberon().items():
        if term.get("deprecated") or not uid.startswith("UBERON:"):
            continue
        for syn in term.get("synonyms") or []:
            out.setdefault(_tissue_key(syn), uid)
    return out
