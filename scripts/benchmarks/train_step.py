"""Training-step throughput of the lab next to a plain PyTorch loop of the same networks, losses
and optimizers (``make bench``).

Each measurement is its own process (``--worker``), so peak memory is per measurement and one
run cannot warm the caches of another; lab and plain alternate, repeat after repeat, so the
machine's noise hits both alike. Reported: iterations/s and images/s (median over repeats), the
ratio lab/plain with its min and max over repeats, and peak memory (CUDA allocator peak on GPUs,
the process's peak RSS on CPUs). Writes ``scripts/benchmarks/results/train_step.{json,md}``; the last
line printed is the headline.

The lab runs through ``gan_lab.training.train`` with its default callbacks (checkpoint and sample
intervals, logging, progress bar, divergence guard) minus FID (an evaluation, not the step), on
random in-memory data of the right shape. The plain loop is written out here: the same D and G
phases, the same Adam settings (lazy-corrected for StyleGAN), style mixing, lazy R1 and path
length for StyleGAN, and the generator EMA.

    python scripts/benchmarks/train_step.py [--configs dcgan32,dcgan64,stylegan32,stylegan64,stylegan32-ref]
        [--repeats 3] [--iters 30] [--warmup 5] [--batch 32] [--extra "model.channels_last=true"]
        [--precision 32|16-mixed|bf16-mixed] [--threads N]

``stylegan32-ref`` is StyleGAN2 at stylegan2-ada-pytorch's size for 32 px (its auto config: 512
channels, map 2) and batch 8, with 4 timed iterations after 1 (a CPU needs about 15 s per
iteration): the timed window holds one path-length step (every 4th iteration) and no R1 step
(every 16th; ``scripts/benchmarks/stylegan_reference.py`` times every phase separately, against the
reference itself). ``stylegan64-ref`` and ``stylegan256-ref`` are the same at 64 and 256 px
(256 and 64 channels at the top) with ADA auto's batch (32 and 16), for GPUs. ``--precision``
applies to both sides (the plain loop under ``torch.autocast``, with a ``GradScaler`` for
``16-mixed``).
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[2]
REFERENCE_SIZE = ["model.generator.channel_base=16384", "model.generator.channel_max=512"]
CONFIGS = {
    # name: (model, resolution, lab overrides[, settings that replace --batch/--iters/--warmup]);
    # StyleGAN narrow so a CPU can measure it, and at the reference's size (ADA auto, batch 8)
    "dcgan32": ("dcgan", 32, []),
    "dcgan64": ("dcgan", 64, []),
    "stylegan32": ("stylegan", 32, ["model.generator.channel_base=1024", "model.generator.channel_max=64"]),
    "stylegan64": ("stylegan", 64, ["model.generator.channel_base=1024", "model.generator.channel_max=64"]),
    "stylegan32-ref": ("stylegan", 32, REFERENCE_SIZE, {"batch": 8, "iters": 4, "warmup": 1}),
    "stylegan64-ref": ("stylegan", 64, REFERENCE_SIZE, {"batch": 32}),  # ADA auto's batch (GPUs)
    "stylegan256-ref": ("stylegan", 256, REFERENCE_SIZE, {"batch": 16}),
}


def config_settings(config: str, args: argparse.Namespace) -> dict:
    """batch, iters and warmup of ``config``: its own where CONFIGS gives them, else the arguments'."""
    own = CONFIGS[config][3] if len(CONFIGS[config]) > 3 else {}
    return {k: own.get(k, getattr(args, k)) for k in ("batch", "iters", "warmup")}


def peak_memory_mb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: kB


def bench_config(model: str, resolution: int, batch: int, overrides: list[str], hydra: bool = False):
    """The lab's training config for a benchmark: ``model`` on RGB images of ``resolution``."""
    from hydra import compose, initialize_config_dir

    from gan_lab.train import CONFIG_DIR

    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        return compose(
            config_name="train",
            overrides=[
                f"model={model}",
                f"data.resolution={resolution}",
                "data.channels=3",
                f"data.batch_size={batch}",
                *overrides,
            ],
            return_hydra_config=hydra,
        )


