"""Transfer learning in numbers: BERT pre-trained by masked-LM on e-mails, fine-tuned for spam, against the same
network trained from scratch, with 10% and with 100% of the training labels.

    python bench/bert_transfer.py

1. pre-training: the spam-bert-pretrain recipe (masked-LM on the texts of the training split, labels unused);
2. for each label fraction (0.1, 1.0): the spam-bert recipe twice, with the same steps, learning rate and
   stratified label subset: fine-tuned (``init_from`` the pre-training run) and from scratch (the peer).

All runs share the splits (stratified 70/10/20, seed 0) and the word vocabulary (fitted on the training texts);
the test split is never seen by either stage. Reported: the test split's spam F1 and macro F1, accuracy, and the
wall time of each stage.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import append_rows, cpu_model  # noqa: E402

import archlab  # noqa: E402
from archlab.config import load_recipe  # noqa: E402

FRACTIONS = (0.1, 1.0)


def run(folder: Path, name: str, recipe: str, **overrides) -> dict:
    settings = load_recipe(recipe)
    task_args = {**settings.pop("task_args", {}), **overrides.pop("task_args", {})}
    settings.update({k: v for k, v in overrides.items() if v is not None})
    result = archlab.train(run_dir=folder / name, report=False, progress=False, task_args=task_args, **settings)
    s = result.summary
    print(f"{name}: {describe(s)}", flush=True)
    return s


def describe(s: dict) -> str:
    test = s["test_metrics"]
    if "per_class" not in s:  # the masked-LM pre-training run
        return f"masked-token loss {test['loss']:.3f}, accuracy {test['accuracy']:.3f} in {s['wall_seconds']:.0f} s"
    return (f"spam F1 {s['per_class']['spam']['f1']:.4f} (macro F1 {test['f1']:.4f}, acc {test['accuracy']:.4f}) "
            f"in {s['wall_seconds']:.0f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pretrain-epochs", type=float, default=None, help="override the pre-training recipe's epochs")
    parser.add_argument("--steps", type=int, default=None, help="override the fine-tuning recipe's max_steps")
    parser.add_argument("--no-append", action="store_true")
    args = parser.parse_args()
    results: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        pre = run(folder, "pretrain", "spam-bert-pretrain", epochs=args.pretrain_epochs)
        for fraction in FRACTIONS:
            for kind, init in (("fine-tuned", str(folder / "pretrain")), ("scratch", None)):
                s = run(folder, f"{kind}-{fraction}", "spam-bert", max_steps=args.steps, init_from=init,
                        task_args={"label_fraction": fraction})
                if init:
                    assert s["init_from"]["loaded"] > 0 and all(n.startswith("classifier.") for n in s["init_from"]["new"])
                results[f"{kind}-{fraction}"] = s
    if args.no_append:
        return
    command = "python bench/bert_transfer.py" + "".join(
        f" --{flag} {value}" for flag, value in (("pretrain-epochs", args.pretrain_epochs), ("steps", args.steps))
        if value is not None)
    rows = []
    for fraction in FRACTIONS:
        tuned, scratch = results[f"fine-tuned-{fraction}"], results[f"scratch-{fraction}"]
        gain = tuned["per_class"]["spam"]["f1"] - scratch["per_class"]["spam"]["f1"]
        macro_gain = tuned["test_metrics"]["f1"] - scratch["test_metrics"]["f1"]
        rows.append({
            "benchmark": (f"e-mail spam (SpamAssassin test split, 1,209 messages), {fraction:.0%} of the training "
                          "labels: bert (2 pre-LN blocks, 128 dims, first 128 words) pre-trained by masked-LM, then fine-tuned"),
            "command": command, "machine": cpu_model(), "figure": describe(tuned),
            "peer": f"the same network and fine-tuning recipe from scratch, same run: {describe(scratch)}",
            "ratio": f"spam F1 {100 * gain:+.2f} points, macro F1 {100 * macro_gain:+.2f} points",
            "notes": (f"pre-training (masked-LM, training texts, no labels): {describe(pre)}; fine-tuning "
                      f"{tuned['steps']} steps each, {tuned['params']:,} params"),
        })
    append_rows(rows)
    print(f"appended {len(rows)} rows to BENCHMARKS.md")


if __name__ == "__main__":
    main()
