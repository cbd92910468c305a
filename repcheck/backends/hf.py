"""The Hugging Face transformers backend: load any causal LM, score sequences, generate.

torch and transformers are imported inside functions so that importing repcheck (and
``repcheck --help``) stays fast.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import sys
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..errors import RepcheckError
from ..progress import ProgressCallback
from .base import Capabilities, ContextWindow, RawGeneration, Scored, model_block
from .builtin import BUILTIN_MODELS, DEFAULT_MODEL
from .spec import ResolvedSpec, hub_error, one_line, resolve

if TYPE_CHECKING:  # pragma: no cover
    import torch
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

    from ..decoding import DecodingSetting

DTYPES = ("float32", "bfloat16", "float16")
DEVICES = ("auto", "cpu", "cuda", "mps")
#: Upper bound on the logits tensor of one forward pass ([B, T, V] floats); larger batches
#: are split so peak memory stays modest whatever the batch size says.
LOGITS_BUDGET_BYTES = 512 * 2**20
#: Largest share of a batch's positions that may be padding.
MAX_PADDING_SHARE = 0.2


@dataclass(eq=False)
class HFBackend:
    """A transformers causal LM and its tokenizer, with what a report needs to say about it."""

    model: PreTrainedModel
    tokenizer: PreTrainedTokenizerBase
    spec: str  # what the user asked for
    name: str  # a readable name (alias, directory name or hub id)
    source: str  # "builtin", "local", "gguf" or "hub"
    dtype: str
    device: str
    window: ContextWindow
    sha256: str | None = None  # of the weights file(s), where known
    attn_implementation: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    kind = "hf"

    @property
    def capabilities(self) -> Capabilities:
        from ..decoding import KEYS

        return Capabilities(logits=True, generate=True, setting_keys=frozenset(KEYS), hooks=True)

    @property
    def context_length(self) -> int | None:
        """Maximum tokens in one forward pass, if the config says."""
        return self.window.max_tokens

    def info(self) -> dict[str, Any]:
        """The ``model`` block of a JSON report."""
        return model_block(self, source=self.source, sha256=self.sha256, cls=type(self.model).__name__)

    def versions(self) -> dict[str, str]:
        return {}  # torch and transformers are in every document's versions already

    # ---- forward passes ------------------------------------------------------------------
    @property
    def pad_id(self) -> int:
        """Any id works for padding (it is masked); the tokenizer's pad, else EOS, else 0."""
        tok = self.tokenizer
        for candidate in (tok.pad_token_id, tok.eos_token_id):
            if isinstance(candidate, int):
                return candidate
        return 0

    @property
    def vocab_size(self) -> int:
        return max(len(self.tokenizer), getattr(self.model.config.get_text_config(), "vocab_size", 0) or 0)

    def forward(self, seqs: Sequence[Sequence[int]], padding_side: str = "left"):
        """One forward pass over a padded batch (see ``padded_forward``)."""
        return padded_forward(self.model, seqs, self.pad_id, self.input_device, padding_side)

    @property
    def input_device(self) -> str:
        """Where inputs go (the first layer's device when the model is spread over several)."""
        return str(self.model.get_input_embeddings().weight.device)

    def batches(self, lengths: Sequence[int], batch_size: int) -> list[list[int]]:
        """Indices grouped into forward passes (see ``plan_batches``)."""
        return plan_batches(lengths, batch_size, self.vocab_size)

    def score(
        self,
        sequences: Sequence[Sequence[int]],
        starts: Sequence[int],
        *,
        batch_size: int = 8,
        padding_side: str = "left",
        progress: ProgressCallback | None = None,
    ) -> list[Scored]:
        """p, pmax and argmax for positions ``starts[i]`` .. end of every sequence."""
        import torch

        from ..metrics import next_token_probs

        out: list[Scored | None] = [None] * len(sequences)
        done = 0
        with torch.inference_mode():
            for batch in self.batches([len(s) for s in sequences], batch_size):
                seqs = [sequences[i] for i in batch]
                logits, input_ids, offsets = self.forward(seqs, padding_side)
                for b, i in enumerate(batch):
                    start, count = offsets[b] + starts[i], len(sequences[i]) - starts[i]
                    logp, lmax, arg = next_token_probs(logits[b], input_ids[b], start, count)
                    out[i] = scored(logp, lmax, arg)
                done += len(batch)
                if progress:
                    progress("scoring", done, len(sequences))
        return out  # type: ignore[return-value]

    def logits(
        self, sequences: Sequence[Sequence[int]], *, batch_size: int = 8
    ) -> Iterator[list[tuple[int, torch.Tensor, torch.Tensor]]]:
        """Per batch: (index, logits [T, V], input_ids [T]) of each sequence, padding removed."""
        import torch

        with torch.inference_mode():
            for batch in self.batches([len(s) for s in sequences], batch_size):
                logits, input_ids, offsets = self.forward([sequences[i] for i in batch], "left")
                yield [
                    (i, logits[b, offsets[b] : offsets[b] + len(sequences[i])], input_ids[b, offsets[b] :])
                    for b, i in enumerate(batch)
                ]

    def generate(
        self,
        prompts: Sequence[Sequence[int]],
        setting: DecodingSetting,
        *,
        max_new_tokens: int,
        samples: int = 1,
        seed: int = 0,
        batch_size: int = 16,
        progress: ProgressCallback | None = None,
    ) -> list[RawGeneration]:
        from .hf_generate import generate

        return generate(
            self,
            prompts,
            setting,
            max_new_tokens=max_new_tokens,
            samples=samples,
            seed=seed,
            batch_size=batch_size,
            progress=progress,
        )

    def close(self) -> None:
        """Drop the weights now (``diff`` loads one checkpoint at a time)."""
        import torch

        self.model = None  # type: ignore[assignment]
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()


