"""An OpenAI-compatible server as a backend (``--backend openai``): vLLM, llama.cpp's server
(llama-cpp-python's ``python -m llama_cpp.server`` or llama.cpp's ``llama-server``), SGLang's
OpenAI layer, or any other server speaking ``/v1/completions`` and ``/v1/chat/completions``.

What a server can do is read from it, not assumed: its ``/v1/models`` answer says who it is
(``owned_by``), and each kind speaks its own dialect (``DIALECTS``):

* **vLLM**: token-id prompts, ``prompt_logprobs`` for the probe, generated token ids
  (``return_tokens_as_token_ids``), every sampling key repcheck has, ``stop_token_ids``.
* **llama.cpp**: text prompts (its server takes no token ids; the text is the decoded ids and
  the server's tokenization is checked against the local one), the probe from ``echo`` with
  ``logprobs`` (the server must run with ``logits_all``), llama.cpp's key names
  (``repeat_penalty``), one request per sample (it ignores ``n``).
* **any other**: token-id prompts, the standard OpenAI keys only.

Every request carries every sampling key the dialect has, neutral where the setting does not
set it: servers fill what a request leaves out from the checkpoint's generation_config (vLLM
does, and instruct checkpoints ship sampling defaults and repetition penalties), which would
make "greedy" anything but greedy. The values sent are in the report (``sent``). A stop token
a server returns is removed, as every backend removes it.

``api="chat"`` generates through ``/v1/chat/completions`` (for chat-only APIs and servers that
apply the chat template themselves): conversations go as messages; the probe still needs
``/v1/completions``.

The tokenizer is always a Hugging Face tokenizer (``tokenizer=``, else the served model's
name), checked against the server's tokenization of several test strings (CJK, leading and
repeated spaces, digits, code, accents) before anything runs. The API key comes from
``$REPCHECK_API_KEY`` or ``$OPENAI_API_KEY``, never from the command line or a report.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from ..errors import RepcheckError
from ..progress import ProgressCallback
from .base import Capabilities, GenerationRequest, RawGeneration, Scored, ScoreRequest
from .http_backend import HTTPBackend, Identity, Unsendable, model_list, served_loader, tokenizer_test_texts
from .http_client import Answer, public_url  # noqa: F401 - public_url is part of this module's API
from .served import NEUTRAL, SERVED_SETTING_KEYS, parse_prompt_logprobs

APIS = ("completions", "chat")


@dataclass(frozen=True)
class Dialect:
    """How one kind of server is asked."""

    name: str
    token_prompts: bool  # prompts may be lists of token ids
    prompt_logprobs: bool  # vLLM's prompt_logprobs (else the probe reads echo + logprobs)
    token_ids_out: bool  # generated tokens come back as ids (return_tokens_as_token_ids)
    several: bool  # n > 1 continuations per request
    keys: dict[str, str]  # repcheck decoding key -> the request's field
    neutral: dict[str, Any] = field(default_factory=dict)  # per field, where it differs from served.NEUTRAL
    extra: dict[str, Any] = field(default_factory=dict)  # sent with every generation request
    tokenize: str | None = None  # an endpoint beside /v1 that tokenizes text: {"input"} -> {"tokens"}

    def params(self, setting) -> dict[str, Any]:
        """Every sampling field of this dialect: the setting's values, neutral values for the rest."""
        out = {}
        for key, name in self.keys.items():
            value = setting.params.get(key, self.neutral.get(name, NEUTRAL[key]))
            out[name] = int(value) if key == "top_k" else float(value)
        if not setting.do_sample:
            out[self.keys["temperature"]] = 0.0
        return out


_SAME = {k: k for k in sorted(SERVED_SETTING_KEYS)}
DIALECTS = {
    "vllm": Dialect("vllm", True, True, True, True, _SAME, extra={"skip_special_tokens": False}),
    "llama.cpp": Dialect(
        "llama.cpp",
        False,
        False,
        False,
        False,
        {**_SAME, "repetition_penalty": "repeat_penalty"},
        neutral={"top_k": 0},  # llama.cpp: top_k <= 0 is the whole vocabulary
        tokenize="/extras/tokenize",
    ),
    "openai": Dialect(
        "openai",
        True,
        False,
        False,
        True,
        {k: k for k in ("temperature", "top_p", "presence_penalty", "frequency_penalty")},
    ),
}
#: /v1/models "owned_by" -> dialect: vLLM says "vllm", llama-cpp-python's server "me" (llama.cpp's
#: own llama-server, SGLang's OpenAI layer and the rest speak the standard API)
OWNERS = {"vllm": "vllm", "me": "llama.cpp"}


