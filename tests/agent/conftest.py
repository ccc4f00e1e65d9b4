"""Fixtures of the agent tests: small simulated projects, copied from templates built once."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent


@pytest.fixture(scope="session")
def counts():
    """Raw counts with known cell types (the simulator, 600 x 800, seed 0)."""
    from scagent.data import simulate

    return simulate(600, 800, seed=0)


@pytest.fixture(scope="session")
def processed_template(tmp_path_factory, counts) -> Path:
    """A project built once: qc_metrics, then leiden (planned prerequisites), then markers."""
    from scagent.session import Session

    root = tmp_path_factory.mktemp("agent_template") / "proj"
    session = Session.init(root, data=counts.copy())
    session.run("qc_metrics")
    session.run("leiden", auto=True, resolution=0.8)
    session.run("markers")
    return root


@pytest.fixture
def processed(tmp_path, processed_template):
    """A copy of the processed project, opened."""
    from scagent.session import Session

    root = tmp_path / "proj"
    shutil.copytree(processed_template, root)
    return Session.open(root)


@pytest.fixture
def fresh(tmp_path, counts):
    """A new project with the raw counts at step 0 of main."""
    from scagent.session import Session

    return Session.init(tmp_path / "fresh", data=counts.copy())


@pytest.fixture
def make_agent():
    """``make_agent(session, answers=(), **kw) -> (agent, io)``: an agent that records what it
    says and answers its questions from ``answers``."""
    from scagent.agent import Agent, Memory, RecordingIO

    def build(session, answers=(), **kw):
        io = RecordingIO(answers=list(answers))
        memory = Memory.for_project(session.project.dir)
        return Agent(session, io, memory=memory, **kw), io

    return build
