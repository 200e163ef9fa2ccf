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

``--import`` checks the importer (``scripts/import_stylegan2.py``) instead: reference networks built
as its train.py builds them (``num_fp16_res=4``, ``conv_clamp=256``; unconditional, 10 classes with
D ``orig``, 64 px with D ``skip``), pickled by its own ``torch_utils.persistence`` as its training
loop writes ``network-snapshot-*.pkl`` (with an ``AugmentPipe``), imported as a lab checkpoint and
loaded with ``load_model``: G, G_ema (constant noise, fused and unfused, psi 0.7) and D must agree.
``--rosinality PATH`` does the same for rosinality's stylegan2-pytorch (a checkout: its
``model.py`` runs on the CPU, its ``op`` package imported with the CUDA build stubbed out), with
checkpoints as its train.py saves them (32 px ``channel_multiplier=2`` with ``latent_avg``, 64 px
``channel_multiplier=1``).

    python scripts/check_stylegan_reference.py --reference PATH --import [--rosinality PATH]

Every run also compares the parameter counts of the networks of StyleGAN2-ADA's ``--cfg=cifar``
(32x32 RGB, channel_base 32768, map 2, D ``orig``; unconditional and with 10 classes: the lab's
``experiment=stylegan2_cifar10``); ``--full`` compares their outputs too.

Exit status: 0 when every check passes, 1 otherwise.
"""

from __future__ import annotations

import argparse
import copy
import importlib
import math
import pickle
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from gan_lab.interop.keys import lab_key, map_state  # noqa: E402,F401  (lab_key: benchmarks use it)
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
# lab_key: the reference's state-dict names -> the lab's (gan_lab/interop/keys.py, which the importer uses)
def copy_weights(ref: nn.Module, lab: nn.Module, net: str, resolution: int) -> None:
    """Load the reference's state into ``lab``; the two key sets must match exactly."""
    state = {k: v.clone() for k, v in map_state(ref.state_dict(), net, resolution).items()}
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


# ---------------------------------------------------------------------------- the importer
# (scripts/import_stylegan2.py): reference snapshots pickled by the reference itself, read back
IMPORT_CASES = [
    Case("import-uncond-32px", 32, 3, 0, 64, 64, 2, 1024, 64, batch=4),
    Case(
        "import-cond10-32px-1ch-orig",
        32,
        1,
        10,
        64,
        64,
        2,
        1024,
        64,
        cmap_dim=48,
        batch=4,
        architecture="orig",
    ),
    Case("import-uncond-64px-skip-map8", 64, 3, 0, 64, 64, 8, 2048, 64, batch=4, architecture="skip"),
]


def build_trained_reference(networks: Any, case: Case) -> tuple[nn.Module, nn.Module]:
    """G and D as the reference's train.py / training_loop.py construct them (``dnnlib.EasyDict``
    arguments, ``num_fp16_res=4``, ``conv_clamp=256``)."""
    import dnnlib  # the reference's, on sys.path after load_reference

    common = dict(c_dim=case.num_classes, img_resolution=case.resolution, img_channels=case.channels)
    g_kwargs = dnnlib.EasyDict(z_dim=case.z_dim, w_dim=case.w_dim, mapping_kwargs=dnnlib.EasyDict())
    g_kwargs.synthesis_kwargs = dnnlib.EasyDict(channel_base=case.channel_base, channel_max=case.channel_max)
    g_kwargs.mapping_kwargs.num_layers = case.map_layers
    g_kwargs.synthesis_kwargs.num_fp16_res = 4
    g_kwargs.synthesis_kwargs.conv_clamp = 256
    d_kwargs = dnnlib.EasyDict(
        block_kwargs=dnnlib.EasyDict(), mapping_kwargs=dnnlib.EasyDict(), epilogue_kwargs=dnnlib.EasyDict()
    )
    d_kwargs.update(
        channel_base=case.channel_base, channel_max=case.channel_max, num_fp16_res=4, conv_clamp=256
    )
    d_kwargs.epilogue_kwargs.mbstd_group_size = case.mbstd_group
    if case.architecture != "resnet":
        d_kwargs.architecture = case.architecture
    if case.cmap_dim is not None:
        d_kwargs.cmap_dim = case.cmap_dim
    return networks.Generator(**g_kwargs, **common).eval(), networks.Discriminator(
        **d_kwargs, **common
    ).eval()