# ---------------------------------------------------------------------------- the lab
def lab_worker(
    model: str, resolution: int, overrides: list[str], batch: int, warmup: int, iters: int
) -> dict:
    import tempfile

    import lightning.pytorch as pl
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import open_dict

    import gan_lab.training as lab
    from gan_lab.data.datamodule import ArrayDataModule

    class RandomImages(ArrayDataModule):
        name = "random"

        def load(self):
            g = torch.Generator().manual_seed(0)
            images = torch.randint(
                0,
                256,
                (4096, self.channels, self.resolution, self.resolution),
                generator=g,
                dtype=torch.uint8,
            )
            return images, torch.zeros(4096, dtype=torch.int64)

    class Clock(pl.Callback):
        def __init__(self) -> None:
            self.start = self.end = 0.0

        def on_train_batch_end(self, trainer, *args) -> None:
            if trainer.global_step == warmup:
                self.start = time.perf_counter()
            elif trainer.global_step == warmup + iters:
                self.end = time.perf_counter()

    clock = Clock()
    out = tempfile.mkdtemp(prefix="bench-")
    overrides = [f"trainer.max_steps={warmup + iters}", "metrics=none", "logger=csv", *overrides]
    cfg = bench_config(model, resolution, batch, overrides, hydra=True)
    with open_dict(cfg):
        cfg.hydra.runtime.output_dir = out
    HydraConfig.instance().set_config(cfg)
    with open_dict(cfg):
        del cfg["hydra"]
    original_instantiate = lab.instantiate

    def instantiate(node, *args, **kwargs):  # swap the dataset for random images of the same shape
        if node is cfg.data:
            return RandomImages(str(out), resolution, 3, batch)
        return original_instantiate(node, *args, **kwargs)

    lab.instantiate = instantiate
    callbacks = lab.build_callbacks
    lab.build_callbacks = lambda c: [*callbacks(c), clock]
    lab.train(cfg, [])
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return {
        "seconds": clock.end - clock.start,
        "iters": iters,
        "batch": batch,
        "peak_mb": peak_memory_mb(device),
    }


