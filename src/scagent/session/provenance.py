"""W3C PROV for a project: one activity per step, built from the snapshot manifests with the `prov` package.

The snapshot store is the single source of truth: each step's snapshot carries in its
``meta`` everything the activity needs (tool, parameters, versions, times, who asked).
The provenance document is therefore *derived* from the committed snapshots and can be
rebuilt at any time; ``provenance.jsonld`` is a rebuilt copy, never the only record.
"""

from __future__ import annotations

import datetime as _dt
import importlib.metadata
import json
import platform
import re
import uuid
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal, Protocol

from prov.constants import PROV, PROV_LABEL, PROV_ROLE, PROV_TYPE
from prov.model import ProvDocument

from scagent import __version__
from scagent.errors import InvalidParameterError

__all__ = [
    "NAMESPACE",
    "build_document",
    "check_requested_by",
    "export_document",
    "library_versions",
    "new_activity_id",
    "now_iso",
    "step_meta",
]

#: Namespace of scagent's own PROV attributes and types.
NAMESPACE = "https://scagent.dev/ns/prov#"

ProvFormat = Literal["jsonld", "provn", "json"]

_REQUESTED_BY = re.compile(r"^(user|cli|agent|replay|llm:[\w.\-/:@]+)$")


class _ManifestLike(Protocol):
    id: str
    parent: str | None
    meta: dict[str, Any]


def now_iso() -> str:
    """The current time, UTC, ISO 8601 with milliseconds."""
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="milliseconds")


def new_activity_id() -> str:
    """A fresh activity id (random: two runs of one step are two activities)."""
    return uuid.uuid4().hex


def check_requested_by(requested_by: str) -> str:
    """Validate who asked for a step: ``user``, ``cli``, ``agent``, ``replay`` or ``llm:<model>``."""
    if not isinstance(requested_by, str) or not _REQUESTED_BY.match(requested_by):
        raise InvalidParameterError(
            f"requested_by={requested_by!r} is not one of user, cli, agent, replay, llm:<model>",
            remedy="pass requested_by='user', 'cli', 'agent' or 'llm:<model name>'",
        )
    return requested_by


