"""Hidden states of a recurrent model over time, projected on their first two principal components.

During the test pass, for a model that exposes ``sequence_outputs(x) -> [B, T, H]`` (archlab's recurrent
classifiers), the callback collects the hidden states ``h_t`` of the first ``max_sequences`` test
sequences, centres them (over all sequences and steps), and projects them on the two leading principal
directions (PCA by SVD of the ``[N·T, H]`` matrix): ``p_t = (h_t − mean) · V[:, :2]``. It writes
``hidden_states.npz`` (``projections [N, T, 2]``, ``labels [N]``, ``explained [2]``: each component's share
of the variance) into the run directory, atomically; the report draws how each class's trajectory
separates as the sequence is read. Models without ``sequence_outputs`` are left alone.

Texts (batches of ``(ids, lengths)``): the principal directions are fitted on the real steps only, steps past a
text's length are NaN in ``projections`` and ``lengths [N]`` is saved. With scikit-learn, ``tsne [N, 2]`` holds a
t-SNE map (van der Maaten & Hinton 2008) of each sequence's final state: neighbours in it are sequences the
network ended up treating alike, which PCA's two linear directions can hide.

The padding-robustness check appends ``extra`` steps to each sequence and measures how far the class
probabilities move (total variation). Images: steps of zeros and of noise. Texts: ``<pad>`` ids with the same
lengths (a masked model must not move at all) and random words with the lengths extended (it should).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch

from archlab.io import atomic_path

HIDDEN_STATES = "hidden_states.npz"
APPENDED = {"zeros": torch.zeros_like, "noise": torch.randn_like}  # what is appended to each sequence


def principal_projection(states: torch.Tensor, components: int = 2,
                         lengths: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """``[N, T, H]`` → (projections ``[N, T, components]``, explained-variance ratios ``[components]``).

    With ``lengths [N]`` only the first ``lengths[i]`` steps of sequence i are fitted; later steps are NaN.
    """
    valid = torch.ones(states.shape[:2], dtype=torch.bool) if lengths is None else (
        torch.arange(states.shape[1]) < lengths[:, None])
    flat = states.reshape(-1, states.shape[-1]).double()
    mean = flat[valid.reshape(-1)].mean(dim=0)
    _, singular, vh = torch.linalg.svd(flat[valid.reshape(-1)] - mean, full_matrices=False)
    variance = singular**2
    explained = variance[:components] / variance.sum().clamp_min(1e-300)
    projected = ((flat - mean) @ vh[:components].T).reshape(*states.shape[:2], -1).float()
    return projected.masked_fill(~valid[..., None], float("nan")), explained.float()


def tsne_of_final_states(final: torch.Tensor, seed: int = 0) -> np.ndarray | None:
    """A 2-D t-SNE map of ``[N, H]`` final states (scikit-learn), or None when it is missing or N is tiny."""
    try:
        from sklearn.manifold import TSNE
    except ImportError:
        return None
    if len(final) < 10:
        return None
    perplexity = min(30.0, (len(final) - 1) / 3)
    tsne = TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed)
    return tsne.fit_transform(final.double().numpy()).astype(np.float32)


class HiddenStateMonitor(L.Callback):
    """Save the 2-D PCA of the hidden states of up to ``max_sequences`` test sequences (0: off)."""

    def __init__(self, run_dir: str | Path, max_sequences: int = 256) -> None:
        self.path = Path(run_dir) / HIDDEN_STATES
        self.max_sequences = max_sequences
        self._states: list[torch.Tensor] = []
        self._lengths: list[torch.Tensor] = []
        self._labels: list[torch.Tensor] = []
        self._moved: dict[str, list[torch.Tensor]] = {}
        self._extra = 0  # steps appended in the padding check

    def _collected(self) -> int:
        return sum(len(s) for s in self._states)

    def on_test_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._states, self._lengths, self._labels, self._moved = [], [], [], {}

    def on_test_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any,
                          batch_idx: int, dataloader_idx: int = 0) -> None:
        model = getattr(pl_module, "model", pl_module)
        needed = self.max_sequences - self._collected()
        if needed <= 0 or not hasattr(model, "sequence_outputs"):
            return
        x, y = batch
        with torch.no_grad():
            if isinstance(x, torch.Tensor):
                states = model.sequence_outputs(x[:needed])
                lengths = torch.full((len(states),), states.shape[1])
                if hasattr(model, "as_sequence"):
                    self._padding_check(model, model.as_sequence(x[:needed]))
            else:  # texts: (ids, lengths)
                ids, lengths = x[0][:needed], x[1][:needed]
                states = model.sequence_outputs(ids, lengths)
                self._text_padding_check(model, ids, lengths)
        self._states.append(states.float().cpu())
        self._lengths.append(lengths.cpu())
        self._labels.append(y[:needed].cpu())

    def _record_moves(self, kind: str, clean: torch.Tensor, moved: torch.Tensor) -> None:
        distance = 0.5 * (clean - moved).abs().sum(1)
        changed = (clean.argmax(1) != moved.argmax(1)).float()
        self._moved.setdefault(kind, []).append(torch.stack([distance, changed], 1).cpu())

    def _text_padding_check(self, model: torch.nn.Module, ids: torch.Tensor, lengths: torch.Tensor) -> None:
        """``<pad>`` ids appended (lengths kept) and random words appended (lengths extended)."""
        extra = max(1, ids.shape[1] // 7)
        clean = model(ids, lengths).float().softmax(1)
        padded = torch.cat([ids, torch.zeros_like(ids[:, :extra])], dim=1)
        self._record_moves("<pad>", clean, model(padded, lengths).float().softmax(1))
        generator = torch.Generator().manual_seed(0)  # the same words every time: a report is reproducible
        vocabulary = model.embedding.num_embeddings
        words = torch.randint(2, vocabulary, (ids.shape[0], extra), generator=generator).to(ids.device)
        rows = torch.arange(ids.shape[0], device=ids.device)[:, None]
        noisy = torch.cat([ids, torch.zeros_like(words)], dim=1)
        noisy[rows, lengths.to(ids.device)[:, None] + torch.arange(extra, device=ids.device)] = words
        self._record_moves("random words", clean, model(noisy, lengths + extra).float().softmax(1))
        self._extra = extra

    def _padding_check(self, model: torch.nn.Module, sequence: torch.Tensor) -> None:
        """Per sequence: (total-variation distance, prediction changed) for each kind of appended steps."""
        extra = max(1, sequence.shape[1] // 7)
        clean = model(sequence).float().softmax(1)
        generator_state = torch.random.get_rng_state()
        torch.manual_seed(0)  # the same noise every time: a report is reproducible
        for kind, make in APPENDED.items():
            tail = make(sequence[:, :extra])
            self._record_moves(kind, clean, model(torch.cat([sequence, tail], dim=1)).float().softmax(1))
        torch.random.set_rng_state(generator_state)
        self._extra = extra

    def on_test_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not self._states or not trainer.is_global_zero:
            return
        steps = max(s.shape[1] for s in self._states)
        states = torch.cat([torch.nn.functional.pad(s, (0, 0, 0, steps - s.shape[1])) for s in self._states])
        lengths = torch.cat(self._lengths)
        projections, explained = principal_projection(states, lengths=lengths)
        final = states[torch.arange(len(states)), lengths - 1]
        tsne = tsne_of_final_states(final)
        with atomic_path(self.path) as tmp:
            with open(tmp, "wb") as handle:
                np.savez_compressed(handle, projections=projections.numpy(), labels=torch.cat(self._labels).numpy(),
                                    lengths=lengths.numpy(), explained=explained.numpy(),
                                    **({"tsne": tsne} if tsne is not None else {}), **self._padding_summary())
        self._states, self._lengths, self._labels, self._moved = [], [], [], {}

    def _padding_summary(self) -> dict[str, np.ndarray]:
        if not self._moved:
            return {}
        kinds = list(self._moved)
        means = np.array([torch.cat(self._moved[k]).mean(0).numpy() for k in kinds])  # [kinds, 2]
        return {"padding_kinds": np.array(kinds), "padding_steps": np.array(self._extra),
                "padding_distance": means[:, 0], "padding_changed": means[:, 1]}
