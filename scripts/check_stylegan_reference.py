"""Check the lab's StyleGAN2 networks against NVIDIA's stylegan2-ada-pytorch (the reference).

    python scripts/check_stylegan_reference.py --reference /path/to/stylegan2-ada-pytorch
    python scripts/check_stylegan_reference.py --reference PATH --full     # also 512 channels
    python scripts/check_stylegan_reference.py --reference PATH --write-golden \\
        tests/data/stylegan2_reference_golden.pt
    python scripts/check_stylegan_reference.py --reference PATH --write-golden-d \\
        tests/data/stylegan2_reference_d_architectures.pt

The reference is a local checkout (https://github.com/NVlabs/stylegan2-ada-pytorch, commit d72cc7d
or newer; NVIDIA's non-commercial licence: it is imported from PATH at run time, none of its code
is in this repository). Its custom CUDA ops are forced onto their reference PyTorch paths, so the
check runs on the CPU, in float32.

For each configuration (unconditional and class-conditional, 1 and 3 channels, the three D
architectures ``resnet``, ``orig`` and ``skip``), the script builds the reference G and D,
perturbs their weights (biases, noise strengths and ``w_avg`` start at constants, which would
hide mistakes), copies them into the lab's networks by name, and compares:
parameter counts (equal), mapping outputs, images (constant noise; fused and unfused modulation),
truncated ws and images (psi 0.7, with and without a cutoff), the ``w_avg`` update of a training
step, and D logits with and without labels. The lab truncates a conditional sample towards its
class average ``w_avg_class[c]``, the reference towards the global ``w_avg``: the check sets
every class average to the global one, where the two coincide, and so compares the lab's own
truncation path with the reference's.

``--write-golden`` also stores a small golden file (tiny G and D, unconditional and conditional:
the lab-named state dicts, constructor arguments, fixed inputs and the reference's outputs), which
``tests/test_stylegan_conditional.py`` checks without the reference; ``--write-golden-d`` one of
tiny discriminators of the ``orig`` and ``skip`` architectures (``tests/test_stylegan_nets.py``).

Every run also compares the parameter counts of the networks of StyleGAN2-ADA's ``--cfg=cifar``
(32x32 RGB, channel_base 32768, map 2, D ``orig``; unconditional and with 10 classes: the lab's
``experiment=stylegan2_cifar10``); ``--full`` compares their outputs too.

Exit status: 0 when every check passes, 1 otherwise.
"""

from __future__ import annotations

import argparse
import importlib
import math
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from gan_lab.nn.stylegan import StyleGANDiscriminator, StyleGANGenerator  # noqa: E402

# float32 rounding: the two implementations order their sums differently (and the reference uses
# addmm where the lab uses linear); 1e-4 of the output's magnitude is far above that and far below
# any real mistake (a wrong gain or padding moves outputs by whole percents)
REL_TOL = 1e-4
GOLDEN_FORMAT = 1


# ---------------------------------------------------------------------------- the reference
def load_reference(path: Path) -> Any:
    """Import the reference's ``training.networks`` from ``path``, its custom ops on the PyTorch path."""
    path = path.resolve()
    if not (path / "training" / "networks.py").is_file():
        raise SystemExit(
            f"--reference {path}: no training/networks.py there (a stylegan2-ada-pytorch checkout?)"
        )
    sys.path.insert(0, str(path))
    custom_ops = importlib.import_module("torch_utils.custom_ops")
    custom_ops.verbosity = "none"
    for name in ("upfirdn2d", "bias_act"):
        op = importlib.import_module(f"torch_utils.ops.{name}")
        op._init = lambda: False  # never compile the CUDA plugin: impl='ref' everywhere
    return importlib.import_module("training.networks")


def reference_commit(path: Path) -> str:
    try:
        done = subprocess.run(
            ["git", "-C", str(path), "rev-parse", "HEAD"], capture_output=True, text=True, check=True
        )
        return done.stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


