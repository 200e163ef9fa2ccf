"""Side-by-side training-step timing of the lab's StyleGAN2 against NVIDIA's stylegan2-ada-pytorch.

    python scripts/benchmarks/stylegan_reference.py --reference /path/to/stylegan2-ada-pytorch
        [--repeats 5] [--iters 1] [--warmup 1] [--resolution 32] [--batch 8] [--threads N]
        [--precision 32|16-mixed|bf16-mixed] [--lab PATH] [--lab-overrides "KEY=VALUE ..."]
        [--check-gradients] [--count-convs] [--phases Gmain,Dreg] [--out FILE.md]

Equal settings on both sides (the defaults: 32x32 RGB, 512 channels, map 2, batch 8, path length
on, fp32, no augmentation, R1 gamma of ADA's auto config ``0.0002 R^2 / B``). The reference is a
local checkout (commit d72cc7d or newer, NVIDIA's non-commercial licence: imported from PATH at run
time, none of its code is in this repository); its custom ops run on their reference PyTorch
paths, as ``scripts/check_stylegan_reference.py`` sets them up (``--reference-cuda-ops`` lets it
build its CUDA plugins instead, on a GPU). The lab's networks start from the reference's weights
(copied by name), so both train the same function.

Phases, each one optimizer step:

* reference: ``training.loss.StyleGAN2Loss.accumulate_gradients`` for ``Gmain``, ``Greg`` (path
  length), ``Dmain``, ``Dreg`` (R1), driven as its ``training_loop`` drives them (zero_grad,
  ``requires_grad_`` of the phase's network, ``gain`` = the phase's interval, ``nan_to_num`` of the
  gradients, Adam with the lazy-regularisation correction), and its G_ema update;
* lab: ``gan_lab.modules.StyleGAN`` built from the lab's config (``model=stylegan``) with a
  Lightning Trainer attached (its precision plugin, so ``16-mixed`` scales the loss as in
  training): ``optimize`` of ``generator_loss``, ``generator_regularization``,
  ``discriminator_loss``, ``d_regularization`` (what ``generator_phase`` and
  ``discriminator_phase`` run), and ``update_generator_ema``;
* both: ``G_ema`` forward in eval mode (inference, not part of the iteration).

Each repeat times every phase ``--iters`` times, lab and reference alternately (the order flips
every repeat), after ``--warmup`` untimed runs. A whole iteration is ``Gmain + Greg / 4 + Dmain +
Dreg / 16 + EMA`` (the lazy intervals, ``model.pl_interval`` and ``model.d_reg_interval``,
amortised). Reported: per phase the ratio of times
lab/reference (min, median, max over repeats; < 1 = the lab is faster), and for the whole
iteration the speed lab/reference (> 1 = the lab is faster). ``--count-convs`` also counts the
convolution calls (``aten.convolution`` and ``aten.convolution_backward``, as the dispatcher sees
them) of one run of each phase.

``--lab PATH`` times another checkout's lab (e.g. an older commit: ``git worktree add``);
``--lab-overrides`` changes the lab's config (e.g. ``+model.optimizer_g.fused=true``);
``--check-gradients`` first compares the two implementations' R1, path-length and G-loss
parameter gradients (64 channels, same weights and inputs) and refuses to time different math.

On a CPU shared with other work the absolute times move by 2x and more between minutes; the
interleaved ratios are the steadier numbers. With two intra-op threads on a busy machine every
parallel op also waits for the second thread (about 10 ms), which penalises the implementation
with more ops (the reference's R1: 3,151 convolution calls); ``--threads 1`` measures without
that.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import importlib
import math
import statistics
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

REPO = Path(__file__).resolve().parents[2]
PHASES = ("Gmain", "Greg", "Dmain", "Dreg", "Gema", "G_ema forward")
ITERATION = ("Gmain", "Greg", "Dmain", "Dreg", "Gema")  # a whole iteration, lazy phases amortised


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--reference", type=Path, required=True, help="stylegan2-ada-pytorch checkout")
    p.add_argument("--lab", type=Path, default=REPO, help="the lab checkout to time (default: this one)")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--iters", type=int, default=1, help="timed runs of each phase per repeat")
    p.add_argument("--warmup", type=int, default=1, help="untimed runs of each phase first")
    p.add_argument("--resolution", type=int, default=32)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--channel-base", type=int, default=16384, help="16384: 512 channels up to 32 px")
    p.add_argument("--channel-max", type=int, default=512)
    p.add_argument("--map-layers", type=int, default=2)
    p.add_argument("--precision", default="32", choices=["32", "16-mixed", "bf16-mixed"])
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--reference-cuda-ops", action="store_true", help="let the reference build its plugins")
    p.add_argument(
        "--phases", default=",".join(PHASES), help="comma-separated subset of " + ", ".join(PHASES)
    )
    p.add_argument("--threads", type=int, help="torch.set_num_threads (default: torch's choice)")
    p.add_argument(
        "--lab-overrides",
        default="",
        help='space-separated Hydra overrides of the lab\'s config, e.g. "model.channels_last=true"',
    )
    p.add_argument("--count-convs", action="store_true")
    p.add_argument(
        "--check-gradients",
        action="store_true",
        help="first compare the R1, path-length and G-loss gradients with the reference's (64 channels)",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, help="also write the markdown table here")
    return p.parse_args(argv)


# ---------------------------------------------------------------------------- set-up
def import_lab(path: Path) -> None:
    """Put the lab checkout ``path`` first on sys.path (before any gan_lab import)."""
    path = path.resolve()
    if not (path / "gan_lab" / "__init__.py").is_file():
        raise SystemExit(f"--lab {path}: no gan_lab package there")
    sys.path.insert(0, str(path))
    sys.path.insert(1, str(REPO / "scripts"))  # check_stylegan_reference's helpers (this checkout's)
    if str(REPO) not in sys.path:
        sys.path.append(str(REPO))  # so that the helpers do not put this checkout's gan_lab first


def reference_setup(args: argparse.Namespace) -> Any:
    """Import the reference's networks (custom ops on their PyTorch paths unless asked otherwise)."""
    import check_stylegan_reference as check

    if args.reference_cuda_ops:
        sys.path.insert(0, str(args.reference.resolve()))
        return importlib.import_module("training.networks")
    return check.load_reference(args.reference)


