"""Text generation from a trained language model: continue a prompt one sampled token at a time.

Each new token is drawn from the model's next-token distribution, sharpened or flattened by a temperature
and optionally cut to the k most likely tokens::

    p_i ∝ exp(z_i / T)   over the top-k logits z (all of them when k is None)
    T → 0: greedy decoding (argmax); T = 1: the model's own distribution; T > 1: more random

(top-k sampling: Fan, Lewis & Dauphin 2018, "Hierarchical Neural Story Generation"), and optionally cut
further to the nucleus, the fewest most likely tokens whose probabilities sum to at least top_p::

    keep the smallest set N with Σ_{i ∈ N} p_i ≥ top_p, then renormalise over N

(top-p or nucleus sampling: Holtzman et al. 2020, "The Curious Case of Neural Text Degeneration").

The model follows the language-model contract ``logits, state = model(tokens [B, T], state)``: the prompt is
read once, then every step feeds only the token just drawn together with the state of the previous call. An
RNN's state is its hidden state, so each new token costs O(1) work whatever the length of the text so far; a
Transformer whose state is its key/value cache works unchanged (``models/transformer.py``: one position's work
per layer per new token). A model with a fixed number of positions (its ``context`` attribute) reads at most
that many prompt tokens: a longer prompt is cropped to its last ``context`` tokens, with a note.

``generate(run_dir, ...)`` needs nothing but the run directory: the model is rebuilt from ``meta.json`` +
``weights.safetensors`` and the tokenizer from the vocabulary stored in ``meta.json``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from archlab.data.text import CharTokenizer
from archlab.errors import ConfigError, RunError
from archlab.runs import load_model

MAX_LENGTH = 100_000
# Tokenizer kind stored in meta.json → the class that rebuilds it.
TOKENIZERS = {"char": CharTokenizer}
# What to use instead, for runs of other tasks.
OTHER_COMMANDS = {"classify": "`archlab predict RUN_DIR FILE` (classify inputs) or `archlab eval RUN_DIR`"}


def check_sampling(length: int, temperature: float, top_k: int | None, top_p: float | None = None) -> None:
    """Refuse settings that cannot sample, saying what range is accepted."""
    if not 0 <= length <= MAX_LENGTH:
        raise ConfigError(f"length must be between 0 and {MAX_LENGTH:,} tokens, got {length}.")
    if not temperature >= 0:  # also refuses NaN
        raise ConfigError(f"temperature must be ≥ 0 (0: always the most likely token), got {temperature}.")
    if top_k is not None and top_k < 1:
        raise ConfigError(f"top_k must be ≥ 1 (or left out to sample from every token), got {top_k}.")
    if top_p is not None and not 0 < top_p <= 1:
        raise ConfigError(f"top_p must be in (0, 1] (the probability mass kept; 1 keeps every token), got {top_p}.")


def nucleus(probabilities: torch.Tensor, top_p: float) -> torch.Tensor:
    """``probabilities [B, V]`` restricted to each row's nucleus (the fewest most likely tokens holding ≥ top_p of
    the mass; ties broken by sort order) and renormalised."""
    ordered, order = probabilities.sort(dim=-1, descending=True)
    before = ordered.cumsum(-1) - ordered  # mass of the more likely tokens: the most likely one is always kept
    ordered = ordered.masked_fill(before >= top_p, 0.0)
    kept = torch.zeros_like(probabilities).scatter(-1, order, ordered)
    return kept / kept.sum(-1, keepdim=True)


def next_token(logits: torch.Tensor, temperature: float, top_k: int | None,
               generator: torch.Generator | None, exclude: Sequence[int] = (),
               top_p: float | None = None) -> torch.Tensor:
    """One token id per row of ``logits [B, V]``: argmax at temperature 0, else a draw from the tempered top-k,
    cut to its top-p nucleus when ``top_p`` is given.

    Ids in ``exclude`` (e.g. ``<unk>``) are never chosen.
    """
    logits = logits.float().cpu()
    if exclude:
        logits = logits.index_fill(-1, torch.as_tensor(list(exclude), dtype=torch.long), float("-inf"))
    if temperature == 0 or top_k == 1:
        return logits.argmax(-1)
    if top_k is not None and top_k < logits.shape[-1]:
        kth = logits.topk(top_k, dim=-1).values[:, -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    probabilities = torch.softmax(logits / temperature, dim=-1)
    if top_p is not None and top_p < 1:
        probabilities = nucleus(probabilities, top_p)
    return torch.multinomial(probabilities, 1, generator=generator).squeeze(1)


def _language_output(output: object) -> tuple[torch.Tensor, object]:
    if not (isinstance(output, tuple) and len(output) == 2 and torch.is_tensor(output[0]) and output[0].ndim == 3):
        raise RunError("This model does not follow the language-model contract `logits [B, T, V], state = "
                       "model(tokens, state)`, so it cannot generate text.")
    return output


def crop_to_context(model: nn.Module, prompt_ids: torch.Tensor) -> tuple[torch.Tensor, str | None]:
    """The prompt's last ``model.context`` ids when it is longer (with a note saying so), else the prompt."""
    context = getattr(model, "context", None)
    if context is None or prompt_ids.numel() <= context:
        return prompt_ids, None
    return prompt_ids[-context:], (f"The prompt has {prompt_ids.numel():,} tokens, more than the model's context of "
                                   f"{context:,}: only its last {context:,} are read.")


