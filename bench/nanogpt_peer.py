"""archlab's `shakespeare-gpt` recipe against nanoGPT's published CPU configuration, same text, same clock.

    python bench/nanogpt_peer.py                             # 300 s each (about 11-12 minutes in all)
    python bench/nanogpt_peer.py --budget 20 --no-append     # a smoke run

The peer is nanoGPT's character-level Shakespeare configuration for a CPU, written here from its published
description (train.py defaults + config/train_shakespeare_char.py + the README's CPU flags): 4 layers, 4 heads,
128-dim embeddings, context 64, batch 12, dropout 0, no biases (train.py's default), GELU MLP 4×, pre-LN, tied
token embedding and read-out, N(0, 0.02) init with residual projections at 0.02/√(2·layers), AdamW (β 0.9/0.99,
weight decay 0.1 on matrices only), lr 1e-3 with 100 warm-up iterations then cosine decay to 1e-4, gradients
clipped at 1.0. Published: 2,000 iterations; here the iteration count is raised so that the peer, too, fills the
budget (its speed is measured first on a throw-away copy) and the cosine is stretched to end at the last one.

Both train on archlab's Shakespeare training works with archlab's character tokenizer, and both are scored the
same way on the same characters: every non-overlapping window of the model's own context over the whole
held-out validation text (nats per character). Rows: archlab's validation loss, the peer's as the same-run peer.
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
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import append_rows, cpu_model  # noqa: E402

import archlab  # noqa: E402
from archlab.config import load_recipe  # noqa: E402
from archlab.evaluation_language import window_loss  # noqa: E402
from archlab.runs import load_model  # noqa: E402
from archlab.tasks.language import FixedWindows, load_corpus  # noqa: E402

PEER = {"layers": 4, "heads": 4, "dim": 128, "context": 64, "batch": 12, "lr": 1e-3, "min_lr": 1e-4, "warmup": 100,
        "weight_decay": 0.1, "betas": (0.9, 0.99), "grad_clip": 1.0, "published_iters": 2000}


class PeerBlock(nn.Module):
    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.ln_1, self.ln_2 = nn.LayerNorm(dim, bias=False), nn.LayerNorm(dim, bias=False)
        self.c_attn, self.c_proj = nn.Linear(dim, 3 * dim, bias=False), nn.Linear(dim, dim, bias=False)
        self.c_fc, self.mlp_proj = nn.Linear(dim, 4 * dim, bias=False), nn.Linear(4 * dim, dim, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, length, dim = x.shape
        q, k, v = (t.view(batch, length, self.heads, -1).transpose(1, 2)
                   for t in self.c_attn(self.ln_1(x)).split(dim, dim=2))
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True).transpose(1, 2).reshape(batch, length, dim)
        x = x + self.c_proj(y)
        return x + self.mlp_proj(F.gelu(self.c_fc(self.ln_2(x))))


class PeerGPT(nn.Module):
    """nanoGPT's model at the published CPU size (bias=False, dropout 0)."""

    def __init__(self, vocab: int, context: int, layers: int, heads: int, dim: int) -> None:
        super().__init__()
        self.wte, self.wpe = nn.Embedding(vocab, dim), nn.Embedding(context, dim)
        self.blocks = nn.ModuleList(PeerBlock(dim, heads) for _ in range(layers))
        self.ln_f = nn.LayerNorm(dim, bias=False)
        for module in self.modules():
            if isinstance(module, (nn.Linear, nn.Embedding)):
                nn.init.normal_(module.weight, std=0.02)
        for block in self.blocks:
            for projection in (block.c_proj, block.mlp_proj):
                nn.init.normal_(projection.weight, std=0.02 / math.sqrt(2 * layers))

    def forward(self, tokens: torch.Tensor) -> tuple[torch.Tensor, None]:
        x = self.wte(tokens) + self.wpe(torch.arange(tokens.shape[1]))
        for block in self.blocks:
            x = block(x)
        return F.linear(self.ln_f(x), self.wte.weight), None  # tied read-out; the (logits, state) contract


def peer_lr(iteration: int, total: int) -> float:
    """nanoGPT's get_lr: linear warm-up, then cosine from lr to min_lr at ``total`` iterations."""
    if iteration < PEER["warmup"]:
        return PEER["lr"] * (iteration + 1) / (PEER["warmup"] + 1)
    ratio = min(1.0, (iteration - PEER["warmup"]) / max(1, total - PEER["warmup"]))
    return PEER["min_lr"] + 0.5 * (1 + math.cos(math.pi * ratio)) * (PEER["lr"] - PEER["min_lr"])


