"""Build the local marker database: merge downloaded sources into parquet plus a manifest.

``scagent knowledge build`` calls :func:`build_knowledge`. Inputs are local files or
URLs (fetched with urllib where the network works); the result lands in
``$SCAGENT_HOME/knowledge`` (default ``~/.cache/scagent/knowledge``), where
:meth:`MarkerDB.default` finds it. Both files are written atomically, manifest last.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import shutil
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pandas as pd

from scagent._atomic import atomic_path, atomic_write_text
from scagent.errors import InputNotFoundError, InvalidParameterError, KnowledgeError
from scagent.knowledge import ontology as _onto
from scagent.knowledge.loaders import read_markers
from scagent.knowledge.markerdb import BUILT_TABLE, MarkerDB, knowledge_dir

__all__ = ["MANIFEST", "SCHEMA_VERSION", "BuildResult", "build_knowledge"]

#: Manifest file name beside the parquet table.
MANIFEST = "manifest.json"
#: Version of the built table's schema; bump when MARKER_COLUMNS change.
SCHEMA_VERSION = 1

_FORMATS = {"panglaodb": "panglaodb", "sctype": "sctype", "cellmarker": "cellmarker", "gmt": "gmt"}


@dataclass
class BuildResult:
    """What :func:`build_knowledge` wrote."""

    folder: Path
    table: Path
    manifest: dict[str, Any]
    seconds: float

    @property
    def n_rows(self) -> int:
        """Rows in the built table."""
        return int(self.manifest["n_rows"])


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _is_url(text: str) -> bool:
    return text.startswith(("http://", "https://", "ftp://"))


def _fetch(url: str, folder: Path, timeout: float) -> Path:
    name = Path(urllib.request.urlparse(url).path).name or "download"
    target = folder / name
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp, open(target, "wb") as out:
            shutil.copyfileobj(resp, out)
    except (urllib.error.URLError, TimeoutError, OSError) as err:
        raise KnowledgeError(
            f"cannot download {url}: {getattr(err, 'reason', err)}",
            remedy="download the file yourself (or check the network) and pass its local path",
        ) from err
    return target


def build_knowledge(
    *,
    panglaodb: str | os.PathLike[str] | None = None,
    sctype: str | os.PathLike[str] | None = None,
    cellmarker: str | os.PathLike[str] | None = None,
    gmt: str | os.PathLike[str] | None = None,
    out: str | os.PathLike[str] | None = None,
    timeout: float = 60.0,
) -> BuildResult:
    """Merge marker sources into ``out/markers.parquet`` and ``out/manifest.json``.

    Parameters
    ----------
    panglaodb, sctype, cellmarker, gmt
        Local paths or URLs of the sources to include (at least one).
    out
        Output folder; default :func:`~scagent.knowledge.markerdb.knowledge_dir`.
    timeout
        Seconds to wait for each download.

    Returns
    -------
    BuildResult
        Paths written and the manifest (inputs with sha256, size, format and rows;
        versions of scagent, pandas and the ontologies; row counts by source and species).

    Raises
    ------
    InvalidParameterError
        When no source is given.
    InputNotFoundError
        For a local path that does not exist.
    KnowledgeError
        For a download that fails or a malformed file; nothing is written then.
    """
    from scagent import __version__

    inputs = {"panglaodb": panglaodb, "sctype": sctype, "cellmarker": cellmarker, "gmt": gmt}
    given = {k: str(v) for k, v in inputs.items() if v is not None}
    if not given:
        raise InvalidParameterError(
            "no marker source given",
            remedy="pass at least one of --panglaodb, --sctype, --cellmarker, --gmt",
        )
    folder = Path(out) if out is not None else knowledge_dir()
    start = time.perf_counter()
    tables: list[pd.DataFrame] = []
    records: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="scagent_build_") as tmp:
        for kind, where in given.items():
            if _is_url(where):
                path = _fetch(where, Path(tmp), timeout)
            else:
                path = Path(where).expanduser()
                if not path.exists():
                    raise InputNotFoundError(f"--{kind} file {where!r} does not exist")
            table = read_markers(path, format=_FORMATS[kind])  # type: ignore[arg-type]
            tables.append(table)
            records.append(
                {
                    "source": kind,
                    "location": where,
                    "file": path.name,
                    "sha256": _sha256(path),
                    "bytes": path.stat().st_size,
                    "format": _FORMATS[kind],
                    "rows": len(table),
                    "species": sorted(table["species"].unique().tolist()),
                }
            )
    db = MarkerDB(pd.concat(tables, ignore_index=True))
    table_path = folder / BUILT_TABLE
    folder.mkdir(parents=True, exist_ok=True)
    with atomic_path(table_path) as tmp_path:
        db.table.to_parquet(tmp_path, index=False)
    t = db.table
    manifest: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "table": BUILT_TABLE,
        "table_sha256": _sha256(table_path),
        "n_rows": len(t),
        "n_cell_types": int(t["cell_type"].nunique()),
        "n_genes": int(t["gene"].nunique()),
        "rows_by_source": {str(k): int(v) for k, v in t["source"].value_counts().items()},
        "rows_by_species": {str(k): int(v) for k, v in t["species"].value_counts().items()},
        "inputs": records,
        "versions": {
            "scagent": __version__,
            "python": platform.python_version(),
            "pandas": pd.__version__,
            **_onto.ontology_versions(),
        },
    }
    atomic_write_text(folder / MANIFEST, json.dumps(manifest, indent=2) + "\n")
    return BuildResult(folder, table_path, manifest, time.perf_counter() - start)