@torch.inference_mode()
def sample_tokens(model: nn.Module, prompt_ids: torch.Tensor, length: int, temperature: float = 1.0,
                  top_k: int | None = None, generator: torch.Generator | None = None,
                  exclude: Sequence[int] = (), top_p: float | None = None) -> torch.Tensor:
    """``length`` token ids continuing ``prompt_ids`` (1-d, non-empty), the model's state carried between steps.

    The prompt (cropped to the model's ``context``, see :func:`crop_to_context`) is read in one call; each later
    call reads only the token just drawn, with the state returned by the previous call. Ids in ``exclude`` are
    never drawn.
    """
    check_sampling(length, temperature, top_k, top_p)
    if prompt_ids.ndim != 1 or prompt_ids.numel() == 0:
        raise ConfigError("The prompt is empty: give at least one token to start from.")
    prompt_ids, _ = crop_to_context(model, prompt_ids)
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    try:
        logits, state = _language_output(model(prompt_ids.to(device)[None], None))
        drawn = []
        for step in range(length):
            token = next_token(logits[:, -1], temperature, top_k, generator, exclude, top_p)
            drawn.append(token)
            if step + 1 < length:  # the last token needs no prediction after it
                logits, state = _language_output(model(token.to(device)[:, None], state))
    finally:
        model.train(was_training)
    return torch.cat(drawn) if drawn else torch.zeros(0, dtype=torch.long)


def check_prompt(tokenizer: CharTokenizer, prompt: str) -> torch.Tensor:
    """The prompt's ids; a clear error for an empty prompt or characters the model never saw in training."""
    if not prompt:
        raise ConfigError('The prompt is empty: give at least one character to start from, e.g. --prompt "ROMEO:".')
    unknown = sorted(set(prompt) - set(tokenizer.chars))
    if unknown:
        listed = ", ".join(repr(c) for c in unknown)
        raise ConfigError(
            f"The prompt has {len(unknown)} character(s) that are not in the model's vocabulary: {listed}. They "
            f"would map to <unk>, which the model never saw in its training text; remove or replace them. The "
            f"vocabulary: {''.join(tokenizer.chars)!r}.")
    return tokenizer.encode(prompt)


def continue_text(model: nn.Module, tokenizer: CharTokenizer, prompt: str, length: int, temperature: float = 1.0,
                  top_k: int | None = None, generator: torch.Generator | None = None,
                  top_p: float | None = None) -> str:
    """The ``length`` characters a model in memory writes after ``prompt`` (the prompt is not repeated).

    ``<unk>`` is never written: it stands for characters absent from the training text.
    """
    ids = sample_tokens(model, check_prompt(tokenizer, prompt), length, temperature, top_k, generator,
                        exclude=(tokenizer.unk_id,), top_p=top_p)
    return tokenizer.decode(ids)


def tokenizer_from_meta(meta: dict, run_dir: Path) -> CharTokenizer:
    """The run's tokenizer; a RunError naming the right command when the run is not a language model."""
    stored = meta.get("tokenizer")
    if not isinstance(stored, dict):
        task = meta.get("task") or "classify"
        other = OTHER_COMMANDS.get(task, "`archlab eval RUN_DIR`")
        raise RunError(f"{run_dir} is a {task} run of {meta.get('model')!r}, not a language model: it has no "
                       f"tokenizer to write text with. Use {other}; generate text with a run trained with "
                       f"`--task language`, e.g. `archlab train lstm-lm --data shakespeare`.")
    kind = stored.get("kind")
    if kind not in TOKENIZERS:
        raise RunError(f"{run_dir} stores a {kind!r} tokenizer; generation reads {', '.join(TOKENIZERS)}.")
    return TOKENIZERS[kind].from_dict(stored)


@dataclass
class Generated:
    """New text from a run, with the notes on how the prompt was read (e.g. cropped to the context)."""

    text: str
    notes: list[str] = field(default_factory=list)


def generate_text(run_dir: str | Path, prompt: str, length: int = 400, temperature: float = 1.0,
                  top_k: int | None = None, seed: int | None = None, top_p: float | None = None) -> Generated:
    """:func:`generate`, with the notes (a prompt longer than the model's context is cropped)."""
    check_sampling(length, temperature, top_k, top_p)
    loaded = load_model(run_dir)
    tokenizer = tokenizer_from_meta(loaded.meta, Path(run_dir))
    _, cropped = crop_to_context(loaded.model, check_prompt(tokenizer, prompt))
    generator = torch.Generator()
    if seed is None:
        generator.seed()
    else:
        generator.manual_seed(seed)
    text = continue_text(loaded.model, tokenizer, prompt, length, temperature, top_k, generator, top_p)
    return Generated(text, [cropped] if cropped else [])


def generate(run_dir: str | Path, prompt: str, length: int = 400, temperature: float = 1.0,
             top_k: int | None = None, seed: int | None = None, top_p: float | None = None) -> str:
    """Continue ``prompt`` with the language model of ``run_dir``; returns the ``length`` new characters.

    ``temperature`` 0 is greedy decoding; ``top_k`` keeps the k most likely characters at each step and ``top_p``
    the smallest set holding that much probability; the same ``seed`` gives the same text (None: a fresh random
    draw each call). A prompt longer than the model's context is cropped to its last ``context`` characters.
    """
    return generate_text(run_dir, prompt, length, temperature, top_k, seed, top_p).text