# ---------------------------------------------------------------------------- name mapping
def lab_key(ref_key: str, net: str, resolution: int) -> str | None:
    """The lab's state-dict key for a reference key (None: a buffer the lab does not store).

    G: ``mapping.fc{i}`` -> ``mapping.layers.{i}``, ``synthesis.b{res}`` ->
    ``synthesis.blocks.{log2 res - 2}``. D: ``b{res}`` -> ``blocks.{log2 R - log2 res}``, ``b4`` ->
    ``epilogue``, ``mapping.fc{i}`` -> ``mapping.layers.{i}``. ``embed``, ``w_avg`` and the layers'
    own names are the same. The FIR filters (``resample_filter``) are constants, not state, in the lab.
    """
    if ref_key.endswith("resample_filter"):
        return None
    key = re.sub(r"^mapping\.fc(\d+)\.", r"mapping.layers.\1.", ref_key)
    if net == "G":
        return re.sub(
            r"^synthesis\.b(\d+)\.", lambda m: f"synthesis.blocks.{int(math.log2(int(m[1]))) - 2}.", key
        )
    if key.startswith("b4."):
        return "epilogue." + key[3:]
    log_r = int(math.log2(resolution))
    return re.sub(r"^b(\d+)\.", lambda m: f"blocks.{log_r - int(math.log2(int(m[1])))}.", key)


def copy_weights(ref: nn.Module, lab: nn.Module, net: str, resolution: int) -> None:
    """Load the reference's state into ``lab``; the two key sets must match exactly."""
    state = {}
    for key, value in ref.state_dict().items():
        mapped = lab_key(key, net, resolution)
        if mapped is not None:
            state[mapped] = value.clone()
    wanted = set(lab.state_dict())
    if net == "G" and "mapping.w_avg_class" in wanted:
        # the lab's per-class averages: all equal to the reference's global one (see the docstring)
        state["mapping.w_avg_class"] = state["mapping.w_avg"].expand(lab.num_classes, -1).clone()
    if set(state) != wanted:
        raise AssertionError(
            f"{net}: state-dict keys differ: only the reference's {sorted(set(state) - wanted)}, "
            f"only the lab's {sorted(wanted - set(state))}"
        )
    lab.load_state_dict(state, strict=True)


# ---------------------------------------------------------------------------- configurations
@dataclass(frozen=True)
class Case:
    name: str
    resolution: int
    channels: int
    num_classes: int
    z_dim: int = 64
    w_dim: int = 64
    map_layers: int = 2
    channel_base: int = 1024
    channel_max: int = 64
    cmap_dim: int | None = None
    mbstd_group: int = 4
    batch: int = 8
    architecture: str = "resnet"  # D's

    def lab_kwargs(self) -> tuple[dict[str, Any], dict[str, Any]]:
        common = dict(
            resolution=self.resolution,
            channels=self.channels,
            channel_base=self.channel_base,
            channel_max=self.channel_max,
            conv_clamp=256,
            num_classes=self.num_classes,
        )
        g = dict(common, z_dim=self.z_dim, w_dim=self.w_dim, map_layers=self.map_layers)
        d = dict(common, mbstd_group=self.mbstd_group, mbstd_channels=1, cmap_dim=self.cmap_dim)
        if self.architecture != "resnet":  # the default: golden files of resnet D keep their kwargs
            d["architecture"] = self.architecture
        return g, d


CASES = [
    Case("uncond-32px-3ch", 32, 3, 0),
    Case("uncond-32px-1ch", 32, 1, 0),
    Case("cond-32px-3ch", 32, 3, 10),
    Case("cond-32px-1ch-cmap48", 32, 1, 10, cmap_dim=48),
    Case("uncond-32px-3ch-orig", 32, 3, 0, architecture="orig"),
    Case("cond-32px-1ch-orig", 32, 1, 10, architecture="orig"),
    Case("uncond-32px-3ch-skip", 32, 3, 0, architecture="skip"),
    Case("cond-32px-1ch-skip", 32, 1, 10, architecture="skip"),
]
# StyleGAN2-ADA's --cfg=cifar: fmaps 1 (channel_base 32768), map 2, mbstd 32, D "orig"
CIFAR_CASES = [
    Case("cifar-uncond", 32, 3, 0, 512, 512, 2, 32768, 512, mbstd_group=32, batch=32, architecture="orig"),
    Case("cifar-cond10", 32, 3, 10, 512, 512, 2, 32768, 512, mbstd_group=32, batch=32, architecture="orig"),
]
FULL_CASES = [  # the paper's widths (512 channels, 512-d z and w), ADA auto's map 2
    Case("uncond-32px-3ch-512", 32, 3, 0, 512, 512, 2, 16384, 512, batch=4),
    Case("cond-32px-3ch-512", 32, 3, 10, 512, 512, 2, 16384, 512, batch=4),
    *CIFAR_CASES,
]
# the golden file's networks: tiny, so that it stays small (about 260 KB)
GOLDEN_CASES = [
    Case("uncond", 16, 1, 0, 16, 16, 2, 64, 8, mbstd_group=2, batch=4),
    Case("cond", 16, 3, 3, 32, 32, 2, 128, 16, mbstd_group=2, batch=4),
]
# the discriminator golden file (--write-golden-d): tiny D of the other architectures
GOLDEN_D_CASES = [
    Case("orig", 16, 1, 0, 16, 16, 2, 64, 8, mbstd_group=2, batch=4, architecture="orig"),
    Case("skip", 16, 3, 0, 16, 16, 2, 64, 8, mbstd_group=2, batch=4, architecture="skip"),
    Case("orig-cond", 16, 3, 3, 16, 16, 2, 64, 8, mbstd_group=2, batch=4, architecture="orig"),
]
GOLDEN_OUTPUTS = (  # of the reference's outputs, the ones the golden file keeps
    "ws",
    "images_fused",
    "images_unfused",
    "ws_psi0.7_cutoffNone",
    "ws_psi0.7_cutoff4",
    "images_psi0.7_cutoff4",
    "d_logits_fakes",  # D's input: images_fused
    "c_other",
    "d_logits_fakes_c_other",
    "w_avg_after_step",
)


