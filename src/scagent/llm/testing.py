"""A scripted LLM server for tests: speaks OpenAI's and Anthropic's wire formats on 127.0.0.1,
answers from a queue per route, and records every request.

Real SDK clients are pointed at it, so tests exercise the same HTTP code paths as a
production run, without the internet::

    from scagent.llm.testing import ScriptedLLMServer, openai_reply, error_reply

    with ScriptedLLMServer() as server:
        server.enqueue("openai", error_reply("openai", 429, headers={"Retry-After": "0.1"}))
        server.enqueue("openai", openai_reply('{"label": "T cell"}'))
        client = get_client("openai-compatible:m", base_url=server.openai_base_url)
        ...
        assert len(server.requests_for("openai")) == 2

Routes: ``openai`` is ``POST .../chat/completions``, ``anthropic`` is ``POST .../messages``.
A queued item is a :class:`Reply` or a function ``fn(RecordedRequest) -> Reply`` (for
answers that depend on the request). When a route's queue is empty the server answers
HTTP 400 "script exhausted" (not retried, so a test that under-scripts fails fast).
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = [
    "RecordedRequest",
    "Reply",
    "ScriptedLLMServer",
    "anthropic_reply",
    "error_reply",
    "json_reply",
    "openai_reply",
]

ROUTES = ("openai", "anthropic")


@dataclass
class Reply:
    """One scripted HTTP answer.

    ``body`` is sent as JSON (a dict or list) or as is (str / bytes: e.g. broken JSON);
    ``delay`` seconds pass before answering (longer than the client timeout: a timeout).
    """

    body: Any = None
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


@dataclass(frozen=True)
class RecordedRequest:
    """A request the server received."""

    route: str
    path: str
    headers: dict[str, str]
    body: Any
    received_at: float

    @property
    def messages(self) -> list[Any]:
        return list(self.body.get("messages", [])) if isinstance(self.body, dict) else []


ScriptItem = Reply | Callable[[RecordedRequest], Reply]


def openai_reply(
    content: str | None = None,
    *,
    tool_calls: Iterable[tuple[str, Any] | Mapping[str, Any]] = (),
    model: str = "scripted-model",
    prompt_tokens: int = 11,
    completion_tokens: int = 7,
    finish_reason: str | None = None,
    status: int = 200,
    headers: dict[str, str] | None = None,
    delay: float = 0.0,
) -> Reply:
    """A chat-completions answer: text ``content`` and/or ``tool_calls``.

    A tool call is ``(name, arguments)`` (arguments a dict, or a str sent verbatim, e.g.
    broken JSON) or a dict with ``id``, ``name``, ``arguments``.
    """
    calls = []
    for i, tc in enumerate(tool_calls):
        if isinstance(tc, Mapping):
            name, args, call_id = tc["name"], tc.get("arguments", {}), tc.get("id")
        else:
            (name, args), call_id = tc, None
        calls.append(
            {
                "id": call_id or f"call_{i}",
                "type": "function",
                "function": {
                    "name": name,
                    "arguments": args if isinstance(args, str) else json.dumps(args),
                },
            }
        )
    message: dict[str, Any] = {"role": "assistant", "content": content}
    if calls:
        message["tool_calls"] = calls
    body = {
        "id": "chatcmpl-scripted",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": message,
                "finish_reason": finish_reason or ("tool_calls" if calls else "stop"),
            }
        ],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    }
    return Reply(body, status, dict(headers or {}), delay)


def anthropic_reply(
    text: str | None = None,
    *,
    tool_uses: Iterable[tuple[str, Any] | Mapping[str, Any]] = (),
    model: str = "scripted-claude",
    input_tokens: int = 13,
    output_tokens: int = 5,
    stop_reason: str | None = None,
    status: int = 200,
    headers: dict[str, str] | None = None,
    delay: float = 0.0,
) -> Reply:
    """A Messages API answer: a text block and/or ``tool_use`` blocks ``(name, input)``.

    A structured answer from :class:`~scagent.llm.anthropic_backend.AnthropicClient` is a
    tool use named ``structured_answer``: ``anthropic_reply(tool_uses=[("structured_answer",
    {...})])``.
    """
    content: list[dict[str, Any]] = []
    if text is not None:
        content.append({"type": "text", "text": text})
    n_tools = 0
    for i, tu in enumerate(tool_uses):
        if isinstance(tu, Mapping):
            name, args, use_id = tu["name"], tu.get("input", {}), tu.get("id")
        else:
            (name, args), use_id = tu, None
        content.append(
            {"type": "tool_use", "id": use_id or f"toolu_{i}", "name": name, "input": args}
        )
        n_tools += 1
    body = {
        "id": "msg_scripted",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": stop_reason or ("tool_use" if n_tools else "end_turn"),
        "stop_sequence": None,
        "usage": {"input_tokens": input_tokens, "output_tokens": output_tokens},
    }
    return Reply(body, status, dict(headers or {}), delay)


def json_reply(route: str, obj: Any, **kwargs: Any) -> Reply:
    """A structured answer in the form each backend's default structured mode expects:
    JSON text for OpenAI, the ``structured_answer`` tool use for Anthropic."""
    if route == "openai":
        return openai_reply(json.dumps(obj), **kwargs)
    if route == "anthropic":
        return anthropic_reply(tool_uses=[("structured_answer", obj)], **kwargs)
    raise ValueError(f"unknown route {route!r}; expected one of {ROUTES}")


def error_reply(
    route: str,
    status: int,
    message: str = "scripted error",
    *,
    headers: dict[str, str] | None = None,
    delay: float = 0.0,
) -> Reply:
    """An HTTP error in the route's error format (``Retry-After`` goes in ``headers``)."""
    if route == "openai":
        body: dict[str, Any] = {
            "error": {"message": message, "type": "scripted_error", "code": str(status)}
        }
    elif route == "anthropic":
        body = {"type": "error", "error": {"type": "scripted_error", "message": message}}
    else:
        raise ValueError(f"unknown route {route!r}; expected one of {ROUTES}")
    return Reply(body, status, dict(headers or {}), delay)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in two writes; without this, Nagle + delayed ACK add ~40 ms.
    disable_nagle_algorithm = True
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # silence stderr
        return

    def _write(self, reply: Reply) -> None:
        if isinstance(reply.body, bytes):
            data = reply.body
        elif isinstance(reply.body, str):
            data = reply.body.encode()
        else:
            data = json.dumps(reply.body if reply.body is not None else {}).encode()
        try:
            self.send_response(reply.status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for k, v in reply.headers.items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(data)
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError, OSError):
            # The client gave up (timeout) before we answered: expected in timeout tests.
            self.close_connection = True

    def do_GET(self) -> None:
        if self.path.rstrip("/").endswith("/models"):
            # Both SDKs' model listings (used by ping) accept this page.
            model = {"id": "scripted-model", "object": "model", "type": "model"}
            self._write(
                Reply(
                    {
                        "object": "list",
                        "data": [model],
                        "has_more": False,
                        "first_id": "scripted-model",
                        "last_id": "scripted-model",
                    }
                )
            )
        else:
            self._write(Reply({"error": {"message": "not found"}}, 404))

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body: Any = json.loads(raw or b"{}")
        except json.JSONDecodeError:
            body = raw.decode(errors="replace")
        path = self.path.split("?", 1)[0].rstrip("/")
        if path.endswith("/chat/completions"):
            route = "openai"
        elif path.endswith("/messages"):
            route = "anthropic"
        else:
            self._write(Reply({"error": {"message": f"no route for {self.path}"}}, 404))
            return
        owner = self.server.owner
        request = RecordedRequest(
            route, self.path, {k.lower(): v for k, v in self.headers.items()}, body, time.time()
        )
        reply = owner._next(request)
        with owner._lock:
            owner._in_flight += 1
            owner.max_in_flight = max(owner.max_in_flight, owner._in_flight)
        try:
            if reply.delay > 0:
                owner._closing.wait(reply.delay)
            self._write(reply)
        finally:
            with owner._lock:
                owner._in_flight -= 1


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    owner: ScriptedLLMServer

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.connections: set[socket.socket] = set()
        self.connections_lock = threading.Lock()

    def process_request(self, request: Any, client_address: Any) -> None:
        with self.connections_lock:
            self.connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self.connections_lock:
            self.connections.discard(request)
        super().shutdown_request(request)

    def drop_connections(self) -> None:
        """Close kept-alive connections too, so a closed server really is unreachable."""
        with self.connections_lock:
            conns = list(self.connections)
        for conn in conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class ScriptedLLMServer:
    """A local HTTP server answering LLM requests from a script (see the module docstring).

    Attributes
    ----------
    requests
        Every request received, in order.
    max_in_flight
        The most requests that were being answered at the same time.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self._queues: dict[str, deque[ScriptItem]] = {r: deque() for r in ROUTES}
        self._lock = threading.Lock()
        self._closing = threading.Event()
        self._in_flight = 0
        self.max_in_flight = 0
        self.requests: list[RecordedRequest] = []
        self._httpd = _Server((host, port), _Handler)
        self._httpd.owner = self
        self._thread: threading.Thread | None = None

    # -- lifecycle ------------------------------------------------------------------------
    def start(self) -> ScriptedLLMServer:
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._httpd.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True
            )
            self._thread.start()
        return self

    def close(self) -> None:
        self._closing.set()  # wake handlers sleeping through a scripted delay
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread.join(timeout=5)
            self._thread = None
        self._httpd.server_close()
        self._httpd.drop_connections()

    def __enter__(self) -> ScriptedLLMServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- addresses ------------------------------------------------------------------------
    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def openai_base_url(self) -> str:
        """Base URL for the OpenAI SDK (ends in ``/v1``)."""
        return f"{self.url}/v1"

    @property
    def anthropic_base_url(self) -> str:
        """Base URL for the Anthropic SDK (it appends ``/v1/messages`` itself)."""
        return self.url

    # -- script ---------------------------------------------------------------------------
    def enqueue(self, route: str, *replies: ScriptItem) -> ScriptedLLMServer:
        """Append replies to ``route``'s queue (``openai`` or ``anthropic``)."""
        if route not in self._queues:
            raise ValueError(f"unknown route {route!r}; expected one of {ROUTES}")
        with self._lock:
            self._queues[route].extend(replies)
        return self

    def pending(self, route: str) -> int:
        """Replies still queued for ``route``."""
        with self._lock:
            return len(self._queues[route])

    def requests_for(self, route: str) -> list[RecordedRequest]:
        with self._lock:
            return [r for r in self.requests if r.route == route]

    def reset(self) -> None:
        """Forget queued replies and recorded requests."""
        with self._lock:
            for q in self._queues.values():
                q.clear()
            self.requests.clear()
            self.max_in_flight = 0

    def _next(self, request: RecordedRequest) -> Reply:
        with self._lock:
            self.requests.append(request)
            queue = self._queues[request.route]
            item = queue.popleft() if queue else None
        if item is None:
            return error_reply(request.route, 400, "script exhausted: no reply queued")
        return item(request) if callable(item) else item