# ---------------------------------------------------------------------------- the plain loop
def plain_worker(
    model: str,
    resolution: int,
    overrides: list[str],
    batch: int,
    warmup: int,
    iters: int,
    precision: str = "32",
) -> dict:
    from hydra.utils import instantiate

    from gan_lab.losses import path_lengths, r1_penalty
    from gan_lab.nn.ema import ema_beta, update_ema
    from gan_lab.resolvers import register

    register()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    torch.manual_seed(0)
    cfg = bench_config(model, resolution, batch, overrides)
    m = cfg.model
    g, d = m.generator, m.discriminator
    # the same networks, built by their own classes from the same settings
    if model == "dcgan":
        from gan_lab.nn.dcgan import DCGANDiscriminator, DCGANGenerator

        G = DCGANGenerator(g.z_dim, resolution, 3, g.width, g.max_width).to(device)
        D = DCGANDiscriminator(resolution, 3, d.width, d.max_width, "batch").to(device)
    else:
        from gan_lab.nn.stylegan import StyleGANDiscriminator, StyleGANGenerator

        G = StyleGANGenerator(
            resolution, 3, g.z_dim, g.w_dim, g.map_layers, g.channel_base, g.channel_max, g.conv_clamp
        ).to(device)
        D = StyleGANDiscriminator(
            resolution, 3, d.channel_base, d.channel_max, d.mbstd_group, d.mbstd_channels, d.conv_clamp
        ).to(device)
    G_ema = __import__("copy").deepcopy(G).eval().requires_grad_(False)
    loss = instantiate(cfg.loss)
    r1, pl_on = float(m.get("r1_gamma", 0.0)), model == "stylegan" and m.pl_weight > 0

    def adam(params, opt, interval):
        c = interval / (interval + 1) if interval else 1.0
        return torch.optim.Adam(params, lr=opt.lr * c, betas=(opt.betas[0] ** c, opt.betas[1] ** c))

    # StyleGAN2-ADA corrects both optimizers whether or not the regularizers run
    stylegan = model == "stylegan"
    opt_d = adam(D.parameters(), m.optimizer_d, m.d_reg_interval if r1 > 0 or stylegan else None)
    opt_g = adam(G.parameters(), m.optimizer_g, m.pl_interval if pl_on or stylegan else None)
    dtype = {"16-mixed": torch.float16, "bf16-mixed": torch.bfloat16}.get(precision)

    def autocast():
        return torch.autocast(device.type, dtype=dtype, enabled=dtype is not None)

    scaler = torch.amp.GradScaler(device.type, enabled=dtype is torch.float16)
    data = torch.randint(0, 256, (4096, 3, resolution, resolution), dtype=torch.uint8)
    pl_mean = torch.zeros((), device=device)
    images_seen = 0

    def fakes(n, grad):
        z = torch.randn(n, g.z_dim, device=device)
        with autocast():
            return fakes_of(z)

    def fakes_of(z):
        if model == "dcgan":
            return G(z), None
        ws = G.mapping(z)
        if m.style_mixing_prob > 0 and torch.rand(()) < m.style_mixing_prob:
            cut = int(torch.randint(1, ws.shape[1], ()))
            ws = torch.cat([ws[:, :cut], G.mapping(torch.randn_like(z), update_w_avg=False)[:, cut:]], 1)
        return G.synthesis(ws), ws

    def step(opt, params_of, loss_value):
        for p in params_of.parameters():
            p.grad = None
        scaler.scale(loss_value).backward()
        scaler.step(opt)
        scaler.update()

    def scale():
        return float(scaler.get_scale()) if scaler.is_enabled() else 1.0

    def iteration(i):
        nonlocal pl_mean, images_seen
        idx = torch.randint(0, data.shape[0], (batch,))
        real = data[idx].to(device, non_blocking=True).float() / 127.5 - 1
        # G phase (StyleGAN: first)
        D.requires_grad_(False)
        fake, _ = fakes(batch, True)
        with autocast():
            logits = D(fake).flatten()
        step(opt_g, G, loss.generator(logits))
        if pl_on and i % m.pl_interval == 0:
            img, ws = fakes(max(batch // m.pl_batch_shrink, 1), True)
            lengths = path_lengths(img, ws, torch.randn_like(img), scale())
            pl_mean = pl_mean.lerp(lengths.mean(), m.pl_decay)
            penalty = (lengths - pl_mean).square().mean() * m.pl_weight * m.pl_interval
            pl_mean = pl_mean.detach()
            step(opt_g, G, penalty + img[:, 0, 0, 0].sum() * 0)
        D.requires_grad_(True)
        # D phase
        G.requires_grad_(False)
        with torch.no_grad():
            fake, _ = fakes(batch, False)
        with autocast():
            real_logits, fake_logits = D(real).flatten(), D(fake).flatten()
        step(opt_d, D, loss.discriminator(real_logits, fake_logits))
        if r1 > 0 and i % m.d_reg_interval == 0:
            x = real.detach().requires_grad_(True)
            with autocast():
                logits = D(x).flatten()
            penalty = r1_penalty(logits, x, scale()).mean()
            step(opt_d, D, penalty * (r1 / 2) * m.d_reg_interval + logits.sum() * 0)
        G.requires_grad_(True)
        update_ema(G_ema, G, ema_beta(batch, m.ema_kimg, images_seen, m.ema_rampup))
        images_seen += batch

    for i in range(warmup):
        iteration(i)
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for i in range(warmup, warmup + iters):
        iteration(i)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return {
        "seconds": time.perf_counter() - start,
        "iters": iters,
        "batch": batch,
        "peak_mb": peak_memory_mb(device),
    }


# ---------------------------------------------------------------------------- driver
def measure(impl: str, config: str, args: argparse.Namespace) -> dict:
    settings = config_settings(config, args)
    cmd = [
        sys.executable,
        __file__,
        "--worker",
        impl,
        "--configs",
        config,
        "--iters",
        str(settings["iters"]),
        "--warmup",
        str(settings["warmup"]),
        "--batch",
        str(settings["batch"]),
        "--extra",
        args.extra,
        "--precision",
        args.precision,
    ]
    if args.threads:
        cmd += ["--threads", str(args.threads)]
    done = subprocess.run(
        cmd,
        capture_output=True,
        text=True,
        cwd=REPO,
        env={**__import__("os").environ, "WANDB_MODE": "disabled"},
    )
    lines = [x for x in done.stdout.splitlines() if x.startswith("{")]
    if done.returncode != 0 or not lines:
        raise RuntimeError(f"{impl} {config} failed:\n{done.stderr[-2000:]}")
    return json.loads(lines[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description="lab vs plain training-step throughput")
    parser.add_argument("--configs", default="dcgan32,dcgan64,stylegan32,stylegan64,stylegan32-ref")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--iters", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument(
        "--extra", default="", help="space-separated overrides for the lab (e.g. model.channels_last=true)"
    )
    parser.add_argument("--precision", default="32", choices=["32", "16-mixed", "bf16-mixed"])
    parser.add_argument("--threads", type=int, help="torch.set_num_threads in each worker")
    parser.add_argument("--worker", choices=["lab", "plain"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    extra = args.extra.split()
    unknown = [c for c in args.configs.split(",") if c not in CONFIGS]
    if unknown:
        raise SystemExit(f"--configs: unknown {unknown}; known: {', '.join(CONFIGS)}")
    if args.worker:
        if args.threads:
            torch.set_num_threads(args.threads)
        model, resolution, overrides = CONFIGS[args.configs][:3]
        if args.worker == "lab":
            overrides = [*overrides, f"trainer.precision={args.precision}"]
            out = lab_worker(model, resolution, overrides + extra, args.batch, args.warmup, args.iters)
        else:
            out = plain_worker(
                model, resolution, overrides + extra, args.batch, args.warmup, args.iters, args.precision
            )
        print(json.dumps(out))
        return
    configs = args.configs.split(",")
    runs: dict[str, dict[str, list[dict]]] = {c: {"lab": [], "plain": []} for c in configs}
    for r in range(args.repeats):
        for c in configs:
            order = ("lab", "plain") if r % 2 == 0 else ("plain", "lab")
            for impl in order:
                runs[c][impl].append(measure(impl, c, args))
            last = {i: runs[c][i][-1] for i in ("lab", "plain")}
            rates = {i: last[i]["iters"] / last[i]["seconds"] for i in last}
            print(
                f"repeat {r + 1}/{args.repeats} {c}: "
                f"lab {rates['lab']:.2f} it/s, plain {rates['plain']:.2f} it/s",
                flush=True,
            )
    device = "cuda" if torch.cuda.is_available() else "cpu"
    rows, table = (
        [],
        [
            f"Device: {device}; precision {args.precision}; threads "
            f"{args.threads or torch.get_num_threads()}; {args.repeats} interleaved repeats; "
            f"extra lab overrides: `{args.extra or 'none'}`",
            "",
            "| config | batch | timed iterations (after) | lab it/s | plain it/s | lab images/s "
            "| ratio lab/plain (min, max) | lab peak MB | plain peak MB |",
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
        ],
    )
    for c in configs:
        lab_rates = [x["iters"] / x["seconds"] for x in runs[c]["lab"]]
        plain_rates = [x["iters"] / x["seconds"] for x in runs[c]["plain"]]
        ratios = [a / b for a, b in zip(lab_rates, plain_rates, strict=True)]
        row = {
            "config": c,
            "lab_it_s": statistics.median(lab_rates),
            "plain_it_s": statistics.median(plain_rates),
            "ratio": statistics.median(ratios),
            "ratio_min": min(ratios),
            "ratio_max": max(ratios),
            "lab_peak_mb": max(x["peak_mb"] for x in runs[c]["lab"]),
            "plain_peak_mb": max(x["peak_mb"] for x in runs[c]["plain"]),
        }
        rows.append(row)
        settings = config_settings(c, args)
        table.append(
            f"| {c} | {settings['batch']} | {settings['iters']} ({settings['warmup']}) "
            f"| {row['lab_it_s']:.2f} | {row['plain_it_s']:.2f} "
            f"| {row['lab_it_s'] * settings['batch']:.0f} | "
            f"{row['ratio']:.3f} ({row['ratio_min']:.3f}, {row['ratio_max']:.3f}) | "
            f"{row['lab_peak_mb']:.0f} | {row['plain_peak_mb']:.0f} |"
        )
    out = Path(__file__).parent / "results"
    out.mkdir(exist_ok=True)
    (out / "train_step.json").write_text(
        json.dumps({"device": device, "args": vars(args), "rows": rows, "runs": runs}, indent=2)
    )
    (out / "train_step.md").write_text("\n".join(table) + "\n")
    print("\n".join(table))
    head = rows[0]
    spread = f"min {head['ratio_min']:.2f}, max {head['ratio_max']:.2f}"
    print(f"{head['config']} ratio lab/plain {head['ratio']:.2f} ({spread})")


if __name__ == "__main__":
    if __package__ is None:
        sys.path.insert(0, str(REPO))
    main()