def _token_id(token: Any) -> int:
    """vLLM's ``return_tokens_as_token_ids`` form, ``token_id:123``."""
    if isinstance(token, str) and token.startswith("token_id:") and token[9:].isdigit():
        return int(token[9:])
    raise ValueError(f"token {token!r} is not in the token_id:N form")


def parse_prompt_scores(choice: dict[str, Any], ids: Sequence[int], start: int, where: str = "the server") -> Scored:
    """p, pmax, argmax, logp of ``ids[start:]`` from one completions choice: vLLM's
    ``prompt_logprobs`` where present, else the legacy ``echo`` + ``logprobs`` (tokens as
    ``token_id:N``)."""
    answer = Answer(choice, where)
    entries = answer.get("prompt_logprobs", list, optional=True)
    if entries is not None:
        return parse_prompt_logprobs(entries, ids, start, f"{where}: prompt_logprobs")
    n = len(ids)
    top = answer.get("logprobs.top_logprobs", list, optional=True)
    if top is None or len(top) < n:
        raise RepcheckError(
            f"{where} returned no prompt logprobs: the probe needs vLLM's prompt_logprobs, or echo with logprobs "
            "(and return_tokens_as_token_ids) on /v1/completions"
        )
    actual = answer.get("logprobs.token_logprobs", list)
    logp, lmax = np.empty(n - start), np.empty(n - start)
    arg = np.empty(n - start, dtype=np.int64)
    for i, t in enumerate(range(start, n)):
        alternatives = answer.get(f"logprobs.top_logprobs.{t}", dict)
        try:
            options = {_token_id(k): float(v) for k, v in alternatives.items()}
        except (TypeError, ValueError) as err:
            raise answer.error(
                f"logprobs.top_logprobs.{t}", f"has an entry that is not token_id:N -> number ({err})"
            ) from None
        best_id = max(options, key=options.get)
        mine = answer.number(f"logprobs.token_logprobs.{t}") if t < len(actual) else None
        if mine is None:
            raise answer.error(f"logprobs.token_logprobs.{t}", "is missing")
        logp[i], lmax[i], arg[i] = mine, max(options[best_id], mine), best_id if options[best_id] >= mine else ids[t]
    return Scored.from_logprobs(logp, lmax, arg)


