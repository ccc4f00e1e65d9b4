"""The LLM annotator through the real OpenAI and Anthropic clients against a scripted local server."""

from __future__ import annotations

import json
import re
import time
import warnings
from collections.abc import Callable

import pytest

from scagent.annotate import annotate_markers
from scagent.llm.testing import RecordedRequest, Reply, error_reply, json_reply, openai_reply

#: Markers of a few well-known types (no expression needed).
MARKERS = {
    "0": ["MS4A1", "CD79A", "CD79B", "CD19", "BANK1", "CD22"],
    "1": ["GNLY", "NKG7", "KLRD1", "PRF1", "KLRF1", "NCAM1"],
    "2": ["CD14", "LYZ", "S100A8", "S100A9", "VCAN", "FCN1"],
}
#: What a good model answers for MARKERS.
GOOD = {
    "0": ("B cell", "CL:0000236", ["MS4A1", "CD79A", "CD19"]),
    "1": ("natural killer cell", "CL:0000623", ["GNLY", "NKG7", "KLRD1"]),
    "2": ("classical monocyte", "CL:0000860", ["CD14", "LYZ", "S100A8"]),
}


def cluster_ids(request: RecordedRequest) -> list[str]:
    """The cluster ids a request asks about (read from the prompt text)."""
    text = json.dumps(request.body)
    return list(dict.fromkeys(re.findall(r'\\"cluster_id\\": \\"([^\\"]+)\\"', text)))


def answer_for(route: str, answers: dict | None = None) -> Callable[[RecordedRequest], Reply]:
    """A scripted reply that answers the clusters the request names, from ``answers``."""
    answers = answers or GOOD

    def reply(request: RecordedRequest) -> Reply:
        out = []
        for cid in cluster_ids(request):
            label, cl, genes = answers[cid]
            out.append(
                {
                    "cluster_id": cid,
                    "label": label,
                    "cell_ontology_id": cl,
                    "confidence": 0.9,
                    "supporting_markers": genes,
                    "reasoning": "canonical markers",
                }
            )
        return json_reply(route, {"clusters": out})

    return reply


ROUTES = ["openai", "anthropic"]
VAR_NAMES = sorted({g for genes in MARKERS.values() for g in genes} | {"ACTB", "GAPDH"})


def _run(client, **kwargs):
    kwargs.setdefault("chunk_size", 2)
    return annotate_markers(
        MARKERS, species="human", tissue="blood", llm=client, var_names=VAR_NAMES, **kwargs
    )


@pytest.mark.parametrize("route", ROUTES)
def test_good_answers_then_cache(route, server, make_client):
    server.enqueue(route, answer_for(route), answer_for(route))
    client = make_client(route)
    report = _run(client)
    assert [c.label for c in report.clusters] == [GOOD[k][0] for k in ("0", "1", "2")]
    assert all(c.source == "llm" and c.status == "supported" for c in report.clusters)
    assert report.cluster("0").ontology_id == "CL:0000236"
    assert report.stats.llm_requests == 2  # 3 clusters, chunk_size 2
    assert report.stats.cache_misses == 2 and report.stats.cache_hits == 0
    assert report.stats.llm_input_tokens > 0
    assert report.backend == client.backend and report.prompt_version == "annotate.v1"
    # The prompt carries species, tissue, markers with ranks and the DB's candidates.
    body = str(server.requests_for(route)[0].body)
    assert "human" in body and "blood" in body and "database_candidates" in body
    # A re-run is served from the cache: no request, fast.
    n_before = len(server.requests)
    t0 = time.perf_counter()
    again = _run(make_client(route))
    assert time.perf_counter() - t0 < 0.5
    assert len(server.requests) == n_before
    assert again.stats.llm_requests == 0 and again.stats.cache_hits == 2
    assert all(c.source == "cache" for c in again.clusters)
    assert [c.label for c in again.clusters] == [c.label for c in report.clusters]


@pytest.mark.parametrize("route", ROUTES)
def test_hallucinated_gene_is_flagged_by_name(route, server, make_client):
    bad = dict(GOOD)
    bad["0"] = ("B cell", "CL:0000236", ["MS4A1", "FAKEGENE9"])
    server.enqueue(route, answer_for(route, bad))
    report = _run(make_client(route, cache=False), chunk_size=10)
    rec = report.cluster("0")
    assert rec.status == "flagged"
    assert rec.guardrails.hallucinated_genes == ["FAKEGENE9"]
    assert any("FAKEGENE9" in p for p in rec.guardrails.problems)
    assert report.cluster("1").status == "supported"


