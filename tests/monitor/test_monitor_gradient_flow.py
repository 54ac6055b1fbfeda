"""The gradient-flow monitor on user LightningModules and on archlab runs."""

from __future__ import annotations

import lightning as L
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from lightning.pytorch.loggers import CSVLogger
from safetensors.torch import load_file
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import archlab
import tinydata
from archlab.monitor import GradientFlowMonitor
from archlab.report.metrics_csv import read_metrics_csv
from archlab.tasks import ClassifyTask


class UserModule(L.LightningModule):
    """A user's own module: any network, cross-entropy, plain SGD."""

    def __init__(self, net: nn.Module, lr: float = 0.05) -> None:
        super().__init__()
        self.net, self.lr = net, lr

    def training_step(self, batch, batch_idx):
        x, y = batch
        return F.cross_entropy(self.net(x), y)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=self.lr)


def blob_loader() -> DataLoader:
    images, labels = tinydata.blobs(512, seed=3)
    x = torch.from_numpy(images).float().div(255).sub(0.2).div(0.3).flatten(1)
    return DataLoader(TensorDataset(x, torch.from_numpy(labels).long()), batch_size=64, shuffle=True)


def mlp(depth: int, width: int, activation: type[nn.Module], scale: float = 1.0) -> nn.Sequential:
    torch.manual_seed(0)
    layers: list[nn.Module] = []
    for i in range(depth):
        layers += [nn.Linear(784 if i == 0 else width, width), activation()]
    net = nn.Sequential(*layers, nn.Linear(width, 10))
    with torch.no_grad():
        for p in net.parameters():
            p.mul_(scale)
    return net


def fit(tmp_path, net: nn.Module, steps: int = 40, lr: float = 0.05, **settings) -> GradientFlowMonitor:
    monitor = GradientFlowMonitor(every_n_steps=5, **settings)
    trainer = L.Trainer(max_steps=steps, logger=CSVLogger(tmp_path, name="", version=""), enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, callbacks=[monitor],
                        default_root_dir=tmp_path, accelerator="cpu")
    trainer.fit(UserModule(net, lr), blob_loader())
    return monitor


def test_flags_vanishing_in_a_deep_plain_sigmoid_mlp(tmp_path, capsys):
    monitor = fit(tmp_path, mlp(10, 64, nn.Sigmoid))
    kinds = [d.kind for d in monitor.diagnoses]
    assert "vanishing" in kinds, monitor.summary()
    vanishing = monitor.diagnoses[kinds.index("vanishing")]
    assert vanishing.layers[0] == "net.0"  # the first Linear, named as the user's module names it
    assert "vanishing" in capsys.readouterr().err
    assert "vanishing" in (tmp_path / "diagnostics.log").read_text()
    rows = read_metrics_csv(tmp_path / "metrics.csv")
    ratios = [row["grad_first_last"] for row in rows if "grad_first_last" in row]
    assert ratios and max(ratios) < 1e-3
    assert any("update_ratio/net.0" in row for row in rows) and any("weight_norm/net.20" in row for row in rows)


def test_quiet_on_a_shallow_relu_net(tmp_path):
    monitor = fit(tmp_path, mlp(1, 64, nn.ReLU))
    assert monitor.counts == {}, monitor.summary()
    assert not (tmp_path / "diagnostics.log").exists()


def test_flags_exploding_with_a_scaled_up_initialisation(tmp_path):
    monitor = fit(tmp_path, mlp(8, 64, nn.ReLU, scale=6.0), steps=10, lr=1e-12)
    assert "exploding" in monitor.counts, monitor.summary()
    found = next(d for d in monitor.diagnoses if d.kind == "exploding")
    assert found.layers and "clip gradients" in found.suggestion