def library_versions(packages: Iterable[str]) -> dict[str, str]:
    """Installed versions of ``packages`` (always including scagent, anndata and numpy)."""
    versions = {"scagent": __version__}
    for name in ("anndata", "numpy", *packages):
        if name in versions:
            continue
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def step_meta(
    *,
    tool_id: str,
    params: Mapping[str, Any],
    versions: Mapping[str, str],
    started: str,
    ended: str,
    requested_by: str,
    request_text: str | None = None,
    deterministic: bool = True,
    framework: str = "",
    summary: str = "",
    metrics: Mapping[str, Any] | None = None,
    warnings: Sequence[str] = (),
    written: Sequence[str] = (),
    planned: bool = False,
    kind: Literal["step", "import"] = "step",
    source: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The ``meta`` a step's snapshot carries: everything its PROV activity needs."""
    return {
        "kind": kind,
        "activity_id": new_activity_id(),
        "tool_id": tool_id,
        "framework": framework,
        "params": dict(params),
        "deterministic": deterministic,
        "versions": dict(versions),
        "python": platform.python_version(),
        "started": started,
        "ended": ended,
        "requested_by": requested_by,
        "request_text": request_text,
        "planned": planned,
        "summary": summary,
        "metrics": dict(metrics or {}),
        "warnings": list(warnings),
        "written": list(written),
        "source": dict(source) if source else None,
    }


def _time(text: str | None) -> _dt.datetime | None:
    return _dt.datetime.fromisoformat(text) if text else None


def _local(text: str) -> str:
    """A string safe as the local part of a PROV qualified name."""
    return re.sub(r"[^\w.\-]", "_", text)


def build_document(
    manifests: Iterable[_ManifestLike],
    branches: Mapping[str, str] | None = None,
) -> ProvDocument:
    """The PROV document of ``manifests`` (snapshots), oldest first.

    Per step snapshot: an activity (tool id, parameters, versions, python, start and end,
    requested_by, request text), ``used`` the parent snapshot, ``wasGeneratedBy`` the new
    one, ``wasDerivedFrom`` between the two, and ``wasAssociatedWith`` the tool (a
    ``prov:SoftwareAgent``) and the requester. The import snapshot ``used`` the source
    file, identified by its checksum. ``branches`` (name -> head id) mark branch heads.
    """
    doc = ProvDocument()
    ns = doc.add_namespace("scagent", NAMESPACE)
    snap = doc.add_namespace("snapshot", "urn:scagent:snapshot:")
    act = doc.add_namespace("activity", "urn:scagent:activity:")
    tool = doc.add_namespace("tool", "urn:scagent:tool:")
    who = doc.add_namespace("agent", "urn:scagent:agent:")
    src = doc.add_namespace("file", "urn:scagent:file:")

    heads: dict[str, list[str]] = {}
    for name, head in (branches or {}).items():
        heads.setdefault(head, []).append(name)

    agents_done: set[str] = set()

    def agent(kind: str, name: str, attributes: dict) -> Any:
        key = f"{kind}:{name}"
        qname = (tool if kind == "tool" else who)[_local(name)]
        if key not in agents_done:
            agents_done.add(key)
            doc.agent(qname, attributes)
        return qname

    for manifest in manifests:
        meta = manifest.meta or {}
        entity_attrs: dict[Any, Any] = {PROV_TYPE: ns["Snapshot"]}
        if meta.get("tool_id"):
            entity_attrs[PROV_LABEL] = f"after {meta['tool_id']}"
        if manifest.id in heads:
            entity_attrs[ns["head_of"]] = ",".join(sorted(heads[manifest.id]))
        entity = doc.entity(snap[manifest.id], entity_attrs)
        if not meta.get("activity_id"):
            continue  # a snapshot written without scagent's step record: no activity
        ended = _time(meta.get("ended"))
        activity_attrs = {
            PROV_TYPE: ns["Import" if meta.get("kind") == "import" else "ToolRun"],
            ns["tool"]: meta.get("tool_id", ""),
            ns["parameters"]: json.dumps(meta.get("params", {}), sort_keys=True, default=str),
            ns["versions"]: json.dumps(meta.get("versions", {}), sort_keys=True),
            ns["python_version"]: meta.get("python", ""),
            ns["requested_by"]: meta.get("requested_by", ""),
            ns["deterministic"]: bool(meta.get("deterministic", True)),
        }
        if meta.get("request_text"):
            activity_attrs[ns["request_text"]] = meta["request_text"]
        if meta.get("summary"):
            activity_attrs[ns["summary"]] = meta["summary"]
        if meta.get("planned"):
            activity_attrs[ns["planned"]] = True
        activity = doc.activity(
            act[meta["activity_id"]], _time(meta.get("started")), ended, activity_attrs
        )

        tool_versions = meta.get("versions", {})
        tool_agent = agent(
            "tool",
            meta.get("tool_id", "unknown"),
            {
                PROV_TYPE: PROV["SoftwareAgent"],
                PROV_LABEL: meta.get("tool_id", ""),
                ns["framework"]: meta.get("framework", ""),
                ns["scagent_version"]: tool_versions.get("scagent", ""),
            },
        )
        requester = meta.get("requested_by") or "user"
        requester_type = PROV["Person"] if requester == "user" else PROV["SoftwareAgent"]
        requester_attrs: dict[Any, Any] = {PROV_TYPE: requester_type, PROV_LABEL: requester}
        if requester.startswith("llm:"):
            requester_attrs[ns["model"]] = requester.removeprefix("llm:")
        requester_agent = agent("requester", requester, requester_attrs)
        doc.wasAssociatedWith(activity, tool_agent, other_attributes={PROV_ROLE: ns["executor"]})
        doc.wasAssociatedWith(
            activity, requester_agent, other_attributes={PROV_ROLE: ns["requester"]}
        )

        if meta.get("kind") == "import":
            source = meta.get("source") or {}
            checksum = source.get("sha256")
            if checksum:
                file_attrs: dict[Any, Any] = {
                    PROV_TYPE: ns["DataFile"],
                    ns["sha256"]: checksum,
                    PROV_LABEL: source.get("path", ""),
                }
                if source.get("hash_method"):
                    file_attrs[ns["hash_method"]] = source["hash_method"]
                if source.get("bytes") is not None:
                    file_attrs[ns["bytes"]] = int(source["bytes"])
                file_entity = doc.entity(src[f"sha256-{checksum}"], file_attrs)
                doc.used(activity, file_entity)
                doc.wasDerivedFrom(entity, file_entity, activity)
        elif manifest.parent:
            parent = snap[manifest.parent]
            doc.used(activity, parent)
            doc.wasDerivedFrom(entity, parent, activity)
        doc.wasGeneratedBy(entity, activity, ended)
    return doc


def export_document(doc: ProvDocument, format: ProvFormat = "jsonld") -> str:
    """Serialise ``doc``: ``jsonld`` (PROV-JSON-LD), ``provn`` (PROV-N) or ``json`` (PROV-JSON).

    PROV-JSON-LD embeds its ``@context`` (rather than pointing at openprovenance.org) so
    that the file can be expanded offline, years later.
    """
    if format == "jsonld":
        return doc.serialize(format="jsonld", context="embed", indent=1)
    if format == "provn":
        return doc.get_provn()
    if format == "json":
        return doc.serialize(format="json", indent=1)
    raise InvalidParameterError(
        f"unknown provenance format {format!r}", remedy="use --format jsonld, provn or json"
    )