def test_cited_gene_outside_top_markers_is_flagged(server, make_client):
    bad = dict(GOOD)
    bad["1"] = ("natural killer cell", "CL:0000623", ["GNLY", "GAPDH"])
    server.enqueue("openai", answer_for("openai", bad))
    report = _run(make_client("openai", cache=False), chunk_size=10)
    rec = report.cluster("1")
    assert rec.guardrails.uncited_genes == ["GAPDH"] and rec.status == "flagged"


def test_wrong_label_is_flagged_by_the_marker_db(server, make_client):
    bad = dict(GOOD)
    bad["0"] = ("hepatocyte", "CL:0000182", ["MS4A1"])
    server.enqueue("openai", answer_for("openai", bad))
    report = _run(make_client("openai", cache=False), chunk_size=10)
    rec = report.cluster("0")
    assert rec.status == "flagged" and rec.guardrails.canonical_markers_found == []


@pytest.mark.parametrize("route", ROUTES)
def test_invalid_json_then_valid(route, server, make_client):
    from scagent.llm.testing import anthropic_reply

    broken = openai_reply("{not json") if route == "openai" else anthropic_reply("{not json")
    server.enqueue(route, broken, answer_for(route))
    report = _run(make_client(route, cache=False), chunk_size=10)
    assert report.stats.llm_requests == 2
    assert all(c.source == "llm" for c in report.clusters)


@pytest.mark.parametrize("route", ROUTES)
def test_429_then_success(route, server, make_client):
    server.enqueue(route, error_reply(route, 429, headers={"Retry-After": "0"}), answer_for(route))
    report = _run(make_client(route, cache=False), chunk_size=10)
    assert report.stats.llm_requests == 2 and report.stats.llm_failures == 0
    assert report.cluster("2").label == "classical monocyte"


def test_timeout_then_success(server, make_client):
    from scagent.llm.testing import Reply

    def slow(request):
        reply = answer_for("openai")(request)
        return Reply(reply.body, delay=2.0)

    server.enqueue("openai", slow, answer_for("openai"))
    report = _run(make_client("openai", cache=False, timeout=0.3), chunk_size=10)
    assert report.stats.llm_requests == 2
    assert all(c.source == "llm" for c in report.clusters)


@pytest.mark.parametrize("route", ROUTES)
def test_never_valid_json_falls_back_to_offline(route, server, make_client):
    from scagent.llm.testing import anthropic_reply

    def broken():
        return openai_reply("nope") if route == "openai" else anthropic_reply("nope")

    # Chunk 1 (clusters 0, 1) never answers valid JSON; chunk 2 answers well.
    def by_chunk(request):
        ids = cluster_ids(request)
        return answer_for(route)(request) if ids == ["2"] else broken()

    server.enqueue(route, *[by_chunk] * 4)
    report = _run(make_client(route, cache=False), chunk_size=2, max_concurrency=1)
    for cid in ("0", "1"):
        rec = report.cluster(cid)
        assert rec.source == "offline" and rec.status == "flagged"
        assert rec.label != "Unknown"
        assert "fallback" in rec.guardrails.problems[0]
    assert report.cluster("2").source == "llm"
    assert report.stats.llm_failures == 1 and report.stats.overrides == 2
    assert any("offline answer" in w for w in report.warnings)


def test_read_only_cache_folder_warns_and_completes(server, make_client, tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    server.enqueue("openai", answer_for("openai"))
    client = make_client("openai", cache_dir=blocker / "cache")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        report = _run(client, chunk_size=10)
    assert all(c.source == "llm" for c in report.clusters)
    assert any("not writable" in str(w.message) for w in caught)
    assert any("not writable" in w for w in report.warnings)


def test_concurrency_is_bounded(server, make_client):
    markers = {str(i): MARKERS[str(i % 3)] for i in range(8)}
    answers = {str(i): GOOD[str(i % 3)] for i in range(8)}

    def slow(request):
        from scagent.llm.testing import Reply

        r = answer_for("openai", answers)(request)
        return Reply(r.body, delay=0.05)

    server.enqueue("openai", *[slow] * 8)
    report = annotate_markers(
        markers,
        species="human",
        llm=make_client("openai", cache=False),
        chunk_size=1,
        max_concurrency=2,
    )
    assert server.max_in_flight <= 2
    assert report.stats.llm_requests == 8 and len(report.clusters) == 8
