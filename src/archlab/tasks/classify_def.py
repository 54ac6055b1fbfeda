"""The ``classify`` task wired into a run: images (MNIST, Fashion-MNIST) and labelled texts (SpamAssassin).

Images come as uint8 tensors, normalized by the training split's statistics and optionally augmented
(``archlab.data.BatchLoader``). Texts are split into train / validation / test stratified by class, a word
vocabulary is fitted on the training split only, and each batch is ``((ids [B, T], lengths [B]), labels)``,
padded to the batch's longest text: the model packs the sequences (``pack_padded_sequence``), so padding
changes neither its state nor its output.
"""

from __future__ import annotations

import dataclasses
import inspect
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch

from archlab.config import TrainConfig
from archlab.data import Augment, AugmentConfig, BatchLoader, ImageData, load_image_data
from archlab.data.fetch import get_spec
from archlab.data.spam import stratified_split
from archlab.data.text_batches import TextData, TokenBatchLoader, load_text_data
from archlab.errors import ConfigError
from archlab.models import get_model_info
from archlab.runs import write_predictions
from archlab.tasks.base import OptimSettings, TaskDef, register_task
from archlab.tasks.classify import ClassifyTask


@dataclass
class TextDataOptions:
    """How a labelled text data set becomes token splits (shared by ``classify`` and ``mlm``: same vocabulary)."""

    max_length: int = 400  # words kept from the start of each text
    vocab_size: int = 20000  # most frequent training words kept (with <pad> and <unk>)
    min_count: int = 2  # words seen fewer times in training become <unk>
    val_fraction: float = 0.1
    test_fraction: float = 0.2

    def __post_init__(self) -> None:
        if self.max_length < 1 or self.vocab_size < 3 or self.min_count < 1:
            raise ValueError("max_length must be ≥ 1, vocab_size ≥ 3 and min_count ≥ 1")


@dataclass
class ClassifyOptions(TextDataOptions):
    """Settings of ``--task classify``: the text data options, and the share of training labels used."""

    label_fraction: float = 1.0  # a stratified, seeded part of the TRAINING split (images or texts)

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 0.0 < self.label_fraction <= 1.0:
            raise ValueError(f"label_fraction must be in (0, 1], got {self.label_fraction}")


def labelled_subset(data: ImageData | TextData, fraction: float, seed: int) -> ImageData | TextData:
    """``data`` with only ``fraction`` of its training split, stratified by class; validation and test untouched."""
    if fraction >= 1.0:
        return data
    keep = torch.as_tensor(stratified_split(data.train.labels.numpy(), 0.0, 1.0 - fraction, seed)[0])
    train = data.train
    fields = (train.ids, train.lengths) if isinstance(data, TextData) else (train.images,)
    return dataclasses.replace(data, train=type(train)(*(t[keep] for t in fields), train.labels[keep]))


