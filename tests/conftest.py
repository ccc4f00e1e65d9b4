"""Fixtures shared by every test folder."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
#: Real public data beside the checkout (../shared/data); absent on a user's machine.
SHARED_DATA = Path(os.environ.get("SCAGENT_SHARED_DATA", REPO.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Folder of real public test files; skips the test where it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared test data not found at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch):
    """Keep caches and built databases out of the user's home during tests."""
    home = tmp_path_factory.mktemp("scagent_home")
    monkeypatch.setenv("SCAGENT_HOME", str(home))
    monkeypatch.delenv("SCAGENT_LLM", raising=False)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)


@pytest.fixture(scope="session")
def pbmc68k():
    """scanpy's bundled pbmc68k_reduced (scaled X, log-normalized .raw), loaded once."""
    import scanpy as sc

    return sc.datasets.pbmc68k_reduced()
