"""The self-reinforcement probe: repeat a sentence K times, one teacher-forced forward pass.

See ``repcheck.metrics`` for the definitions. This module tokenizes, builds each repeated
input (prefix + sentence x K), asks the backend to score the copies, and packs the numbers
into typed results. With decoding settings, the backend's full distributions go through each
setting's logits processors first (one forward pass serves every setting).

Anything that changes the model while it is probed (ablating heads, ``repcheck.explain``) is
a context the caller wraps around the probe; the probe only records what it is told in
``settings``.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from .backends.base import Backend, ContextWindow, Scored, ScoreRequest, check_scored
from .errors import RepcheckError, require_int
from .metrics import repeated_input
from .progress import ProgressCallback
from .results import ProbeResult, SentenceResult, check_convention
from .sentences import EncodedSentence, encode_sentences
from .sentences import prefix_ids as make_prefix_ids

if TYPE_CHECKING:  # pragma: no cover
    from .decoding import DecodingSetting


def processed_next_token_probs(logits, input_ids, start: int, count: int, processors) -> Scored:
    """Like ``metrics.next_token_probs``, but through a decoding setting's logits processors.

    logits [T, V], input_ids [T] of one unpadded sequence. For each scored position t, the
    processors see the real context ``input_ids[:t]`` (so penalties count what came before)
    and the logits that predict token t; the result is renormalized with a softmax.
    """
    import torch

    from .backends.hf_utils import scored

    logps, maxes, args = [], [], []
    for t in range(start, start + count):
        scores = processors(input_ids[None, :t], logits[None, t - 1].float().clone())[0]  # [V]
        logprobs = scores.log_softmax(-1)
        top, arg = logprobs.max(-1)
        logps.append(logprobs[input_ids[t]])
        maxes.append(top)
        args.append(arg)
    return scored(torch.stack(logps), torch.stack(maxes), torch.stack(args))


def check_fits(
    n_prefix: int, lengths: Sequence[int], repeats: int, window: ContextWindow, prefix_given: bool = False
) -> list[str]:
    """Fail before any forward pass if prefix + K * L does not fit what the model attends to.
    ``prefix_given``: the user gave a --prefix (else the prefix is the BOS token alone, and a
    sentence too long for the window is the sentence's fault, not the prefix's).

    A model whose every layer has a sliding window (Mistral) attends only to its last W
    tokens: copies that fall out of it are not in the context the model sees, so that is
    refused too. Where only some layers slide (Gemma 2/3), the others still see every copy:
    returns a warning instead.
    """
    require_int("repeats", repeats, 1)
    longest = max(lengths)
    need = n_prefix + repeats * longest
    for limit, what in ((window.max_tokens, "context window"), (window.attended, "sliding attention window")):
        if limit is None or need <= limit:
            continue
        where = f"the model's {what} of {limit}" + (
            "" if what == "context window" else " (every layer sees only that far back)"
        )
        k_max = (limit - n_prefix) // longest
        if k_max < 1 and prefix_given:
            raise RepcheckError(
                f"a {n_prefix}-token prefix plus one copy of the {longest}-token sentence need "
                f"{n_prefix + longest} tokens, more than {where}; shorten the prefix or the sentence",
                param="prefix",
            )
        if k_max < 1:
            raise RepcheckError(
                f"one copy of a {longest}-token sentence (after the {n_prefix}-token start) needs "
                f"{n_prefix + longest} tokens, more than {where}; shorten the sentence"
            )
        raise RepcheckError(
            f"{repeats} copies of a {longest}-token sentence plus a {n_prefix}-token prefix need "
            f"{need} tokens, more than {where}; the largest K that fits is {k_max}",
            param="repeats",
        )
    if window.sliding is not None and not window.all_sliding and need > window.sliding:
        return [
            f"{window.sliding_layers} of the model's {window.layers} layers attend only to the last "
            f"{window.sliding} tokens; the input has {need}, so in those layers the earliest copies are out of "
            f"sight and only the other layers see all of them"
        ]
    return []


#: the user turn before the assistant's answer that holds the copies (``probe(chat=...)``)
CHAT_USER = "Tell me something."
#: the questions of the turn-level probe, one per turn: a chatbot that gives the same answer to
#: each of them repeats itself across turns
TURN_QUESTIONS = (
    "What is your favourite season?", "Can you recommend a book?", "How do I make tea?", "What time is it in Tokyo?",
    "Why is the sky blue?", "What should I cook tonight?", "How far is the moon?", "Can you tell me a joke?",
    "What is the capital of Canada?", "How do plants grow?", "Which language should I learn?",
    "What is a good name for a cat?", "How do I fix a flat tyre?", "What is your opinion on jazz?",
    "How many legs does a spider have?", "What is the best way to save money?", "Why do we dream?",
    "Where should I travel next summer?", "How does a rainbow form?", "What is the tallest mountain?",
    "Can you help me write a poem?", "What is photosynthesis?", "How do I stay focused?", "What is a black hole?",
    "Which sport is the most popular?", "How do airplanes fly?", "What should I name my startup?",
    "How long do elephants live?", "What is the meaning of life?", "How do I learn to swim?",
    "What is the speed of light?", "Why do cats purr?",
)  # fmt: skip


def encode_inputs(
    model: Backend,
    sentences: str | Sequence[str] | Sequence[EncodedSentence],
    prefix: str | None,
    chat: str | None = None,
) -> tuple[list[EncodedSentence], list[int]]:
    """Tokenize the sentences (pre-encoded ones pass through) and the prefix: the BOS token
    and ``prefix``, or with ``chat`` the conversation of that one user turn through the chat
    template, up to the opened assistant turn (where the copies go)."""
    if isinstance(sentences, str):
        sentences = [sentences]
    if not sentences:
        raise RepcheckError("no sentence to probe")
    tok = model.tokenizer
    texts = [s for s in sentences if not isinstance(s, EncodedSentence)]
    fresh = iter(encode_sentences(tok, texts))
    encoded = [s if isinstance(s, EncodedSentence) else next(fresh) for s in sentences]
    if chat is not None:
        from .prompts import Prompt, render, require_chat_template

        if prefix:
            raise RepcheckError("a chat probe's copies follow its user turn: give --chat-user or --prefix, not both")
        if not chat.strip():
            raise RepcheckError("the chat probe's user turn is empty", param="chat_user")
        require_chat_template(tok, model.name, "the chat probe")
        return encoded, render(tok, Prompt(messages=({"role": "user", "content": chat},)))
    ids = make_prefix_ids(tok, prefix)
    if not ids:
        raise RepcheckError(
            "the tokenizer has no BOS or EOS token; give a prefix so the first "
            "token of the first copy has a context to be predicted from",
            param="prefix",
        )
    return encoded, ids


def probe(
    model: Backend,
    sentences: str | Sequence[str] | Sequence[EncodedSentence],
    *,
    repeats: int = 10,
    prefix: str | None = None,
    batch_size: int = 8,
    progress: ProgressCallback | None = None,
    settings: dict | None = None,
    decoding: DecodingSetting | None = None,
    convention: str = "repcheck",
    chat: str | None = None,
) -> ProbeResult:
    """Probe ``model`` with each sentence repeated ``repeats`` times.

    ``chat``: a user turn; the copies then form the assistant's answer to it, rendered through
    the chat template (the probe as a chat model meets it; ``probe_turns`` puts them in
    separate turns instead).

    ``sentences``: one string, several strings, or pre-tokenized ``EncodedSentence`` (for
    random-token sentences). ``prefix`` text goes after the BOS token and before the copies.
    ``progress(description, done, total)`` is called after every batch. With ``decoding``,
    each position's distribution first goes through that setting's logits processors
    (penalties, bans, temperature, truncation) and is renormalized: the probe as the
    decoder would see it (see ``probe_under_settings``). ``convention="ditto"`` windows and
    averages the per-copy table as DITTO's code does (``metrics.ditto_per_copy``).
    ``settings``: anything more the result should record (e.g. the heads an enclosing
    ``repcheck.explain.ablation`` zeroes).
    """
    if decoding is not None:
        return probe_under_settings(
            model,
            sentences,
            [decoding],
            repeats=repeats,
            prefix=prefix,
            batch_size=batch_size,
            progress=progress,
            settings=settings,
            convention=convention,
        )[decoding.name]
    require_int("batch_size", batch_size, 1)
    check_convention(convention, repeats)
    encoded, prefix_ids = encode_inputs(model, sentences, prefix, chat)
    warnings = check_fits(
        len(prefix_ids), [len(e.token_ids) for e in encoded], repeats, model.window, prefix_given=bool(prefix or chat)
    )
    if chat is not None:
        settings = {**(settings or {}), "layout": "chat", "chat_user": chat}
    seqs = [repeated_input(prefix_ids, list(e.token_ids), repeats) for e in encoded]
    relabel = (lambda _d, done, total: progress("probing", done, total)) if progress else None
    if progress:
        progress("probing", 0, len(seqs))
    started = time.perf_counter()
    scores = model.score(ScoreRequest(seqs, [len(prefix_ids)] * len(seqs), batch_size), relabel)
    elapsed = time.perf_counter() - started
    return _result(
        model,
        encoded,
        prefix,
        prefix_ids,
        repeats,
        scores,
        settings={"batch_size": batch_size, **(settings or {})},
        elapsed=elapsed,
        n_tokens=sum(len(s) for s in seqs),
        warnings=warnings,
        convention=convention,
    )


def probe_turns(
    model: Backend,
    sentences: str | Sequence[str],
    *,
    repeats: int = 10,
    questions: Sequence[str] = TURN_QUESTIONS,
    batch_size: int = 8,
    progress: ProgressCallback | None = None,
) -> ProbeResult:
    """The turn-level probe: a conversation of ``repeats`` turns, each a different question
    (``questions``) answered with the same sentence; copy n is the answer of turn n + 1, so
    TP(n) is the probability of giving the same answer again, to a new question, after n
    times (the chatbot that gives one reply to everything). One forward pass per sentence.
    """
    from .backends.base import Scored
    from .prompts import require_chat_template

    if isinstance(sentences, str):
        sentences = [sentences]
    require_int("repeats", repeats, 1)
    require_int("batch_size", batch_size, 1)
    if repeats > len(questions):
        raise RepcheckError(f"the turn-level probe has {len(questions)} questions: at most {len(questions)} turns",
                            param="repeats")  # fmt: skip
    tok = model.tokenizer
    require_chat_template(tok, model.name, "the turn-level probe")
    encoded, seqs, spans = [], [], []
    for e in encode_sentences(tok, sentences):
        messages: list[dict[str, str]] = []
        for n in range(repeats):
            messages += [{"role": "user", "content": questions[n]}, {"role": "assistant", "content": e.text}]
        text = tok.apply_chat_template(messages, tokenize=False)
        enc = tok(text, add_special_tokens=False, return_offsets_mapping=True)
        ids, offsets = enc["input_ids"], enc["offset_mapping"]
        starts, answer, cursor = [], None, 0
        for n in range(repeats):
            cursor = text.index(questions[n], cursor) + len(questions[n])
            c0 = text.index(e.text, cursor)
            c1 = cursor = c0 + len(e.text)
            first = next((i for i, (a, b) in enumerate(offsets) if a == c0 and b > a), None)
            last = next((i for i, (a, b) in enumerate(offsets) if b == c1 and b > a), None)
            span = tuple(ids[first : last + 1]) if first is not None and last is not None and last >= first else None
            if span is None or (answer is not None and span != answer):
                raise RepcheckError(
                    f"the chat template tokenizes the answer {e.text[:40]!r} differently in turn {n + 1}: the turns "
                    "cannot be compared token by token"
                )
            answer = span
            starts.append(first)
        if model.context_length is not None and len(ids) > model.context_length:
            raise RepcheckError(
                f"{repeats} turns of {e.text[:30]!r} need {len(ids)} tokens, more than the model's context window of "
                f"{model.context_length}",
                param="repeats",
            )
        encoded.append(EncodedSentence(e.text, answer))
        seqs.append(ids)
        spans.append(starts)
    firsts = [seq[: st[0]] for seq, st in zip(seqs, spans)]
    if progress:
        progress("probing turns", 0, len(seqs))
    started = time.perf_counter()
    scored = model.score(ScoreRequest(seqs, [s[0] for s in spans], batch_size))
    elapsed = time.perf_counter() - started
    picked = []
    for e, s, starts in zip(encoded, scored, spans, strict=True):
        at = [st - starts[0] + l for st in starts for l in range(len(e.token_ids))]
        picked.append(Scored(s.p[at], s.pmax[at], s.argmax[at], s.logp[at]))
    return _result(
        model,
        encoded,
        None,
        firsts[0],
        repeats,
        picked,
        settings={"batch_size": batch_size, "layout": "turns", "questions": list(questions[:repeats])},
        elapsed=elapsed,
        n_tokens=sum(len(s) for s in seqs),
        warnings=[],
    )


def probe_under_settings(
    model: Backend,
    sentences: str | Sequence[str] | Sequence[EncodedSentence],
    decodings: Sequence[DecodingSetting],
    *,
    repeats: int = 10,
    prefix: str | None = None,
    batch_size: int = 8,
    progress: ProgressCallback | None = None,
    settings: dict | None = None,
    convention: str = "repcheck",
) -> dict[str, ProbeResult]:
    """The probe once per decoding setting, from ONE forward pass per batch of sentences:
    each setting's processors are applied to the same logits. Presence and frequency
    penalties treat everything after the prefix as generated text."""
    if not model.capabilities.full_distributions:
        raise RepcheckError(
            f"the {model.kind} backend returns no full next-token distributions, so it cannot probe "
            f"under decoding settings; use the hf or llamacpp backend"
        )
    require_int("batch_size", batch_size, 1)
    check_convention(convention, repeats)
    encoded, prefix_ids = encode_inputs(model, sentences, prefix)
    warnings = check_fits(
        len(prefix_ids), [len(e.token_ids) for e in encoded], repeats, model.window, prefix_given=bool(prefix)
    )
    seqs = [repeated_input(prefix_ids, list(e.token_ids), repeats) for e in encoded]
    P = len(prefix_ids)
    processors = {d.name: d.logits_processors(model.tokenizer, prompt_length=P) for d in decodings}
    scores: dict[str, list[Scored | None]] = {d.name: [None] * len(seqs) for d in decodings}
    started, done = time.perf_counter(), 0
    if progress:
        progress("probing under decoding settings", 0, len(seqs))
    for batch in model.logits(seqs, batch_size=batch_size):
        for row in batch:
            for name, procs in processors.items():
                scored = processed_next_token_probs(row.logits, row.input_ids, P, len(seqs[row.index]) - P, procs)
                scores[name][row.index] = check_scored(scored, f"setting {name!r}")
        done += len(batch)
        if progress:
            progress("probing under decoding settings", done, len(seqs))
    elapsed = time.perf_counter() - started
    return {
        d.name: _result(
            model,
            encoded,
            prefix,
            prefix_ids,
            repeats,
            scores[d.name],
            settings={"batch_size": batch_size, **(settings or {}), "decoding": d.to_dict()},
            elapsed=elapsed,
            n_tokens=sum(len(s) for s in seqs),
            warnings=warnings,
            convention=convention,
        )
        for d in decodings
    }


def _result(
    model: Backend,
    encoded: list[EncodedSentence],
    prefix: str | None,
    prefix_ids: list[int],
    repeats: int,
    scores: Sequence[Scored],
    *,
    settings: dict,
    elapsed: float,
    n_tokens: int,
    warnings: list[str],
    convention: str = "repcheck",
) -> ProbeResult:
    decode = _TokenDecoder(model.tokenizer)
    sentences = []
    for e, s in zip(encoded, scores):
        L = len(e.token_ids)
        arg = np.asarray(s.argmax).reshape(repeats, L)
        sentences.append(
            SentenceResult(
                text=e.text,
                token_ids=list(e.token_ids),
                tokens=[decode(t) for t in e.token_ids],
                p=np.asarray(s.p).reshape(repeats, L),
                pmax=np.asarray(s.pmax).reshape(repeats, L),
                argmax_ids=arg,
                argmax_tokens=[[decode(int(t)) for t in row] for row in arg],
            )
        )
    return ProbeResult(
        model=model.info(),
        dtype=model.dtype,
        device=model.device,
        repeats=repeats,
        prefix=prefix,
        prefix_ids=prefix_ids,
        sentences=sentences,
        settings=settings,
        provenance={
            "elapsed_s": round(elapsed, 4),
            "tokens": n_tokens,
            "tokens_per_s": round(n_tokens / elapsed, 1) if elapsed > 0 else None,
            "threads": _torch_threads(),
        },
        versions=model.versions(),
        warnings=warnings,
        convention=convention,
    )


def _torch_threads() -> int | None:
    """torch's intra-op threads, where torch is in use (a server backend may not load it)."""
    import sys

    torch = sys.modules.get("torch")
    return torch.get_num_threads() if torch is not None else None


#: how an argmax token shows when the backend could not say which token it was
UNKNOWN_TOKEN = "<?>"


class _TokenDecoder:
    """Decode single token ids, memoized (argmax tokens repeat a lot). An id of -1 (a server
    that names tokens by a text several tokens share) decodes to UNKNOWN_TOKEN."""

    def __init__(self, tokenizer):
        self.tokenizer, self.cache = tokenizer, {-1: UNKNOWN_TOKEN}

    def __call__(self, token_id: int) -> str:
        if token_id not in self.cache:
            self.cache[token_id] = self.tokenizer.decode([token_id])
        return self.cache[token_id]
