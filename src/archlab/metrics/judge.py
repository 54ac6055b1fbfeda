"""The judge: a fixed MNIST / Fashion-MNIST classifier whose features score generated images offline.

FID, KID and IS were defined on ImageNet's Inception-v3 (Heusel et al. 2017, "GANs trained by a two
time-scale update rule converge to a local Nash equilibrium"; Bińkowski et al. 2018, "Demystifying MMD
GANs"; Salimans et al. 2016, "Improved techniques for training GANs"). Inception weights cannot be
downloaded here, and digits are not ImageNet anyway, so archlab trains its own feature network per data set
with a fixed recipe (``src/archlab/recipes/judge-<data>.yaml``) and ships it as a versioned artifact:

    src/archlab/metrics/judges/<data>-v<version>.safetensors      the classifier's weights
    src/archlab/metrics/judges/judges.json                         per data set: version, sha256 of the weights,
                                                                   model name and arguments, normalization,
                                                                   recipe, test accuracy, num_features, date,
                                                                   reference scores (floor and ceiling)

``features(x)`` is the classifier's penultimate representation (the input of its last linear layer);
``logits(x)`` its class scores. Inputs are images ``(N, 1, 28, 28)`` in ``[-1, 1]`` (every generative model's
convention); the judge maps them to its own training normalization: ``(x + 1) / 2`` → ``(· - mean) / std``.
Scores are only comparable between runs judged by the same data set's judge *and version*.
"""

from __future__ import annotations

import datetime
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from archlab.data.splits import signed
from archlab.errors import ArchlabError, ConfigError
from archlab.io import atomic_path, atomic_write_json

JUDGES_DIR = Path(__file__).parent / "judges"
INDEX = "judges.json"
VERSION = 1
RECIPES = {"mnist": "judge-mnist", "fashion-mnist": "judge-fashion-mnist"}  # data set → fixed recipe


class JudgeError(ArchlabError):
    """The judge artifact is missing, damaged or does not match its recorded checksum."""


def rebuild_hint(data: str) -> str:
    return f"Rebuild it with `archlab judge build --data {data}` (about 2-4 minutes on a CPU)."


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _last_linear(network: nn.Module) -> nn.Linear:
    linears = [m for m in network.modules() if isinstance(m, nn.Linear)]
    if not linears:
        raise ConfigError(f"A judge needs a classifier ending in a linear layer; {type(network).__name__} has none.")
    return linears[-1]


