"""archlab's `ddpm` against a peer DDPM (Hugging Face diffusers), same MNIST images, same wall budget, same judge.

    python bench/ddpm_peer.py          # 600 s of training each, then 10,000 DDIM-50 samples each (~60 min in all)
    python bench/ddpm_peer.py --budget 20 --samples 200 --ddim-steps 10 --no-append   # a smoke run (~3 minutes)

The issue names `denoising-diffusion-pytorch` as the peer. It cannot run beside archlab's CPU torch wheel:
version 2.3.4 declares `torchvision` and `pytorch-fid` (which needs torchvision too) as requirements, and its
main module imports torchvision at the top (`from torchvision import transforms as T, utils`), which the
package's `__init__` imports in turn; torchvision fails to import beside the CPU torch wheel used here. So the
peer is diffusers (pinned in the `peers` extra: `pip install -e '.[peers]'`), pure PyTorch, written from its
documented unconditional training example (examples/unconditional_image_generation/train_unconditional.py and
the "Train a diffusion model" tutorial): `UNet2DModel` with Down/AttnDown blocks, `DDPMScheduler` (1000 steps,
linear betas 1e-4..0.02), ε-prediction MSE loss on uniformly drawn t, AdamW (lr 1e-4, β 0.95/0.999, weight
decay 1e-6, ε 1e-8), cosine schedule with 500 warm-up steps, gradient clipping at 1.0, batch 16, and EMA weights
(`EMAModel`, inv_gamma 1, power 3/4, max decay 0.9999) used for sampling. Sizes are scaled to 28×28 digits and to
archlab's default `ddpm` (same widths 16/32/64, attention at 7×7, group norm of 8 groups; ~0.69M parameters
against archlab's ~0.53M). The example's horizontal flips are left out (digits are not mirror-symmetric). Its
cosine schedule needs a step count: the peer's speed is measured first on a throw-away copy and the schedule is
stretched over the steps that fit the budget.

Both train on archlab's MNIST training split (55,000 images, the 5,000 validation images held out), are sampled
with DDIM (η = 0, the same number of steps for both: `--ddim-steps`, default 50) and judged by archlab's MNIST
judge (`archlab.metrics.generative.score_images`: FID, KID, IS, class coverage) on the same number of samples
(`--samples`, default 10,000) against the MNIST test split.
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import append_rows, cpu_model  # noqa: E402

import archlab  # noqa: E402
from archlab.data import load_image_data  # noqa: E402
from archlab.data.splits import signed  # noqa: E402
from archlab.metrics.generative import score_images  # noqa: E402

DIFFUSERS_VERSION = "0.42.1"
PEER = {"widths": (16, 32, 64), "layers_per_block": 1, "groups": 8, "head_dim": 16, "batch": 16, "lr": 1e-4,
        "betas": (0.95, 0.999), "weight_decay": 1e-6, "eps": 1e-8, "warmup": 500, "grad_clip": 1.0,
        "ema_inv_gamma": 1.0, "ema_power": 0.75, "ema_max_decay": 0.9999, "timesteps": 1000}
SAMPLE_BATCH = 500


def import_diffusers():
    try:
        import diffusers
    except ImportError:
        sys.exit(f"The peer needs diffusers {DIFFUSERS_VERSION}: pip install -e '.[peers]' "
                 f"(or pip install diffusers=={DIFFUSERS_VERSION}); it brings no other torch.")
    return diffusers


def peer_unet():
    from diffusers import UNet2DModel

    return UNet2DModel(sample_size=28, in_channels=1, out_channels=1, layers_per_block=PEER["layers_per_block"],
                       block_out_channels=PEER["widths"], norm_num_groups=PEER["groups"],
                       attention_head_dim=PEER["head_dim"],
                       down_block_types=("DownBlock2D", "DownBlock2D", "AttnDownBlock2D"),
                       up_block_types=("AttnUpBlock2D", "UpBlock2D", "UpBlock2D"))


class PeerTrainer:
    """The training loop of diffusers' unconditional example, on in-memory MNIST tensors in [-1, 1]."""

    def __init__(self, images: torch.Tensor, total_steps: int, seed: int) -> None:
        from diffusers import DDPMScheduler
        from diffusers.optimization import get_cosine_schedule_with_warmup
        from diffusers.training_utils import EMAModel

        torch.manual_seed(seed)
        self.images, self.generator = images, torch.Generator().manual_seed(seed)
        self.model = peer_unet()
        self.scheduler = DDPMScheduler(num_train_timesteps=PEER["timesteps"], beta_schedule="linear")
        self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=PEER["lr"], betas=PEER["betas"],
                                           weight_decay=PEER["weight_decay"], eps=PEER["eps"])
        self.lr_schedule = get_cosine_schedule_with_warmup(self.optimizer, PEER["warmup"], max(total_steps, 1))
        self.ema = EMAModel(self.model.parameters(), decay=PEER["ema_max_decay"], use_ema_warmup=True,
                            inv_gamma=PEER["ema_inv_gamma"], power=PEER["ema_power"])
        self.order, self.cursor, self.steps = torch.empty(0, dtype=torch.long), 0, 0

    def batch(self) -> torch.Tensor:
        if self.cursor + PEER["batch"] > len(self.order):  # a new shuffled epoch
            self.order, self.cursor = torch.randperm(len(self.images), generator=self.generator), 0
        index = self.order[self.cursor:self.cursor + PEER["batch"]]
        self.cursor += PEER["batch"]
        return self.images[index]

    def step(self) -> float:
        self.model.train()
        clean = self.batch()
        noise = torch.randn(clean.shape, generator=self.generator)
        t = torch.randint(0, PEER["timesteps"], (len(clean),), generator=self.generator)
        noisy = self.scheduler.add_noise(clean, noise, t)
        loss = F.mse_loss(self.model(noisy, t).sample, noise)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), PEER["grad_clip"])
        self.optimizer.step()
        self.lr_schedule.step()
        self.ema.step(self.model.parameters())
        self.steps += 1
        return loss.detach().item()

    def train_for(self, seconds: float) -> float:
        start = time.perf_counter()
        while time.perf_counter() - start < seconds:
            self.step()
        return time.perf_counter() - start

    @torch.no_grad()
    def sample(self, n: int, ddim_steps: int, seed: int) -> torch.Tensor:
        """n images with the EMA weights and DDIM (η = 0), as the example's pipeline does with its scheduler."""
        from diffusers import DDIMScheduler

        self.ema.copy_to(self.model.parameters())
        self.model.eval()
        ddim = DDIMScheduler.from_config(self.scheduler.config)
        ddim.set_timesteps(ddim_steps)
        generator, parts = torch.Generator().manual_seed(seed), []
        for start in range(0, n, SAMPLE_BATCH):
            x = torch.randn(min(SAMPLE_BATCH, n - start), 1, 28, 28, generator=generator)
            for t in ddim.timesteps:
                x = ddim.step(self.model(x, t).sample, t, x, eta=0.0).prev_sample
            parts.append(x.clamp(-1, 1))
        return torch.cat(parts)


