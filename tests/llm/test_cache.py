"""The response cache: hits make no HTTP request, bad entries are misses with a warning,
an unwritable folder degrades to no cache with one warning."""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path

import pytest
from pydantic import BaseModel

from scagent.llm import LLMCacheWarning, ResponseCache, cache_key, default_cache_dir
from scagent.llm.testing import json_reply, openai_reply


class Label(BaseModel):
    label: str
    confidence: float


ANSWER = {"label": "NK cell", "confidence": 0.7}


def _entries(folder: Path) -> list[Path]:
    return sorted(folder.rglob("*.json"))


@pytest.mark.parametrize("route", ["openai", "anthropic"])
def test_second_identical_call_is_served_from_cache(server, make_client, route, tmp_path):
    server.enqueue(route, json_reply(route, ANSWER))
    client = make_client(route)
    kwargs = dict(
        system="annotate",
        json_schema=Label,
        seed=0,
        prompt_version="annotate.v1",
        cache_key_extra={"species": "human", "tissue": "blood"},
    )
    first = client.complete("cluster 1: GNLY NKG7", **kwargs)
    second = client.complete("cluster 1: GNLY NKG7", **kwargs)
    assert len(server.requests) == 1  # the second call made no HTTP request
    assert not first.cached and second.cached
    assert second.parsed == first.parsed == Label(**ANSWER)
    assert second.requests == 0 and second.cache_key == first.cache_key
    assert second.record()["cached"] is True
    assert client.usage.cache_hits == 1 and client.usage.cache_misses == 1
    # Tokens are spent once; the cached answer reports what it cost when it was made.
    assert client.usage.input_tokens == first.usage.input_tokens
    assert second.usage == first.usage
    assert client.cache.stats()["hits"] == 1
    assert [h["cached"] for h in client.history] == [False, True]


def test_key_depends_on_everything_that_changes_the_answer(server, make_client):
    for i in range(6):
        server.enqueue("openai", openai_reply(f"a{i}"))
    client = make_client("openai")
    base = dict(prompt_version="p.v1", cache_key_extra={"tissue": "blood"}, seed=1)
    client.complete("q", **base)
    client.complete("q", **{**base, "cache_key_extra": {"tissue": "liver"}})
    client.complete("q", **{**base, "prompt_version": "p.v2"})
    client.complete("q", **{**base, "seed": 2})
    client.complete("q", **{**base, "temperature": 0.5})
    client.complete("q", **base)  # same as the first: a hit
    assert len(server.requests) == 5
    assert client.usage.cache_hits == 1


def test_cache_key_is_stable_and_order_insensitive():
    a = cache_key("openai", "m", {"extra": {"a": 1, "b": 2}, "messages": ["x"]})
    b = cache_key("openai", "m", {"messages": ["x"], "extra": {"b": 2, "a": 1}})
    assert a == b and len(a) == 64
    assert a != cache_key("anthropic", "m", {"messages": ["x"], "extra": {"b": 2, "a": 1}})
    assert a != cache_key("openai", "m2", {"messages": ["x"], "extra": {"b": 2, "a": 1}})


def test_corrupted_entry_is_a_miss_with_a_warning(server, make_client, tmp_path):
    server.enqueue("openai", openai_reply(json.dumps(ANSWER)), openai_reply(json.dumps(ANSWER)))
    client = make_client("openai")
    client.complete("q", json_schema=Label)
    (entry,) = _entries(tmp_path / "llm-cache")
    entry.write_text('{"format": 1, "key": "trunc')  # a half-written file
    with pytest.warns(LLMCacheWarning, match="corrupt"):
        r = client.complete("q", json_schema=Label)
    assert not r.cached and r.parsed.label == "NK cell"
    assert len(server.requests) == 2
    # The fresh answer replaced the bad entry: the third call is a hit, silently.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert client.complete("q", json_schema=Label).cached
    assert client.cache.stats()["corrupt"] == 1


def test_entry_not_matching_the_schema_is_a_miss(server, make_client, tmp_path):
    server.enqueue("openai", openai_reply(json.dumps(ANSWER)), openai_reply(json.dumps(ANSWER)))
    client = make_client("openai")
    client.complete("q", json_schema=Label)
    (entry,) = _entries(tmp_path / "llm-cache")
    stored = json.loads(entry.read_text())
    stored["response"]["data"] = {"label": 5}  # e.g. edited by hand
    entry.write_text(json.dumps(stored))
    with pytest.warns(LLMCacheWarning, match="does not fit"):
        assert not client.complete("q", json_schema=Label).cached
    assert client.cache.stats()["hits"] == 0


def test_unwritable_cache_folder_runs_without_cache_and_warns_once(server, make_client, tmp_path):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the cache folder should be")
    client = make_client("openai", cache_dir=blocker / "llm")
    server.enqueue("openai", openai_reply("one"), openai_reply("two"))
    with pytest.warns(LLMCacheWarning, match="not writable") as caught:
        assert client.complete("q").text == "one"
        assert client.complete("q").text == "two"  # no cache: asked again
    assert len([w for w in caught if issubclass(w.category, LLMCacheWarning)]) == 1
    assert client.cache.stats()["writable"] is False


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root ignores permissions")
def test_read_only_cache_folder(server, make_client, tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        client = make_client("openai", cache_dir=folder)
        server.enqueue("openai", openai_reply("one"))
        with pytest.warns(LLMCacheWarning, match="not writable"):
            assert client.complete("q").text == "one"
    finally:
        folder.chmod(0o700)


def test_cache_can_be_disabled(server, make_client):
    server.enqueue("openai", openai_reply("one"), openai_reply("two"))
    client = make_client("openai", cache=False)
    assert [client.complete("q").text for _ in range(2)] == ["one", "two"]
    assert client.cache is None


def test_use_cache_false_bypasses_reading_but_refreshes(server, make_client):
    server.enqueue("openai", openai_reply("old"), openai_reply("new"))
    client = make_client("openai")
    client.complete("q")
    assert client.complete("q", use_cache=False).text == "new"
    assert client.complete("q").text == "new"  # the refreshed answer was stored
    assert len(server.requests) == 2


def test_default_cache_dir_follows_scagent_home(monkeypatch, tmp_path):
    monkeypatch.setenv("SCAGENT_HOME", str(tmp_path / "home"))
    assert default_cache_dir() == tmp_path / "home" / "cache" / "llm"
    assert ResponseCache().folder == tmp_path / "home" / "cache" / "llm"
    monkeypatch.delenv("SCAGENT_HOME")
    assert default_cache_dir() == Path("~/.cache/scagent/cache/llm").expanduser()


def test_entries_are_written_atomically(tmp_path, monkeypatch):
    cache = ResponseCache(tmp_path)
    key = "ab" + "0" * 62
    cache.put(key, {"text": "first"})

    import scagent.llm.cache as cache_mod

    def crash(path, text):  # the writer dies mid-write: the old entry must survive
        raise OSError("disk full")

    monkeypatch.setattr(cache_mod, "atomic_write_text", crash)
    with pytest.warns(LLMCacheWarning):
        assert cache.put(key, {"text": "second"}) is False
    assert cache.get(key) == {"text": "first"}
    assert not [p for p in tmp_path.rglob("*") if p.name.startswith(".")]
