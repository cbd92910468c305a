"""What every served backend shares (``openai``, ``sglang``, ``tgi``): the connection, the
local tokenizer checked against the server's, the stop ids, requests in flight that stop at
the first failure, and the report's ``model`` block. Each server's module adds only its
request and response formats (as lm-evaluation-harness's API models share one template).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..errors import RepcheckError, require_int, require_number
from ..progress import ProgressCallback
from .base import PROBE_TEXTS, ContextWindow, model_block, require_same_tokens
from .common import BaseBackend
from .http_client import HTTPClient, ServerURL, api_key, run_all


class Unsendable(RepcheckError):
    """A text-only server cannot be given these token ids (no text tokenizes back into them)."""


@dataclass(eq=False)
class HTTPBackend(BaseBackend):
    """A model behind an HTTP server; ``tokenizer`` is the local Hugging Face tokenizer whose
    ids the server was checked to share."""

    client: HTTPClient
    served: str  # the server's model name
    tokenizer: Any
    window: ContextWindow
    stop_ids: list[int] = field(default_factory=list)
    concurrency: int = 4
    spec: str = ""
    dtype: str = "server"
    device: str = "server"
    server_versions: dict[str, str] = field(default_factory=dict)
    server_kind: str = "unknown"  # what answered: "vllm", "llama.cpp", "sglang", "tgi", "openai"

    @property
    def name(self) -> str:
        return self.served

    def info(self) -> dict[str, Any]:
        return model_block(
            self, source="server", sha256=None, cls=None, base_url=self.client.server.public, server=self.server_kind
        )

    def versions(self) -> dict[str, str]:
        return dict(self.server_versions)

    @property
    def described(self) -> str:
        return f"the server at {self.client.server.public}"

    def run_all(self, fn: Callable[[Any], Any], items: Sequence[Any], progress: ProgressCallback | None, label: str):
        """``fn`` over ``items`` with ``concurrency`` requests in flight; the first failure or
        Ctrl-C stops them all at once (and the next call starts with a fresh connection)."""
        try:
            return run_all(fn, items, concurrency=self.concurrency, client=self.client, progress=progress, label=label)
        except BaseException:
            self.client = self.client.fresh()
            raise

    # ---- tokens: ids are the currency ------------------------------------------------------------
    def server_tokens(self, text: str) -> list[int] | None:
        """The server's token ids of ``text`` (as it tokenizes a prompt), or None where it
        cannot say."""
        return None

    def text_for(self, ids: Sequence[int]) -> str:
        """Text the server tokenizes into exactly ``ids``, for a server that takes only text:
        their decoded text, without the BOS token where the server adds one itself. A sequence
        no text gives back is refused, never sent approximately."""
        ids = list(ids)
        bos = self.tokenizer.bos_token_id
        theirs: list[int] = []
        for body in [ids[1:], ids] if ids and bos is not None and ids[0] == bos else [ids]:
            text = self.tokenizer.decode(body)
            theirs = self.server_tokens(text) or []
            if theirs == ids:
                return text
        first = next((i for i, (x, y) in enumerate(zip(ids, theirs)) if x != y), min(len(ids), len(theirs)))
        raise Unsendable(
            f"{self.described} takes text, and the text of these tokens does not tokenize back into them there "
            f"(first difference at token {first} of {len(ids)}); this server cannot be given this sequence"
        )

    def check_tokenizer(self) -> None:
        """The server must tokenize the test strings as the local tokenizer does (ids are the
        currency), where it can say how it tokenizes."""
        for text in tokenizer_test_texts(self.tokenizer):
            theirs = self.server_tokens(text)
            if theirs is not None:
                require_same_tokens(self.tokenizer(text)["input_ids"], theirs, "server", text)

    def strip_stop(self, tokens: list[int], stopped: bool) -> list[int]:
        """A continuation without the stop token a server returns with it (vLLM's token ids
        and TGI's details include it): repcheck's continuations never hold it."""
        if stopped and tokens and (tokens[-1] in self.stop_ids or tokens[-1] in self.tokenizer.all_special_ids):
            return tokens[:-1]
        return tokens

    def close(self) -> None:
        self.client.close()


@dataclass(frozen=True)
class Connection:
    """What every served backend's loader checks before it talks to the server."""

    server: ServerURL
    timeout: float
    retries: int
    concurrency: int

    @classmethod
    def check(
        cls, backend: str, base_url: str | None, dtype: str, device: str, concurrency: int, timeout: float, retries: int
    ) -> Connection:
        if dtype != "float32" or device not in ("auto", "cpu"):
            raise RepcheckError(
                f"the {backend} backend runs the model where the server runs it: dtype and device are the server's",
                param="dtype" if dtype != "float32" else "device",
            )
        if not base_url:
            raise RepcheckError(f"the {backend} backend needs a server: --base-url http://HOST:PORT", param="base_url")
        server = ServerURL.parse(base_url)
        require_int("concurrency", concurrency, 1, 256)
        require_number("timeout", timeout, 0, 3600, lo_open=True)
        require_int("retries", retries, 0, 20)
        return cls(server, float(timeout), retries, concurrency)

    def client(self) -> HTTPClient:
        return HTTPClient(self.server, timeout=self.timeout, retries=self.retries, api_key=api_key())


def tokenizer_test_texts(tokenizer) -> list[str]:
    """The strings a served model's tokenizer is checked on: CJK, leading and repeated spaces,
    digits, code, accents, and the special tokens written as text."""
    texts = list(PROBE_TEXTS)
    specials = [t for t in (tokenizer.bos_token, tokenizer.eos_token) if t]
    if specials:  # special tokens written in the text are special tokens on both sides
        texts.append(f"{specials[-1]} hello{specials[0]} world")
    return texts


def stop_ids_for(tokenizer_source: str, tokenizer) -> list[int]:
    """The stop ids every backend uses (the checkpoint's generation config, else the
    tokenizer's EOS), read from the tokenizer's directory where it has a generation config."""
    from pathlib import Path

    from .hf_utils import eos_ids_of, load_generation_config
    from .spec import ResolvedSpec

    config = None
    if Path(tokenizer_source).expanduser().is_dir():
        directory = str(Path(tokenizer_source).expanduser())
        config = load_generation_config(ResolvedSpec(directory, "local", directory, directory, None))
    return eos_ids_of(config, tokenizer)


@dataclass(frozen=True)
class Identity:
    """What a server says of itself: the names it serves the model under, a tokenizer it
    names (used where it is a directory here), its context window and version(s)."""

    names: Sequence[str]
    tokenizer_hint: str | None = None
    max_tokens: Any = None
    versions: dict[str, str] = field(default_factory=dict)
    fields: dict[str, Any] = field(default_factory=dict)  # backend-specific constructor fields


def model_list(client: HTTPClient) -> dict[str, dict[str, Any]]:
    """``/v1/models``: each served model's name -> its entry, every entry checked."""
    listing = client.get("/models")
    entries = listing.get("data", list)
    for i in range(len(entries)):
        listing.get(f"data.{i}", dict)
        listing.get(f"data.{i}.id", str)
    return {e["id"]: e for e in entries}


def connect_served(
    cls: type[HTTPBackend],
    kind: str,
    spec: str,
    identify: Callable[[HTTPClient], Identity],
    *,
    base_url: str | None,
    tokenizer: str | None,
    concurrency: int,
    timeout: float,
    retries: int,
    dtype: str,
    device: str,
    progress: ProgressCallback | None,
) -> HTTPBackend:
    """What every served backend's loader does: check the options, ask the server who it is
    (``identify``), refuse a model it does not serve, load the local tokenizer and check it
    against the server's. The connection is closed on any failure."""
    from pathlib import Path

    from .hf_utils import load_tokenizer

    conn = Connection.check(kind, base_url, dtype, device, concurrency, timeout, retries)
    client = conn.client()
    try:
        if progress:
            progress("connecting", 0, 0)
        who = identify(client)
        if spec not in who.names:
            raise RepcheckError(
                f"{conn.server.public} does not serve {spec!r}; it serves: {', '.join(dict.fromkeys(who.names)) or 'nothing'}",
                param="model",
            )
        hint = who.tokenizer_hint if who.tokenizer_hint and Path(who.tokenizer_hint).is_dir() else None
        source = tokenizer or hint or spec
        tok = load_tokenizer(source, repr(source))
        max_tokens = who.max_tokens if isinstance(who.max_tokens, int) and who.max_tokens > 0 else None
        backend = cls(
            client=client,
            served=spec,
            tokenizer=tok,
            window=ContextWindow(max_tokens=max_tokens),
            stop_ids=stop_ids_for(source, tok),
            concurrency=conn.concurrency,
            spec=spec,
            server_versions=dict(who.versions),
            **{"server_kind": kind, **who.fields},
        )
        backend.check_tokenizer()
    except BaseException:
        client.close()
        raise
    return backend


def served_loader(
    cls: type[HTTPBackend], kind: str, identify_for: Callable[..., Callable[[HTTPClient], Identity]], doc: str
):
    """The loader of a served backend (what the registry names): the common options, checked
    and connected by ``connect_served``; ``identify_for(spec, **extra)`` makes the function
    that asks the server who it is (``extra``: the backend's own options, e.g. openai's api)."""

    def load(
        spec: str,
        *,
        base_url: str | None = None,
        tokenizer: str | None = None,
        concurrency: int = 4,
        timeout: float = 60.0,
        retries: int = 3,
        dtype: str = "float32",
        device: str = "auto",
        progress: ProgressCallback | None = None,
        **extra: Any,
    ) -> HTTPBackend:
        identify = identify_for(spec, **extra)
        return connect_served(
            cls, kind, spec, identify, base_url=base_url, tokenizer=tokenizer, concurrency=concurrency,
            timeout=timeout, retries=retries, dtype=dtype, device=device, progress=progress,
        )  # fmt: skip

    load.__doc__ = doc
    load.__name__ = f"load_{kind}"
    return load
