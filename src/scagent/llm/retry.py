"""Retry policy shared by every backend: exponential backoff with jitter, Retry-After honoured.

The SDKs' own retries are switched off (``max_retries=0``) so that OpenAI, Anthropic and
any OpenAI-compatible server retry the same way, and so that every HTTP request is counted.
"""

from __future__ import annotations

import email.utils
import random
import time
from collections.abc import Mapping
from dataclasses import dataclass

__all__ = ["Failure", "RetryPolicy", "classify_status", "parse_retry_after"]


@dataclass(frozen=True)
class RetryPolicy:
    """When and how long to wait before trying again.

    Parameters
    ----------
    max_retries
        Retries after the first attempt (so ``max_retries + 1`` attempts at most).
    backoff_base
        Wait before the first retry, in seconds; doubles for each further retry.
    backoff_max
        Upper bound of one wait.
    jitter
        Fraction of each wait drawn at random (0 = none, 1 = "full jitter"), so that
        concurrent workers hit by the same 429 do not retry in lockstep.
    retry_after_max
        Upper bound on a server's Retry-After hint.
    """

    max_retries: int = 3
    backoff_base: float = 1.0
    backoff_max: float = 30.0
    jitter: float = 0.5
    retry_after_max: float = 60.0

    def __post_init__(self) -> None:
        if self.max_retries < 0:
            raise ValueError("max_retries must be >= 0")
        if not 0.0 <= self.jitter <= 1.0:
            raise ValueError("jitter must be within [0, 1]")

    def delay(
        self, attempt: int, retry_after: float | None = None, rng: random.Random | None = None
    ) -> float:
        """Seconds to wait before retry number ``attempt + 1``.

        A server's Retry-After wins over the computed backoff (capped by
        ``retry_after_max``): the server knows when its rate window reopens.
        """
        if retry_after is not None and retry_after >= 0:
            return min(retry_after, self.retry_after_max)
        base = min(self.backoff_max, self.backoff_base * (2**attempt))
        u = (rng or random).random()
        return base * (1.0 - self.jitter * u)


@dataclass(frozen=True)
class Failure:
    """A transport failure, classified: may it be retried, and after how long?"""

    kind: str  # timeout | connection | rate_limit | server | client
    retryable: bool
    status: int | None = None
    retry_after: float | None = None
    message: str = ""
    remedy: str | None = None

    def describe(self) -> str:
        head = f"HTTP {self.status} ({self.kind})" if self.status else self.kind
        return f"{head}: {self.message}" if self.message else head


def parse_retry_after(headers: Mapping[str, str] | None) -> float | None:
    """Seconds from ``retry-after-ms`` or ``Retry-After`` (seconds or an HTTP date)."""
    if not headers:
        return None
    lower = {str(k).lower(): str(v) for k, v in headers.items()}
    ms = lower.get("retry-after-ms")
    if ms is not None:
        try:
            return max(0.0, float(ms) / 1000.0)
        except ValueError:
            pass
    value = lower.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def classify_status(
    status: int, message: str, headers: Mapping[str, str] | None, key_env: str | None = None
) -> Failure:
    """Classify an HTTP error status: 429, 408 and 5xx are retried, other 4xx are not."""
    if status == 429:
        return Failure("rate_limit", True, status, parse_retry_after(headers), message)
    if status == 408:
        return Failure("timeout", True, status, parse_retry_after(headers), message)
    if status >= 500:
        return Failure("server", True, status, parse_retry_after(headers), message)
    remedy = None
    if status in (401, 403):
        remedy = f"check the API key{f' ({key_env})' if key_env else ''} and its permissions"
    elif status == 404:
        remedy = "check the model name and the base URL (it usually ends in /v1)"
    elif status in (400, 422):
        remedy = "the server rejected the request; check the model supports this request"
    return Failure("client", False, status, None, message, remedy)