def peer_speed(images: torch.Tensor, seed: int, probe_steps: int = 30) -> float:
    """Seconds per step of the peer, measured on a throw-away copy (its cosine schedule needs a step count)."""
    probe = PeerTrainer(images, probe_steps + 5, seed)
    for _ in range(5):
        probe.step()  # warm-up: first calls allocate
    start = time.perf_counter()
    for _ in range(probe_steps):
        probe.step()
    return (time.perf_counter() - start) / probe_steps


def run_archlab(args: argparse.Namespace, folder: Path) -> tuple[torch.Tensor, dict]:
    from archlab.sampling import sample

    settings = {"recipe": args.recipe} if args.recipe else {"model": "ddpm", "data": "mnist"}
    run = archlab.train(**settings, max_time=args.budget, epochs=10_000, seed=args.seed, run_dir=folder / "archlab",
                        task_args={"eval_samples": 0}, report=False, progress=False)
    start = time.perf_counter()
    parts = [sample(run.path, min(SAMPLE_BATCH, args.samples - i), steps=args.ddim_steps, eta=0.0, seed=args.seed + i)
             for i in range(0, args.samples, SAMPLE_BATCH)]
    info = {"wall": run.summary.get("wall_seconds", float("nan")), "steps": run.summary.get("steps"),
            "params": run.summary.get("params"), "sample_seconds": time.perf_counter() - start}
    return torch.cat(parts), info


