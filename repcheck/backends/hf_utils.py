"""What every backend needs from transformers, whatever runs the model: reading a checkpoint's
config and generation config quietly, refusing models that are not causal LMs, the context
window, the stop ids, dtypes and devices, and logits turned into ``Scored``.

A leaf: it imports nothing of the backends but ``base`` and ``spec``. torch and transformers
are imported inside the functions, so importing repcheck stays fast.
"""

from __future__ import annotations

import contextlib
import functools
import sys
import warnings
from typing import TYPE_CHECKING, Any

from ..errors import RepcheckError
from .base import ContextWindow, Scored
from .spec import ResolvedSpec, hub_error, one_line

if TYPE_CHECKING:  # pragma: no cover
    import torch

DTYPES = ("float32", "bfloat16", "float16")
DEVICES = ("auto", "cpu", "cuda", "mps")


def check_dtype(dtype: str) -> str:
    if dtype not in DTYPES:
        raise RepcheckError(f"unknown dtype {dtype!r}; choose one of {', '.join(DTYPES)}", param="dtype")
    return dtype


def torch_dtype(dtype: str) -> torch.dtype:
    import torch

    return getattr(torch, check_dtype(dtype))


def resolve_device(device: str) -> str:
    """``auto`` is cuda where torch sees a GPU, else cpu; an unavailable device is refused."""
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


def hub_kwargs(target: ResolvedSpec) -> dict[str, Any]:
    """``from_pretrained`` keyword arguments for a resolved spec (offline hub cache, GGUF file)."""
    kwargs: dict[str, Any] = {"local_files_only": True} if target.local_files_only else {}
    if target.gguf_file:
        kwargs["gguf_file"] = target.gguf_file
    return kwargs


def load_config(target: ResolvedSpec):
    """The checkpoint's config, every failure a one-line RepcheckError naming the spec."""
    from transformers import AutoConfig

    try:
        with quiet_transformers(gguf=target.gguf_file is not None):
            return AutoConfig.from_pretrained(target.directory, **hub_kwargs(target))
    except Exception as err:  # transformers raises OSError, ValueError, KeyError, struct.error...
        if target.source == "hub":
            raise hub_error(target, err) from None
        if target.gguf_file:
            raise RepcheckError(
                f"{target.spec} is not a GGUF file transformers can read (corrupt or truncated?): {one_line(err)}"
            ) from None
        raise RepcheckError(f"could not read the model config in {target.spec}: {one_line(err)}") from None


def load_tokenizer(source: str, what: str, **kwargs: Any):
    """A Hugging Face tokenizer from a directory, hub id or GGUF (``gguf_file=``)."""
    from transformers import AutoTokenizer

    try:
        with quiet_transformers(gguf="gguf_file" in kwargs):
            return AutoTokenizer.from_pretrained(source, **kwargs)
    except Exception as err:  # noqa: BLE001 - any failure to find a tokenizer is the user's to fix
        raise RepcheckError(
            f"cannot load a tokenizer for {what} ({type(err).__name__}: {one_line(err)}); "
            "give the model's Hugging Face tokenizer with --tokenizer DIR_OR_HUB_ID",
            param="tokenizer",
        ) from None


def load_generation_config(target: ResolvedSpec):
    """The checkpoint's generation_config, or None where it has none."""
    from transformers import GenerationConfig

    try:
        with quiet_transformers():
            return GenerationConfig.from_pretrained(target.directory, **hub_kwargs(target))
    except Exception:  # noqa: BLE001 - no generation_config.json: the tokenizer's EOS stops generation
        return None


def _causal_architectures() -> set[str]:
    """Every class name transformers' AutoModelForCausalLM maps a model type to."""
    from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES

    names: set[str] = set()
    for value in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES.values():
        names.update(value if isinstance(value, (list, tuple)) else [value])
    return names


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


def eos_ids_of(generation_config, tokenizer) -> list[int]:
    """Every stop id: the checkpoint generation config's (often several for chat models),
    else the tokenizer's EOS. Every backend stops on the same ids."""
    configured = getattr(generation_config, "eos_token_id", None)
    if configured is None:
        configured = tokenizer.eos_token_id
    if configured is None:
        return []
    return [int(i) for i in (configured if isinstance(configured, (list, tuple)) else [configured])]


def scored(logp: torch.Tensor, lmax: torch.Tensor, arg: torch.Tensor) -> Scored:
    """A sequence's log p, log pmax and argmax (``metrics.next_token_probs``) as ``Scored``,
    moved to the CPU before widening to float64 (MPS has no float64)."""
    return Scored.from_logprobs(logp.cpu().double().numpy(), lmax.cpu().double().numpy(), arg.cpu().numpy())
