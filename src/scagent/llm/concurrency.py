"""Many requests at once on a bounded thread pool, answers returned in request order.

Threads, not asyncio: the SDK clients are thread-safe, the work is waiting on HTTP, and
callers (annotation chunks, interpretation per cluster) stay plain synchronous code.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from scagent.errors import InvalidParameterError

from .base import LLMClient, LLMResponse

__all__ = ["map_concurrent"]


def _call(client: LLMClient, request: Any) -> LLMResponse:
    if isinstance(request, Mapping) and "messages" in request:
        return client.complete(**request)
    return client.complete(request)


def map_concurrent(
    client: LLMClient,
    requests: Iterable[Mapping[str, Any] | Any],
    max_workers: int = 4,
    *,
    return_exceptions: bool = False,
    on_done: Callable[[int, LLMResponse | BaseException], None] | None = None,
) -> list[LLMResponse | BaseException]:
    """Run ``client.complete`` for each request with at most ``max_workers`` in flight.

    Parameters
    ----------
    client
        Any :class:`~scagent.llm.LLMClient`; its usage totals aggregate every call.
    requests
        Each a dict of :meth:`~scagent.llm.LLMClient.complete` keyword arguments (with
        ``messages``), or bare messages (a string or a list of messages).
    max_workers
        Upper bound on concurrent requests (also mind the provider's rate limits).
    return_exceptions
        If True, a failed request's exception takes its place in the result list; if
        False, the first failure (in request order) is raised once all have finished.
    on_done
        Called as ``on_done(index, response_or_exception)`` when each finishes (from a
        worker thread), e.g. to advance a progress bar.

    Returns
    -------
    list
        Responses in the order of ``requests``.
    """
    if not isinstance(max_workers, int) or max_workers < 1:
        raise InvalidParameterError(f"max_workers must be a positive integer, got {max_workers!r}")
    items: Sequence[Any] = list(requests)
    if not items:
        return []

    def run(i: int) -> LLMResponse | BaseException:
        try:
            out: LLMResponse | BaseException = _call(client, items[i])
        except Exception as exc:
            out = exc
        if on_done is not None:
            on_done(i, out)
        return out

    with ThreadPoolExecutor(max_workers=min(max_workers, len(items))) as pool:
        results = list(pool.map(run, range(len(items))))
    if not return_exceptions:
        for r in results:
            if isinstance(r, BaseException):
                raise r
    return results