def lab_config(args: argparse.Namespace, r1_gamma: float | None = None) -> Any:
    from hydra import compose, initialize_config_dir

    from gan_lab.train import CONFIG_DIR

    overrides = [
        "model=stylegan",
        f"data.resolution={args.resolution}",
        "data.channels=3",
        "data.num_classes=0",
        f"data.batch_size={args.batch}",
        f"model.generator.channel_base={args.channel_base}",
        f"model.generator.channel_max={args.channel_max}",
        f"model.generator.map_layers={args.map_layers}",
        "augment=none",
        f"trainer.precision={args.precision}",
        *args.lab_overrides.split(),
    ]
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        return compose(config_name="train", overrides=overrides)


class Sides:
    """The two implementations, their networks starting from the same weights."""

    def __init__(self, args: argparse.Namespace) -> None:
        import check_stylegan_reference as check
        import lightning.pytorch as pl
        from hydra.utils import instantiate

        from gan_lab.resolvers import register

        register()
        self.args = args
        self.device = torch.device(args.device)
        torch.manual_seed(args.seed)
        networks = reference_setup(args)
        cfg = lab_config(args)
        m = cfg.model
        self.r1_gamma = float(m.r1_gamma)
        fp16_res = 0 if args.precision == "32" else 4  # the reference's mixed precision: fp16 top 4 res
        case = check.Case(
            "bench",
            args.resolution,
            3,
            0,
            int(m.generator.z_dim),
            int(m.generator.w_dim),
            args.map_layers,
            args.channel_base,
            args.channel_max,
            mbstd_group=int(m.discriminator.mbstd_group),
            batch=args.batch,
        )
        ref_G, ref_D = check.build_reference(networks, case)
        if fp16_res:  # rebuild with the reference's float16 resolutions (conv_clamp 256 as the lab)
            ref_G = networks.Generator(
                z_dim=case.z_dim,
                c_dim=0,
                w_dim=case.w_dim,
                img_resolution=case.resolution,
                img_channels=3,
                mapping_kwargs=dict(num_layers=case.map_layers),
                synthesis_kwargs=dict(
                    channel_base=case.channel_base,
                    channel_max=case.channel_max,
                    conv_clamp=256,
                    num_fp16_res=fp16_res,
                ),
            )
            ref_D = networks.Discriminator(
                c_dim=0,
                img_resolution=case.resolution,
                img_channels=3,
                channel_base=case.channel_base,
                channel_max=case.channel_max,
                conv_clamp=256,
                num_fp16_res=fp16_res,
                epilogue_kwargs=dict(mbstd_group_size=case.mbstd_group, mbstd_num_channels=1),
            )
        # ---- the lab, from its config, with the reference's weights
        module = instantiate(m)
        check.copy_weights(ref_G, module.G, "G", args.resolution)
        check.copy_weights(ref_D, module.D, "D", args.resolution)
        module.G_ema.load_state_dict(module.G.state_dict())
        trainer = pl.Trainer(
            accelerator=self.device.type,
            devices=1,
            precision=args.precision,
            logger=False,
            enable_checkpointing=False,
            enable_progress_bar=False,
            enable_model_summary=False,
            max_steps=1,
        )
        trainer.strategy.connect(module)
        module.trainer = trainer
        module.to(self.device)
        module.configure_model()  # what Lightning calls before training (channels_last, compile)
        module.train()
        trainer.strategy.optimizers = module.configure_optimizers()
        self.module, self.trainer = module, trainer
        self.opt_d, self.opt_g = module.optimizers()
        self.pl_interval, self.d_reg_interval = int(m.pl_interval), int(m.d_reg_interval)

        # ---- the reference, as its training_loop sets it up
        loss_mod = importlib.import_module("training.loss")
        self.ref_G = ref_G.train().requires_grad_(False).to(self.device)
        self.ref_D = ref_D.train().requires_grad_(False).to(self.device)
        self.ref_G_ema = copy.deepcopy(self.ref_G).eval()
        self.ref_loss = loss_mod.StyleGAN2Loss(
            device=self.device,
            G_mapping=self.ref_G.mapping,
            G_synthesis=self.ref_G.synthesis,
            D=self.ref_D,
            augment_pipe=None,
            style_mixing_prob=float(m.style_mixing_prob),
            r1_gamma=self.r1_gamma,
            pl_batch_shrink=int(m.pl_batch_shrink),
            pl_decay=float(m.pl_decay),
            pl_weight=float(m.pl_weight),
        )
        self.ref_phases = {}
        base = dict(
            lr=float(m.optimizer_g.lr), betas=tuple(m.optimizer_g.betas), eps=float(m.optimizer_g.eps)
        )
        for name, net, interval in (
            ("G", self.ref_G, self.pl_interval),
            ("D", self.ref_D, self.d_reg_interval),
        ):
            c = interval / (interval + 1)
            opt = torch.optim.Adam(
                net.parameters(), lr=base["lr"] * c, betas=[b**c for b in base["betas"]], eps=base["eps"]
            )
            self.ref_phases[name] = (net, opt, interval)
        self.ema_kimg, self.ema_rampup = float(m.ema_kimg), m.ema_rampup
        self.ref_nimg = 0
        self.misc = importlib.import_module("torch_utils.misc")
        self.reference_plugins = "not asked for"
        if args.reference_cuda_ops:
            ops = [importlib.import_module(f"torch_utils.ops.{n}") for n in ("upfirdn2d", "bias_act")]
            self.reference_plugins = (
                "built" if all(op._init() for op in ops) else "unavailable (PyTorch fallback)"
            )
        gen = torch.Generator().manual_seed(args.seed + 1)
        self.reals = (
            torch.randint(0, 256, (64, 3, args.resolution, args.resolution), generator=gen).float() / 127.5
            - 1
        ).to(self.device)
        self.batch_idx = 0

    # ------------------------------------------------------------------ the lab's phases
    def real_batch(self, lab: bool = False) -> torch.Tensor:
        i = (self.batch_idx * self.args.batch) % (self.reals.shape[0] - self.args.batch + 1)
        self.batch_idx += 1
        real = self.reals[i : i + self.args.batch]
        if lab and self.module.channels_last:  # as the lab's training_step
            real = real.contiguous(memory_format=torch.channels_last)
        return real

    def lab(self, phase: str) -> None:
        module, b = self.module, self.args.batch
        with self.trainer.precision_plugin.train_step_context():
            if phase == "Gmain":
                module.optimize(self.opt_g, lambda: module.generator_loss(b, None))
            elif phase == "Greg":
                module.optimize(self.opt_g, lambda: module.generator_regularization(b, None))
            elif phase == "Dmain":
                real = self.real_batch(lab=True)
                module.optimize(self.opt_d, lambda: module.discriminator_loss(real, None))
            elif phase == "Dreg":
                real = self.real_batch(lab=True)
                module.optimize(self.opt_d, lambda: module.d_regularization(real, None))
            elif phase == "Gema":
                module.update_generator_ema(b)
                module.images_seen += b
            elif phase == "G_ema forward":
                with torch.no_grad():
                    module.G_ema(torch.randn(b, module.G.z_dim, device=self.device))
            else:
                raise ValueError(phase)

    # ------------------------------------------------------------------ the reference's phases
    def ref(self, phase: str) -> None:
        b, dev = self.args.batch, self.device
        if phase in ("Gmain", "Greg", "Dmain", "Dreg"):
            net, opt, interval = self.ref_phases[phase[0]]
            gain = 1 if phase.endswith("main") else interval
            real = self.real_batch()
            gen_z = torch.randn([b, self.ref_G.z_dim], device=dev)
            gen_c = torch.zeros([b, 0], device=dev)
            opt.zero_grad(set_to_none=True)
            net.requires_grad_(True)
            self.ref_loss.accumulate_gradients(
                phase=phase, real_img=real, real_c=gen_c, gen_z=gen_z, gen_c=gen_c, sync=True, gain=gain
            )
            net.requires_grad_(False)
            for param in net.parameters():
                if param.grad is not None:
                    self.misc.nan_to_num(param.grad, nan=0, posinf=1e5, neginf=-1e5, out=param.grad)
            opt.step()
        elif phase == "Gema":
            with torch.no_grad():  # the reference's training loop runs it in no_grad (its main loop)
                ema_nimg = self.ema_kimg * 1000
                if self.ema_rampup is not None:
                    ema_nimg = min(ema_nimg, self.ref_nimg * float(self.ema_rampup))
                beta = 0.5 ** (b / max(ema_nimg, 1e-8))
                for p_ema, p in zip(self.ref_G_ema.parameters(), self.ref_G.parameters(), strict=True):
                    p_ema.copy_(p.lerp(p_ema, beta))
                for b_ema, b_ in zip(self.ref_G_ema.buffers(), self.ref_G.buffers(), strict=True):
                    b_ema.copy_(b_)
            self.ref_nimg += b
        elif phase == "G_ema forward":
            with torch.no_grad():
                self.ref_G_ema(torch.randn(b, self.ref_G.z_dim, device=dev), torch.zeros(b, 0, device=dev))
        else:
            raise ValueError(phase)