@dataclass(eq=False)
class OpenAIBackend(HTTPBackend):
    """A model behind an OpenAI-compatible server (see the module docstring)."""

    dialect: Dialect = DIALECTS["openai"]
    api: str = "completions"
    pieces: dict[str, int] | None = None  # decoded token -> id, for servers that return tokens as text

    kind: ClassVar[str] = "openai"

    @property
    def capabilities(self) -> Capabilities:
        base = super().capabilities
        return Capabilities(base.full_distributions, base.generate, frozenset(self.dialect.keys))

    def sent_params(self, setting) -> dict[str, Any]:
        return self.dialect.params(setting)

    def info(self) -> dict[str, Any]:
        return {**super().info(), "api": self.api}

    # ---- prompts ----------------------------------------------------------------------------------
    def _prompt(self, ids: Sequence[int]) -> list[int] | str:
        """Token ids, or for a server that takes only text, text the server tokenizes back into
        exactly ``ids`` (checked: ``_text_for``)."""
        if self.dialect.token_prompts:
            return list(ids)
        return self.text_for(ids)

    def server_tokens(self, text: str) -> list[int] | None:
        """Through the tokenize endpoint (llama-cpp-python), or the ids vLLM echoes; a standard
        server cannot say (None)."""
        d = self.dialect
        if d.tokenize:
            answer = self.client.post_root(d.tokenize, {"model": self.served, "input": text})
            path, tokens = "tokens", answer.get("tokens", list)
            ok = all(isinstance(t, int) and not isinstance(t, bool) for t in tokens)
        elif d.token_ids_out:
            body = {"model": self.served, "prompt": text, "max_tokens": 1, "temperature": 0.0, "echo": True,
                    "logprobs": 0, "return_tokens_as_token_ids": True}  # fmt: skip
            answer = self.client.post("/completions", body)
            path, echoed = "choices.0.logprobs.tokens", answer.get("choices.0.logprobs.tokens", list)
            try:
                tokens, ok = [_token_id(t) for t in echoed][:-1], True  # the echo, then one new token
            except ValueError:
                tokens, ok = [], False
        else:
            return None
        if not ok:
            raise answer.error(path, "holds something that is not a token id")
        return tokens

    def _piece_ids(self) -> dict[str, int]:
        """Each token's text -> its id, for servers that name tokens by their text; a text that
        several tokens share maps to -1 (which of them is meant cannot be told)."""
        if self.pieces is None:
            texts = self.tokenizer.batch_decode([[i] for i in range(len(self.tokenizer))])
            self.pieces = {}
            for i, t in enumerate(texts):
                self.pieces[t] = -1 if t in self.pieces else i
        return self.pieces

    # ---- the probe -------------------------------------------------------------------------------
    def _score(self, request: ScoreRequest, progress: ProgressCallback | None) -> list[Scored | None]:
        """One request per sequence, ``concurrency`` in flight."""
        where = f"{self.client.server.public}/completions"

        def one(item):
            ids, start = list(item[0]), item[1]
            try:
                prompt = self._prompt(ids)
            except Unsendable:
                if request.logp_only:
                    return None  # this continuation goes unscored
                raise
            body = {
                "model": self.served,
                "prompt": prompt,
                "max_tokens": 1,
                "temperature": 0.0,
                "echo": True,
                "logprobs": 1,
            }
            if self.dialect.prompt_logprobs:
                body.update(prompt_logprobs=1, return_tokens_as_token_ids=True)
            answer = self.client.post("/completions", body)
            choice = answer.get("choices.0", dict)
            if self.dialect.token_prompts:
                return parse_prompt_scores(choice, ids, start, where)
            return self._scores_from_pieces(Answer(choice, where), ids, start)

        return self.run_all(one, list(zip(request.sequences, request.starts, strict=True)), progress, "scoring")

    def _scores_from_pieces(self, answer: Answer, ids: list[int], start: int) -> Scored:
        """The probe from echoed logprobs whose tokens are text (llama-cpp-python's server).

        Its echo leaves out a leading BOS token and gives no logprob for the first token it
        shows; its logprobs are right only when the prompt starts with the BOS token (without
        one, each is read one row late), so such prompts are refused. The first shown token's
        numbers come from a second request: the whole next-token distribution after the BOS
        token (``_after_first``)."""
        tokens = answer.get("logprobs.tokens", list)
        dropped = len(ids) + 1 - len(tokens)  # the echo plus one generated token
        if dropped != 1:
            raise RepcheckError(
                f"{answer.where} echoed {len(tokens) - 1} of the {len(ids)} prompt tokens: llama-cpp-python's "
                "server reads prompt logprobs one position late unless the prompt starts with the model's BOS "
                "token, which this model's prompts do not; probe this GGUF in-process with --backend llamacpp"
            )
        pieces = self._piece_ids()
        logp, lmax = np.empty(len(ids) - start), np.empty(len(ids) - start)
        arg = np.empty(len(ids) - start, dtype=np.int64)
        for i, t in enumerate(range(start, len(ids))):
            j = t - dropped  # the echo's index of token t
            if j == 0:
                logp[i], lmax[i], arg[i] = self._after_first(ids[0], ids[t])
                continue
            actual = answer.number(f"logprobs.token_logprobs.{j}")
            options = self._options(answer, f"logprobs.top_logprobs.{j}")
            best = max(options, key=options.get)
            top = max(options[best], actual)
            logp[i], lmax[i] = actual, top
            arg[i] = ids[t] if actual >= top else pieces.get(best, -1)
        return Scored.from_logprobs(logp, lmax, arg)

    @staticmethod
    def _options(answer: Answer, path: str) -> dict[str, float]:
        alternatives = answer.get(path, dict)
        if not alternatives:
            raise answer.error(path, "is empty")
        options = {}
        for piece, value in alternatives.items():
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:
                raise answer.error(path, f"maps {piece!r} to {value!r}, not a number")
            options[piece] = float(value)
        return options

    def _after_first(self, first: int, token: int) -> tuple[float, float, int]:
        """(log p of ``token``, log pmax, argmax) after the single token ``first``: the server's
        whole distribution there (every token's logprob, asked for once per ``first``)."""
        cache = self.__dict__.setdefault("_first_rows", {})
        if first not in cache:
            body = {"model": self.served, "prompt": self.text_for([first]), "max_tokens": 1, "temperature": 0.0,
                    "logprobs": len(self.tokenizer)}  # fmt: skip
            answer = self.client.post("/completions", body)
            cache[first] = self._options(answer, "choices.0.logprobs.top_logprobs.0")
        options = cache[first]
        pieces = self._piece_ids()
        piece = self.tokenizer.decode([token])
        if pieces.get(piece, -1) != token or piece not in options:
            raise RepcheckError(
                f"{self.described} names tokens by their text, and the text {piece!r} of token {token} is shared "
                "with another token: its probability cannot be read; probe this GGUF with --backend llamacpp"
            )
        best = max(options, key=options.get)
        return options[piece], options[best], pieces.get(best, -1)

    # ---- generation --------------------------------------------------------------------------------
    def _generate(self, request: GenerationRequest, progress: ProgressCallback | None) -> list[RawGeneration]:
        """One request per prompt (per sample where the server takes no ``n``), seeded by
        seed + prompt index (+ sample), ``concurrency`` in flight."""
        d, chat = self.dialect, self.api == "chat"
        if chat and (request.sources is None or any(not p.is_chat for p in request.sources)):
            raise RepcheckError(
                "the chat endpoint (--api chat) takes conversations: plain-text prompts go to /v1/completions "
                "(--api completions)",
                param="api",
            )
        per_request = request.per_prompt if d.several else 1
        common = {"model": self.served, **d.params(request.setting), **d.extra}
        if d.several:
            common["n"] = per_request
        if d.token_ids_out:  # the generated ids, not text to tokenize again
            common.update(logprobs=True if chat else 0, return_tokens_as_token_ids=True)
            common["stop_token_ids"] = list(self.stop_ids)
        jobs = [(i, s) for i in range(len(request.prompts)) for s in range(0, request.per_prompt, per_request)]

        def one(job):
            index, first = job
            body = {**common, "max_tokens": request.budget(index), "seed": request.seed + index + first * 100_003}
            if chat:
                body["messages"] = [dict(m) for m in request.sources[index].messages]
            else:
                body["prompt"] = self._prompt(request.prompts[index])
            path = "/chat/completions" if chat else "/completions"
            if request.stop_on_loop is not None:
                return self._streamed(path, body, index, first, per_request, chat, request.stop_on_loop)
            answer = self.client.post(path, body)
            choices = answer.get("choices", list)
            if len(choices) != per_request:
                raise answer.error("choices", f"holds {len(choices)} completions, not {per_request}")
            out = []
            for k in range(per_request):
                c = Answer(answer.get(f"choices.{k}", dict), answer.where)
                stopped = c.get("finish_reason", str, optional=True) == "stop"
                tokens = self._chat_tokens(c) if chat else self._tokens_out(c)
                out.append(
                    RawGeneration(index, first + k, self.strip_stop(tokens, stopped), "eos" if stopped else "length")
                )
            return out

        runs = self.run_all(one, jobs, progress, f"generating: {request.setting.name}")
        return [g for run in runs for g in run]

    def _streamed(self, path, body, index, first, per_request, chat, config) -> list[RawGeneration]:
        """A generation request streamed, each choice's tokens fed to a loop guard as they
        arrive (token ids where the server names them, else each streamed piece of text); the
        stream is closed, which stops the server, once every choice has ended or looped."""
        from ..guard.detector import LoopGuard, cut_at_loop

        states = [{"ids": [], "text": [], "finish": None, "guard": LoopGuard(config)} for _ in range(per_request)]
        events = self.client.stream(path, body)
        try:
            for event in events:
                for i in range(len(event.get("choices", list))):
                    c = Answer(event.get(f"choices.{i}", dict), event.where)
                    k = c.get("index", int, optional=True) or 0
                    if not 0 <= k < per_request:
                        raise c.error("index", f"is {k}, not a choice of the {per_request} asked for")
                    st = states[k]
                    if st["guard"].found is not None:
                        st["late"] = st.get("late", 0) + 1  # streamed after the loop was confirmed
                        continue
                    for token in self._stream_tokens(c, chat):
                        if isinstance(token, int):
                            st["ids"].append(token)
                        else:
                            st["text"].append(token)
                        st["guard"].feed(token if isinstance(token, int) else hash(token))
                    st["finish"] = c.get("finish_reason", str, optional=True) or st["finish"]
                if all(st["finish"] or st["guard"].found is not None for st in states):
                    break
        finally:
            events.close()  # the server stops generating what nobody reads
        out = []
        for k, st in enumerate(states):
            ids = st["ids"] if self.dialect.token_ids_out else self._retokenized("".join(st["text"]))
            stopped = st["finish"] == "stop"
            g = RawGeneration(index, first + k, self.strip_stop(list(ids), stopped), "eos" if stopped else "length")
            if st["guard"].found is not None:
                cut = cut_at_loop(g, config)
                g = cut if cut.finish == "loop" else g
                if g.finish == "loop":
                    g.extra["cut"] = st.get("late", 0)
            out.append(g)
        return out

    def _stream_tokens(self, c: Answer, chat: bool) -> list:
        """A streamed choice's new tokens: ids (vLLM) or pieces of text."""
        if self.dialect.token_ids_out:
            if chat:
                content = c.get("logprobs.content", list, optional=True) or []
                names = [c.get(f"logprobs.content.{i}.token") for i in range(len(content))]
            else:
                names = c.get("logprobs.tokens", list, optional=True) or []
            return self._ids_of(c, "logprobs", names)
        piece = c.get("delta.content", str, optional=True) if chat else c.get("text", str, optional=True)
        return [piece] if piece else []

    def _tokens_out(self, c: Answer) -> list[int]:
        """A completion's token ids: the server's ids where it gives them (vLLM), else its text
        tokenized here."""
        if self.dialect.token_ids_out:
            return self._ids_of(c, "logprobs.tokens", c.get("logprobs.tokens", list))
        return self._retokenized(c.get("text", str))

    def _chat_tokens(self, c: Answer) -> list[int]:
        """A chat completion's token ids: from its logprobs where the server gives ids, else
        its message tokenized here."""
        content = c.get("logprobs.content", list, optional=True)
        if self.dialect.token_ids_out and content is not None:
            return self._ids_of(
                c, "logprobs.content", [c.get(f"logprobs.content.{i}.token") for i in range(len(content))]
            )
        return self._retokenized(c.get("message.content", str, optional=True) or "")

    @staticmethod
    def _ids_of(c: Answer, path: str, tokens: list) -> list[int]:
        try:
            return [_token_id(t) for t in tokens]
        except ValueError:
            raise c.error(
                path, "holds tokens that are not token_id:N (the server needs return_tokens_as_token_ids)"
            ) from None

    def _retokenized(self, text: str) -> list[int]:
        return list(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def check_tokenizer(self) -> None:
        """Through the server's token ids where it gives them; a standard server, which names
        tokens only by their text, is checked on that text."""
        if self.dialect.tokenize or self.dialect.token_ids_out:
            super().check_tokenizer()
            return
        tok = self.tokenizer
        for text in tokenizer_test_texts(tok):
            mine = tok(text)["input_ids"]
            body = {"model": self.served, "prompt": text, "max_tokens": 1, "temperature": 0.0, "echo": True,
                    "logprobs": 0}  # fmt: skip
            answer = self.client.post("/completions", body)
            tokens = answer.get("choices.0.logprobs.tokens", list)
            if len(tokens) < len(mine) or "".join(map(str, tokens[: len(mine)])) != tok.decode(mine):
                # tokens named by text: as many, spelling the same text (byte pieces cannot be compared one by one)
                raise RepcheckError(
                    f"the tokenizer differs from the server's: the test string {text[:40]!r} gives other tokens "
                    "there; give the model's own tokenizer with --tokenizer",
                    param="tokenizer",
                )


def _identify(spec: str, api: str = "completions"):
    if api not in APIS:
        raise RepcheckError(f"api must be one of {', '.join(APIS)}, not {api!r}", param="api")

    def identify(client) -> Identity:
        listing = model_list(client)
        entry = listing.get(spec, {})
        dialect = DIALECTS[OWNERS.get(str(entry.get("owned_by")), "openai")]
        root = entry.get("root")
        version = (client.peek_root("/version") or {}).get("version")  # vLLM serves /version; others may not
        return Identity(
            names=list(listing),
            tokenizer_hint=root if isinstance(root, str) else None,
            max_tokens=entry.get("max_model_len"),
            versions={"server_version": version} if isinstance(version, str) and version else {},
            fields={"dialect": dialect, "api": api, "server_kind": dialect.name},
        )

    return identify


load_openai = served_loader(
    OpenAIBackend,
    "openai",
    _identify,
    """Connect to ``base_url`` (e.g. ``http://127.0.0.1:8000/v1``), serving model ``spec``; ``api``:
    completions (default) or chat, the endpoint generation uses.""",
)
