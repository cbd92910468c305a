"""Which heads and neurons make a model repeat.

Everything here works through ``HookableBackend`` (``repcheck.backends.base``): the backend
finds its heads and neurons and hooks them (the hf backend: ``backends.hf_hooks``).
``ablation`` is an ablation as a context the caller wraps around any measurement (also
``--ablate-heads`` of probe and compare), ``scores`` scores every head (induction, duplicate
token, TransformerLens' induction score) and neuron (its rise from copy 0 to later copies) on
the probe's own input, ``run`` ablates the top ones against random controls and probes again,
``figures`` draws the result.

    >>> from repcheck import load_model
    >>> from repcheck.explain import explain
    >>> model = load_model(attn_implementation="eager")
    >>> result = explain(model, ["The committee approved the new budget."], repeats=8)
    >>> result.heads_frame().head()
"""

from ..backends.hf_hooks import SUPPORTED
from .ablation import Ablation, parse_heads
from .run import ExplainResult, explain

__all__ = ["SUPPORTED", "Ablation", "ExplainResult", "explain", "parse_heads"]