#: The public name of the Hugging Face backend, as the 0.1 API called it.
LoadedModel = HFBackend


def scored(logp, lmax, arg) -> Scored:
    """Move a sequence's results to the CPU as float64 numpy arrays (MPS has no float64)."""
    logp = logp.cpu().double()
    return Scored(logp.exp().numpy(), lmax.cpu().double().exp().numpy(), arg.cpu().numpy(), logp.numpy())


# ---- loading ---------------------------------------------------------------------------------
def resolve_device(device: str) -> str:
    import torch

    if device not in DEVICES:
        raise RepcheckError(f"unknown device {device!r}; choose one of {', '.join(DEVICES)}", param="device")
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise RepcheckError("device cuda was asked for, but torch sees no CUDA GPU here", param="device")
    if device == "mps" and not (hasattr(torch.backends, "mps") and torch.backends.mps.is_available()):
        raise RepcheckError("device mps was asked for, but MPS is not available here", param="device")
    return device


def torch_dtype(dtype: str) -> torch.dtype:
    import torch

    if dtype not in DTYPES:
        raise RepcheckError(f"unknown dtype {dtype!r}; choose one of {', '.join(DTYPES)}", param="dtype")
    return getattr(torch, dtype)


def load_hf(
    spec: str = DEFAULT_MODEL,
    *,
    dtype: str = "float32",
    device: str = "auto",
    progress: ProgressCallback | None = None,
    attn_implementation: str | None = None,
    device_map: str | None = None,
) -> HFBackend:
    """Load a causal LM and its tokenizer with transformers.

    ``dtype`` float32 is the default because bfloat16, while 2-3x faster on CPUs with AMX,
    moves probabilities by up to ~0.1. ``device="auto"`` picks CUDA where present;
    ``device_map="auto"`` spreads a large model over every GPU (accelerate).
    ``attn_implementation`` ("eager", "sdpa", ...) is passed to ``from_pretrained``;
    attention weights (``repcheck explain``) need "eager".
    """
    tdtype = torch_dtype(dtype)
    resolved_device = resolve_device(device) if device_map is None else "auto"
    if device_map not in (None, "auto"):
        raise RepcheckError(f"device_map must be 'auto' or unset, not {device_map!r}", param="device_map")
    target = resolve(spec, progress)
    if progress:
        where = " from the Hugging Face hub" if target.source == "hub" and not target.local_files_only else ""
        progress(f"loading {target.name}{where}", 0, 0)
    kwargs: dict[str, Any] = {"local_files_only": True} if target.local_files_only else {}
    if target.gguf_file:
        kwargs["gguf_file"] = target.gguf_file
    with quiet_transformers(gguf=target.gguf_file is not None):
        config = _load_config(target, kwargs)
        require_causal(config, spec)
        model, tokenizer = _load_weights(target, kwargs, tdtype, resolved_device, device_map, attn_implementation)
    model.eval()
    if device_map == "auto":
        resolved_device = str(model.get_input_embeddings().weight.device)
    return HFBackend(
        model=model,
        tokenizer=tokenizer,
        spec=spec,
        name=target.name,
        source=target.source,
        dtype=dtype,
        device=resolved_device,
        window=context_window(config),
        sha256=target.sha256,
        attn_implementation=attn_implementation,
    )