def write_reference_snapshot(networks: Any, case: Case, path: Path, seed: int = 3) -> dict[str, nn.Module]:
    """A ``network-snapshot-*.pkl`` as the reference's training loop writes it (its persistence,
    ``pickle.dump`` of deep copies in eval mode, no gradients, on the CPU; an AugmentPipe ``bgc``)."""
    augment = importlib.import_module("training.augment")
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    G, D = build_trained_reference(networks, case)
    perturb(G, gen)
    perturb(D, gen)
    G_ema = copy.deepcopy(G)
    with torch.no_grad():  # an average that differs from G
        for p in G_ema.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=gen))
        G_ema.mapping.w_avg.copy_(torch.randn(G_ema.mapping.w_avg.shape, generator=gen))
    spec = dict(xflip=1, rotate90=1, xint=1, scale=1, rotate=1, aniso=1, xfrac=1)
    spec |= dict(brightness=1, contrast=1, lumaflip=1, hue=1, saturation=1)
    pipe = augment.AugmentPipe(**spec).train().requires_grad_(False)
    pipe.p.copy_(torch.as_tensor(0.3))
    snapshot: dict[str, Any] = dict(
        training_set_kwargs=dict(class_name="training.dataset.ImageFolderDataset")
    )
    snapshot["training_set_kwargs"].update(
        path="~/datasets/x.zip", use_labels=case.num_classes > 0, xflip=False
    )
    for name, module in [("G", G), ("D", D), ("G_ema", G_ema), ("augment_pipe", pipe)]:
        snapshot[name] = copy.deepcopy(module).eval().requires_grad_(False).cpu()
    with open(path, "wb") as f:
        pickle.dump(snapshot, f)
    return {"G": G, "D": D, "G_ema": G_ema}


@torch.no_grad()
def check_import_case(networks: Any, case: Case, report: Report, folder: Path) -> None:
    """Import a reference snapshot with the lab's importer and compare G, G_ema and D outputs."""
    from gan_lab.checkpoints import load_model
    from gan_lab.interop.convert import import_stylegan2

    print(f"{case.name}: reference snapshot -> scripts/import_stylegan2.py -> load_model")
    pkl = folder / f"network-snapshot-{case.name}.pkl"
    ref = write_reference_snapshot(networks, case, pkl)
    ckpt = folder / f"{case.name}.ckpt"
    import_stylegan2(pkl, ckpt, force=True)
    module, _ = load_model(ckpt)
    gen = torch.Generator().manual_seed(11)
    z, c, images = inputs(case, gen)
    c1h = onehot(c, case, case.batch)
    for name in ("G", "G_ema"):
        lab_net, ref_net = getattr(module, name), ref[name]
        report.equal(f"{name} parameters", param_count(lab_net), param_count(ref_net))
        for fused in (True, False):
            want = ref_net(z, c1h, noise_mode="const", force_fp32=True, fused_modconv=fused)
            got = lab_net(z, c, noise_mode="const", fused=fused)
            report.compare(f"{name} images, const noise, {'fused' if fused else 'unfused'}", got, want)
        if not case.num_classes:  # (conditional: the lab truncates towards class averages)
            want = ref_net(z, c1h, truncation_psi=0.7, noise_mode="const", force_fp32=True)
            report.compare(
                f"{name} images, psi 0.7", lab_net(z, c, truncation_psi=0.7, noise_mode="const"), want
            )
    report.equal("D parameters", param_count(module.D), param_count(ref["D"]))
    report.compare(
        "D logits, random images", module.D(images, c), ref["D"](images, c1h, force_fp32=True).flatten()
    )
    fakes = ref["G_ema"](z, c1h, noise_mode="const", force_fp32=True)
    report.compare(
        "D logits, G_ema's images", module.D(fakes, c), ref["D"](fakes, c1h, force_fp32=True).flatten()
    )
    print()


# ---------------------------------------------------------------------------- rosinality
ROSINALITY_CASES = [(32, 2, True), (64, 1, False)]  # size, channel_multiplier, latent_avg in the file


def load_rosinality(path: Path) -> Any:
    """rosinality's ``model`` from a stylegan2-pytorch checkout, its ``op`` package imported without
    compiling the CUDA extensions (``torch.utils.cpp_extension.load`` returns None meanwhile: on the
    CPU its ops take their PyTorch paths, ``upfirdn2d_native`` and ``F.leaky_relu``)."""
    import torch.utils.cpp_extension as cpp

    path = path.resolve()
    if not (path / "model.py").is_file() or not (path / "op").is_dir():
        raise SystemExit(f"--rosinality {path}: no model.py and op/ there (a stylegan2-pytorch checkout?)")
    sys.path.insert(0, str(path))
    load = cpp.load
    cpp.load = lambda *args, **kwargs: None
    try:
        return importlib.import_module("model")
    finally:
        cpp.load = load


