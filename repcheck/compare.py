"""`compare`: one model under many decoding settings, side by side: what each removes (repetition
in what it generates, the probe's curve) and what it breaks (the legitimate-repetition suite).

Generation metrics are computed per continuation, averaged over a prompt's samples, then
summarized per setting as the mean over prompts with a 95% interval; pooled metrics
(rep-n, diversity, distinct-n) use all continuations of a setting together. With a probe
sentence, each setting's logits processors are also applied to the teacher-forced repeated
sentence, to show how the setting bends the self-reinforcement curve.
"""

from __future__ import annotations

import contextlib
import json
import math
from collections import defaultdict
from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from .backends.base import LONG_GENERATION, Backend, ScoreRequest
from .backends.registry import check_supported
from .decoding import DecodingSetting
from .errors import require_int
from .generation import Generation, SettingRun, encode_prompts, generate
from .legit import LegitResult, LegitSuite, run_legit
from .metric_info import CONTINUATION_METRICS, direction
from .progress import ProgressCallback, offset
from .provenance import dumps, envelope, json_safe, utc_now
from .repetition import pooled_metrics
from .results import ProbeResult
from .stats import mean_ci95, wilson_ci95


class AroundProbe(Protocol):
    """Something that changes the model while the probe part of a compare runs, and says so in
    its results (``repcheck.explain.ablation.Ablation`` is one)."""

    def applied(self, model: Backend) -> AbstractContextManager[None]: ...

    def to_setting(self) -> dict[str, Any]: ...