@contextlib.contextmanager
def quiet_transformers(gguf: bool = False):
    """Silence transformers' and the hub's logging and progress bars for the duration only:
    repcheck reports progress itself, and a notebook's own settings are restored afterwards."""
    from huggingface_hub import utils as hub_utils
    from transformers.utils import logging as hf_logging

    verbosity, bars = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
    hub_bars_off = hub_utils.are_progress_bars_disabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    hub_utils.disable_progress_bars()
    # The GGUF reader uses tqdm directly ("Converting and de-quantizing GGUF tensors...").
    gguf_module = None
    if gguf or "transformers.modeling_gguf_pytorch_utils" in sys.modules:
        import transformers.modeling_gguf_pytorch_utils as gguf_module
    old_tqdm = getattr(gguf_module, "tqdm", None)
    if old_tqdm is not None:
        gguf_module.tqdm = functools.partial(old_tqdm, disable=True)
    try:
        yield
    finally:
        if old_tqdm is not None:
            gguf_module.tqdm = old_tqdm
        hf_logging.set_verbosity(verbosity)
        with warnings.catch_warnings():  # HF_HUB_DISABLE_PROGRESS_BARS has priority: fine
            warnings.simplefilter("ignore")
            if bars:
                hf_logging.enable_progress_bar()
            if not hub_bars_off:
                hub_utils.enable_progress_bars()


def _load_config(target: ResolvedSpec, kwargs: dict[str, Any]):
    from transformers import AutoConfig

    try:
        return AutoConfig.from_pretrained(target.directory, **kwargs)
    except Exception as err:  # transformers raises OSError, ValueError, KeyError, struct.error...
        if target.source == "hub":
            raise hub_error(target, err) from None
        if target.source == "gguf":
            raise RepcheckError(
                f"{target.spec} is not a GGUF file transformers can read (corrupt or truncated?): {one_line(err)}"
            ) from None
        raise RepcheckError(f"could not read the model config in {target.spec}: {one_line(err)}") from None


def _causal_architectures() -> set[str]:
    """Every class name transformers' AutoModelForCausalLM maps a model type to."""
    from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES

    names: set[str] = set()
    for value in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES.values():
        names.update(value if isinstance(value, (list, tuple)) else [value])
    return names


def require_causal(config, spec: str) -> None:
    """Refuse encoders (BERT), encoder-decoders (T5) and anything AutoModelForCausalLM does not
    map as a causal LM (decided from transformers' own mapping, so Gemma 3's
    ``Gemma3ForConditionalGeneration`` is accepted)."""
    from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES

    model_type = getattr(config, "model_type", None)
    architectures = getattr(config, "architectures", None) or []
    reason = None
    if getattr(config, "is_encoder_decoder", False):
        reason = "it is an encoder-decoder model"
    elif model_type not in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES:
        reason = f"transformers has no causal-LM class for model type {model_type!r}"
    elif architectures and not set(architectures) & _causal_architectures():
        reason = f"its architecture is {', '.join(architectures)}"
    elif model_type in _ENCODER_FAMILIES and not getattr(config, "is_decoder", False):
        reason = f"{model_type} is a bidirectional encoder"
    if reason:
        raise RepcheckError(
            f"{spec} is not a causal language model ({reason}); repcheck needs a "
            f"decoder-only model such as GPT-2, Llama or SmolLM2"
        )


_ENCODER_FAMILIES = {
    "bert",
    "roberta",
    "xlm-roberta",
    "xlm-roberta-xl",
    "camembert",
    "electra",
    "ernie",
    "megatron-bert",
    "rembert",
    "roc_bert",
    "data2vec-text",
    "bert-generation",
    "xmod",
}


def _load_weights(target: ResolvedSpec, kwargs, tdtype, device: str, device_map: str | None, attn: str | None):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    load_kwargs = dict(kwargs, dtype=tdtype)
    if attn is not None:
        load_kwargs["attn_implementation"] = attn
    if device_map == "auto":
        load_kwargs["device_map"] = "auto"
    elif device != "cpu":
        load_kwargs["device_map"] = {"": device}  # straight onto the device, not through host memory
    try:
        tokenizer = AutoTokenizer.from_pretrained(target.directory, **kwargs)
        model = AutoModelForCausalLM.from_pretrained(target.directory, **load_kwargs)
    except RepcheckError:
        raise
    except Exception as err:
        if target.source == "hub":
            raise hub_error(target, err) from None
        if target.source == "builtin":
            raise RepcheckError(
                f"the cached copy of {target.spec} cannot be loaded ({one_line(err)}); "
                f"run `repcheck models pull --force {target.spec}`"
            ) from None
        raise RepcheckError(f"could not load the model in {target.spec}: {one_line(err)}") from None
    return model, tokenizer