def test_flags_dead_relus(tmp_path):
    net = mlp(1, 32, nn.ReLU)
    with torch.no_grad():
        net[0].bias.fill_(-1e3)  # every pre-activation negative: the ReLU layer never fires
    monitor = fit(tmp_path, net, steps=10)
    dead = next(d for d in monitor.diagnoses if d.kind == "dead_relu")
    assert dead.layers == ["net.1"] and "100%" in dead.message


def test_auto_clip_clips_at_the_percentile(tmp_path):
    seen: list[float] = []

    class AfterMonitor(L.Callback):
        def on_before_optimizer_step(self, trainer, pl_module, optimizer):
            seen.append(float(torch.nn.utils.get_total_norm([p.grad for p in pl_module.parameters()])))

    monitor = GradientFlowMonitor(every_n_steps=0, auto_clip_percentile=10)
    trainer = L.Trainer(max_steps=20, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, callbacks=[monitor, AfterMonitor()], default_root_dir=tmp_path)
    trainer.fit(UserModule(mlp(2, 32, nn.ReLU)), blob_loader())
    history = monitor.norm_history
    assert len(history) == len(seen) == 20
    for i, after in enumerate(seen):
        assert after <= np.percentile(history[: i + 1], 10) * 1.001 + 1e-9
    assert seen[-1] < history[-1]  # it did clip


def test_nan_in_the_loss_stops_the_run_and_keeps_good_weights(tiny_blobs, tmp_path, monkeypatch, capsys):
    original = ClassifyTask.training_step

    def poisoned(self, batch, batch_idx):
        loss = original(self, batch, batch_idx)
        return loss * float("nan") if self.global_step >= 5 else loss

    monkeypatch.setattr(ClassifyTask, "training_step", poisoned)
    run = archlab.train("mlp", epochs=3, run_dir=tmp_path / "run", report=False,
                        model_args={"hidden": [16]}, **tiny_blobs)
    diagnostics = run.summary["diagnostics"]
    assert diagnostics["stopped"].startswith("the loss is nan at step 6")
    assert run.summary["steps"] == 6  # it stopped at once: 3 epochs would be 27 steps
    assert "training stopped" in capsys.readouterr().err
    assert "nonfinite" in (run.path / "diagnostics.log").read_text()
    checkpoint = torch.load(run.path / "checkpoints" / "last.ckpt", weights_only=True)
    assert all(torch.isfinite(v).all() for v in checkpoint["state_dict"].values() if v.is_floating_point())
    weights = load_file(str(run.path / "weights.safetensors"))
    assert all(torch.isfinite(v).all() for v in weights.values())
    assert run.test_accuracy is not None and np.isfinite(run.summary["test_metrics"]["loss"])


def test_monitor_settings_are_validated():
    with pytest.raises(archlab.errors.ConfigError, match="auto_clip_percentile"):
        archlab.config.resolve_config(overrides={"monitor": {"auto_clip_percentile": 150}})
    with pytest.raises(archlab.errors.ConfigError, match="choose one gradient clipping"):
        archlab.config.resolve_config(overrides={"monitor": {"auto_clip_percentile": 10}, "grad_clip": 1.0})
    with pytest.raises(archlab.errors.ConfigError, match="Unknown setting"):
        archlab.config.resolve_config(overrides={"monitor": {"every_n_step": 10}})


def test_norms_of_tiny_gradients_do_not_underflow():
    from archlab.engine.train import flushing_denormals
    from archlab.monitor.gradient_flow import scaled_norm

    tiny = torch.full((1000,), 1e-22)
    with flushing_denormals():  # as during training: the squares (1e-44) are flushed to zero
        assert tiny.norm().item() == 0.0
        assert scaled_norm(tiny).item() == pytest.approx(1e-22 * 1000 ** 0.5, rel=1e-5)
    assert scaled_norm(tiny).item() == pytest.approx(1e-22 * 1000 ** 0.5, rel=1e-5)
    assert scaled_norm(torch.zeros(3)).item() == 0.0
    assert scaled_norm(torch.tensor([3.0, -4.0])).item() == pytest.approx(5.0)
