"""The project folder ``.scagent/``: project.json, the snapshot store, branch refs, provenance and the log.

Layout::

    .scagent/
      project.json        schema_version, the scagent version that wrote it, paradigm, context
      store/              content-addressed snapshots (scagent.session.store)
      refs/               branches and HEAD (scagent.session.refs)
      lock                held by the one process writing the project
      provenance.jsonld   W3C PROV of every committed step (rebuilt from the store)
      log.jsonl           one JSON line per committed change (steps, branch moves)
"""

from __future__ import annotations

import datetime as _dt
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from packaging.version import InvalidVersion, Version
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from scagent import __version__
from scagent._atomic import atomic_write_text
from scagent.errors import IncompatibleVersionError, ProjectError
from scagent.plan import PARADIGMS as _PARADIGM_PLANS
from scagent.session.context import ExperimentContext, format_validation_error

__all__ = [
    "PARADIGMS",
    "PROJECT_DIR",
    "SCHEMA_VERSION",
    "Project",
    "ProjectConfig",
    "find_project_root",
]

#: Version of the project.json layout; bumped when the format changes incompatibly.
SCHEMA_VERSION = 1
PROJECT_DIR = ".scagent"

#: Paradigms a project may declare: the advisory plans of :mod:`scagent.plan`.
PARADIGMS: tuple[str, ...] = tuple(_PARADIGM_PLANS)


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="milliseconds")


class ProjectConfig(BaseModel):
    """The content of ``project.json``."""

    model_config = ConfigDict(extra="forbid")

    schema_version: int = Field(SCHEMA_VERSION, ge=1)
    scagent_version: str = __version__
    created: str = Field(default_factory=_now)
    paradigm: str | None = None
    context: ExperimentContext = Field(default_factory=ExperimentContext)

    @field_validator("paradigm")
    @classmethod
    def _known_paradigm(cls, value: str | None) -> str | None:
        if value is None:
            return None
        normalised = value.strip().lower().replace("-", "_").replace(" ", "_")
        if normalised not in PARADIGMS:
            raise ValueError(f"unknown paradigm {value!r}; use one of {', '.join(PARADIGMS)}")
        return normalised


def find_project_root(path: str | Path = ".") -> Path | None:
    """The nearest folder at or above ``path`` that holds ``.scagent/``, else None."""
    path = Path(path).resolve()
    for folder in (path, *path.parents):
        if (folder / PROJECT_DIR / "project.json").is_file():
            return folder
    return None


class Project:
    """A project folder on disk; :meth:`create` makes one, :meth:`open` reads one.

    The project knows its files, not the analysis: :class:`scagent.session.Session`
    runs steps on it.
    """

    def __init__(self, root: Path, config: ProjectConfig) -> None:
        self.root = Path(root)
        self.config = config

    # ----- paths
    @property
    def dir(self) -> Path:
        return self.root / PROJECT_DIR

    @property
    def config_path(self) -> Path:
        return self.dir / "project.json"

    @property
    def store_dir(self) -> Path:
        return self.dir / "store"

    @property
    def refs_dir(self) -> Path:
        return self.dir / "refs"

    @property
    def lock_path(self) -> Path:
        return self.dir / "lock"

    @property
    def provenance_path(self) -> Path:
        return self.dir / "provenance.jsonld"

    @property
    def log_path(self) -> Path:
        return self.dir / "log.jsonl"

    # ----- create / open
    @classmethod
    def create(
        cls,
        path: str | Path = ".",
        *,
        paradigm: str | None = None,
        context: ExperimentContext | Mapping[str, Any] | None = None,
    ) -> Project:
        """Create ``.scagent/`` in ``path``; :class:`ProjectError` if one exists there."""
        root = Path(path).resolve()
        if (root / PROJECT_DIR / "project.json").exists():
            raise ProjectError(
                f"{root} already holds a scagent project",
                remedy="use it as it is, or remove .scagent/ to start again",
            )
        try:
            config = ProjectConfig(
                paradigm=paradigm,
                context=context if context is not None else ExperimentContext(),
            )
        except ValidationError as err:
            raise ProjectError(
                f"invalid project settings: {format_validation_error(err)}",
                remedy="fix the listed fields (see docs/spine.md)",
            ) from None
        project = cls(root, config)
        for folder in (project.store_dir, project.refs_dir):
            folder.mkdir(parents=True, exist_ok=True)
        if not project.log_path.exists():
            atomic_write_text(project.log_path, "")
        # project.json last: its presence is what makes the folder a project.
        project.save_config()
        return project

    @classmethod
    def open(cls, path: str | Path = ".") -> Project:
        """Open the project at or above ``path``.

        Raises
        ------
        ProjectError
            No project, or a project.json that is not JSON or fails the schema (each field
            error listed).
        IncompatibleVersionError
            The project was written by a newer scagent or a newer project layout.
        """
        root = find_project_root(path)
        if root is None:
            raise ProjectError(f"no scagent project at or above {Path(path).resolve()}")
        config_path = root / PROJECT_DIR / "project.json"
        try:
            raw = json.loads(config_path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ProjectError(
                f"{config_path} is not valid JSON ({exc})",
                remedy="fix the syntax of .scagent/project.json",
            ) from None
        if not isinstance(raw, dict):
            raise ProjectError(f"{config_path} must hold a JSON object")
        _check_version(raw, config_path)
        try:
            config = ProjectConfig.model_validate(raw)
        except ValidationError as err:
            raise ProjectError(
                f"{config_path} fails the project schema: {format_validation_error(err)}",
                remedy="fix the listed fields of .scagent/project.json",
            ) from None
        return cls(root, config)

    def save_config(self) -> None:
        """Write project.json atomically, stamped with this scagent's version."""
        self.config.scagent_version = __version__
        atomic_write_text(self.config_path, self.config.model_dump_json(indent=2) + "\n")

    # ----- log
    def read_log(self) -> list[dict[str, Any]]:
        """The log's records, oldest first."""
        if not self.log_path.exists():
            return []
        records = []
        for line in self.log_path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                records.append(json.loads(line))
        return records

    def append_log(self, *records: Mapping[str, Any]) -> None:
        """Add records to log.jsonl.

        The file is rewritten atomically rather than appended to, so a crash never leaves
        a torn line; logs stay small (one line per step), so the rewrite is cheap.
        """
        existing = self.log_path.read_text(encoding="utf-8") if self.log_path.exists() else ""
        lines = [json.dumps({"time": _now(), **r}, default=str) for r in records]
        atomic_write_text(self.log_path, existing + "".join(line + "\n" for line in lines))


def _check_version(raw: Mapping[str, Any], where: Path) -> None:
    schema = raw.get("schema_version")
    if isinstance(schema, int) and schema > SCHEMA_VERSION:
        raise IncompatibleVersionError(
            f"{where} has project layout {schema}; this scagent {__version__} reads up to "
            f"{SCHEMA_VERSION}"
        )
    written_by = raw.get("scagent_version")
    if isinstance(written_by, str):
        try:
            newer = Version(written_by) > Version(__version__)
        except InvalidVersion:
            raise ProjectError(
                f"{where}: scagent_version {written_by!r} is not a version number"
            ) from None
        if newer:
            raise IncompatibleVersionError(
                f"the project was written by scagent {written_by}, newer than this "
                f"scagent {__version__}"
            )
