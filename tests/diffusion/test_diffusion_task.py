"""The diffusion task end to end on tiny data: a run directory that `sample`, `enhance` and the report read."""

from __future__ import annotations

import json

import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

import archlab
from archlab.cli import app
from archlab.errors import ArchlabError, ConfigError
from archlab.sampling import enhance, sample
from archlab.tasks.diffusion import ema_multi_avg_fn

TINY = {"base_channels": 8, "channel_mults": [1, 2], "heads": 2, "groups": 4}


@pytest.fixture(scope="module")
def conditional_run(tmp_path_factory):
    """One short conditional run shared by the tests that only read it (training it is the slow part)."""
    import tinydata
    from archlab.data.fetch import DATASETS

    folder = tmp_path_factory.mktemp("diffusion-run")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("ARCHLAB_DATA", str(folder / "cache"))
        spec = tinydata.register(folder / "source")
        try:
            run = archlab.train("ddpm", data=tinydata.NAME, val_size=60, eval_batch_size=50, batch_size=32,
                                progress=False, max_steps=6, run_dir=folder / "run", report=False,
                                model_args={**TINY, "num_classes": 10},
                                task_args={"timesteps": 20, "eval_samples": 0, "eval_steps": 4, "schedule": "cosine"})
        finally:
            DATASETS.pop(spec.name, None)
    return run


def test_run_records_what_sampling_needs_and_writes_its_grids(conditional_run):
    path = conditional_run.path
    meta = json.loads((path / "meta.json").read_text())
    assert meta["schedule"] == {"name": "cosine", "timesteps": 20}
    assert meta["prediction"] == "eps" and meta["sampler"] == {"name": "ddim", "steps": 4, "eta": 0.0}
    assert conditional_run.summary["headline"] == "fid" and "loss" in conditional_run.summary["test_metrics"]
    for name in ("samples.png", "reverse-process.png", "class-grid-g0.png", "class-grid-g1.png", "class-grid-g3.png"):
        assert Image.open(path / name).size[0] > 28, name
    info = json.loads((path / "diffusion.json").read_text())
    assert info["strip_times"][0] == 19 and info["strip_times"][-1] == -1


def test_sample_from_the_run(conditional_run):
    images = sample(conditional_run.path, 5, class_label=7, guidance=3.0, steps=3, seed=1)
    assert images.shape == (5, 1, 28, 28) and images.min() >= -1 and images.max() <= 1
    assert torch.equal(images, sample(conditional_run.path, 5, class_label=7, guidance=3.0, steps=3, seed=1))
    assert sample(conditional_run.path, 2, sampler="ddpm").shape == (2, 1, 28, 28)


def test_sampling_refuses_what_the_run_cannot_honour(conditional_run):
    with pytest.raises(ArchlabError, match=r"Class 10 is outside .* 9 \(9\)"):
        sample(conditional_run.path, 2, class_label=10)
    with pytest.raises(ConfigError, match="1 to 20 steps"):
        sample(conditional_run.path, 2, steps=50)
    with pytest.raises(ConfigError, match="give --class"):
        sample(conditional_run.path, 2, guidance=2.0, steps=2)


def test_enhance_through_pngs(conditional_run, tmp_path):
    image = torch.zeros(28, 28, dtype=torch.uint8)
    image[5:23, 12:16] = 255
    Image.fromarray(image.numpy()).save(tmp_path / "digit.png")
    mask = torch.zeros(28, 28, dtype=torch.uint8)
    mask[10:18, :] = 255
    Image.fromarray(mask.numpy()).save(tmp_path / "mask.png")
    Image.fromarray(mask[:14, :14].numpy()).save(tmp_path / "small-mask.png")
    filled, notes = enhance(conditional_run.path, tmp_path / "digit.png", inpaint=tmp_path / "mask.png", steps=3)
    kept = ((filled[0, 0] + 1) * 127.5).round().to(torch.uint8)
    assert torch.equal(kept[mask == 0], image[mask == 0]) and "224 of 784" in notes[0]
    with pytest.raises(ArchlabError, match="mask must be the image's size"):
        enhance(conditional_run.path, tmp_path / "digit.png", inpaint=tmp_path / "small-mask.png")
    with pytest.raises(ArchlabError, match="exactly one enhancement"):
        enhance(conditional_run.path, tmp_path / "digit.png", denoise=True, upscale=True)
    with pytest.raises(ArchlabError, match="14×14"):
        enhance(conditional_run.path, tmp_path / "digit.png", upscale=True)


