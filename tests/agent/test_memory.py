"""Conversation memory: turns in SQLite with FTS5, recall, session summaries and tiered context."""

from __future__ import annotations

from scagent.agent.memory import Memory


def test_recall_finds_turns_by_text_and_survives_reopening(tmp_path):
    path = tmp_path / "memory.sqlite"
    with Memory(path) as mem:
        mem.start_session("main")
        mem.add("user", "cluster at resolution 0.8")
        mem.add("agent", "6 Leiden clusters at resolution 0.8")
        mem.add("user", "annotate the clusters with the blood marker database")
        mem.end_session()
    with Memory(path) as mem:
        hits = mem.recall("marker database")
        assert hits and "marker database" in hits[0].content
        assert {t.content for t in mem.recall("resolution")} == {
            "cluster at resolution 0.8",
            "6 Leiden clusters at resolution 0.8",
        }
        # FTS syntax in user text cannot break the query.
        assert mem.recall('"unbalanced AND (NEAR') == []
        assert mem.recall("") == []


def test_previous_session_summary_lists_steps_and_open_questions(tmp_path):
    mem = Memory(tmp_path / "m.sqlite")
    mem.start_session("main")
    mem.add("user", "run QC")
    mem.add("step", "main@1 qc_metrics: QC metrics for 600 cells", tool_id="qc_metrics", step=1)
    mem.add("agent", "blocked: DE: no sample column", open_question=True)
    mem.end_session()
    mem.start_session("main")
    summary = mem.previous_session()
    assert summary is not None
    assert summary.steps == ["main@1 qc_metrics: QC metrics for 600 cells"]
    assert summary.open_questions == ["blocked: DE: no sample column"]
    text = summary.text()
    assert "qc_metrics" in text and "no sample column" in text and "1 turns" in text
    mem.close()


def test_context_tiers_do_not_repeat_recent_turns(tmp_path):
    mem = Memory(tmp_path / "m.sqlite")
    mem.add("user", "harmony integration by donor failed")
    for i in range(8):
        mem.add("user", f"filler request {i}")
    bundle = mem.context("harmony donor", pinned="Branch: main", n_recent=4, n_retrieved=3)
    assert bundle.pinned == "Branch: main"
    assert [t.content for t in bundle.recent] == [f"filler request {i}" for i in range(4, 8)]
    assert [t.content for t in bundle.retrieved] == ["harmony integration by donor failed"]
    assert not {t.id for t in bundle.retrieved} & {t.id for t in bundle.recent}
    assert mem.user_inputs()[-1] == "filler request 7"
    mem.close()