@dataclass
class CompareResult:
    model: dict[str, Any]
    dtype: str
    device: str
    seed: int
    max_new_tokens: int
    samples: int
    batch_size: int
    prompts: list[str]
    settings: list[DecodingSetting]
    runs: dict[str, SettingRun] = field(default_factory=dict)  # by setting name
    probes: dict[str, ProbeResult | None] = field(default_factory=dict)  # None: not applicable (beam)
    versions: dict[str, str] = field(default_factory=dict)  # engine versions beyond the envelope's
    created: str = field(default_factory=utc_now)
    next_token: dict[str, Any] | None = None  # Welleck et al.'s metrics on human text, when asked for
    legit: dict[str, LegitResult] = field(default_factory=dict)  # by setting name, with a legit suite
    conversations: list[dict[str, Any]] | None = None  # the prompts as given, where they were chats
    guard: dict[str, int] | None = None  # the loop guard's thresholds, with --stop-on-loop

    def per_prompt(self, name: str, key: str) -> list[float]:
        """One value per prompt: the metric averaged over that prompt's samples."""
        by_prompt: dict[int, list] = defaultdict(list)
        for g in self.runs[name].generations:
            by_prompt[g.prompt_index].append(_value(g, key))
        return [_nanmean(v) for _, v in sorted(by_prompt.items())]

    def setting_summary(self, name: str) -> dict[str, Any]:
        run = self.runs[name]
        metrics = {}
        for key in CONTINUATION_METRICS:
            per_prompt = self.per_prompt(name, key)
            mean, lo, hi = mean_ci95(per_prompt)
            metrics[key] = {"mean": mean, "ci95": [lo, hi], "n": sum(not math.isnan(v) for v in per_prompt)}
        loops = [g for g in run.generations if g.metrics["loop"] or g.finish == "loop"]
        return {
            "metrics": metrics,
            "pooled": pooled_metrics([g.token_ids for g in run.generations], [g.text for g in run.generations]),
            "loop_rate": len(loops) / len(run.generations),
            "loop_rate_ci95": list(wilson_ci95(len(loops), len(run.generations))),
            "loop_period_median": _median([g.metrics["loop_period"] for g in loops]),
            "tokens_per_s": run.tokens_per_s,
            "new_tokens": run.new_tokens,
            "elapsed_s": run.elapsed_s,
            "continuations": len(run.generations),
            "example": run.generations[0].text if run.generations else "",
            **({"sent": run.sent} if run.sent is not None else {}),
            "finish": {k: sum(g.finish == k for g in run.generations) for k in ("eos", "length", "loop")},
            **loop_by_length(run.generations, self.max_new_tokens),
            **({"guard": run.guard_summary()} if self.guard is not None else {}),
        }

    def to_dict(self) -> dict[str, Any]:
        from .provenance import versions

        settings = []
        for s in self.settings:
            entry = s.to_dict()
            if s.name in self.runs:
                entry.update(self.setting_summary(s.name))
            if s.name in self.probes:
                pr = self.probes[s.name]
                entry["probe"] = (
                    {"skipped": "beam search has no per-token distribution"}
                    if pr is None
                    else {"per_copy": pr.per_copy(), "summary": pr.summary()}
                )
            if s.name in self.legit:
                entry["legit"] = self.legit[s.name].to_dict()
            settings.append(entry)
        doc = {
            **envelope("compare", self.created, {**versions(), **self.versions}),
            "model": self.model,
            "dtype": self.dtype,
            "device": self.device,
            "seed": self.seed,
            "max_new_tokens": self.max_new_tokens,
            "samples": self.samples,
            "batch_size": self.batch_size,
            "prompts": self.prompts,
            "metric_basis": "token ids; keys ending in _words use whitespace-separated words",
            "directions": {k: direction(k) for k in CONTINUATION_METRICS if direction(k) is not None},
            "settings": settings,
        }
        if self.conversations is not None:
            doc["conversations"] = self.conversations
        if self.guard is not None:
            doc["guard"] = self.guard
        if self.next_token is not None:
            doc["next_token"] = self.next_token
        if self.legit:
            doc["legit_suite"] = next(iter(self.legit.values())).suite
        if self.probes:
            first = next((p for p in self.probes.values() if p is not None), None)
            if first is not None:
                doc["probe"] = {
                    "sentences": [s.text for s in first.sentences],
                    "repeats": first.repeats,
                    "prefix_ids": first.prefix_ids,
                }
        return json_safe(doc)

    def to_json(self, indent: int | None = 2) -> str:
        return dumps(self.to_dict(), indent=indent)

    def write(self, out_dir: str | Path, fmt: str = "png", overwrite: bool = False) -> list[Path]:
        """summary.json, generations.jsonl, per_setting.csv, metrics.<fmt> and, with a probe,
        curves.<fmt>, into exactly ``out_dir`` (``outputs.publish``)."""
        from .outputs import check_format, publish
        from .plots import compare_figures

        check_format(fmt)
        doc = self.to_dict()

        def write(tmp: Path) -> None:
            if self.runs:
                with open(tmp / "generations.jsonl", "w", encoding="utf-8") as fh:
                    for rec in self.generations_records():
                        fh.write(json.dumps(rec, ensure_ascii=False) + "\n")
                self.to_frame().to_csv(tmp / "per_setting.csv", index=False)
            if self.legit:
                self.legit_frame().to_csv(tmp / "legit.csv", index=False)
            compare_figures(doc, tmp, fmt)

        return publish(out_dir, "compare", doc, write, overwrite)

    def to_frame(self):
        """One row per setting: the per-setting means and pooled metrics (and the legit pass rate)."""
        import pandas as pd

        rows = []
        for s in self.settings:
            if s.name not in self.runs and s.name not in self.legit:
                continue
            row = {"setting": s.name, "params": json.dumps(s.params)}
            if s.name in self.runs:
                summ = self.setting_summary(s.name)
                for k, v in summ["metrics"].items():
                    row[k], row[f"{k}_ci_low"], row[f"{k}_ci_high"] = v["mean"], *v["ci95"]
                row.update(summ["pooled"])
                row.update({k: summ[k] for k in ("loop_rate", "tokens_per_s", "new_tokens", "continuations")})
            if s.name in self.legit:
                lg = self.legit[s.name]
                row["legit_pass_rate"], (row["legit_ci_low"], row["legit_ci_high"]) = lg.pass_rate, lg.ci95
            rows.append(row)
        return pd.DataFrame(rows)

    def legit_frame(self):
        """One row per (setting, category) of the legit suite, and one for all categories."""
        import pandas as pd

        rows = []
        for name, lg in self.legit.items():
            blocks = {"all": lg.to_dict(), **lg.by_category()}
            for category, b in blocks.items():
                rows.append(
                    {"setting": name, "category": category, "pass_rate": b["pass_rate"], "passed": b["passed"],
                     "n": b["n"], "ci_low": b["ci95"][0], "ci_high": b["ci95"][1]}
                )  # fmt: skip
        return pd.DataFrame(rows)

    def generations_records(self) -> list[dict[str, Any]]:
        return [json_safe(g.to_dict()) for run in self.runs.values() for g in run.generations]


