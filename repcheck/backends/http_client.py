"""Talking to a model server: the URL, requests with timeouts and retries, many requests in
flight that all stop at the first permanent failure or Ctrl-C, and answers read field by field.

* ``ServerURL``: ``--base-url`` parsed once. A query string (Azure's ``?api-version=``) is kept
  and sent with every request after its path; credentials in the URL (``user:pass@``) are
  sent as Basic auth, never printed (``public`` is what messages and reports show), and
  refused together with an API key (two credentials: which one is meant?).
* ``HTTPClient``: retries connection errors, 429 and 5xx with backoff; a timeout is not
  retried (a server that did not answer in ``timeout`` seconds will not answer faster).
  Once any request has failed for good, every other request stops at its next step (no
  queue of doomed retries): the first failure is the one reported.
* ``run_all``: ``concurrency`` requests in flight; on a failure or Ctrl-C the requests not yet
  sent are cancelled and those in flight are abandoned, so the error (or exit 130) comes at
  once.
* ``Answer``: a response's JSON read by path; a missing or wrong field is one line naming the
  server and the field (exit 2), never a Python error (exit 1).
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

from ..errors import RepcheckError
from ..progress import ProgressCallback

API_KEY_VARIABLES = ("REPCHECK_API_KEY", "OPENAI_API_KEY")


@dataclass(frozen=True)
class ServerURL:
    """A server's base URL, parsed and checked once."""

    scheme: str
    host: str
    port: int | None
    path: str  # without a trailing slash
    query: str  # kept: sent after every request's path
    username: str | None = field(default=None, repr=False)
    password: str | None = field(default=None, repr=False)

    @classmethod
    def parse(cls, url: str, where: str = "base_url") -> ServerURL:
        """``where``: the option that gave the URL (``base_url``, ``upstream``), for messages."""
        if not isinstance(url, str) or not url.strip():
            raise RepcheckError("the server URL is empty; give http://HOST:PORT/v1", param=where)
        try:
            parts = urlsplit(url.strip())
            port = parts.port  # raises ValueError for a port out of range or not a number
            host = parts.hostname
        except ValueError as err:
            raise RepcheckError(f"the server URL is not a valid URL ({err})", param=where) from None
        if parts.scheme not in ("http", "https"):
            raise RepcheckError("the server URL must start with http:// or https://", param=where)
        if not host:
            raise RepcheckError("the server URL names no host", param=where)
        if parts.fragment:
            raise RepcheckError("the server URL has a #fragment; remove it", param=where)
        return cls(parts.scheme, host, port, parts.path.rstrip("/"), parts.query, parts.username, parts.password)

    @property
    def public(self) -> str:
        """The URL without credentials or query: what messages and reports show."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return urlunsplit((self.scheme, host + (f":{self.port}" if self.port else ""), self.path, "", ""))

    def url(self, path: str) -> str:
        """The full URL of an endpoint (``/completions``), the query kept after the path."""
        return self.public + path + (f"?{self.query}" if self.query else "")

    def root(self, path: str) -> str:
        """An endpoint beside ``/v1`` (``/version``, ``/generate``), the query kept."""
        return self.public_root(path) + (f"?{self.query}" if self.query else "")

    def public_root(self, path: str) -> str:
        """An endpoint beside ``/v1`` as messages show it (no credentials, no query)."""
        base = self.path[: -len("/v1")] if self.path.endswith("/v1") else self.path
        host = f"[{self.host}]" if ":" in self.host else self.host
        netloc = host + (f":{self.port}" if self.port else "")
        return urlunsplit((self.scheme, netloc, base + path, "", ""))


def public_url(url: str) -> str:
    """``url`` without credentials or query (for a URL that may not parse: its scheme and host
    as far as they can be read, never the userinfo)."""
    try:
        return ServerURL.parse(url).public
    except RepcheckError:
        return "the server"


def api_key() -> str | None:
    """The API key from the environment only ($REPCHECK_API_KEY, else $OPENAI_API_KEY)."""
    import os

    for var in API_KEY_VARIABLES:
        if os.environ.get(var):
            return os.environ[var]
    return None


class Cancelled(Exception):
    """Another request failed for good, or the user interrupted: this one stops."""


@dataclass
class HTTPClient:
    """Requests to one server with a timeout, retries and a shared stop."""

    server: ServerURL
    timeout: float = 60.0
    retries: int = 3
    backoff: float = 0.5
    api_key: str | None = field(default=None, repr=False)
    stop: threading.Event = field(default_factory=threading.Event, repr=False)
    _http: Any = field(default=None, repr=False)

    def __post_init__(self):
        try:
            import httpx
        except ImportError:
            raise RepcheckError(
                "the served backends need httpx: pip install 'repcheck[openai]'", param="backend"
            ) from None
        if self.api_key and self.server.username is not None:
            raise RepcheckError(
                "--base-url carries credentials (user:password@) and an API key is set in the environment: give "
                "one of them",
                param="base_url",
            )
        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        auth = None
        if self.server.username is not None:
            auth = httpx.BasicAuth(self.server.username, self.server.password or "")
        self._http = httpx.Client(timeout=self.timeout, headers=headers, auth=auth)

    def post(self, path: str, body: dict[str, Any]) -> Answer:
        return self.request("POST", self.server.url(path), body, self.server.public + path)

    def get(self, path: str) -> Answer:
        return self.request("GET", self.server.url(path), None, self.server.public + path)

    def post_root(self, path: str, body: dict[str, Any], array: bool = False) -> Answer:
        """POST to an endpoint beside ``/v1`` (``/extras/tokenize``, ``/generate``); ``array``:
        the answer is a JSON array (TGI's ``/tokenize``), not an object."""
        return self.request("POST", self.server.root(path), body, self.server.public_root(path), array)

    def get_root(self, path: str) -> Answer:
        return self.request("GET", self.server.root(path), None, self.server.public_root(path))

    def peek_root(self, path: str) -> dict[str, Any] | None:
        """An optional endpoint beside ``/v1`` (``/version``): its JSON object, or None where the
        server has none; one try, and a failure here stops nothing."""
        try:
            response = self._http.get(self.server.root(path), timeout=min(self.timeout, 10.0))
            doc = response.json() if response.status_code == 200 else None
        except Exception:  # noqa: BLE001 - a missing optional endpoint is not an error
            return None
        return doc if isinstance(doc, dict) else None

    def _send(self, where: str, send: Callable[[], Any]):
        """``send()`` (an httpx response) retried on connection errors, 429 and 5xx, with
        backoff; a 2xx response is returned, anything else is one ``RepcheckError`` that stops
        every other request of this client. ``where``: the endpoint as messages name it."""
        import httpx

        last = ""
        try:
            for attempt in range(self.retries + 1):
                if attempt and self.stop.wait(self.backoff * 2 ** (attempt - 1)):
                    raise Cancelled()
                if self.stop.is_set():
                    raise Cancelled()
                try:
                    response = send()
                except httpx.TimeoutException:
                    raise RepcheckError(
                        f"{where}: no answer within {self.timeout:g} s (raise --timeout for a slow server)"
                    ) from None
                except httpx.HTTPError as err:
                    if self.stop.is_set():
                        raise Cancelled() from None
                    last = f"cannot connect ({type(err).__name__})"
                    continue
                status = response.status_code
                if status < 400:
                    return response
                response.read()
                response.close()
                if status == 429 or status >= 500:
                    last = f"server error {status} {_server_message(response)}".rstrip()
                    continue
                raise RepcheckError(f"{where} refused the request: {status} {_server_message(response)}".rstrip())
            raise RepcheckError(f"{where}: {last} after {self.retries + 1} attempts; is the server up?")
        except RepcheckError:
            self.stop.set()
            raise

    def request(self, method: str, url: str, body: dict[str, Any] | None, where: str, array: bool = False) -> Answer:
        """One request (``_send``); the answer must be a JSON object (``array``: an array)."""
        response = self._send(where, lambda: self._http.request(method, url, json=body))
        try:
            doc = response.json()
        except ValueError:
            self.stop.set()
            raise RepcheckError(f"{where} did not return JSON: {response.text[:80]!r}") from None
        if not isinstance(doc, list if array else dict):
            self.stop.set()
            wanted = "a JSON array" if array else "a JSON object"
            raise RepcheckError(f"{where} returned {type(doc).__name__}, not {wanted}")
        return Answer(doc, where)

    def stream(self, path: str, body: dict[str, Any]):
        """POST with ``stream: true`` and yield each server-sent event's JSON as an ``Answer``;
        closing the generator closes the connection (a server then stops generating). Retried
        as ``request`` is until the stream opens, not after."""
        import httpx

        where = self.server.public + path
        build = self._http.build_request("POST", self.server.url(path), json={**body, "stream": True})
        response = self._send(where, lambda: self._http.send(build, stream=True))
        try:
            for line in response.iter_lines():
                try:
                    doc = sse_data(line)
                except ValueError:
                    raise RepcheckError(f"{where} streamed an event that is not JSON: {line[:60]!r}") from None
                if doc is DONE:
                    return
                if doc is not None:
                    yield Answer(doc, where)
        except httpx.TimeoutException:
            raise RepcheckError(
                f"{where}: no answer within {self.timeout:g} s (raise --timeout for a slow server)"
            ) from None
        except RepcheckError:
            self.stop.set()
            raise
        finally:
            response.close()

    def abandon(self) -> None:
        """Stop every request of this client now: those in flight fail at once (their
        connections are closed) and none is retried. The client is unusable afterwards
        (``fresh`` makes another)."""
        self.stop.set()
        self._http.close()

    def fresh(self) -> HTTPClient:
        """A new client with the same settings (after ``abandon``)."""
        return HTTPClient(self.server, self.timeout, self.retries, self.backoff, self.api_key)

    def close(self) -> None:
        self.abandon()


#: what ``sse_data`` returns for the stream's last event
DONE = object()


def sse_data(line: str) -> Any:
    """One line of a server-sent event stream: its JSON (``data: {...}``), ``DONE`` for
    ``data: [DONE]``, or None for anything else (comments, blank lines, other fields).
    Raises ValueError for a data line that is not JSON."""
    import json

    if not line.startswith("data:"):
        return None
    payload = line[5:].strip()
    return DONE if payload == "[DONE]" else json.loads(payload)


def _server_message(response) -> str:
    try:
        doc = response.json()
        err = doc.get("error", doc) if isinstance(doc, dict) else doc
        msg = err.get("message", "") if isinstance(err, dict) else str(err)
    except ValueError:
        msg = response.text
    return " ".join(str(msg).split())[:200]


@dataclass
class Answer:
    """A server's JSON answer, read field by field with one-line errors naming the field."""

    doc: Any
    where: str  # the endpoint, for messages

    def get(self, path: str, kind: type | tuple[type, ...] | None = None, optional: bool = False) -> Any:
        """The value at a dotted path (``choices.0.logprobs``), checked to be of ``kind``."""
        value = self.doc
        walked = []
        for key in path.split("."):
            walked.append(key)
            if isinstance(value, list) and key.isdigit() and int(key) < len(value):
                value = value[int(key)]
            elif isinstance(value, dict) and key in value:
                value = value[key]
            else:
                if optional:
                    return None
                raise self.error(".".join(walked), "is missing")
        if value is None and optional:
            return None
        if kind is not None and (not isinstance(value, kind) or isinstance(value, bool) and bool not in _kinds(kind)):
            raise self.error(path, f"is {_shown(value)}, not {_kind_name(kind)}")
        return value

    def number(self, path: str) -> float:
        value = self.get(path, (int, float))
        if not math.isfinite(value):
            raise self.error(path, f"is {value!r}, not a finite number")
        return float(value)

    def error(self, path: str, problem: str) -> RepcheckError:
        return RepcheckError(f"{self.where} answered with a malformed field {path}: it {problem}")


def _kinds(kind) -> tuple:
    return kind if isinstance(kind, tuple) else (kind,)


def _kind_name(kind) -> str:
    names = {
        list: "a list",
        dict: "an object",
        str: "a string",
        int: "an integer",
        float: "a number",
        bool: "true/false",
    }
    return " or ".join(dict.fromkeys(names.get(k, k.__name__) for k in _kinds(kind)))


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def run_all(
    fn: Callable[[Any], Any],
    items: Sequence[Any],
    *,
    concurrency: int,
    client: HTTPClient,
    progress: ProgressCallback | None = None,
    label: str = "",
) -> list[Any]:
    """``fn(item)`` for every item, at most ``concurrency`` at a time, results in order.

    The workers are daemon threads: the first failure (or Ctrl-C in the calling thread) stops
    them taking new items and abandons the requests in flight, and neither a request blocked
    on a hung server nor a queue of retries can hold the error, or the exit, back."""
    import queue

    out: list[Any] = [None] * len(items)
    events: queue.Queue = queue.Queue()
    cursor = iter(range(len(items)))
    lock = threading.Lock()

    def worker() -> None:
        while not client.stop.is_set():
            with lock:
                i = next(cursor, None)
            if i is None:
                return
            try:
                out[i] = fn(items[i])
            except BaseException as err:  # noqa: BLE001 - handed to the calling thread
                events.put(err)
                return
            events.put(None)

    workers = [threading.Thread(target=worker, daemon=True, name="repcheck-request") for _ in items[:concurrency]]
    for w in workers:
        w.start()
    done = 0
    try:
        while done < len(items):
            try:
                event = events.get(timeout=0.2)
            except queue.Empty:
                if not any(w.is_alive() for w in workers) and events.empty():
                    raise RepcheckError(f"{client.server.public}: the requests were cancelled") from None
                continue
            if isinstance(event, BaseException):
                if isinstance(event, Cancelled):  # another request failed first: its error comes next
                    continue
                raise event
            done += 1
            if progress:
                progress(label, done, len(items))
        return out
    except BaseException:
        client.abandon()  # requests in flight fail at once, none is retried, no new one starts
        raise


def quote_path(segment: str) -> str:
    return quote(segment, safe="")