def train_peer(train_ids: torch.Tensor, vocab: int, iterations: int, budget: float, seed: int) -> tuple[nn.Module, int, float]:
    """Train the peer for ``iterations`` (stopping at ``budget`` seconds); returns the model, iterations, seconds."""
    torch.manual_seed(seed)
    model = PeerGPT(vocab, PEER["context"], PEER["layers"], PEER["heads"], PEER["dim"])
    decay = [p for p in model.parameters() if p.ndim >= 2]
    rest = [p for p in model.parameters() if p.ndim < 2]
    optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": PEER["weight_decay"]},
                                   {"params": rest, "weight_decay": 0.0}], lr=PEER["lr"], betas=PEER["betas"])
    generator = torch.Generator().manual_seed(seed)
    context, start, done = PEER["context"], time.perf_counter(), 0
    for iteration in range(iterations):
        if time.perf_counter() - start > budget:
            break
        for group in optimizer.param_groups:
            group["lr"] = peer_lr(iteration, iterations)
        starts = torch.randint(len(train_ids) - context - 1, (PEER["batch"],), generator=generator)
        chunk = train_ids[starts[:, None] + torch.arange(context + 1)]
        logits, _ = model(chunk[:, :-1])
        loss = F.cross_entropy(logits.flatten(0, 1), chunk[:, 1:].flatten())
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), PEER["grad_clip"])
        optimizer.step()
        done = iteration + 1
    return model, done, time.perf_counter() - start


def full_val_loss(model: nn.Module, val_ids: torch.Tensor, context: int) -> float:
    """Nats per character over every non-overlapping window of ``context`` of the whole validation text."""
    return window_loss(model.eval(), FixedWindows(val_ids, context, 10**9, 256))["loss"]


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=float, default=300.0, help="wall-clock seconds of training per model")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-append", action="store_true")
    return parser.parse_args()


def main() -> None:
    args = parse()
    if args.threads:
        torch.set_num_threads(args.threads)
    data = load_corpus("shakespeare")
    vocab = data.tokenizer.vocab_size
    _, probe_iters, probe_seconds = train_peer(data.train, vocab, 30, 1e9, args.seed + 1)  # speed, thrown away
    iterations = max(PEER["warmup"] + 1, int(args.budget / (probe_seconds / probe_iters)))
    print(f"peer: {probe_seconds / probe_iters * 1000:.1f} ms/iteration → {iterations} iterations in {args.budget:.0f} s "
          f"(published: {PEER['published_iters']})", flush=True)
    peer, done, peer_seconds = train_peer(data.train, vocab, iterations, args.budget, args.seed)
    peer_val = full_val_loss(peer, data.val, PEER["context"])
    print(f"peer: {done} iterations in {peer_seconds:.0f} s, validation loss {peer_val:.4f} nats/char", flush=True)

    recipe = load_recipe("shakespeare-gpt")
    with tempfile.TemporaryDirectory() as tmp:
        steps = max(1, round(recipe["max_steps"] * args.budget / recipe["max_time"]))
        run = archlab.train(recipe="shakespeare-gpt", max_time=args.budget, max_steps=steps, run_dir=Path(tmp) / "gpt",
                            progress=False, report=False, seed=args.seed, num_threads=args.threads,
                            task_args={"sample_length": 0})
        loaded = load_model(run.path)
        ours = full_val_loss(loaded.model, data.val, recipe["model_args"]["context"])
        summary = run.summary
    print(f"\n{'model':<28}{'val nats/char':>14}{'bits/char':>10}{'seconds':>9}{'params':>10}")
    print(f"{'archlab gpt (shakespeare-gpt)':<28}{ours:>14.4f}{ours / math.log(2):>10.3f}"
          f"{summary['wall_seconds']:>9.0f}{summary['params']:>10,}")
    print(f"{'nanoGPT CPU config (peer)':<28}{peer_val:>14.4f}{peer_val / math.log(2):>10.3f}{peer_seconds:>9.0f}"
          f"{sum(p.numel() for p in peer.parameters()):>10,}")
    if args.no_append:
        return
    command = "python bench/nanogpt_peer.py" + (f" --budget {args.budget:g}" if args.budget != 300 else "") + (
        f" --threads {args.threads}" if args.threads else "")
    append_rows([{"benchmark": "char LM vs nanoGPT CPU config, same clock", "command": command, "machine": cpu_model(),
                  "figure": f"archlab gpt val {ours:.3f} nats/char ({summary['wall_seconds']:.0f} s)",
                  "peer": f"nanoGPT config val {peer_val:.3f} nats/char ({done} it, {peer_seconds:.0f} s)",
                  "ratio": f"{ours / peer_val:.3f}",
                  "notes": "whole validation text (held-out plays), each model's own context; goal ≤ 1.75"}])


if __name__ == "__main__":
    main()
