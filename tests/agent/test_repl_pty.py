"""The REPL driven as a user would, through a pseudo-terminal (pexpect): prompt_toolkit line editing, confirmations, Ctrl-C."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pytest

pexpect = pytest.importorskip("pexpect")

HERE = Path(__file__).resolve().parent
PROMPT = r"\w+@\d+>"

# The child imports the slow test tool, then runs the REPL's entry point.
_CHILD = (
    "import sys; sys.path.insert(0, {here!r}); import agent_test_tools; "
    "from scagent.agent.repl import main; sys.exit(main(sys.argv[1:]))"
)


def _spawn(project: Path, *args: str, timeout: float = 60):
    env = dict(
        os.environ,
        PROMPT_TOOLKIT_NO_CPR="1",  # pexpect does not answer cursor-position requests
        NO_COLOR="1",
        TERM="xterm",
        COLUMNS="160",
    )
    child = pexpect.spawn(
        sys.executable,
        ["-c", _CHILD.format(here=str(HERE)), *args, "--project", str(project)],
        env=env,
        encoding="utf-8",
        timeout=timeout,
        dimensions=(50, 160),
    )
    return child


def test_slash_commands_and_a_confirmed_request(processed):
    root = processed.project.root
    child = _spawn(root, "--offline")
    try:
        child.expect("branch: main at step 7")
        child.expect(PROMPT)
        child.sendline("/stauts")
        child.expect("did you mean /status")
        child.expect(PROMPT)
        child.sendline("")
        child.expect("Nothing to do")
        child.expect(PROMPT)
        child.sendline("/branch list")
        child.expect(r"\* main: 7 steps")
        child.expect(PROMPT)
        child.sendline("filter genes in at least 5 cells")
        child.expect("filter_genes \\(min_cells=5\\)")
        child.expect(r"Proceed\? \[y/N\]")
        child.sendline("y")
        child.expect("main@8 filter_genes: ")
        child.expect(PROMPT)
        child.sendline("/recall at least 5 cells")
        child.expect("user: filter genes in at least 5 cells")
        child.expect(PROMPT)
        child.sendline("/quit")
        child.expect("bye")
        child.expect(pexpect.EOF)
    finally:
        child.close(force=True)
    assert child.exitstatus == 0
    from scagent.session import Session

    step = Session.open(root).history()[-1]
    assert (step.tool_id, step.params["min_cells"], step.requested_by) == (
        "filter_genes",
        5,
        "agent",
    )
    # The next session greets with this one's summary.
    child = _spawn(root, "--offline")
    try:
        child.expect("Last session")
        child.expect("main@8 filter_genes")
        child.expect(PROMPT)
        child.sendeof()
        child.expect(pexpect.EOF)
    finally:
        child.close(force=True)


def test_ctrl_c_during_a_long_step_leaves_the_project_consistent(processed):
    from scagent.session import Session

    root = processed.project.root
    head = processed.head()
    log_before = processed.project.log_path.read_text()
    child = _spawn(root, "--offline")
    try:
        child.expect(PROMPT)
        child.sendline("/run test_sleep seconds=60")
        child.expect("Plan:")
        time.sleep(1.0)  # the step is inside its sleep, X already zeroed on the working copy
        child.sendintr()
        child.expect("interrupted")
        child.expect(PROMPT)
        # The REPL is still usable after the interrupt.
        child.sendline("/status")
        child.expect("branch main at step 7")
        child.expect(PROMPT)
        child.sendline("/quit")
        child.expect(pexpect.EOF)
    finally:
        child.close(force=True)
    session = Session.open(root)
    assert session.head() == head
    assert session.store.verify(head) == []
    assert "half_written" not in session.adata.obs
    assert session.adata.X.sum() > 0
    assert session.project.log_path.read_text() == log_before
    assert session.recover() == []