def run_compare(
    model: Backend,
    settings: Sequence[DecodingSetting],
    prompts: Sequence[str] = (),
    *,
    max_new_tokens: int = 64,
    samples: int = 1,
    seed: int = 0,
    batch_size: int = 16,
    probe_sentences: Sequence[str] = (),
    repeats: int = 10,
    next_token_texts: Sequence[str] = (),
    around_probe: AroundProbe | None = None,
    legit: LegitSuite | None = None,
    stop_on_loop: Any = None,
    progress: ProgressCallback | None = None,
) -> CompareResult:
    """Generate from ``prompts`` under every setting and/or probe ``probe_sentences`` under
    every setting (one forward pass for all settings); with ``next_token_texts`` (human text),
    also Welleck et al.'s next-token metrics (``next_token_block``); with ``legit`` (a
    legitimate-repetition suite), that suite under every setting too: what each cure breaks.
    ``around_probe`` (e.g. an ``Ablation``) is applied while the probe runs, and only then.
    ``prompts`` are text or ``Prompt`` conversations (rendered through the chat template);
    ``stop_on_loop`` (a ``GuardConfig``) ends every continuation when its loop is confirmed."""
    from .probing import probe_under_settings

    require_int("samples", samples, 1)
    require_int("batch_size", batch_size, 1)
    if prompts or legit is not None:
        for s in settings:  # validate everything before the first setting runs
            check_supported(model, s)
    if prompts:
        encode_prompts(model, prompts, max_new_tokens)
    if legit is not None:
        from .prompts import has_chat_template

        legit.require_chat_template(has_chat_template(model.tokenizer), model.name)
    result = CompareResult(
        model=model.info(),
        dtype=model.dtype,
        device=model.device,
        seed=seed,
        max_new_tokens=max_new_tokens,
        samples=samples,
        batch_size=batch_size,
        prompts=[p if isinstance(p, str) else p.shown() for p in prompts],
        settings=list(settings),
        versions=model.versions(),
        conversations=[p.to_dict() for p in prompts] if any(not isinstance(p, str) for p in prompts) else None,
        guard=stop_on_loop.to_dict() if stop_on_loop is not None else None,
    )
    # the job's units: continuations, or tokens where long generations count tokens
    per_row = max_new_tokens if max_new_tokens >= LONG_GENERATION else 1
    rows = [len(prompts) * (samples if s.do_sample else 1) * per_row for s in settings]
    for i, s in enumerate(settings):
        if prompts:
            result.runs[s.name] = generate(
                model,
                prompts,
                s,
                max_new_tokens=max_new_tokens,
                samples=samples,
                seed=seed,
                batch_size=batch_size,
                stop_on_loop=stop_on_loop,
                progress=offset(progress, sum(rows[:i]), rows[i], sum(rows)),
            )
    for s in settings if legit is not None else []:
        result.legit[s.name] = run_legit(model, legit, s, seed=seed, batch_size=batch_size, progress=progress)
    if probe_sentences:
        probed = [s for s in settings if not s.is_beam]
        under = {}
        if probed:
            with around_probe.applied(model) if around_probe else contextlib.nullcontext():
                under = probe_under_settings(
                    model,
                    list(probe_sentences),
                    probed,
                    repeats=repeats,
                    batch_size=batch_size,
                    progress=progress,
                    settings=around_probe.to_setting() if around_probe else None,
                )
        # Beam search keeps several hypotheses: there is no single per-token distribution.
        result.probes = {s.name: under.get(s.name) for s in settings}
    if next_token_texts:
        result.next_token = next_token_block(model, next_token_texts, batch_size=batch_size, progress=progress)
    return result