class Judge(nn.Module):
    """A frozen classifier seen as a feature extractor: ``features`` (penultimate) and ``logits``.

    ``forward(x)`` returns the features, so the module can be handed to torchmetrics' FID/KID directly
    (``num_features`` is set). Always in eval mode; no parameter requires a gradient.
    """

    def __init__(self, network: nn.Module, mean: float, std: float, data: str, version: int = VERSION) -> None:
        super().__init__()
        self.network = network.eval().requires_grad_(False)
        self.mean, self.std, self.data, self.version = float(mean), float(std), data, version
        self.head = _last_linear(network)
        self.num_features = int(self.head.in_features)
        self.num_classes = int(self.head.out_features)

    def train(self, mode: bool = True) -> "Judge":
        return super().train(False)  # batch-norm statistics and dropout stay those of the artifact

    def normalize(self, images: torch.Tensor) -> torch.Tensor:
        """[-1, 1] pixels → the classifier's input: ((x + 1) / 2 - mean) / std."""
        return ((images.float() + 1.0) * 0.5 - self.mean) / self.std

    def features_and_logits(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        captured: list[torch.Tensor] = []
        hook = self.head.register_forward_pre_hook(lambda _module, args: captured.append(args[0]))
        try:
            logits = self.network(self.normalize(images))
        finally:
            hook.remove()
        return captured[0].flatten(1).float(), logits.float()

    def features(self, images: torch.Tensor) -> torch.Tensor:
        return self.features_and_logits(images)[0]

    def logits(self, images: torch.Tensor) -> torch.Tensor:
        return self.features_and_logits(images)[1]

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.features(images)

    @torch.no_grad()
    def embed(self, images: torch.Tensor, batch_size: int = 1000) -> tuple[torch.Tensor, torch.Tensor]:
        """Features [N, num_features] and logits [N, classes] of many images, in batches, on the images' device."""
        self.to(images.device)
        parts = [self.features_and_logits(images[i:i + batch_size]) for i in range(0, len(images), batch_size)]
        return torch.cat([f for f, _ in parts]), torch.cat([l for _, l in parts])


# ---------------------------------------------------------------------------------------------- the artifact
def read_index(folder: Path = JUDGES_DIR) -> dict[str, Any]:
    """``judges.json`` as a dict ``{"judges": {data: entry}}`` (empty when the file does not exist yet)."""
    path = folder / INDEX
    if not path.is_file():
        return {"judges": {}}
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise JudgeError(f"{path} is not valid JSON ({err}). Restore it from version control, or rebuild the "
                         "judges with `archlab judge build --data mnist` and `--data fashion-mnist`.") from err


def judge_entry(data: str, folder: Path = JUDGES_DIR) -> dict[str, Any]:
    if data not in RECIPES:
        raise ConfigError(f"There is no judge for {data!r}: judges exist for {', '.join(RECIPES)}. Generated images "
                          "are scored against the data set the model was trained on.")
    entry = read_index(folder)["judges"].get(data)
    if entry is None:
        raise JudgeError(f"No judge for {data!r} is recorded in {folder / INDEX}. {rebuild_hint(data)}")
    return entry


def load_judge(data: str, folder: str | Path = JUDGES_DIR) -> Judge:
    """The judge of ``data`` (``mnist`` or ``fashion-mnist``), checksum-verified, in eval mode, on the CPU."""
    from archlab.models import create_model

    folder = Path(folder)
    entry = judge_entry(data, folder)
    weights = folder / entry["file"]
    if not weights.is_file():
        raise JudgeError(f"The judge's weights {weights} are missing. {rebuild_hint(data)}")
    actual = sha256(weights)
    if actual != entry["sha256"]:
        raise JudgeError(f"The judge's weights {weights} do not match their checksum in {folder / INDEX} "
                         f"(sha256 {actual[:16]}…, expected {entry['sha256'][:16]}…): the file was changed or damaged, "
                         f"and its scores would not be comparable. {rebuild_hint(data)}")
    network = create_model(entry["model"], **entry["model_args"])
    network.load_state_dict(load_file(str(weights)))
    norm = entry["normalization"]
    return Judge(network, norm["mean"], norm["std"], data, entry["version"])


@dataclass
class BuiltJudge:
    entry: dict[str, Any]
    run_dir: Path


def write_judge(data: str, network: nn.Module, entry: dict[str, Any], folder: Path = JUDGES_DIR) -> dict[str, Any]:
    """Write the weights (atomically) and record ``entry`` + file name + checksum in the index (atomically)."""
    folder.mkdir(parents=True, exist_ok=True)
    name = f"{data}-v{entry['version']}.safetensors"
    state = {k: v.detach().cpu().contiguous() for k, v in network.state_dict().items()}
    with atomic_path(folder / name) as tmp:
        save_file(state, str(tmp), metadata={"data": data, "version": str(entry["version"])})
    entry = {**entry, "file": name, "sha256": sha256(folder / name)}
    index = read_index(folder)
    index.setdefault("judges", {})[data] = entry
    atomic_write_json(folder / INDEX, index)
    return entry


def build_judge(data: str, *, run_dir: str | Path | None = None, folder: str | Path = JUDGES_DIR,
                data_dir: str | Path | None = None, reference_samples: int = 10_000,
                progress: bool = True) -> BuiltJudge:
    """Train the judge of ``data`` with its fixed recipe, store the artifact, measure its reference scores.

    The references are FID/KID/IS/coverage of the training split against the test split (the floor a perfect
    generator reaches) and of uniform noise against the test split (the ceiling), on ``reference_samples`` images.
    """
    import archlab
    from archlab.config import load_recipe
    from archlab.metrics import generative

    folder = Path(folder)
    if data not in RECIPES:
        raise ConfigError(f"There is no judge recipe for {data!r}; choose one of {', '.join(RECIPES)}.")
    recipe = RECIPES[data]
    run = archlab.train(recipe=recipe, run_dir=run_dir or Path("runs") / f"judge-{data}", report=False,
                        progress=progress, **({"data_dir": str(data_dir)} if data_dir else {}))
    loaded = run.load_model()
    judge = Judge(loaded.model, loaded.mean, loaded.std, data)
    accuracy = judge_accuracy(judge, data, data_dir)
    entry = {
        "version": VERSION,
        "data": data,
        "model": loaded.meta["model"],
        "model_args": loaded.meta["model_args"],
        "normalization": {"input": "[-1, 1] pixels", **loaded.meta["normalization"]},
        "recipe": {"name": recipe, **load_recipe(recipe)},
        "test_accuracy": accuracy,
        "num_features": judge.num_features,
        "parameters": sum(p.numel() for p in judge.parameters()),
        "created": datetime.date.today().isoformat(),
        "versions": loaded.meta.get("versions", {}),
    }
    entry = write_judge(data, loaded.model, entry, folder)
    generative.clear_cache()
    entry["reference"] = generative.reference_scores(data, reference_samples, data_dir=data_dir, folder=folder)
    entry = write_judge(data, loaded.model, entry, folder)  # same weights, same checksum; now with the references
    generative.clear_cache()
    return BuiltJudge(entry, run.path)


def judge_accuracy(judge: Judge, data: str, data_dir: str | Path | None = None) -> float:
    """The judge's accuracy on the official test split of ``data``."""
    from archlab.data import load_raw

    _, test, _ = load_raw(data, data_dir)
    _, logits = judge.embed(signed(test.images))
    return float((logits.argmax(1) == test.labels).float().mean())