@torch.no_grad()
def check_rosinality_case(
    model: Any, size: int, multiplier: int, latent_avg: bool, report: Report, folder: Path
) -> None:
    """A rosinality checkpoint as its train.py saves it (plus convert_weight.py's latent_avg), imported
    and compared: G and g_ema images (constant noise, fused and unfused modulation), truncation, D."""
    from gan_lab.checkpoints import load_model
    from gan_lab.interop.convert import import_stylegan2

    name = f"rosinality-{size}px-cm{multiplier}"
    print(f"{name}: torch.save checkpoint -> scripts/import_stylegan2.py -> load_model")
    gen = torch.Generator().manual_seed(5)
    torch.manual_seed(5)
    g, d = model.Generator(size, 64, 2, channel_multiplier=multiplier), model.Discriminator(size, multiplier)
    perturb(g, gen)
    perturb(d, gen)
    g_ema = copy.deepcopy(g)
    for p in g_ema.parameters():
        p.add_(0.05 * torch.randn(p.shape, generator=gen))
    g.eval(), d.eval(), g_ema.eval()
    mean = g_ema.mean_latent(4096)[0]
    adam = torch.optim.Adam(g.parameters(), lr=0.002, betas=(0.0, 0.99))
    args = argparse.Namespace(
        size=size, latent=64, n_mlp=2, channel_multiplier=multiplier, path="lmdb", arch="stylegan2"
    )
    ckpt = dict(g=g.state_dict(), d=d.state_dict(), g_ema=g_ema.state_dict(), g_optim=adam.state_dict())
    ckpt |= dict(d_optim=adam.state_dict(), args=args, ada_aug_p=0.0)
    if latent_avg:
        ckpt["latent_avg"] = mean
    pt = folder / f"{name}.pt"
    torch.save(ckpt, pt)
    out = folder / f"{name}.ckpt"
    import_stylegan2(pt, out, force=True)
    module, _ = load_model(out)
    z = torch.randn(4, 64, generator=gen)
    for label, ref, lab in (("G", g, module.G), ("G_ema", g_ema, module.G_ema)):
        report.equal(f"{label} parameters", param_count(lab), param_count(ref))
        for fused in (True, False):
            for m in ref.modules():
                if isinstance(m, model.ModulatedConv2d):
                    m.fused = fused
            want, _ = ref([z], randomize_noise=False)
            got = lab(z, noise_mode="const", fused=fused)
            report.compare(f"{label} images, const noise, {'fused' if fused else 'unfused'}", got, want)
    if latent_avg:
        want, _ = g_ema([z], truncation=0.7, truncation_latent=mean, randomize_noise=False)
        report.compare(
            "G_ema images, psi 0.7 (latent_avg)",
            module.G_ema(z, truncation_psi=0.7, noise_mode="const"),
            want,
        )
    images = torch.randn(4, 3, size, size, generator=gen)
    report.equal("D parameters", param_count(module.D), param_count(d))
    report.compare("D logits, random images", module.D(images), d(images).flatten())
    fakes, _ = g_ema([z], randomize_noise=False)
    report.compare("D logits, g_ema's images", module.D(fakes), d(fakes).flatten())
    print()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reference", type=Path, help="stylegan2-ada-pytorch checkout")
    parser.add_argument(
        "--import",
        dest="importer",
        action="store_true",
        help="only the importer's checks (reference snapshots)",
    )
    parser.add_argument("--rosinality", type=Path, metavar="PATH", help="also import rosinality checkpoints")
    parser.add_argument("--full", action="store_true", help="also check at 512 channels (slower)")
    parser.add_argument("--write-golden", type=Path, metavar="FILE", help="store the golden file here")
    parser.add_argument(
        "--write-golden-d", type=Path, metavar="FILE", help="store the orig/skip D golden file here"
    )
    parser.add_argument("--reference-commit", help="the checkout's commit, if it is not a git work tree")
    args = parser.parse_args(argv)
    if args.reference is None and not args.rosinality:
        parser.error("--reference PATH is required (or --rosinality PATH alone)")

    report = Report()
    if args.importer or args.rosinality:
        return check_importer(args, report)
    networks = load_reference(args.reference)
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


def check_importer(args: argparse.Namespace, report: Report) -> int:
    """``--import`` / ``--rosinality``: the importer against files written by the reference code."""
    with tempfile.TemporaryDirectory(prefix="gan_lab_import_check_") as tmp:
        if args.reference is not None:
            networks = load_reference(args.reference)
            for case in IMPORT_CASES:
                check_import_case(networks, case, report, Path(tmp))
        if args.rosinality:
            model = load_rosinality(args.rosinality)
            for size, multiplier, latent_avg in ROSINALITY_CASES:
                check_rosinality_case(model, size, multiplier, latent_avg, report, Path(tmp))
    if report.failures:
        print(f"{len(report.failures)} check(s) FAILED:", *report.failures, sep="\n  ")
        return 1
    print("all checks passed: the imported networks compute what the source networks compute")
    return 0


if __name__ == "__main__":
    sys.exit(main())
