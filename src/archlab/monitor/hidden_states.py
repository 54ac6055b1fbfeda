"""Hidden states of a recurrent model over time, projected on their first two principal components.

During the test pass, for a model that exposes ``sequence_outputs(x) -> [B, T, H]`` (archlab's recurrent
classifiers), the callback collects the hidden states ``h_t`` of the first ``max_sequences`` test
sequences, centres them (over all sequences and steps), and projects them on the two leading principal
directions (PCA by SVD of the ``[N·T, H]`` matrix): ``p_t = (h_t − mean) · V[:, :2]``. It writes
``hidden_states.npz`` (``projections [N, T, 2]``, ``labels [N]``, ``explained [2]``: each component's share
of the variance) into the run directory, atomically; the report draws how each class's trajectory
separates as the sequence is read. Models without ``sequence_outputs`` are left alone.
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


def principal_projection(states: torch.Tensor, components: int = 2) -> tuple[torch.Tensor, torch.Tensor]:
    """``[N, T, H]`` → (projections ``[N, T, components]``, explained-variance ratios ``[components]``)."""
    flat = states.reshape(-1, states.shape[-1]).double()
    centred = flat - flat.mean(dim=0)
    _, singular, vh = torch.linalg.svd(centred, full_matrices=False)
    variance = singular**2
    explained = variance[:components] / variance.sum().clamp_min(1e-300)
    projected = centred @ vh[:components].T
    return projected.reshape(*states.shape[:2], -1).float(), explained.float()


class HiddenStateMonitor(L.Callback):
    """Save the 2-D PCA of the hidden states of up to ``max_sequences`` test sequences (0: off)."""

    def __init__(self, run_dir: str | Path, max_sequences: int = 256) -> None:
        self.path = Path(run_dir) / HIDDEN_STATES
        self.max_sequences = max_sequences
        self._states: list[torch.Tensor] = []
        self._labels: list[torch.Tensor] = []
        self._moved: dict[str, list[torch.Tensor]] = {}
        self._extra = 0  # steps appended in the padding check

    def _collected(self) -> int:
        return sum(len(s) for s in self._states)

    def on_test_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._states, self._labels, self._moved = [], [], {}

    def on_test_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any,
                          batch_idx: int, dataloader_idx: int = 0) -> None:
        model = getattr(pl_module, "model", pl_module)
        needed = self.max_sequences - self._collected()
        if needed <= 0 or not hasattr(model, "sequence_outputs"):
            return
        x, y = batch
        if not isinstance(x, torch.Tensor):  # (ids, lengths) texts: steps past each length are padding
            return
        with torch.no_grad():
            self._states.append(model.sequence_outputs(x[:needed]).float().cpu())
            if hasattr(model, "as_sequence"):
                self._padding_check(model, model.as_sequence(x[:needed]))
        self._labels.append(y[:needed].cpu())

    def _padding_check(self, model: torch.nn.Module, sequence: torch.Tensor) -> None:
        """Per sequence: (total-variation distance, prediction changed) for each kind of appended steps."""
        extra = max(1, sequence.shape[1] // 7)
        clean = model(sequence).float().softmax(1)
        generator_state = torch.random.get_rng_state()
        torch.manual_seed(0)  # the same noise every time: a report is reproducible
        for kind, make in APPENDED.items():
            tail = make(sequence[:, :extra])
            moved = model(torch.cat([sequence, tail], dim=1)).float().softmax(1)
            distance = 0.5 * (clean - moved).abs().sum(1)
            changed = (clean.argmax(1) != moved.argmax(1)).float()
            self._moved.setdefault(kind, []).append(torch.stack([distance, changed], 1).cpu())
        torch.random.set_rng_state(generator_state)
        self._extra = extra

    def on_test_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not self._states or not trainer.is_global_zero:
            return
        projections, explained = principal_projection(torch.cat(self._states))
        with atomic_path(self.path) as tmp:
            with open(tmp, "wb") as handle:
                np.savez_compressed(handle, projections=projections.numpy(), labels=torch.cat(self._labels).numpy(),
                                    explained=explained.numpy(), **self._padding_summary())
        self._states, self._labels, self._moved = [], [], {}

    def _padding_summary(self) -> dict[str, np.ndarray]:
        if not self._moved:
            return {}
        kinds = list(self._moved)
        means = np.array([torch.cat(self._moved[k]).mean(0).numpy() for k in kinds])  # [kinds, 2]
        return {"padding_kinds": np.array(kinds), "padding_steps": np.array(self._extra),
                "padding_distance": means[:, 0], "padding_changed": means[:, 1]}
