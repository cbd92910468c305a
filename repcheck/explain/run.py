"""explain(): score heads and neurons on the probe's input, then ablate the top ones against
random ones of the same number and probe again.

The claim "these heads carry the loop" is only worth its control: the same number of random
heads (drawn ``random_draws`` times, seeded, never from the top ones) ablated the same way.
The cost of an ablation is the mean log-probability of copy 0 (ordinary text, no repeat yet):
did the model get worse at language, or only at copying?
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import RepcheckError, require_int, require_number
from ..progress import ProgressCallback
from ..provenance import dumps, envelope, json_safe, utc_now
from ..results import ProbeResult
from ..sentences import EncodedSentence

ABLATIONS = ("zero", "mean")


@dataclass
class AblationRun:
    name: str  # baseline, top_heads, random_heads, top_neurons, random_neurons
    units: list[list[tuple[int, int]]]  # per draw: the (layer, head) or (layer, neuron) ablated
    probes: list[ProbeResult]  # per draw

    def copy0_logprob(self) -> float:
        """Mean log-probability of copy 0's tokens (mean per sentence, then over sentences and draws)."""
        return float(np.mean([[np.mean(np.log(np.maximum(s.p[0], 1e-300))) for s in p.sentences] for p in self.probes]))

    def to_dict(self) -> dict[str, Any]:
        rows = [p.per_copy() for p in self.probes]  # [draw][n]
        tp = np.array([[r["tp"] for r in draw] for draw in rows])  # [draws, K]

        def mean_over_draws(metric: str, n: int) -> float:
            values = [draw[n][metric] for draw in rows if draw[n][metric] is not None]
            return float(np.mean(values)) if values else math.nan

        return {
            "name": self.name,
            "draws": len(self.probes),
            "units": [[list(u) for u in draw] for draw in self.units],
            "per_copy": [
                {
                    "n": n,
                    "tp": float(tp[:, n].mean()),
                    "tp_min": float(tp[:, n].min()),
                    "tp_max": float(tp[:, n].max()),
                    "tp_sd": float(tp[:, n].std(ddof=1)) if len(tp) > 1 else math.nan,
                    # the 95% interval over sentences, for a single draw (baseline and top ablations)
                    "ci95": rows[0][n]["ci95"]["tp"] if len(tp) == 1 else [math.nan, math.nan],
                    "mp": mean_over_draws("mp", n),
                    "ip": mean_over_draws("ip", n),
                    "wr": mean_over_draws("wr", n),
                }
                for n in range(tp.shape[1])
            ],
            "tp_last": float(tp[:, -1].mean()),
            # mean TP over the repeats (copies 1..K-1): the whole curve above copy 0 in one number,
            # per draw, then over draws; an ablation can delay the rise without lowering the ceiling
            "tp_repeats": float(tp[:, 1:].mean()),
            "tp_repeats_draws": [float(x) for x in tp[:, 1:].mean(1)],
            "copy0_logprob": self.copy0_logprob(),
        }