#: the lengths at which compare reports the loop rate of long generations
LOOP_LENGTHS = (64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384, 32768)


def loop_by_length(generations: Sequence[Generation], max_new_tokens: int) -> dict[str, Any]:
    """For generations of 256 tokens or more: ``loop_rate_by_length`` {L: the share of
    continuations whose first L tokens end in a verbatim loop (``detect_loop``, compare's loop
    definition)} at every L of ``LOOP_LENGTHS`` up to ``max_new_tokens``, and
    ``loop_onsets``, the token index where each looping continuation's loop begins."""
    from .repetition import detect_loop

    if max_new_tokens < 256 or not generations:
        return {}
    lengths = [n for n in LOOP_LENGTHS if n <= max_new_tokens]
    if lengths[-1] != max_new_tokens:
        lengths.append(max_new_tokens)
    rates = {}
    for n in lengths:
        rates[str(n)] = sum(detect_loop(g.token_ids[:n]) is not None for g in generations) / len(generations)
    onsets = []
    for g in generations:
        loop = detect_loop(g.token_ids)
        if loop is not None:
            onsets.append(loop.start)
    return {"loop_rate_by_length": rates, "loop_onsets": sorted(onsets)}


def next_token_block(
    model: Backend, texts: Sequence[str], *, batch_size: int = 8, progress: ProgressCallback | None = None
) -> dict[str, Any]:
    """Welleck et al.'s next-token metrics (``repetition.next_token_metrics``) on human text:
    each text after the BOS/EOS prefix, teacher forced, cut to the context window. They do not
    depend on the decoding setting: a property of the model, reported beside seq-rep-4 as the
    unlikelihood and DITTO papers do."""
    from .repetition import REPEAT_CONTEXTS, next_token_metrics
    from .sentences import encode_sentences
    from .sentences import prefix_ids as make_prefix_ids

    prefix = make_prefix_ids(model.tokenizer)
    room = (model.context_length or 10**9) - len(prefix)
    encoded = encode_sentences(model.tokenizer, texts)
    seqs = [prefix + list(e.token_ids[:room]) for e in encoded]
    relabel = (lambda _d, done, total: progress("next-token metrics", done, total)) if progress else None
    scored = model.score(ScoreRequest(seqs, [len(prefix)] * len(seqs), batch_size), relabel)
    targets = [s[len(prefix) :] for s in seqs]
    metrics = next_token_metrics(targets, [sc.argmax.tolist() for sc in scored], [sc.logp for sc in scored])
    return {
        "texts": len(texts),
        "truncated": sum(len(e.token_ids) > room for e in encoded),
        "contexts": list(REPEAT_CONTEXTS),
        "metrics": metrics,
    }


def _value(g, key: str) -> float:
    v = g.mean_logprob if key == "mean_logprob" else g.metrics[key]
    return math.nan if v is None else float(v)


def _nanmean(values: list[float]) -> float:
    finite = [v for v in values if not math.isnan(v)]
    return sum(finite) / len(finite) if finite else math.nan


def _median(values: list) -> float | None:
    values = sorted(v for v in values if v is not None)
    if not values:
        return None
    mid = len(values) // 2
    return float(values[mid]) if len(values) % 2 else (values[mid - 1] + values[mid]) / 2