def build_reference(networks: Any, case: Case) -> tuple[nn.Module, nn.Module]:
    G = networks.Generator(
        z_dim=case.z_dim,
        c_dim=case.num_classes,
        w_dim=case.w_dim,
        img_resolution=case.resolution,
        img_channels=case.channels,
        mapping_kwargs=dict(num_layers=case.map_layers),
        synthesis_kwargs=dict(channel_base=case.channel_base, channel_max=case.channel_max, conv_clamp=256),
    )
    D = networks.Discriminator(
        c_dim=case.num_classes,
        img_resolution=case.resolution,
        img_channels=case.channels,
        channel_base=case.channel_base,
        channel_max=case.channel_max,
        conv_clamp=256,
        cmap_dim=case.cmap_dim,
        architecture=case.architecture,
        epilogue_kwargs=dict(mbstd_group_size=case.mbstd_group, mbstd_num_channels=1),
    )
    return G.eval(), D.eval()


@torch.no_grad()
def perturb(net: nn.Module, gen: torch.Generator) -> None:
    """Give the parameters and ``w_avg`` that start at constants (biases 0 or 1, noise strengths 0,
    ``w_avg`` 0) random values, so that a wrong bias gain or noise scaling shows."""
    for p in net.parameters():
        if p.numel() == 1 or bool((p == p.flatten()[0]).all()):
            p.add_(0.3 * torch.randn(p.shape, generator=gen))
    for name, b in net.named_buffers():
        if name.endswith("w_avg"):
            b.copy_(torch.randn(b.shape, generator=gen))


