"""Anomaly detection on MNIST: a DCGAN and an autoencoder, both trained without one digit for the same wall time.

    python bench/anomaly.py                      # digit 7, 300 s of training each, 1,000 test images scored
    python bench/anomaly.py --digits 7 4 --budget 600

For each held-out digit K (default 7: a digit close to 1 and 9, so neither trivially easy nor hard), `dcgan`
(recipe mnist-dcgan, `-t holdout_class=K`) and `autoencoder` (recipe mnist-autoencoder) train for ``--budget``
seconds each (the epochs are left unbounded, so the time limit decides). The same seeded subset of ``--n``
test images (about 10 % of them K) is then scored by: the discriminator (-D(x)), AnoGAN's latent search
(``--steps`` Adam steps; Schlegl et al. 2017, λ = 0.1), its residual alone, and the autoencoder's
reconstruction error. Each row: the ROC-AUC of "is a K", the autoencoder measured in the same run as the peer.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import append_rows, cpu_model  # noqa: E402

import archlab  # noqa: E402
from archlab.analysis.anomaly import LatentSearch, score_runs  # noqa: E402
from archlab.config import load_recipe  # noqa: E402

ROWS = {"discriminator": "discriminator score −D(x)", "latent_search": "AnoGAN latent search A(x)",
        "latent_residual": "AnoGAN latent-search residual Σ|x − G(z)|"}


def train(folder: Path, recipe: str, digit: int, budget: float, **overrides) -> archlab.runs.Run:
    settings = load_recipe(recipe)
    settings["task_args"] = {**settings.get("task_args", {}), "holdout_class": digit, **overrides.pop("task_args", {})}
    settings.update(epochs=10_000, max_steps=None, max_time=budget, **overrides)
    run = archlab.train(run_dir=folder / f"{recipe}-{digit}", report=False, progress=False, **settings)
    print(f"{recipe} without {digit}: {run.summary['steps']} steps in {run.summary['wall_seconds']:.0f} s", flush=True)
    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--digits", type=int, nargs="+", default=[7], help="held-out digits, one pair of runs each")
    parser.add_argument("--budget", type=float, default=300.0, help="training seconds per model")
    parser.add_argument("--n", type=int, default=1000, help="test images scored (seeded subset)")
    parser.add_argument("--steps", type=int, default=200, help="latent-search Adam steps per image")
    parser.add_argument("--gan-samples", type=int, default=2000, help="samples of the GAN's own test scoring (FID)")
    parser.add_argument("--no-append", action="store_true")
    args = parser.parse_args()
    command = "python bench/anomaly.py " + " ".join(
        f"--{name.replace('_', '-')} {' '.join(map(str, value)) if isinstance(value, list) else value}"
        for name, value in vars(args).items() if name != "no_append")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for digit in args.digits:
            gan = train(Path(tmp), "mnist-dcgan", digit, args.budget,
                        task_args={"eval_samples": args.gan_samples, "val_samples": min(1000, args.gan_samples)})
            autoencoder = train(Path(tmp), "mnist-autoencoder", digit, args.budget)
            result = score_runs(gan.path, baseline=autoencoder.path, n=args.n, search=LatentSearch(steps=args.steps),
                                write=False)
            baseline = result.auc["autoencoder"]
            print(f"digit {digit}: " + ", ".join(f"{name} {auc:.4f}" for name, auc in result.auc.items()), flush=True)
            for name, label in ROWS.items():
                auc = result.auc[name]
                rows.append({
                    "benchmark": f"anomaly detection, MNIST without digit {digit} ({result.positives} of {result.n} "
                                 f"test images are {digit}): {label}, ROC-AUC",
                    "command": command, "machine": cpu_model(), "figure": f"{auc:.4f}",
                    "peer": f"autoencoder reconstruction error, same images and training time: {baseline:.4f}",
                    "ratio": f"{auc - baseline:+.4f} AUC",
                    "notes": (f"dcgan {gan.summary['steps']} steps / autoencoder {autoencoder.summary['steps']} "
                              f"steps in {args.budget:.0f} s each; latent search {args.steps} steps, "
                              f"{result.seconds['latent_search']:.0f} s" + "".join(f"; {n}" for n in result.notes)),
                })
    if args.no_append:
        for row in rows:
            print(f"{row['benchmark']}: {row['figure']} vs {row['peer']} ({row['ratio']})")
        return
    append_rows(rows)
    print(f"appended {len(rows)} rows to BENCHMARKS.md")


if __name__ == "__main__":
    main()
