"""The experiment context of a project, after minSCe: organism, tissue, platform, library, samples, design, hypotheses.

minSCe (Füllgrabe et al., *Nat Biotechnol* 2020) lists the minimal information a
single-cell experiment needs to be interpreted. Ontology terms are checked offline:
tissues against UBERON with cellxgene-ontology-guide's ``OntologyParser``, organisms
against NCBITaxon (a built-in table of the common ones, the ontology for the rest).
"""

from __future__ import annotations

import difflib
import functools
import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from scagent.errors import InputNotFoundError, ProjectError

__all__ = [
    "KNOWN_ORGANISMS",
    "PLATFORMS",
    "Design",
    "ExperimentContext",
    "Organism",
    "Sample",
    "Tissue",
    "format_validation_error",
    "load_context",
    "validate_context",
]

#: Common organisms by NCBI taxon. Loading NCBITaxon from cellxgene-ontology-guide takes
#: about 12 s, so the usual species are answered from this table and the ontology is
#: consulted only for the others.
KNOWN_ORGANISMS: dict[str, tuple[str, tuple[str, ...]]] = {
    "NCBITaxon:9606": ("Homo sapiens", ("human",)),
    "NCBITaxon:10090": ("Mus musculus", ("mouse",)),
    "NCBITaxon:10116": ("Rattus norvegicus", ("rat",)),
    "NCBITaxon:7955": ("Danio rerio", ("zebrafish",)),
    "NCBITaxon:7227": ("Drosophila melanogaster", ("fly", "fruit fly", "drosophila")),
    "NCBITaxon:6239": ("Caenorhabditis elegans", ("worm", "c. elegans")),
    "NCBITaxon:9544": ("Macaca mulatta", ("rhesus macaque", "rhesus")),
    "NCBITaxon:9541": ("Macaca fascicularis", ("cynomolgus macaque", "cynomolgus")),
    "NCBITaxon:9598": ("Pan troglodytes", ("chimpanzee",)),
    "NCBITaxon:9823": ("Sus scrofa", ("pig",)),
}

#: Platforms recognised, with the library type each implies. Spelling variants are
#: matched case-insensitively, ignoring spaces, hyphens, primes and the word "chromium".
PLATFORMS: dict[str, str] = {
    "10x 3' v1": "3' tag",
    "10x 3' v2": "3' tag",
    "10x 3' v3": "3' tag",
    "10x 3' v3.1": "3' tag",
    "10x 3' v4": "3' tag",
    "10x 5' v1": "5' tag",
    "10x 5' v2": "5' tag",
    "10x 5' v3": "5' tag",
    "10x Multiome": "3' tag",
    "10x Flex": "probe-based",
    "Smart-seq": "full length",
    "Smart-seq2": "full length",
    "Smart-seq3": "full length",
    "Drop-seq": "3' tag",
    "inDrop": "3' tag",
    "Seq-Well": "3' tag",
    "CEL-seq2": "3' tag",
    "MARS-seq": "3' tag",
    "sci-RNA-seq": "3' tag",
    "SPLiT-seq": "3' tag",
    "Parse Evercode": "3' tag",
    "BD Rhapsody": "3' tag",
    "other": "other",
}

LibraryType = Literal["3' tag", "5' tag", "full length", "probe-based", "other"]
Material = Literal["single cell", "single nucleus"]
DesignType = Literal[
    "case_control",
    "time_course",
    "atlas",
    "perturbation",
    "dose_response",
    "lineage_tracing",
    "observational",
    "other",
]


def _squash(text: str) -> str:
    return re.sub(r"[\s\-_'’`]|chromium|single ?cell", "", text.lower())


_PLATFORM_KEYS = {_squash(name): name for name in PLATFORMS}


@functools.lru_cache(maxsize=1)
def _ontology_parser():
    # Imported lazily: the parser loads its ontology files on first use.
    from cellxgene_ontology_guide.ontology_parser import OntologyParser

    return OntologyParser()


@functools.lru_cache(maxsize=1)
def _uberon_labels() -> dict[str, str]:
    """Lower-cased UBERON label -> term id."""
    label_map = _ontology_parser().get_term_label_to_id_map("UBERON")
    return {label.lower(): term for label, term in label_map.items()}