def param_count(net: nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


# ---------------------------------------------------------------------------- comparison
class Report:
    def __init__(self) -> None:
        self.failures: list[str] = []

    def compare(self, what: str, lab: Tensor, ref: Tensor) -> None:
        if lab.shape != ref.shape:
            self.failures.append(f"{what}: shape {tuple(lab.shape)} vs the reference's {tuple(ref.shape)}")
            print(f"  FAIL {what}: shapes {tuple(lab.shape)} vs {tuple(ref.shape)}")
            return
        diff = (lab.double() - ref.double()).abs().max().item()
        scale = ref.double().abs().max().item()
        rel = diff / max(scale, 1e-12)
        ok = rel <= REL_TOL and math.isfinite(diff)
        if not ok:
            self.failures.append(f"{what}: max abs diff {diff:.3g} (rel {rel:.3g})")
        mark = "ok  " if ok else "FAIL"
        print(f"  {mark} {what:<44} max abs {diff:.2e}  rel {rel:.2e}  (|ref| <= {scale:.3g})")

    def equal(self, what: str, lab: int, ref: int) -> None:
        ok = lab == ref
        if not ok:
            self.failures.append(f"{what}: lab {lab} vs reference {ref}")
        print(f"  {'ok  ' if ok else 'FAIL'} {what:<44} lab {lab:,}  reference {ref:,}")


def inputs(case: Case, gen: torch.Generator) -> tuple[Tensor, Tensor | None, Tensor]:
    z = torch.randn(case.batch, case.z_dim, generator=gen)
    c = torch.randint(0, case.num_classes, (case.batch,), generator=gen) if case.num_classes else None
    images = torch.randn(case.batch, case.channels, case.resolution, case.resolution, generator=gen)
    return z, c, images


def onehot(c: Tensor | None, case: Case, n: int) -> Tensor:
    if c is None:
        return torch.zeros(n, 0)
    return F.one_hot(c, case.num_classes).float()


@torch.no_grad()
def check_case(networks: Any, case: Case, report: Report, seed: int = 0) -> dict[str, Any]:
    """Run every comparison of one configuration; returns its networks, inputs and reference outputs."""
    print(
        f"{case.name}: {case.resolution} px, {case.channels} channels, {case.num_classes} classes, "
        f"D {case.architecture}"
    )
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    ref_G, ref_D = build_reference(networks, case)
    perturb(ref_G, gen)
    perturb(ref_D, gen)
    g_kwargs, d_kwargs = case.lab_kwargs()
    G, D = StyleGANGenerator(**g_kwargs).eval(), StyleGANDiscriminator(**d_kwargs).eval()
    copy_weights(ref_G, G, "G", case.resolution)
    copy_weights(ref_D, D, "D", case.resolution)
    g_state = {k: v.clone() for k, v in G.state_dict().items()}
    d_state = {k: v.clone() for k, v in D.state_dict().items()}
    report.equal("G parameters", param_count(G), param_count(ref_G))
    report.equal("D parameters", param_count(D), param_count(ref_D))

    z, c, images = inputs(case, gen)
    c1h = onehot(c, case, case.batch)
    out: dict[str, Tensor] = {}
    out["ws"] = ref_G.mapping(z, c1h)
    report.compare("mapping ws", G.mapping(z, c), out["ws"])
    for fused in (True, False):
        key = f"images_{'fused' if fused else 'unfused'}"
        out[key] = ref_G(z, c1h, noise_mode="const", fused_modconv=fused)
        report.compare(
            f"G images, const noise, {key[7:]}", G(z, c, noise_mode="const", fused=fused), out[key]
        )
    for cutoff in (None, 4):
        tag = f"psi 0.7 cutoff {cutoff}"
        ref_ws = ref_G.mapping(z, c1h, truncation_psi=0.7, truncation_cutoff=cutoff)
        ref_img = ref_G.synthesis(ref_ws, noise_mode="const")
        out[f"ws_psi0.7_cutoff{cutoff}"] = ref_ws
        out[f"images_psi0.7_cutoff{cutoff}"] = ref_img
        # the lab's own truncation (class averages = global average when conditional)
        report.compare(
            f"truncated ws, {tag}", G.mapping(z, c, truncation_psi=0.7, truncation_cutoff=cutoff), ref_ws
        )
        report.compare(
            f"truncated images, {tag}",
            G(z, c, truncation_psi=0.7, truncation_cutoff=cutoff, noise_mode="const", fused=True),
            ref_img,
        )
        # a manual global lerp of the lab's untruncated ws
        ws = G.mapping(z, c)
        k = ws.shape[1] if cutoff is None else cutoff
        manual = torch.cat([G.mapping.w_avg.lerp(ws[:, :k], 0.7), ws[:, k:]], dim=1)
        report.compare(f"manual global lerp, {tag}", manual, ref_ws)

    out["d_logits_images"] = ref_D(images, c1h).flatten()
    report.compare("D logits, random images", D(images, c), out["d_logits_images"])
    fakes = out["images_fused"]
    out["d_logits_fakes"] = ref_D(fakes, c1h).flatten()
    report.compare("D logits, G's images", D(fakes, c), out["d_logits_fakes"])
    if c is not None:
        other = (c + 1) % case.num_classes
        out["c_other"] = other
        out["d_logits_fakes_c_other"] = ref_D(fakes, onehot(other, case, case.batch)).flatten()
        report.compare("D logits, G's images, other labels", D(fakes, other), out["d_logits_fakes_c_other"])

    # one training step's w_avg update (the lab also tracks class averages: not in the reference)
    ref_G.mapping.train()
    G.mapping.train()
    ref_G.mapping(z, c1h)
    G.mapping(z, c)
    ref_G.mapping.eval()
    G.mapping.eval()
    out["w_avg_after_step"] = ref_G.mapping.w_avg.clone()
    report.compare("w_avg after a training step", G.mapping.w_avg, out["w_avg_after_step"])
    print()
    return {
        "g_kwargs": g_kwargs,
        "d_kwargs": d_kwargs,
        "g_state": g_state,  # as loaded: before the training step
        "d_state": d_state,
        "g_params": param_count(ref_G),
        "d_params": param_count(ref_D),
        "z": z,
        "c": c,
        "reference": {k: v.clone().contiguous() for k, v in out.items() if k in GOLDEN_OUTPUTS},
    }


def check_param_counts(networks: Any, case: Case, report: Report) -> dict[str, int]:
    """Parameter counts only (fast at any width): equal, and the same state-dict keys."""
    print(f"{case.name}: parameter counts (D {case.architecture}, {case.num_classes} classes)")
    torch.manual_seed(0)
    ref_G, ref_D = build_reference(networks, case)
    g_kwargs, d_kwargs = case.lab_kwargs()
    G, D = StyleGANGenerator(**g_kwargs), StyleGANDiscriminator(**d_kwargs)
    copy_weights(ref_G, G, "G", case.resolution)  # raises when the key sets differ
    copy_weights(ref_D, D, "D", case.resolution)
    report.equal("G parameters", param_count(G), param_count(ref_G))
    report.equal("D parameters", param_count(D), param_count(ref_D))
    print()
    return {"G": param_count(ref_G), "D": param_count(ref_D)}


@torch.no_grad()
def golden_d_case(networks: Any, case: Case, report: Report, seed: int = 2) -> dict[str, Any]:
    """A tiny reference D (perturbed weights) under the lab's names, inputs and its logits."""
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    _, ref_D = build_reference(networks, case)
    perturb(ref_D, gen)
    _, d_kwargs = case.lab_kwargs()
    D = StyleGANDiscriminator(**d_kwargs).eval()
    copy_weights(ref_D, D, "D", case.resolution)
    _, c, images = inputs(case, gen)
    logits = ref_D(images, onehot(c, case, case.batch)).flatten()
    report.compare(f"{case.name}: D logits (golden)", D(images, c), logits)
    return {
        "d_kwargs": d_kwargs,
        "d_state": {k: v.clone() for k, v in D.state_dict().items()},
        "d_params": param_count(ref_D),
        "images": images,
        "c": c,
        "logits": logits.clone(),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reference", type=Path, required=True, help="stylegan2-ada-pytorch checkout")
    parser.add_argument("--full", action="store_true", help="also check at 512 channels (slower)")
    parser.add_argument("--write-golden", type=Path, metavar="FILE", help="store the golden file here")
    parser.add_argument(
        "--write-golden-d", type=Path, metavar="FILE", help="store the orig/skip D golden file here"
    )
    parser.add_argument("--reference-commit", help="the checkout's commit, if it is not a git work tree")
    args = parser.parse_args(argv)

    networks = load_reference(args.reference)
    report = Report()
    for case in CASES + (FULL_CASES if args.full else []):
        check_case(networks, case, report)
    for case in CIFAR_CASES:
        counts = check_param_counts(networks, case, report)
        print(f"  --cfg=cifar {case.name}: G {counts['G']:,}  D {counts['D']:,}\n")
    if args.write_golden_d:
        golden_d = {
            "format": GOLDEN_FORMAT,
            "reference": "NVlabs/stylegan2-ada-pytorch",
            "reference_commit": args.reference_commit or reference_commit(args.reference),
            "torch": str(torch.__version__),
            "cases": {case.name: golden_d_case(networks, case, report) for case in GOLDEN_D_CASES},
        }
        if not report.failures:
            args.write_golden_d.parent.mkdir(parents=True, exist_ok=True)
            torch.save(golden_d, args.write_golden_d)
            print(f"wrote {args.write_golden_d} ({args.write_golden_d.stat().st_size / 1024:.0f} KB)")
    if args.write_golden:
        golden = {
            "format": GOLDEN_FORMAT,
            "reference": "NVlabs/stylegan2-ada-pytorch",
            "reference_commit": args.reference_commit or reference_commit(args.reference),
            "torch": str(torch.__version__),
            "cases": {case.name: check_case(networks, case, report, seed=1) for case in GOLDEN_CASES},
        }
        if not report.failures:
            args.write_golden.parent.mkdir(parents=True, exist_ok=True)
            torch.save(golden, args.write_golden)
            size = args.write_golden.stat().st_size
            print(f"wrote {args.write_golden} ({size / 1024:.0f} KB)")
    if report.failures:
        print(f"{len(report.failures)} check(s) FAILED:", *report.failures, sep="\n  ")
        return 1
    print("all checks passed: the lab's networks match the reference")
    return 0


if __name__ == "__main__":
    sys.exit(main())