@register_task
class ClassifyDef(TaskDef):
    name: ClassVar[str] = "classify"
    data_kinds: ClassVar[tuple[str, ...]] = ("image", "text")
    description: ClassVar[str] = ("many-to-one: images or texts → a class (accuracy, macro precision/recall/F1, "
                                  "confusion matrix)")
    options: ClassVar[type] = ClassifyOptions
    monitor: ClassVar[tuple[str, str]] = ("val_acc", "max")
    headline: ClassVar[str] = "accuracy"
    cv_methods: ClassVar[tuple[str, ...]] = ("kfold",)

    def check(self, config: TrainConfig, data_kind: str) -> None:
        super().check(config, data_kind)
        spec = get_spec(config.data)
        if not spec.classes:
            raise ConfigError(f"--data {config.data} has no labels to classify. Label-free text trains a language "
                              f"model: `archlab train lstm-lm --data {config.data}`.")
        if data_kind == "text" and config.cv:
            raise ConfigError("Cross-validation of text classification is not available; drop --cv.")
        if data_kind == "text" and "vocab_size" not in inspect.signature(get_model_info(config.model).builder).parameters:
            raise ConfigError(f"Model {config.model!r} reads images, not words: --data {config.data} is a text data "
                              "set. Text classification needs a model with a word embedding: lstm, gru, rnn, bow or bert.")

    def load(self, config: TrainConfig) -> ImageData | TextData:
        o = self.settings(config)
        if get_spec(config.data).kind == "text":
            data = load_text_data(config.data, config.data_dir, val_fraction=o.val_fraction,
                                  test_fraction=o.test_fraction, seed=config.seed, max_length=o.max_length,
                                  vocab_size=o.vocab_size, min_count=o.min_count)
        else:
            data = load_image_data(config.data, config.data_dir, config.val_size, config.seed)
        return labelled_subset(data, o.label_fraction, config.seed)

    def model_args(self, config: TrainConfig, data: ImageData | TextData) -> dict[str, Any]:
        if isinstance(data, TextData):
            return {"num_classes": len(data.classes), "vocab_size": data.tokenizer.vocab_size}
        _, channels, height, _ = data.train.images.shape
        return {"num_classes": len(data.classes), "in_channels": channels, "input_size": height}

    def loaders(self, config: TrainConfig, data: ImageData | TextData, rank: int, world_size: int):
        drop_last = len(data.train) > config.batch_size  # every step sees a full batch
        if isinstance(data, TextData):
            common = {"rank": rank, "world_size": world_size}
            train = TokenBatchLoader(data.train, config.batch_size, shuffle=True, drop_last=drop_last,
                                     seed=config.seed, **common)
            val = TokenBatchLoader(data.val, config.eval_batch_size, shuffle=False, **common) if len(data.val) else None
            return train, val, TokenBatchLoader(data.test, config.eval_batch_size, shuffle=False)
        mean, std = normalization(config, data)
        augment_config = AugmentConfig.from_dict(config.augment)
        augment = Augment(augment_config) if augment_config.enabled else None
        common = {"mean": mean, "std": std, "channels_last": config.channels_last}
        train = BatchLoader(data.train, config.batch_size, shuffle=True, drop_last=drop_last,
                            seed=config.seed, augment=augment, rank=rank, world_size=world_size, **common)
        val = BatchLoader(data.val, config.eval_batch_size, shuffle=False, rank=rank, world_size=world_size,
                          **common) if len(data.val) else None
        return train, val, BatchLoader(data.test, config.eval_batch_size, shuffle=False, **common)

    def example_input(self, data: ImageData | TextData) -> tuple:
        if isinstance(data, TextData):
            length = int(data.train.lengths.float().mean().round().clamp_min(1))
            return (torch.ones(1, length, dtype=torch.long), torch.tensor([length]))
        return tuple(data.train.images.shape[1:])

    def build(self, config: TrainConfig, data: ImageData | TextData, model, optim: OptimSettings) -> ClassifyTask:
        return ClassifyTask(model, optim, num_classes=len(data.classes), label_smoothing=config.label_smoothing)

    def cv_folds(self, config: TrainConfig, data: ImageData) -> list[ImageData]:
        """K shuffled folds of train + validation; each fold is validated on its held-out part."""
        from archlab.data import TensorSplit, kfold_splits

        full = TensorSplit(torch.cat([data.train.images, data.val.images]), torch.cat([data.train.labels, data.val.labels]))
        return [ImageData(data.name, train, val, data.test, data.classes, data.mean, data.std)
                for train, val in kfold_splits(full, config.cv, config.seed)]

    def test_metrics(self, results: dict[str, float]) -> dict[str, float]:
        metrics = super().test_metrics(results)
        metrics["accuracy"] = metrics.pop("acc")
        return metrics

    def meta(self, config: TrainConfig, data: ImageData | TextData) -> dict[str, Any]:
        if isinstance(data, TextData):
            return {"classes": list(data.classes), "tokenizer": data.tokenizer.to_dict(),
                    "max_length": data.max_length, "input_kind": "text"}
        mean, std = normalization(config, data)
        return {"classes": list(data.classes), "normalization": {"mean": mean, "std": std},
                "input_shape": list(data.train.images.shape[1:]), "input_kind": "image"}

    def save_outputs(self, run_dir: Path, config: TrainConfig, data: ImageData | TextData,
                     module: ClassifyTask) -> dict[str, Any]:
        labels = torch.cat([y for y, _ in module.test_outputs])
        probs = torch.cat([p for _, p in module.test_outputs])
        examples = data.test_texts if isinstance(data, TextData) else data.test.images
        write_predictions(run_dir, labels, probs, examples)
        return {"per_class": per_class_scores(labels.numpy(), probs.argmax(1).numpy(), data.classes)}


def normalization(config: TrainConfig, data: ImageData) -> tuple[float, float]:
    """Pixel mean/std for normalizing: the config's when set, else the training split's own."""
    mean = config.normalize_mean if config.normalize_mean is not None else data.mean
    std = config.normalize_std if config.normalize_std is not None else data.std
    return mean, std


def per_class_scores(labels: np.ndarray, preds: np.ndarray, classes: tuple[str, ...]) -> dict[str, dict[str, float]]:
    """Precision, recall, F1 and support of each class (0 where a ratio has no denominator)."""
    scores = {}
    for index, name in enumerate(classes):
        tp = int(((preds == index) & (labels == index)).sum())
        predicted, actual = int((preds == index).sum()), int((labels == index).sum())
        precision = tp / predicted if predicted else 0.0
        recall = tp / actual if actual else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        scores[name] = {"precision": precision, "recall": recall, "f1": f1, "support": actual}
    return scores