def test_cli_sample_and_enhance(conditional_run, tmp_path):
    runner = CliRunner()
    out = tmp_path / "sevens.png"
    result = runner.invoke(app, ["sample", str(conditional_run.path), "--n", "4", "--class", "7", "--steps", "2",
                                 "--guidance", "2", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert out.is_file()
    Image.fromarray(torch.zeros(14, 14, dtype=torch.uint8).numpy()).save(tmp_path / "small.png")
    result = runner.invoke(app, ["enhance", str(conditional_run.path), str(tmp_path / "small.png"), "--upscale",
                                 "--steps", "2", "--out", str(tmp_path / "big.png")])
    assert result.exit_code == 0, result.output
    assert Image.open(tmp_path / "big.png").size == (28, 28)
    result = runner.invoke(app, ["sample", str(conditional_run.path), "--class", "12", "--out", str(out)])
    assert result.exit_code == 2 and "outside" in result.output


def test_non_diffusion_runs_are_refused(tiny_blobs, tmp_path):
    run = archlab.train("mlp", **tiny_blobs, max_steps=2, run_dir=tmp_path / "mlp", report=False)
    with pytest.raises(ArchlabError, match="not a diffusion one"):
        enhance(run.path, tmp_path / "x.png", denoise=True)
    with pytest.raises(ArchlabError, match="`sample` draws images"):
        sample(run.path, 2)


def test_settings_are_checked_before_training(tiny_blobs, tmp_path):
    common = {**tiny_blobs, "max_steps": 1, "report": False, "model_args": TINY}
    with pytest.raises(ConfigError, match="1 to 10 steps"):
        archlab.train("ddpm", **common, run_dir=tmp_path / "a", task_args={"timesteps": 10, "eval_steps": 20})
    with pytest.raises(ConfigError, match="cannot be scored"):
        archlab.train("ddpm", **common, run_dir=tmp_path / "b", task_args={"timesteps": 100})
    with pytest.raises(ConfigError, match="num_classes=10"):
        archlab.train("ddpm", **{**common, "model_args": {**TINY, "num_classes": 3}}, run_dir=tmp_path / "c",
                      task_args={"eval_samples": 0})
    with pytest.raises(ConfigError, match="unknown schedule"):
        archlab.train("ddpm", **common, run_dir=tmp_path / "d", task_args={"schedule": "sqrt", "eval_samples": 0})


def test_ema_warms_up_then_decays_at_its_rate():
    update = ema_multi_avg_fn(0.999)
    average, value = [torch.zeros(3)], [torch.ones(3)]
    update(average, value, torch.tensor(1))  # first update after the copy: decay (1 + 1) / (10 + 1)
    assert average[0][0].item() == pytest.approx(1 - 2 / 11)
    average = [torch.zeros(3)]
    update(average, value, torch.tensor(10**6))
    assert average[0][0].item() == pytest.approx(0.001)


def test_report_section_shows_the_grids_and_is_empty_for_other_runs(conditional_run, tmp_path):
    from archlab.report.diffusion import SEED_DIFFUSER_NOTE, diffusion_section
    from archlab.report.run_files import RunFiles, read_run_files

    embedded = []

    def embed(name, figure, alt):
        embedded.append(name)
        return f"<img alt='{alt}'>"

    html = diffusion_section(read_run_files(conditional_run.path), embed)
    assert "Reverse process" in html and "eval_samples=0" in html
    assert embedded == ["diffusion-samples", "diffusion-reverse", "diffusion-classes-g0", "diffusion-classes-g1",
                        "diffusion-classes-g3"]
    assert SEED_DIFFUSER_NOTE not in html
    assert diffusion_section(RunFiles(run_dir=tmp_path, summary={}, meta={"task": "classify"}), embed) == ""
    seed_run = read_run_files(conditional_run.path)
    seed_run.meta["model"] = "seed-diffuser"
    assert SEED_DIFFUSER_NOTE in diffusion_section(seed_run, embed)


def test_sample_dispatches_other_tasks_through_the_registry(tmp_path, monkeypatch):
    import sys
    import types

    import archlab.sampling as sampling
    from archlab.tasks.gan_sampling import sample_gan

    assert sampling._resolve(sampling.SAMPLERS["gan"]) is sample_gan
    calls = []
    fake = types.ModuleType("fake_gan_sampling")
    fake.sample = lambda run_dir, n, **kw: calls.append((n, kw)) or torch.zeros(n, 1, 28, 28)
    monkeypatch.setitem(sys.modules, "fake_gan_sampling", fake)
    monkeypatch.setitem(sampling.SAMPLERS, "gan", "fake_gan_sampling:sample")
    (tmp_path / "meta.json").write_text(json.dumps({"task": "gan", "classes": [str(i) for i in range(10)]}))
    assert sample(tmp_path, 3, class_label=2, temperature=0.5, seed=4).shape == (3, 1, 28, 28)
    assert calls == [(3, {"class_label": 2, "temperature": 0.5, "seed": 4})]
    with pytest.raises(ArchlabError, match="--steps, --guidance belong to diffusion"):
        sample(tmp_path, 3, steps=10, guidance=2.0)


def test_the_saved_weights_are_the_moving_average(tiny_blobs, tmp_path):
    """Same seed and data: the run with EMA saves other weights than the one without, lying between its
    start and the plain run's end (an average of the path, not its last point)."""
    from safetensors.torch import load_file

    common = {**tiny_blobs, "max_steps": 4, "report": False, "model_args": TINY}
    weights = {}
    for decay in (0.0, 0.5):
        run = archlab.train("ddpm", **common, run_dir=tmp_path / f"ema{decay}",
                            task_args={"timesteps": 20, "eval_samples": 0, "eval_steps": 2, "ema_decay": decay})
        weights[decay] = load_file(str(run.path / "weights.safetensors"))
    torch.manual_seed(0)
    start = archlab.create_model("ddpm", **TINY).state_dict()
    name = "stem.weight"
    moved_plain = (weights[0.0][name] - start[name]).norm()
    moved_ema = (weights[0.5][name] - start[name]).norm()
    assert not torch.equal(weights[0.0][name], weights[0.5][name])
    assert 0 < moved_ema < moved_plain