class Organism(BaseModel):
    """The species studied, as an NCBI taxon.

    Accepts a common name (``"human"``), a scientific name (``"Homo sapiens"``), a taxon
    id (``"NCBITaxon:9606"``) or a mapping with ``name`` and/or ``taxon_id``.
    """

    model_config = ConfigDict(extra="forbid")

    name: str = Field(description="Scientific name, e.g. 'Homo sapiens'.")
    taxon_id: str = Field(description="NCBI taxon id, e.g. 'NCBITaxon:9606'.")

    @model_validator(mode="before")
    @classmethod
    def _from_any(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = {"taxon_id": value} if value.startswith("NCBITaxon:") else {"name": value}
        if not isinstance(value, Mapping):
            return value
        value = dict(value)
        name, taxon = value.get("name"), value.get("taxon_id")
        if taxon is None and isinstance(name, str):
            taxon = _taxon_by_name(name)
            if taxon is None:
                raise ValueError(
                    f"unknown organism {name!r}; give its NCBI taxon id as taxon_id "
                    "(e.g. 'NCBITaxon:9606' for human, 'NCBITaxon:10090' for mouse)"
                )
            value["taxon_id"] = taxon
        taxon = value.get("taxon_id")
        if isinstance(taxon, str):
            official = _taxon_label(taxon)
            aliases = {official.lower(), *KNOWN_ORGANISMS.get(taxon, ("", ()))[1]}
            if isinstance(name, str) and name.strip().lower() not in aliases:
                raise ValueError(f"organism name {name!r} does not match {taxon} ({official})")
            value["name"] = official
        return value

    @property
    def common_name(self) -> str | None:
        """'human', 'mouse', ... where known."""
        aliases = KNOWN_ORGANISMS.get(self.taxon_id, ("", ()))[1]
        return aliases[0] if aliases else None


def _taxon_by_name(name: str) -> str | None:
    wanted = name.strip().lower()
    for taxon, (scientific, aliases) in KNOWN_ORGANISMS.items():
        if wanted == scientific.lower() or wanted in aliases:
            return taxon
    try:
        return _ontology_parser().get_term_id_by_label(name.strip(), "NCBITaxon")
    except Exception:  # the parser raises bare errors on unknown prefixes
        return None


def _taxon_label(taxon_id: str) -> str:
    if not re.fullmatch(r"NCBITaxon:\d+", taxon_id):
        raise ValueError(f"taxon_id {taxon_id!r} is not of the form 'NCBITaxon:<number>'")
    if taxon_id in KNOWN_ORGANISMS:
        return KNOWN_ORGANISMS[taxon_id][0]
    try:
        return _ontology_parser().get_term_label(taxon_id)
    except Exception as exc:
        raise ValueError(f"{taxon_id} is not a term of NCBITaxon") from exc


class Tissue(BaseModel):
    """The tissue sampled, as a UBERON term.

    Accepts a label (``"lung"``), a term id (``"UBERON:0002048"``) or a mapping with
    ``label`` and/or ``uberon_id``; the missing half is looked up in UBERON.
    """

    model_config = ConfigDict(extra="forbid")

    label: str
    uberon_id: str

    @model_validator(mode="before")
    @classmethod
    def _from_any(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = {"uberon_id": value} if value.startswith("UBERON:") else {"label": value}
        if not isinstance(value, Mapping):
            return value
        value = dict(value)
        label, term = value.get("label"), value.get("uberon_id")
        parser = _ontology_parser()
        if term is None and isinstance(label, str):
            term = _uberon_labels().get(label.strip().lower())
            if term is None:
                close = difflib.get_close_matches(label.lower(), list(_uberon_labels()), n=3)
                hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
                raise ValueError(
                    f"tissue {label!r} is not a UBERON term label{hint} "
                    "(or give uberon_id, e.g. 'UBERON:0002048' for lung)"
                )
            value["uberon_id"] = term
        if isinstance(term, str):
            if not re.fullmatch(r"UBERON:\d{7}", term) or not parser.is_valid_term_id(
                term, "UBERON"
            ):
                raise ValueError(f"uberon_id {term!r} is not a UBERON term")
            official = parser.get_term_label(term)
            if isinstance(label, str) and label.strip().lower() != official.lower():
                synonyms = {s.lower() for s in parser.get_term_synonyms(term)}
                if label.strip().lower() not in synonyms:
                    raise ValueError(f"tissue label {label!r} does not match {term} ({official})")
            value["label"] = official
        return value


class Sample(BaseModel):
    """One biological sample (a library), with the factors of the design."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1)
    condition: str | None = Field(None, description="e.g. 'healthy', 'disease', 'treated'.")
    donor: str | None = None
    batch: str | None = None
    timepoint: str | None = Field(None, description="e.g. 'day 3'; for time courses.")
    sex: Literal["female", "male", "mixed", "unknown"] | None = None
    age: str | None = Field(None, description="Free text, e.g. '45 years', 'E14.5'.")
    disease: str | None = Field(None, description="Disease label or MONDO id.")
    attributes: dict[str, str] = Field(default_factory=dict, description="Anything else.")


class Design(BaseModel):
    """How the samples relate: the design type and its factors."""

    model_config = ConfigDict(extra="forbid")

    type: DesignType
    factors: list[str] = Field(
        default_factory=list, description="Sample fields that vary by design, e.g. ['condition']."
    )
    description: str = ""

    @model_validator(mode="before")
    @classmethod
    def _from_any(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = {"type": value}
        if isinstance(value, Mapping) and isinstance(value.get("type"), str):
            value = dict(value)
            value["type"] = value["type"].strip().lower().replace("-", "_").replace(" ", "_")
        return value


class ExperimentContext(BaseModel):
    """What a project studies, after minSCe; stored in ``project.json`` under ``context``.

    Every field is optional so that a project can start with the data alone; what is
    given is checked (ontology ids exist, sample names are unique, design factors are
    sample fields).
    """

    model_config = ConfigDict(extra="forbid")

    title: str | None = None
    organism: Organism | None = None
    tissue: Tissue | None = None
    platform: str | None = Field(None, description=f"One of: {', '.join(PLATFORMS)}.")
    library_type: LibraryType | None = Field(
        None, description="Filled from the platform when not given."
    )
    material: Material = "single cell"
    samples: list[Sample] = Field(default_factory=list)
    design: Design | None = None
    hypotheses: list[str] = Field(default_factory=list)

    @field_validator("platform")
    @classmethod
    def _known_platform(cls, value: str | None) -> str | None:
        if value is None:
            return None
        name = _PLATFORM_KEYS.get(_squash(value))
        if name is None:
            raise ValueError(
                f"unknown platform {value!r}; use one of {', '.join(PLATFORMS)} "
                "(or 'other' and describe it in the title)"
            )
        return name

    @model_validator(mode="after")
    def _consistent(self) -> ExperimentContext:
        if self.platform and self.library_type is None:
            self.library_type = PLATFORMS[self.platform]  # type: ignore[assignment]
        names = [s.name for s in self.samples]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"sample names must be unique; repeated: {', '.join(duplicates)}")
        if self.design is not None:
            fields = set(Sample.model_fields) - {"name", "attributes"}
            for factor in self.design.factors:
                extra = {k for s in self.samples for k in s.attributes}
                if factor not in fields and factor not in extra:
                    raise ValueError(
                        f"design factor {factor!r} is neither a sample field "
                        f"({', '.join(sorted(fields))}) nor a sample attribute"
                    )
        return self


def format_validation_error(error: ValidationError, prefix: str = "") -> str:
    """One plain line per field error: ``field.path: message (got value)``."""
    lines = []
    for item in error.errors():
        where = ".".join(str(p) for p in (prefix, *item["loc"]) if p != "") or "(top level)"
        message = item["msg"].removeprefix("Value error, ")
        got = item.get("input")
        shown = ""
        if not isinstance(got, (dict, list)) and got is not None and repr(got) not in message:
            shown = f" (got {got!r})"
        lines.append(f"{where}: {message}{shown}")
    return "; ".join(lines)


def validate_context(data: Mapping[str, Any] | ExperimentContext | None) -> ExperimentContext:
    """Check an experiment context; :class:`ProjectError` lists every field error."""
    if data is None:
        return ExperimentContext()
    if isinstance(data, ExperimentContext):
        return data
    try:
        return ExperimentContext.model_validate(data)
    except ValidationError as err:
        raise ProjectError(
            f"invalid experiment context: {format_validation_error(err, 'context')}",
            remedy="fix the listed fields (see docs/spine.md, 'Experiment context')",
        ) from None


def load_context(path: str | Path) -> ExperimentContext:
    """Read an experiment context from a JSON or YAML file and validate it."""
    path = Path(path)
    if not path.is_file():
        raise InputNotFoundError(f"context file {str(path)!r} does not exist")
    text = path.read_text(encoding="utf-8")
    try:
        if path.suffix.lower() in {".yaml", ".yml"}:
            import yaml

            data = yaml.safe_load(text)
        else:
            data = json.loads(text)
    except Exception as exc:
        raise ProjectError(
            f"context file {str(path)!r} is not valid {path.suffix.lstrip('.') or 'JSON'}: {exc}",
            remedy="fix the file's syntax",
        ) from None
    if not isinstance(data, Mapping):
        raise ProjectError(f"context file {str(path)!r} must hold a mapping of fields")
    return validate_context(data)