def context_window(config) -> ContextWindow:
    """The longest sequence the model supports and its sliding-window layers, from the
    (text) config: ``max_position_embeddings`` and ``sliding_window`` with ``layer_types``
    or ``use_sliding_window``."""
    text = config.get_text_config() if hasattr(config, "get_text_config") else config
    max_tokens = None
    for attr in ("max_position_embeddings", "n_positions", "n_ctx", "max_sequence_length", "seq_length"):
        value = getattr(text, attr, None)
        if isinstance(value, int) and value > 0:
            max_tokens = value
            break
    layers = next(
        (v for a in ("num_hidden_layers", "n_layer", "num_layers") if isinstance(v := getattr(text, a, None), int)), 0
    )
    sliding = getattr(text, "sliding_window", None)
    if not isinstance(sliding, int) or sliding <= 0 or getattr(text, "use_sliding_window", True) is False:
        return ContextWindow(max_tokens, None, 0, layers)
    types = getattr(text, "layer_types", None)
    n_sliding = sum(t == "sliding_attention" for t in types) if types else layers
    if n_sliding == 0:
        return ContextWindow(max_tokens, None, 0, layers)
    return ContextWindow(max_tokens, sliding, n_sliding, layers)


# ---- padded batches ----------------------------------------------------------------------------
def plan_batches(lengths: Sequence[int], batch_size: int, vocab: int) -> list[list[int]]:
    """Group sequence indices, longest first, into batches of at most ``batch_size``.

    A batch also closes when its logits would exceed LOGITS_BUDGET_BYTES, or when padding
    would exceed MAX_PADDING_SHARE of its tokens: padded positions cost as much as real
    ones, so a long sequence batched with short ones would slow the whole batch down.
    """
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    batches: list[list[int]] = []
    real = 0  # real tokens in the current batch
    for i in order:
        if batches:
            cur = batches[-1]
            longest = lengths[cur[0]]  # sorted: the first is the longest
            padded = (len(cur) + 1) * longest
            if (
                len(cur) < batch_size
                and padded * vocab * 4 <= LOGITS_BUDGET_BYTES
                and padded - real - lengths[i] <= MAX_PADDING_SHARE * padded
            ):
                cur.append(i)
                real += lengths[i]
                continue
        batches.append([i])
        real = lengths[i]
    return batches


def pad_batch(seqs: Sequence[Sequence[int]], pad_id: int, padding_side: str = "left"):
    """Pack sequences into input_ids and attention_mask [B, T], padded on ``padding_side``.

    Returns (input_ids, attention_mask, offsets): sequence b occupies positions
    offsets[b] .. offsets[b] + len(seqs[b]) - 1.
    """
    import torch

    if padding_side not in ("left", "right"):
        raise RepcheckError(f"padding side must be 'left' or 'right', not {padding_side!r}", param="padding_side")
    B, T = len(seqs), max(len(s) for s in seqs)
    input_ids = torch.full((B, T), pad_id, dtype=torch.long)
    attention_mask = torch.zeros((B, T), dtype=torch.long)
    offsets = []
    for b, s in enumerate(seqs):
        off = T - len(s) if padding_side == "left" else 0
        input_ids[b, off : off + len(s)] = torch.tensor(list(s), dtype=torch.long)
        attention_mask[b, off : off + len(s)] = 1
        offsets.append(off)
    return input_ids, attention_mask, offsets


def padded_forward(model, seqs: Sequence[Sequence[int]], pad_id: int, device, padding_side: str = "left"):
    """One forward pass over a padded batch.

    Returns (logits [B, T, V], input_ids [B, T], offsets) as ``pad_batch`` lays them out.
    Position ids count real tokens only, so a padded sequence sees the same positions as it
    would alone.
    """
    input_ids, attention_mask, offsets = pad_batch(seqs, pad_id, padding_side)
    position_ids = (attention_mask.cumsum(-1) - 1).clamp(min=0)
    input_ids = input_ids.to(device)
    logits = model(
        input_ids=input_ids,
        attention_mask=attention_mask.to(device),
        position_ids=position_ids.to(device),
        use_cache=False,
    ).logits
    return logits, input_ids, offsets


__all__ = ["BUILTIN_MODELS", "DEFAULT_MODEL", "HFBackend", "LoadedModel", "load_hf"]