# ---------------------------------------------------------------------------- same math
def check_gradients(args: argparse.Namespace, tolerance: float = 1e-4) -> bool:
    """The parameter gradients of R1 (D), path length (G, constant noise) and the G loss through D,
    lab against reference from the same (perturbed) weights and inputs, on a 64-channel pair at
    ``--resolution``: the worst relative difference of any parameter's gradient."""
    import check_stylegan_reference as check
    import torch.nn.functional as F

    from gan_lab.losses import path_lengths, r1_penalty
    from gan_lab.nn.stylegan import StyleGANDiscriminator, StyleGANGenerator

    networks = reference_setup(args)
    case = check.Case("grads", args.resolution, 3, 0, 64, 64, 2, 1024, 64, batch=4)
    torch.manual_seed(args.seed)
    ref_G, ref_D = check.build_reference(networks, case)
    gen = torch.Generator().manual_seed(args.seed)
    check.perturb(ref_G, gen)
    check.perturb(ref_D, gen)
    g_kwargs, d_kwargs = case.lab_kwargs()
    G, D = StyleGANGenerator(**g_kwargs), StyleGANDiscriminator(**d_kwargs)
    check.copy_weights(ref_G, G, "G", case.resolution)
    check.copy_weights(ref_D, D, "D", case.resolution)
    n, r = case.batch, case.resolution
    x, z, noise = torch.randn(n, 3, r, r), torch.randn(n, case.z_dim), torch.randn(n, 3, r, r)
    c0 = torch.zeros(n, 0)

    def lab_d(img: torch.Tensor) -> torch.Tensor:
        return D(img)

    def ref_d(img: torch.Tensor) -> torch.Tensor:
        return ref_D(img, c0).flatten()

    def grads(net: torch.nn.Module, loss: torch.Tensor) -> dict[str, torch.Tensor]:
        net.zero_grad(set_to_none=True)
        loss.backward()
        return {k: p.grad.clone() for k, p in net.named_parameters() if p.grad is not None}

    def r1(d_net: torch.nn.Module, d: Callable) -> dict[str, torch.Tensor]:
        xi = x.clone().requires_grad_(True)
        return grads(d_net, r1_penalty(d(xi), xi).sum())

    def pl(g_net: torch.nn.Module, ws: torch.Tensor) -> dict[str, torch.Tensor]:
        img = g_net.synthesis(ws, noise_mode="const")
        return grads(g_net, path_lengths(img, ws, noise).square().sum())

    def g_loss(g_net: torch.nn.Module, ws: torch.Tensor, d: Callable) -> dict[str, torch.Tensor]:
        return grads(g_net, F.softplus(-d(g_net.synthesis(ws, noise_mode="const"))).mean())

    results = {
        "R1 (D's gradients)": (r1(D, lab_d), r1(ref_D, ref_d), "D"),
        "path length (G's)": (pl(G, G.mapping(z)), pl(ref_G, ref_G.mapping(z, c0)), "G"),
        "G loss through D (G's)": (
            g_loss(G, G.mapping(z), lab_d),
            g_loss(ref_G, ref_G.mapping(z, c0), ref_d),
            "G",
        ),
    }
    ok = True
    for what, (lab, ref, net) in results.items():
        worst = 0.0  # a gradient one side leaves None (outside its graph) counts as zeros
        ref = {check.lab_key(k, net, r): v for k, v in ref.items()}
        for key in set(ref) | set(lab):
            g_ref, g_lab = ref.get(key), lab.get(key)
            g_ref = torch.zeros_like(g_lab) if g_ref is None else g_ref
            g_lab = torch.zeros_like(g_ref) if g_lab is None else g_lab
            scale = max(g_ref.abs().max().item(), 1e-30)
            worst = max(
                worst, (g_lab - g_ref).abs().max().item() / scale if g_ref.any() else g_lab.abs().max().item()
            )
        ok &= worst <= tolerance
        print(f"gradients, {what}: {len(ref)} tensors, worst relative difference {worst:.1e}")
    return ok