@dataclass
class ExplainResult:
    model: dict[str, Any]
    dtype: str
    device: str
    repeats: int
    sentences: list[str]
    settings: dict[str, Any]
    induction: np.ndarray  # [layers, heads]
    induction_any: np.ndarray
    duplicate_token: np.ndarray
    tl_induction: np.ndarray
    profile: np.ndarray  # [layers, heads, K]
    neuron_rise: np.ndarray  # [layers, neurons]
    top_heads: list[tuple[int, int]]
    top_neurons: list[tuple[int, int]]
    ablations: dict[str, AblationRun]
    created: str = field(default_factory=utc_now)

    def heads_frame(self):
        """One row per (layer, head): the scores and the rank by induction score."""
        import pandas as pd

        Ly, H = self.induction.shape
        order = np.argsort(-self.induction, axis=None, kind="stable")
        rank = np.empty(Ly * H, dtype=int)
        rank[order] = np.arange(1, Ly * H + 1)
        rows = [
            {
                "layer": layer,
                "head": head,
                "rank": int(rank[layer * H + head]),
                "induction": float(self.induction[layer, head]),
                "induction_any": float(self.induction_any[layer, head]),
                "duplicate_token": float(self.duplicate_token[layer, head]),
                "tl_induction": float(self.tl_induction[layer, head]),
                "top": (layer, head) in self.top_heads,
            }
            for layer in range(Ly)
            for head in range(H)
        ]
        return pd.DataFrame(rows).sort_values("rank").reset_index(drop=True)

    def neurons_frame(self, limit: int = 200):
        """The ``limit`` neurons whose activation rises most from copy 0 to later copies."""
        import pandas as pd

        flat = self.neuron_rise.reshape(-1)
        width = self.neuron_rise.shape[1]
        order = np.argsort(-flat, kind="stable")[:limit]
        top = set(self.top_neurons)
        return pd.DataFrame(
            [
                {
                    "rank": r + 1,
                    "layer": int(i // width),
                    "neuron": int(i % width),
                    "rise": float(flat[i]),
                    "ablated": (int(i // width), int(i % width)) in top,
                }
                for r, i in enumerate(order)
            ]
        )

    def to_dict(self) -> dict[str, Any]:
        from ..provenance import versions

        heads = self.heads_frame()
        baseline_tp = [row["tp"] for row in self.ablations["baseline"].to_dict()["per_copy"]]
        return json_safe(
            {
                **envelope("explain", self.created, versions()),
                "model": self.model,
                "dtype": self.dtype,
                "device": self.device,
                "repeats": self.repeats,
                "sentences": self.sentences,
                "settings": self.settings,
                "heads": heads.to_dict("records"),
                "top_heads": [list(h) for h in self.top_heads],
                "profile": {
                    "heads": [list(h) for h in self.top_heads],
                    "induction": [self.profile[layer, head].tolist() for layer, head in self.top_heads],
                    "tp": baseline_tp,
                },
                "neurons": self.neurons_frame().to_dict("records"),
                "top_neurons": [list(n) for n in self.top_neurons],
                "ablations": {name: run.to_dict() for name, run in self.ablations.items()},
            }
        )

    def to_json(self) -> str:
        return dumps(self.to_dict())

    def write(self, out_dir: str | Path, fmt: str = "png", overwrite: bool = False) -> list[Path]:
        """summary.json, heads.csv, neurons.csv, heads.<fmt>, ablation.<fmt> and profile.<fmt>
        into exactly ``out_dir`` (``outputs.publish``)."""
        from ..outputs import check_format, publish
        from .figures import explain_figures

        check_format(fmt)
        doc = self.to_dict()

        def write(tmp: Path) -> None:
            self.heads_frame().to_csv(tmp / "heads.csv", index=False)
            self.neurons_frame().to_csv(tmp / "neurons.csv", index=False)
            explain_figures(doc, tmp, fmt)

        return publish(out_dir, "explain", doc, write, overwrite)


def require_drawable(size: int, population: int, what: str, param: str) -> None:
    """The control draws as many random units as the top ones, from the others: ``size`` top
    units and ``size`` random ones must both fit in the model's ``population``."""
    if 2 * size > population:
        raise RepcheckError(
            f"{size} top {what} and {size} random ones for the control need {2 * size} {what}; the model has "
            f"{population}: ask for at most {population // 2}",
            param=param,
        )


def draw_without(rng: np.random.Generator, population: int, excluded: set[int], size: int) -> list[int]:
    """``size`` distinct units of ``range(population)`` outside ``excluded``: a draw without
    replacement from the complement."""
    complement = np.setdiff1d(np.arange(population), np.array(sorted(excluded), dtype=np.int64))
    return [int(i) for i in rng.choice(complement, size=size, replace=False)]


def explain(
    model,
    sentences: str | Sequence[str] | Sequence[EncodedSentence],
    *,
    repeats: int = 8,
    top: int = 8,
    random_draws: int = 5,
    ablation: str = "zero",
    neuron_share: float = 0.001,
    seed: int = 0,
    prefix: str | None = None,
    batch_size: int = 4,
    progress: ProgressCallback | None = None,
) -> ExplainResult:
    """Which heads and neurons make ``model`` repeat ``sentences`` (see the module docstring).
    ``model`` must be a ``HookableBackend`` (the transformers backend) loaded with
    ``attn_implementation="eager"``."""
    from ..metrics import repeated_input
    from ..probing import check_fits, encode_inputs, probe
    from .ablation import Ablation, hookable
    from .scores import trace

    hookable(model, "explaining")
    require_int("repeats", repeats, 2)
    require_int("random_draws", random_draws, 1)
    require_int("seed", seed, 0)
    require_int("top", top, 1)
    require_number("neuron_share", neuron_share, 0, 1, lo_open=True)
    if ablation not in ABLATIONS:
        raise RepcheckError(f"ablation must be one of {', '.join(ABLATIONS)}", param="ablation")
    units = model.units()
    n_heads, n_all_neurons = units.layers * units.heads, units.layers * units.neurons
    n_neurons = max(1, round(neuron_share * n_all_neurons))
    require_drawable(top, n_heads, "heads", "top")
    require_drawable(n_neurons, n_all_neurons, "neurons", "neuron_share")
    encoded, prefix_ids = encode_inputs(model, sentences, prefix)
    check_fits(len(prefix_ids), [len(e.token_ids) for e in encoded], repeats, model.window, prefix_given=bool(prefix))
    seqs = [repeated_input(prefix_ids, list(e.token_ids), repeats) for e in encoded]
    tr = trace(
        model,
        seqs,
        len(prefix_ids),
        [len(e.token_ids) for e in encoded],
        repeats,
        batch_size=batch_size,
        progress=progress,
    )

    flat = np.argsort(-tr.induction, axis=None, kind="stable")
    top_heads = [(int(i // units.heads), int(i % units.heads)) for i in flat[:top]]
    nflat = np.argsort(-tr.neuron_rise, axis=None, kind="stable")
    top_neurons = [(int(i // units.neurons), int(i % units.neurons)) for i in nflat[:n_neurons]]
    rng = np.random.default_rng(seed)
    top_head_ids, top_neuron_ids = set(flat[:top].tolist()), set(nflat[:n_neurons].tolist())
    random_heads = [
        [divmod(i, units.heads) for i in draw_without(rng, n_heads, top_head_ids, top)] for _ in range(random_draws)
    ]
    random_neurons = [
        [divmod(i, units.neurons) for i in draw_without(rng, n_all_neurons, top_neuron_ids, n_neurons)]
        for _ in range(random_draws)
    ]

    means = ablation == "mean"
    plan = [
        ("baseline", [[]], "heads"),
        ("top_heads", [top_heads], "heads"),
        ("random_heads", random_heads, "heads"),
        ("top_neurons", [top_neurons], "neurons"),
        ("random_neurons", random_neurons, "neurons"),
    ]
    total = sum(len(draws) for _, draws, _ in plan)
    runs: dict[str, AblationRun] = {}
    done = 0
    for name, draws, kind in plan:
        probes = []
        for units_ in draws:
            cut = (
                Ablation(heads=tuple(units_), head_means=tr.head_means if means else None)
                if kind == "heads"
                else Ablation(neurons=tuple(units_), neuron_means=tr.neuron_means if means else None)
            )
            with cut.applied(model):
                probes.append(probe(model, encoded, repeats=repeats, prefix=prefix, batch_size=batch_size))
            done += 1
            if progress:
                progress("ablating and probing again", done, total)
        runs[name] = AblationRun(name, draws, probes)
    return ExplainResult(
        model=model.info(),
        dtype=model.dtype,
        device=model.device,
        repeats=repeats,
        sentences=[e.text for e in encoded],
        settings={
            "top": top,
            "random_draws": random_draws,
            "ablation": ablation,
            "neuron_share": neuron_share,
            "neurons_ablated": n_neurons,
            "seed": seed,
            "prefix": prefix,
            "attn_implementation": "eager",
            "layers": units.layers,
            "heads_per_layer": units.heads,
            "neurons_per_layer": units.neurons,
        },
        induction=tr.induction,
        induction_any=tr.induction_any,
        duplicate_token=tr.duplicate_token,
        tl_induction=tr.tl_induction,
        profile=tr.profile,
        neuron_rise=tr.neuron_rise,
        top_heads=top_heads,
        top_neurons=top_neurons,
        ablations=runs,
    )
