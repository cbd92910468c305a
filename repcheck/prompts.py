"""Prompts as token ids: plain text after the BOS token, or a conversation rendered with the
model's chat template.

A prompt is either text (``"Once upon a time"``: the BOS/EOS prefix the probe uses, then the
text, as compare's prompts always were) or a conversation in the OpenAI message format
(``[{"role": "user", "content": "..."}]``: rendered with the tokenizer's chat template and
``add_generation_prompt=True``, so the model continues as the assistant). Every backend then
gets the same token ids: chat formatting is the tokenizer's, not the engine's.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import RepcheckError

#: roles a conversation may use (the OpenAI message format's)
ROLES = ("system", "user", "assistant")


@dataclass(frozen=True)
class Prompt:
    """Text, or a conversation (``messages``): exactly one of the two."""

    text: str | None = None
    messages: tuple[Mapping[str, str], ...] | None = None

    @property
    def is_chat(self) -> bool:
        return self.messages is not None

    def shown(self) -> str:
        """How a report shows the prompt: the text, or the last user turn."""
        if self.messages is None:
            return self.text or ""
        return next((m["content"] for m in reversed(self.messages) if m["role"] == "user"), "")

    def to_dict(self) -> dict[str, Any]:
        return {"messages": [dict(m) for m in self.messages]} if self.messages is not None else {"text": self.text}


def check_messages(messages: Any, where: str) -> tuple[dict[str, str], ...]:
    """A conversation: a non-empty list of {"role", "content"} objects with known roles and
    string contents, ending with a user turn (the model answers it). ``where`` names the
    input in the message (a file and line)."""
    if not isinstance(messages, list) or not messages:
        raise RepcheckError(f"{where}: messages must be a non-empty list of {{role, content}} objects")
    out = []
    for i, m in enumerate(messages):
        if not isinstance(m, Mapping) or set(m) - {"role", "content"} or not {"role", "content"} <= set(m):
            raise RepcheckError(f"{where}: messages[{i}] must be an object with exactly role and content")
        if m["role"] not in ROLES:
            raise RepcheckError(f"{where}: messages[{i}].role {m['role']!r} is not one of {', '.join(ROLES)}")
        if not isinstance(m["content"], str) or not m["content"].strip():
            raise RepcheckError(f"{where}: messages[{i}].content must be a non-empty string")
        out.append({"role": m["role"], "content": m["content"]})
    if out[-1]["role"] != "user":
        raise RepcheckError(f"{where}: the last message must be a user turn (the model answers it)")
    return tuple(out)


def has_chat_template(tokenizer) -> bool:
    return bool(getattr(tokenizer, "chat_template", None))


def require_chat_template(tokenizer, model_name: str, what: str = "chat prompts") -> None:
    if not has_chat_template(tokenizer):
        raise RepcheckError(
            f"{model_name} has no chat template, so {what} cannot be rendered; use plain-text prompts or a chat model",
            param="chat",
        )


def render(tokenizer, prompt: Prompt) -> list[int]:
    """Token ids of a prompt: BOS (or EOS) then the text's tokens, or the conversation through
    the chat template with the assistant's turn opened (``add_generation_prompt=True``)."""
    from .sentences import prefix_ids

    if prompt.messages is None:
        return prefix_ids(tokenizer) + list(tokenizer(prompt.text, add_special_tokens=False)["input_ids"])
    # The template's text, tokenized without adding special tokens again (the template has them)
    text = tokenizer.apply_chat_template(list(prompt.messages), add_generation_prompt=True, tokenize=False)
    return list(tokenizer(text, add_special_tokens=False)["input_ids"])


def render_all(
    tokenizer, prompts: Sequence[Prompt], budgets: Sequence[int], context_length: int | None, model_name: str
) -> list[list[int]]:
    """Every prompt's ids; refuses chat prompts for a model without a template, and a prompt
    that leaves no room for its new tokens in the context window."""
    if any(p.is_chat for p in prompts):
        require_chat_template(tokenizer, model_name)
    out = []
    for i, (p, budget) in enumerate(zip(prompts, budgets, strict=True)):
        ids = render(tokenizer, p)
        if context_length is not None and len(ids) + budget > context_length:
            raise RepcheckError(
                f"prompt {i + 1} ({len(ids)} tokens) plus {budget} new tokens exceeds the model's context window "
                f"of {context_length}",
                param="max_new_tokens",
            )
        out.append(ids)
    return out


def read_lines(path: Path, what: str, param: str) -> list[str]:
    """The lines of a UTF-8 text file (a byte-order mark dropped); an unreadable or non-UTF-8
    file is one ``RepcheckError`` naming ``what`` (e.g. "prompt file x.jsonl")."""
    try:
        return path.read_text(encoding="utf-8-sig").splitlines()
    except OSError as err:
        raise RepcheckError(f"cannot read {what}: {err.strerror or err}", param=param) from None
    except UnicodeDecodeError as err:
        raise RepcheckError(f"{what} is not UTF-8 text ({err.reason})", param=param) from None


def read_prompts(path: str | Path, *, chat: bool = False, limit: int | None = None) -> list[Prompt | str]:
    """The prompts of a file or shipped set: plain text (one per line, or .json/.csv as
    ``read_sentences`` reads them), or a .jsonl whose lines are ``{"messages": [...]}``
    conversations in the OpenAI format (system, user and assistant turns, ending with a user
    turn) or ``{"text": ...}``. With ``chat``, every plain prompt becomes one user turn; a
    conversation is a conversation either way. Refuses an empty file and a bad line with one
    line naming the file and line."""
    import json

    from .errors import require_int
    from .sentences import read_sentences, resolve_input

    if limit is not None:
        require_int("limit", limit, 1)
    resolved = resolve_input(path)
    if resolved.suffix.lower() != ".jsonl":
        texts = read_sentences(path, limit=limit)
        return [Prompt(messages=({"role": "user", "content": t},)) if chat else t for t in texts]
    lines = read_lines(resolved, f"prompt file {path}", "prompts")
    out: list[Prompt | str] = []
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        where = f"{path}:{n}"
        try:
            row = json.loads(line)
        except ValueError as err:
            raise RepcheckError(f"{where}: not a JSON object ({err.msg})", param="prompts") from None
        if not isinstance(row, dict) or ("messages" in row) == ("text" in row):
            raise RepcheckError(f'{where}: expected an object with either "messages" or "text"', param="prompts")
        if "messages" in row:
            out.append(Prompt(messages=check_messages(row["messages"], where)))
        else:
            text = row["text"]
            if not isinstance(text, str) or not text.strip():
                raise RepcheckError(f'{where}: "text" must be a non-empty string', param="prompts")
            out.append(Prompt(messages=({"role": "user", "content": text},)) if chat else text)
        if limit is not None and len(out) >= limit:
            break
    if not out:
        raise RepcheckError(f"prompt file {path} holds no prompts", param="prompts")
    return out