# ---------------------------------------------------------------------------- timing
def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn: Callable[[], None], device: torch.device) -> float:
    synchronize(device)
    start = time.perf_counter()
    fn()
    synchronize(device)
    return time.perf_counter() - start


@contextlib.contextmanager
def counting_convolutions(counter: Counter):
    from torch.utils._python_dispatch import TorchDispatchMode

    names = ("convolution", "convolution_backward", "_convolution", "cudnn_convolution")

    class Count(TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            name = func.overloadpacket.__name__
            if name in names:
                counter[name] += 1
            return func(*args, **(kwargs or {}))

    with Count():
        yield


def summary(values: list[float]) -> tuple[float, float, float]:
    return min(values), statistics.median(values), max(values)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    import_lab(args.lab)
    phases = [p.strip() for p in args.phases.split(",") if p.strip()]
    unknown = set(phases) - set(PHASES)
    if unknown:
        raise SystemExit(f"--phases: unknown {sorted(unknown)}; known: {', '.join(PHASES)}")
    if args.check_gradients and not check_gradients(args):
        print("the lab's gradients differ from the reference's: not timing different math")
        return 1
    sides = Sides(args)
    dev = sides.device
    run = {"lab": sides.lab, "reference": sides.ref}
    times: dict[str, dict[str, list[float]]] = {p: {"lab": [], "reference": []} for p in phases}
    for phase in phases:  # warm-up (allocator, oneDNN primitive caches, lazy inits)
        for _ in range(args.warmup):
            for side in ("lab", "reference"):
                run[side](phase)
    convs: dict[str, dict[str, Counter]] = {}
    if args.count_convs:
        for phase in phases:
            convs[phase] = {}
            for side in ("lab", "reference"):
                counter: Counter = Counter()
                with counting_convolutions(counter):
                    run[side](phase)
                convs[phase][side] = counter
    for r in range(args.repeats):
        order = ("lab", "reference") if r % 2 == 0 else ("reference", "lab")
        for phase in phases:
            for side in order:
                t = [timed(lambda s=side, p=phase: run[s](p), dev) for _ in range(args.iters)]
                times[phase][side].append(statistics.median(t))
        line = ", ".join(f"{p} {times[p]['lab'][-1] / times[p]['reference'][-1]:.2f}" for p in phases)
        print(f"repeat {r + 1}/{args.repeats} lab/reference: {line}", flush=True)

    lines = [
        f"{args.resolution}x{args.resolution} RGB, channel_base {args.channel_base}, channel_max "
        f"{args.channel_max}, map {args.map_layers}, batch {args.batch}, path length on, R1 gamma "
        f"{sides.r1_gamma:g}, precision {args.precision}, device {dev.type}"
        f"{'; lab overrides `' + args.lab_overrides + '`' if args.lab_overrides else ''}"
        f"{'; reference CUDA plugins ' + sides.reference_plugins if args.reference_cuda_ops else ''}"
        f"{' (' + torch.cuda.get_device_name(dev) + ')' if dev.type == 'cuda' else ''}, "
        f"torch {torch.__version__}, {torch.get_num_threads()} threads; {args.repeats} repeats of "
        f"{args.iters} timed run(s) per phase after {args.warmup} warm-up, lab and reference alternating",
        "",
        "| phase | lab s (median) | reference s (median) | lab / reference time: min | median | max |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for phase in phases:
        lab_t, ref_t = times[phase]["lab"], times[phase]["reference"]
        ratios = [a / b for a, b in zip(lab_t, ref_t, strict=True)]
        lo, med, hi = summary(ratios)
        lines.append(
            f"| {phase} | {statistics.median(lab_t):.3f} | {statistics.median(ref_t):.3f} "
            f"| {lo:.2f} | **{med:.2f}** | {hi:.2f} |"
        )
    if all(p in phases for p in ITERATION):
        weight = {"Greg": 1 / sides.pl_interval, "Dreg": 1 / sides.d_reg_interval}
        per_repeat = {
            side: [
                sum(times[p][side][r] * weight.get(p, 1.0) for p in ITERATION) for r in range(args.repeats)
            ]
            for side in ("lab", "reference")
        }
        speed = [b / a for a, b in zip(per_repeat["lab"], per_repeat["reference"], strict=True)]
        lo, med, hi = summary(speed)
        lines += [
            "",
            f"| whole iteration (Gmain + Greg/{sides.pl_interval} + Dmain + Dreg/{sides.d_reg_interval} "
            "+ EMA) | lab s | reference s "
            "| speed lab / reference: min | median | max |",
            "| --- | ---: | ---: | ---: | ---: | ---: |",
            f"| iteration | {statistics.median(per_repeat['lab']):.3f} "
            f"| {statistics.median(per_repeat['reference']):.3f} | {lo:.2f} | **{med:.2f}** | {hi:.2f} |",
        ]
    if convs:
        lines += [
            "",
            "| phase | lab convolution calls | reference convolution calls |",
            "| --- | ---: | ---: |",
        ]
        for phase, sides_count in convs.items():
            lab_n, ref_n = (sum(sides_count[s].values()) for s in ("lab", "reference"))
            lines.append(f"| {phase} | {lab_n:,} | {ref_n:,} |")
    table = "\n".join(lines)
    print()
    print(table)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(table + "\n")
    finite = all(math.isfinite(t) for p in times.values() for s in p.values() for t in s)
    return 0 if finite else 1


if __name__ == "__main__":
    sys.exit(main())