def run_peer(args: argparse.Namespace) -> tuple[torch.Tensor, dict]:
    images = signed(load_image_data("mnist", None, 5000, args.seed).train.images)  # archlab's training split
    seconds_per_step = peer_speed(images, args.seed)
    trainer = PeerTrainer(images, math.ceil(args.budget / seconds_per_step), args.seed)
    wall = trainer.train_for(args.budget)
    start = time.perf_counter()
    samples = trainer.sample(args.samples, args.ddim_steps, args.seed)
    return samples, {"wall": wall, "steps": trainer.steps, "params": sum(p.numel() for p in trainer.model.parameters()),
                     "sample_seconds": time.perf_counter() - start}


def describe(scores: dict) -> str:
    return (f"FID {scores['fid']:.2f}, KID {scores['kid_mean']:.4f}, IS {scores['inception_score']:.2f}, "
            f"coverage {scores['coverage_entropy']:.2f} bits")


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=float, default=600.0, help="wall-clock seconds of training per model")
    parser.add_argument("--samples", type=int, default=10_000, help="samples per model scored by the judge")
    parser.add_argument("--ddim-steps", type=int, default=50, help="DDIM steps (η = 0) for both models")
    parser.add_argument("--recipe", default="mnist-ddpm", help="archlab recipe of the ddpm run ('': the model defaults)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-append", action="store_true", help="print only; do not append to BENCHMARKS.md")
    return parser.parse_args()


def main() -> None:
    args = parse()
    diffusers = import_diffusers()
    if args.threads:
        torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory(prefix="ddpm-peer-") as tmp:
        ours, ours_info = run_archlab(args, Path(tmp))
    peer, peer_info = run_peer(args)
    ours_scores, peer_scores = score_images(ours, "mnist", seed=args.seed), score_images(peer, "mnist", seed=args.seed)
    for name, info, scores in (("archlab ddpm", ours_info, ours_scores), (f"diffusers {diffusers.__version__}",
                                                                          peer_info, peer_scores)):
        print(f"{name:>18}: {describe(scores)} | {info['steps']} steps (run wall {info['wall']:.0f} s), "
              f"{info['params']:,} params, sampling {info['sample_seconds']:.0f} s")
    if args.no_append:
        return
    command = "python bench/ddpm_peer.py" + "".join(f" {a}" for a in sys.argv[1:])
    append_rows([{
        "benchmark": f"DDPM vs peer (diffusers {diffusers.__version__} UNet2DModel, its training example), MNIST, "
                     f"equal wall budget {args.budget:.0f} s",
        "command": command, "machine": cpu_model(),
        "figure": f"archlab ddpm {describe(ours_scores)} ({ours_info['steps']} steps, {ours_info['params']:,} params)",
        "peer": f"diffusers {describe(peer_scores)} ({peer_info['steps']} steps, {peer_info['params']:,} params)",
        "ratio": f"peer FID / archlab FID = {peer_scores['fid'] / max(ours_scores['fid'], 1e-9):.2f}×",
        "notes": (f"{args.samples} samples each, DDIM {args.ddim_steps} steps η=0, EMA weights, judged by archlab's MNIST "
                  f"judge against the test split; sampling {ours_info['sample_seconds']:.0f} s vs "
                  f"{peer_info['sample_seconds']:.0f} s; denoising-diffusion-pytorch needs torchvision (see script)"),
    }])


if __name__ == "__main__":
    main()
