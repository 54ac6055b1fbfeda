"""The report's "Inside the network" and "Adversarial robustness" sections, built from the run directory alone,
and their notes (never a crash) for old or damaged runs; the correct test images saved with the predictions."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import archlab
from archlab.models import create_model
from archlab.report import build_report
from archlab.runs import PREDICTIONS, save_model, write_predictions

IMG_TAG = '<img src="data:image/png;base64,'


def section(html: str, anchor: str) -> str:
    start = html.index(f'<section id="{anchor}">')
    return html[start : html.index("</section>", start)]


def test_a_run_report_looks_inside_the_network(trained_run):
    html = build_report(trained_run).read_text(encoding="utf-8")
    inside = section(html, "inside")
    assert "Inside the network" in inside and 'class="note"' not in inside
    assert inside.count(IMG_TAG) == 3  # filters, activation maps, Grad-CAM
    assert "Grad-CAM" in inside and "Selvaraju" in inside
    for name in ("filters", "activations", "grad_cam"):
        assert (trained_run / "figures" / f"{name}.png").is_file(), name
    assert 'id="robustness"' not in html  # no attack run yet


def test_the_report_shows_attack_results(tiny_blobs, trained_run):
    archlab.attack(trained_run, method="fgsm", eps=[0, 0.1, 0.3], limit=20, update_report=False)
    archlab.attack(trained_run, method="pgd", eps=[0, 0.1], steps=2, limit=20, update_report=False)
    robust = section(build_report(trained_run).read_text(encoding="utf-8"), "robustness")
    assert "Adversarial robustness" in robust
    assert robust.count(IMG_TAG) == 3  # the curve and the two saved grids
    assert "<th>FGSM</th>" in robust and "<th>PGD</th>" in robust
    assert "<td>0.3</td>" in robust and "—" in robust  # PGD has no ε = 0.3
    assert "Goodfellow" in robust and "Madry" in robust


def test_damaged_attack_files_leave_notes(trained_run):
    (trained_run / "attack-fgsm.json").write_text("{not json")
    (trained_run / "attack-pgd.json").write_text(json.dumps({"method": "pgd", "eps": [0, 0.1], "accuracy": [1.0]}))
    (trained_run / "attack-bim.json").write_text(json.dumps({"eps": [0, 0.1], "accuracy": [1.0, 0.5],
                                                             "examples": "../../elsewhere.png"}))
    robust = section(build_report(trained_run).read_text(encoding="utf-8"), "robustness")
    assert "attack-fgsm.json is not valid JSON" in robust
    assert "attack-pgd.json has no matching eps and accuracy lists" in robust
    assert "elsewhere.png is missing or not a PNG" in robust and str(trained_run) in robust
    assert robust.count(IMG_TAG) == 1  # the curve of the one readable file


def test_an_old_run_without_correct_images_gets_a_note(trained_run):
    with np.load(trained_run / PREDICTIONS) as archive:
        arrays = {name: archive[name] for name in archive.files if not name.startswith("correct_")}
    np.savez(trained_run / PREDICTIONS, **arrays)
    inside = section(build_report(trained_run).read_text(encoding="utf-8"), "inside")
    assert "no correct_images (written by an older archlab)" in inside
    assert f"archlab eval {trained_run}" in inside
    assert inside.count(IMG_TAG) >= 1  # the filters need no test image


def test_a_run_without_weights_gets_a_note(trained_run):
    (trained_run / "weights.safetensors").unlink()
    inside = section(build_report(trained_run).read_text(encoding="utf-8"), "inside")
    assert "could not be loaded" in inside and "weights.safetensors is missing" in inside
    assert IMG_TAG not in inside


def test_a_run_whose_weights_do_not_fit_gets_a_note(trained_run):
    meta = json.loads((trained_run / "meta.json").read_text())
    meta["model_args"]["channels"] = [4, 4]
    (trained_run / "meta.json").write_text(json.dumps(meta))
    inside = section(build_report(trained_run).read_text(encoding="utf-8"), "inside")
    assert "could not be loaded" in inside and IMG_TAG not in inside


def test_write_predictions_keeps_correct_images_of_different_classes(tmp_path):
    labels = torch.tensor([0, 0, 0, 1, 1, 2, 2, 3, 0, 1, 4, 4])
    preds = labels.clone()
    preds[[1, 3]] = 5  # two mistakes
    probs = torch.nn.functional.one_hot(preds, 6).float()
    images = torch.arange(12, dtype=torch.uint8).reshape(12, 1, 1, 1).expand(12, 1, 2, 2).contiguous()
    write_predictions(tmp_path, labels, probs, images)
    with np.load(tmp_path / PREDICTIONS) as saved:
        assert saved["mistake_index"].tolist() == [1, 3]
        assert saved["correct_index"].tolist() == [0, 4, 5, 7, 10, 2, 6, 8]  # one per class, then in order
        assert saved["correct_images"][:, 0, 0, 0].tolist() == [0, 4, 5, 7, 10, 2, 6, 8]


@pytest.mark.parametrize("kind", ["mistake", "correct"])
def test_out_of_range_indices_leave_a_note(trained_run, kind):
    with np.load(trained_run / PREDICTIONS) as archive:
        arrays = {name: archive[name] for name in archive.files}
    arrays[f"{kind}_index"] = np.array([10_000])
    arrays[f"{kind}_images"] = arrays["correct_images"][:1]
    np.savez(trained_run / PREDICTIONS, **arrays)
    inside = section(build_report(trained_run).read_text(encoding="utf-8"), "inside")
    assert f"{kind} indices outside the test split" in inside


def test_a_run_without_convolutions_gets_one_note(trained_run):
    meta = json.loads((trained_run / "meta.json").read_text())
    meta.update(model="mlp", model_args={"hidden": [16]})
    save_model(trained_run, create_model("mlp", hidden=[16]), meta)
    inside = section(build_report(trained_run).read_text(encoding="utf-8"), "inside")
    assert "MLP has no nn.Conv2d layer" in inside and "need a convolutional network" in inside
    assert inside.count('class="note"') == 1 and IMG_TAG not in inside
