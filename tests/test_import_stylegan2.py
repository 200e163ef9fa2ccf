"""Importing stylegan2-ada-pytorch pickles and rosinality checkpoints (``scripts/import_stylegan2.py``).

The foreign files are written here, from the lab's own seeded tiny networks, in the other
projects' formats: for stylegan2-ada-pytorch a ``pickle.dump`` of ``torch_utils.persistence``
objects (its ``__reduce__``: ``_reconstruct_persistent_obj(meta)`` with the module source, class
name and ``__dict__``; fake ``torch_utils`` / ``dnnlib`` modules exist only while writing), for
rosinality a ``torch.save`` dict with its key names and shapes. The imported networks must then
reproduce the networks the weights came from. ``scripts/check_stylegan_reference.py --import``
does the same against the real reference code.
"""

from __future__ import annotations

import argparse
import builtins
import contextlib
import io
import json
import math
import os
import pickle
import re
import sys
import types
from collections import OrderedDict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image
from torch import Tensor, nn

from gan_lab.checkpoints import WEIGHTS_ONLY, load_model
from gan_lab.errors import ConfigError
from gan_lab.interop.cli import main as import_main
from gan_lab.interop.common import ImportRefused, channel_rule
from gan_lab.interop.convert import build_networks, import_stylegan2, read_source
from gan_lab.interop.pickles import UnsafePickleError
from gan_lab.nn.stylegan import StyleGANDiscriminator, StyleGANGenerator
from gan_lab.training import run

from .conftest import TINY_METRICS, compose_tool


# ---------------------------------------------------------------------------- the lab's networks
def lab_networks(
    resolution: int = 32,
    channels: int = 3,
    num_classes: int = 0,
    architecture: str = "resnet",
    seed: int = 0,
    conv_clamp: float | None = 256,
    mbstd_group: int = 2,
    cmap_dim: int | None = None,
) -> tuple[StyleGANGenerator, StyleGANDiscriminator, StyleGANGenerator]:
    """Tiny G, D and G_ema with random values everywhere (biases, noise strengths and w_avg too)."""
    torch.manual_seed(seed)
    sizes = dict(
        resolution=resolution, channels=channels, channel_base=64, channel_max=16, conv_clamp=conv_clamp
    )
    G = StyleGANGenerator(z_dim=16, w_dim=16, map_layers=2, num_classes=num_classes, **sizes)
    D = StyleGANDiscriminator(
        mbstd_group=mbstd_group,
        num_classes=num_classes,
        architecture=architecture,
        cmap_dim=cmap_dim,
        **sizes,
    )
    G_ema = StyleGANGenerator(z_dim=16, w_dim=16, map_layers=2, num_classes=num_classes, **sizes)
    with torch.no_grad():
        for net in (G, D, G_ema):
            for p in net.parameters():
                p.add_(0.3 * torch.randn(p.shape))
            for name, b in net.named_buffers():
                if name.endswith("w_avg"):
                    b.copy_(torch.randn(b.shape))
    return G.eval(), D.eval(), G_ema.eval()


# ---------------------------------------------------------------------------- the ADA format
def ada_key(key: str, net: str, resolution: int) -> str:
    """The inverse of ``gan_lab.interop.keys.lab_key``: the reference's name of a lab key."""
    key = re.sub(r"^mapping\.layers\.(\d+)\.", r"mapping.fc\1.", key)
    if net == "G":
        return re.sub(r"^synthesis\.blocks\.(\d+)\.", lambda m: f"synthesis.b{2 ** (int(m[1]) + 2)}.", key)
    if key.startswith("epilogue."):
        return "b4." + key[len("epilogue.") :]
    return re.sub(r"^blocks\.(\d+)\.", lambda m: f"b{resolution >> int(m[1])}.", key)


BUFFERS = ("w_avg", "noise_const", "resample_filter", "scratch")


class EasyDict(dict):
    """Stands in for ``dnnlib.util.EasyDict`` while a file is written."""


def _reconstruct_persistent_obj(meta: dict) -> None:  # pragma: no cover - never called
    raise AssertionError("only pickled by reference")


class Persistent:
    """An object that pickles as the reference's persistent classes do."""

    def __init__(self, meta: dict) -> None:
        self.meta = meta

    def __reduce__(self) -> tuple:
        return (_reconstruct_persistent_obj, (self.meta,))


@contextlib.contextmanager
def reference_modules() -> Iterator[None]:
    """``torch_utils.persistence`` and ``dnnlib.util`` in ``sys.modules`` (only while pickling)."""
    names = ("torch_utils", "torch_utils.persistence", "dnnlib", "dnnlib.util")
    saved = {n: sys.modules.get(n) for n in names}
    modules = {n: types.ModuleType(n) for n in names}
    modules["torch_utils.persistence"]._reconstruct_persistent_obj = _reconstruct_persistent_obj
    modules["dnnlib.util"].EasyDict = EasyDict
    _reconstruct_persistent_obj.__module__, _reconstruct_persistent_obj.__qualname__ = (
        "torch_utils.persistence",
        "_reconstruct_persistent_obj",
    )
    EasyDict.__module__ = "dnnlib.util"
    sys.modules.update(modules)
    try:
        yield
    finally:
        for n, m in saved.items():
            if m is None:
                sys.modules.pop(n, None)
            else:
                sys.modules[n] = m


def module_record(class_name: str, tree: dict, init_kwargs: dict | None = None, src: str = "") -> Persistent:
    """A persistent record of a module: ``tree`` maps names to tensors or subtrees."""
    params, buffers, children = OrderedDict(), OrderedDict(), OrderedDict()
    for name, value in tree.items():
        if isinstance(value, dict):
            children[name] = module_record("Module", value, {}, src)
        elif name in BUFFERS:
            buffers[name] = value.clone()
        else:
            params[name] = nn.Parameter(value.clone(), requires_grad=False)
    state = {
        "training": False,
        "_parameters": params,
        "_buffers": buffers,
        "_non_persistent_buffers_set": {"scratch"} if "scratch" in buffers else set(),
        "_modules": children,
        "_forward_hooks": OrderedDict(),
        "_init_args": (),
        "_init_kwargs": init_kwargs or {},
        "weight_gain": np.float64(0.25),  # the reference keeps numpy gains as attributes
    }
    return Persistent(dict(type="class", version=6, module_src=src, class_name=class_name, state=state))


def as_tree(state: dict[str, Tensor]) -> dict:
    tree: dict = {}
    for key, value in state.items():
        *path, leaf = key.split(".")
        node = tree
        for part in path:
            node = node.setdefault(part, {})
        node[leaf] = value
    return tree


def ada_state(net: nn.Module, name: str) -> dict[str, Tensor]:
    """The reference's state dict of a lab network (plus its FIR filters and a non-persistent buffer)."""
    kind = "D" if name == "D" else "G"
    res = net.resolution
    state = {ada_key(k, kind, res): v for k, v in net.state_dict().items() if not k.endswith("w_avg_class")}
    f = torch.ones(4, 4) / 16
    if kind == "G":
        for r in (2**i for i in range(3, int(math.log2(res)) + 1)):
            state[f"synthesis.b{r}.resample_filter"] = f
            state[f"synthesis.b{r}.conv0.resample_filter"] = f
        state["scratch"] = torch.zeros(3)  # non-persistent: not part of the state
    else:
        for r in (2**i for i in range(3, int(math.log2(res)) + 1)):
            state[f"b{r}.conv1.resample_filter"] = f
    return state


def ada_kwargs(G: StyleGANGenerator, D: StyleGANDiscriminator) -> tuple[dict, dict]:
    """``init_kwargs`` as the reference's train.py and training_loop build them."""
    g = dict(
        z_dim=G.z_dim,
        w_dim=G.w_dim,
        mapping_kwargs=EasyDict(num_layers=len(G.mapping.layers)),
        synthesis_kwargs=EasyDict(channel_base=64, channel_max=16, num_fp16_res=4, conv_clamp=256),
        c_dim=G.num_classes,
        img_resolution=G.resolution,
        img_channels=G.channels,
    )
    d = dict(
        c_dim=D.num_classes,
        img_resolution=D.resolution,
        img_channels=D.channels,
        architecture=D.architecture,
        channel_base=64,
        channel_max=16,
        num_fp16_res=4,
        conv_clamp=256,
        block_kwargs=EasyDict(),
        mapping_kwargs=EasyDict(),
        epilogue_kwargs=EasyDict(mbstd_group_size=D.epilogue.mbstd.group_size),
    )
    if D.num_classes and D.cmap_dim != 16:
        d["cmap_dim"] = D.cmap_dim
    return g, d


def write_ada_pickle(
    path: Path, nets: tuple, protocol: int = 4, src: str = "", g_overrides: dict | None = None, **extra: Any
) -> Path:
    """A stylegan2-ada-pytorch snapshot of the lab networks ``nets`` (G, D, G_ema)."""
    G, D, G_ema = nets
    g_kwargs, d_kwargs = ada_kwargs(G, D)
    for key, value in (g_overrides or {}).items():
        section, _, name = key.rpartition(".")
        (g_kwargs[section] if section else g_kwargs)[name] = value
    with reference_modules():
        snapshot = {
            "training_set_kwargs": {
                "class_name": "training.dataset.ImageFolderDataset",
                "path": "/data/x.zip",
            },
            "G": module_record("Generator", as_tree(ada_state(G, "G")), g_kwargs, src),
            "D": module_record("Discriminator", as_tree(ada_state(D, "D")), d_kwargs, src),
            "G_ema": module_record("Generator", as_tree(ada_state(G_ema, "G_ema")), g_kwargs, src),
            "augment_pipe": None,
            **extra,
        }
        path.write_bytes(pickle.dumps(snapshot, protocol=protocol))
    return path


# ---------------------------------------------------------------------------- the rosinality format
def rosinality_g_state(G: StyleGANGenerator) -> dict[str, Tensor]:
    """rosinality's Generator state dict (its names and shapes) of a lab generator."""
    styled = {"weight": "conv.weight", "affine.weight": "conv.modulation.weight"}
    styled |= {
        "affine.bias": "conv.modulation.bias",
        "noise_strength": "noise.weight",
        "bias": "activate.bias",
    }
    torgb = {"weight": "conv.weight", "affine.weight": "conv.modulation.weight"}
    torgb |= {"affine.bias": "conv.modulation.bias", "bias": "bias"}
    kernel = torch.outer(torch.tensor([1.0, 3, 3, 1]), torch.tensor([1.0, 3, 3, 1])) / 64 * 4
    out: dict[str, Tensor] = {}
    for key, v in G.state_dict().items():
        if m := re.fullmatch(r"mapping\.layers\.(\d+)\.(\w+)", key):
            out[f"style.{int(m[1]) + 1}.{m[2]}"] = v
            continue
        if key == "mapping.w_avg":
            continue
        m = re.fullmatch(r"synthesis\.blocks\.(\d+)\.(\w+)\.?(.*)", key)
        block, layer, rest = int(m[1]), m[2], m[3]
        if layer == "const":
            out["input.input"] = v.unsqueeze(0)
        elif layer == "torgb":
            name = "to_rgb1" if block == 0 else f"to_rgbs.{block - 1}"
            out[f"{name}.{torgb[rest]}"] = (
                v.reshape(1, -1, 1, 1) if rest == "bias" else v.unsqueeze(0) if rest == "weight" else v
            )
        else:
            index = 0 if block == 0 else 2 * (block - 1) + int(layer[-1])
            noise = 0 if block == 0 else 2 * block - 1 + int(layer[-1])
            name = "conv1" if block == 0 else f"convs.{index}"
            if rest == "noise_const":
                out[f"noises.noise_{noise}"] = v.reshape(1, 1, *v.shape)
            else:
                shaped = (
                    v.unsqueeze(0) if rest == "weight" else v.reshape(1) if rest == "noise_strength" else v
                )
                out[f"{name}.{styled[rest]}"] = shaped
            if block > 0 and layer == "conv0" and rest == "weight":
                out[f"convs.{index}.conv.blur.kernel"] = kernel
        if layer == "torgb" and block > 0 and rest == "weight":
            out[f"to_rgbs.{block - 1}.upsample.kernel"] = kernel
    return out


def rosinality_d_state(D: StyleGANDiscriminator) -> dict[str, Tensor]:
    """rosinality's Discriminator state dict of a lab (resnet) discriminator."""
    kernel = torch.outer(torch.tensor([1.0, 3, 3, 1]), torch.tensor([1.0, 3, 3, 1])) / 64
    layer = {"conv0.weight": "conv1.0.weight", "conv0.bias": "conv1.1.bias", "conv1.weight": "conv2.1.weight"}
    layer |= {"conv1.bias": "conv2.2.bias", "skip.weight": "skip.1.weight"}
    epilogue = {"conv.weight": "final_conv.0.weight", "conv.bias": "final_conv.1.bias"}
    epilogue |= {"fc.weight": "final_linear.0.weight", "fc.bias": "final_linear.0.bias"}
    epilogue |= {"out.weight": "final_linear.1.weight", "out.bias": "final_linear.1.bias"}
    out: dict[str, Tensor] = {}
    for key, v in D.state_dict().items():
        if key.startswith("epilogue."):
            out[epilogue[key[len("epilogue.") :]]] = v
        elif key == "blocks.0.fromrgb.weight":
            out["convs.0.0.weight"] = v
        elif key == "blocks.0.fromrgb.bias":
            out["convs.0.1.bias"] = v
        else:
            m = re.fullmatch(r"blocks\.(\d+)\.(.+)", key)
            out[f"convs.{int(m[1]) + 1}.{layer[m[2]]}"] = v
            out[f"convs.{int(m[1]) + 1}.conv2.0.kernel"] = kernel
            out[f"convs.{int(m[1]) + 1}.skip.0.kernel"] = kernel
    return out


def rosinality_nets(resolution: int = 32, seed: int = 3) -> tuple:
    """Lab networks with rosinality's fixed settings: RGB, no clamping, minibatch-std groups of 4."""
    return lab_networks(resolution, 3, conv_clamp=None, mbstd_group=4, seed=seed)


def write_rosinality(path: Path, nets: tuple, **entries: Any) -> Path:
    G, D, G_ema = nets
    ckpt = {
        "g": rosinality_g_state(G),
        "d": rosinality_d_state(D),
        "g_ema": rosinality_g_state(G_ema),
        "g_optim": {"state": {}, "param_groups": [{"lr": 0.002, "betas": (0.0, 0.99), "params": [0, 1]}]},
        "d_optim": {"state": {}, "param_groups": [{"lr": 0.002, "betas": (0.0, 0.99), "params": [0, 1]}]},
        "args": argparse.Namespace(size=G.resolution, path="/data/lmdb", arch="stylegan2", n_mlp=2, r1=10.0),
        "ada_aug_p": 0.0,
    }
    ckpt.update(entries)
    torch.save({k: v for k, v in ckpt.items() if v is not None}, path)
    return path


# ---------------------------------------------------------------------------- comparisons
@torch.no_grad()
def assert_same_outputs(source: tuple, imported: dict[str, nn.Module], psi: bool = True) -> None:
    """G, G_ema (constant noise, fused and unfused modulation) and D equal to float rounding."""
    G, D, G_ema = source
    gen = torch.Generator().manual_seed(7)
    z = torch.randn(4, G.z_dim, generator=gen)
    c = torch.randint(0, G.num_classes, (4,), generator=gen) if G.num_classes else None
    for name, net in (("G", G), ("G_ema", G_ema)):
        for fused in (True, False):
            want = net(z, c, noise_mode="const", fused=fused)
            got = imported[name](z, c, noise_mode="const", fused=fused)
            torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5 * want.abs().max().item())
        if psi:  # the file's w_avg: the same truncation
            want = net(z, c, truncation_psi=0.5, noise_mode="const")
            torch.testing.assert_close(imported[name](z, c, truncation_psi=0.5, noise_mode="const"), want)
    images = G_ema(z, c, noise_mode="const")
    torch.testing.assert_close(imported["D"](images, c), D(images, c), rtol=1e-5, atol=1e-5)


def read_networks(path: Path, **kwargs: Any) -> dict[str, nn.Module]:
    imported = read_source(path, **kwargs)
    return build_networks(imported, str(path))


# ---------------------------------------------------------------------------- stylegan2-ada-pytorch
@pytest.mark.parametrize(
    ("resolution", "channels", "num_classes", "architecture", "protocol"),
    [
        (64, 3, 0, "resnet", 4),  # pickle.dump's default since Python 3.8
        (32, 1, 10, "orig", 3),  # Python 3.7's default (the reference's own), conditional
        (32, 3, 3, "skip", 2),  # bytes as _codecs.encode
    ],
)
def test_ada_pickle_imports_to_the_networks_it_was_written_from(
    tmp_path: Path, resolution: int, channels: int, num_classes: int, architecture: str, protocol: int
) -> None:
    nets = lab_networks(resolution, channels, num_classes, architecture, cmap_dim=8 if num_classes else None)
    path = write_ada_pickle(tmp_path / "network-snapshot-000100.pkl", nets, protocol=protocol)
    imported = read_source(path)
    assert imported.generator == dict(
        resolution=resolution,
        channels=channels,
        z_dim=16,
        w_dim=16,
        map_layers=2,
        channel_base=64,
        channel_max=16,
        conv_clamp=256,
        num_classes=num_classes,
    )
    assert imported.discriminator["architecture"] == architecture
    assert imported.dataset == {"root": "/data/x.zip"}
    networks = build_networks(imported, str(path))
    # a conditional lab model truncates towards class averages, which the reference does not keep
    assert_same_outputs(nets, networks, psi=not num_classes)
    if num_classes:  # ... so they are the mean mapped w of each class
        mapping = networks["G_ema"].mapping
        assert not torch.allclose(mapping.w_avg_class[0], mapping.w_avg_class[1])
        for label in (0, num_classes - 1):  # other latents: within sampling error
            w = mapping(torch.randn(2000, 16), torch.full((2000,), label))[:, 0]
            assert (mapping.w_avg_class[label] - w.mean(0)).abs().max() < 4 * w.std(0).max() / math.sqrt(2000)


def test_settings_the_lab_cannot_represent_are_refused_naming_them(tmp_path: Path) -> None:
    nets = lab_networks()
    cases = {
        "synthesis_kwargs.architecture": "synthesis_kwargs.architecture='resnet' cannot be imported",
        "mapping_kwargs.lr_multiplier": "mapping_kwargs.lr_multiplier=0.1 cannot be imported",
        "synthesis_kwargs.use_noise": "synthesis_kwargs.use_noise=False cannot be imported",
        "synthesis_kwargs.resample_filter": r"resample_filter=\[1, 2, 1\] cannot be imported",
        "synthesis_kwargs.magic": "synthesis_kwargs.magic=1 is a setting the lab's StyleGAN2 does not have",
    }
    values = {
        "architecture": "resnet",
        "lr_multiplier": 0.1,
        "use_noise": False,
        "resample_filter": [1, 2, 1],
    }
    for key, message in cases.items():
        path = write_ada_pickle(
            tmp_path / "x.pkl", nets, g_overrides={key: values.get(key.split(".")[-1], 1)}
        )
        with pytest.raises(ImportRefused, match=message):
            read_source(path)


def test_the_importer_is_one_line_and_exit_2_on_bad_input(tmp_path: Path, capsys) -> None:
    bad = tmp_path / "notes.pkl"
    bad.write_bytes(b"not a pickle at all")
    cases = [
        ([str(tmp_path / "missing.pkl"), str(tmp_path / "o.ckpt")], "does not exist"),
        ([str(bad), str(tmp_path / "o.ckpt")], "is not a readable pickle"),
        ([str(bad), str(tmp_path / "o.pt")], "should end in .ckpt"),
    ]
    path = write_ada_pickle(tmp_path / "x.pkl", lab_networks())
    cases.append(([str(path), str(tmp_path / "o.ckpt"), "data.resolution=64"], "does not match the imported"))
    cases.append(([str(path), str(tmp_path / "o.ckpt"), "model.generator.z_dim=8"], "cannot be overridden"))
    for argv, message in cases:
        assert import_main(argv) == 2
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1 and "Traceback" not in err


# ---------------------------------------------------------------------------- malicious pickles
def _marker_commands(marker: Path) -> dict[str, Any]:
    class System:
        def __reduce__(self) -> tuple:
            return (os.system, (f"touch {marker}",))

    class Exec:
        def __reduce__(self) -> tuple:
            return (builtins.exec, (f"open({str(marker)!r}, 'w').write('ran')",))

    return {"system": System(), "exec": Exec()}


def test_pickles_that_would_run_code_are_refused_and_nothing_runs(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    payloads = _marker_commands(marker)
    nets = lab_networks()
    files = {}

    def write(name: str, obj: Any) -> None:
        files[name] = tmp_path / f"{name}.pkl"
        files[name].write_bytes(pickle.dumps(obj))

    for name, payload in payloads.items():  # the whole file is a call
        write(f"top-{name}", payload)
    # inside the persistence meta: a network's constructor arguments / its state
    files["meta"] = write_ada_pickle(tmp_path / "meta.pkl", nets, g_overrides={"z_dim": payloads["system"]})
    with reference_modules():
        record = module_record("Generator", {"w": torch.zeros(1)}, {})
        record.meta["state"]["_forward_hooks"] = OrderedDict(h=payloads["exec"])
        write("state", {"G": record})

    class EmbeddedStorage:  # the tensor path: _load_from_bytes of bytes that hold a payload
        def __reduce__(self) -> tuple:
            buffer = io.BytesIO()
            torch.save(payloads["system"], buffer, _use_new_zipfile_serialization=False)
            return (torch.storage._load_from_bytes, (buffer.getvalue(),))

    write("storage", {"G": EmbeddedStorage()})
    write("class", {"G": nn.Linear(2, 2)})
    with reference_modules():  # the original TensorFlow pickles: (G, D, Gs) of dnnlib.tflib Networks
        tflib = sys.modules["dnnlib.tflib.network"] = types.ModuleType("dnnlib.tflib.network")
        tflib.Network = type("Network", (), {"__module__": "dnnlib.tflib.network"})
        write("tensorflow", (tflib.Network(), tflib.Network(), tflib.Network()))
        del sys.modules["dnnlib.tflib.network"]
    expected = {
        "top-system": r"refused (posix|nt)\.system",
        "top-exec": r"refused builtins\.exec",
        "meta": r"refused (posix|nt)\.system",
        "state": r"refused builtins\.exec",
        "storage": r"embedded bytes are not plain tensor data .*unsupported GLOBAL (posix|nt)\.system",
        "class": r"refused torch\.nn\.modules\.linear\.Linear",
        "tensorflow": r"a TensorFlow StyleGAN2 pickle .* legacy\.py",
    }
    for name, path in files.items():
        with pytest.raises(UnsafePickleError, match=expected[name]) as info:
            read_source(path)
        assert "\n" not in str(info.value)
        assert not marker.exists(), f"{name}: the payload ran"


def test_the_stored_module_source_is_never_run(tmp_path: Path) -> None:
    """The reference's own loader exec()s the source code stored with each object: not here."""
    marker = tmp_path / "ran"
    nets = lab_networks()
    src = f"open({str(marker)!r}, 'w').write('ran')\nclass Generator: pass\n"
    path = write_ada_pickle(tmp_path / "src.pkl", nets, src=src)
    assert_same_outputs(nets, read_networks(path))
    assert not marker.exists()


# ---------------------------------------------------------------------------- rosinality
def test_rosinality_checkpoint_imports_to_the_networks_it_was_written_from(tmp_path: Path) -> None:
    nets = rosinality_nets()
    latent_avg = torch.randn(16)
    path = write_rosinality(tmp_path / "550000.pt", nets, latent_avg=latent_avg)
    imported = read_source(path)
    assert imported.generator == dict(
        resolution=32,
        channels=3,
        z_dim=16,
        w_dim=16,
        map_layers=2,
        channel_base=64,
        channel_max=16,
        conv_clamp=None,
        num_classes=0,
    )
    networks = build_networks(imported, str(path))
    assert_same_outputs(nets, networks, psi=False)
    assert torch.equal(networks["G_ema"].mapping.w_avg, latent_avg)  # the file's truncation centre
    # G has no latent_avg: the mean mapped w of 10,000 seeded latents
    w = networks["G"].mapping(torch.randn(4000, 16))[:, 0]
    assert (networks["G"].mapping.w_avg - w.mean(0)).abs().max() < 4 * w.std(0).max() / math.sqrt(4000)


def test_rosinality_files_without_g_or_d(tmp_path: Path) -> None:
    """convert_weight.py's files: g_ema (and latent_avg) only."""
    nets = rosinality_nets(seed=4)
    path = write_rosinality(tmp_path / "ffhq.pt", nets, g=None, d=None, g_optim=None, d_optim=None, args=None)
    with pytest.raises(ImportRefused, match=r"has no discriminator .* add --fresh-d"):
        read_source(path)
    imported = read_source(path, fresh_d=True)
    assert any("G starts as a copy of g_ema" in n for n in imported.notes)
    networks = build_networks(imported, str(path))
    z = torch.randn(2, 16)
    want = nets[2](z, noise_mode="const")
    torch.testing.assert_close(networks["G"](z, noise_mode="const"), want)
    torch.testing.assert_close(networks["G_ema"](z, noise_mode="const"), want)


def test_rosinality_layouts_the_lab_cannot_represent_are_refused(tmp_path: Path) -> None:
    nets = rosinality_nets(seed=5)
    state = rosinality_g_state(nets[0])
    state["convs.0.conv.blur.kernel"] = torch.ones(4, 4) / 4  # another blur_kernel
    with pytest.raises(ImportRefused, match=r"convs\.0\.conv\.blur\.kernel is not the \[1,3,3,1\] filter"):
        read_source(write_rosinality(tmp_path / "a.pt", nets, g_ema=state))
    swagan = argparse.Namespace(size=32, arch="swagan")
    with pytest.raises(ImportRefused, match=r"args\.arch='swagan' cannot be imported"):
        read_source(write_rosinality(tmp_path / "b.pt", nets, args=swagan))
    odd = {**rosinality_g_state(nets[0]), "convs.0.extra.weight": torch.zeros(1)}
    with pytest.raises(ImportRefused, match=r"convs\.0\.extra\.weight is not a layer of StyleGAN2's G"):
        read_source(write_rosinality(tmp_path / "c.pt", nets, g_ema=odd))


def test_channel_tables_map_to_the_labs_width_rule() -> None:
    # rosinality's table: 512 up to 32 px, then 256 * channel_multiplier at 64, halving
    def table(multiplier: int, size: int) -> dict[int, int]:
        t = {
            4: 512,
            8: 512,
            16: 512,
            32: 512,
            64: 256 * multiplier,
            128: 128 * multiplier,
            256: 64 * multiplier,
        }
        return {r: c for r, c in t.items() if r <= size}

    assert channel_rule(table(2, 256), "x") == (32768, 512)  # config F: StyleGAN2's channel_base
    assert channel_rule(table(1, 256), "x") == (16384, 512)
    assert channel_rule(table(2, 32), "x") == (16384, 512)  # all 512 wide
    with pytest.raises(ImportRefused, match=r"do not follow the lab's rule"):
        channel_rule(table(4, 256), "x")  # 1024 at 64 px after 512 at 32 px


# ---------------------------------------------------------------------------- the lab checkpoint
FASHION = ("data=fashion_mnist", "data.search_dirs=[]", "data.download=false")


def test_an_imported_model_generates_evaluates_and_fine_tunes(
    compose_cfg, tmp_path: Path, fashion_root
) -> None:
    from gan_lab.evaluate import evaluate
    from gan_lab.generate import generate

    nets = lab_networks(32, 1, mbstd_group=4, seed=11)
    src = write_ada_pickle(tmp_path / "network-snapshot-000200.pkl", nets)
    ckpt = tmp_path / "imported.ckpt"
    result = import_stylegan2(src, ckpt, [*FASHION, f"data.root={fashion_root}"])
    assert result["parameters"] == {
        "G": sum(p.numel() for p in nets[0].parameters()),
        "D": sum(p.numel() for p in nets[1].parameters()),
    }
    module, info = load_model(ckpt)  # what generate.py and evaluate.py load
    assert info["iteration"] == 0 and module.G_ema.resolution == 32
    assert_same_outputs(nets, {"G": module.G, "D": module.D, "G_ema": module.G_ema})

    (grid,) = generate(compose_tool("generate", tmp_path / "gen", f"ckpt={ckpt}", "num=4"))
    assert Image.open(grid).size == (2 * 33 + 1, 2 * 33 + 1)
    metrics = [m for m in TINY_METRICS if not m.startswith("metrics.every")]
    record = evaluate(
        compose_tool(
            "evaluate", tmp_path / "eval", f"ckpt={ckpt}", f"paths.cache_dir={tmp_path / 'c'}", *metrics
        )
    )
    assert record["iteration"] == 0 and record["fid_domain"] > 0
    assert json.loads((tmp_path / "eval" / "scores.json").read_text())["fid_domain"] == record["fid_domain"]

    # fine-tuning: a new run from the imported weights, fresh optimizers, the command line's data
    run(compose_cfg(f"ckpt_path={ckpt}", "trainer.max_steps=2", run_dir=tmp_path / "ft"))
    tuned = torch.load(tmp_path / "ft" / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    assert tuned["global_step"] == 2
    # fresh optimizers: two main steps and the lazy regularization step of iteration 0 each
    assert {float(s["step"]) for opt in tuned["optimizer_states"] for s in opt["state"].values()} == {3.0}
    meta = tuned["gan_lab"]
    assert WEIGHTS_ONLY not in meta and "model.ema_rampup=null" in meta["overrides"]
    assert (
        meta["config"]["run_name"] == "stylegan_fashion_mnist"
        and meta["config"]["model"]["ema_rampup"] is None
    )
    assert meta["config"]["model"]["generator"]["channel_base"] == 64
    start = torch.load(ckpt, map_location="cpu", weights_only=True)["state_dict"]
    state = tuned["state_dict"]
    for name, net in (("G", nets[0]), ("D", nets[1])):  # two Adam steps from the imported weights
        moved = max(
            (state[f"{name}.{k}"] - start[f"{name}.{k}"]).abs().max().item()
            for k, _ in net.named_parameters()
        )
        assert 0 < moved < 0.05, (name, moved)
    for k, _ in nets[2].named_parameters():  # (buffers: G_ema copies G's noise and w_avg)
        # the imported average, 0.2% of the way to G per iteration (beta 0.998): no EMA ramp-up,
        # with which G_ema would start as a copy of G
        moved = (state[f"G_ema.{k}"] - start[f"G_ema.{k}"]).abs().max()
        assert moved <= 0.01 * (start[f"G.{k}"] - start[f"G_ema.{k}"]).abs().max() + 1e-6, k


def test_fine_tuning_refuses_data_the_networks_do_not_fit(compose_cfg, tmp_path: Path) -> None:
    rgb = import_stylegan2(write_ada_pickle(tmp_path / "a.pkl", lab_networks(64, 3)), tmp_path / "a.ckpt")
    with pytest.raises(
        ConfigError, match=r"holds networks of 64x64 images with 3 channel\(s\), but the data"
    ):
        run(compose_cfg(f"ckpt_path={rgb['out']}", run_dir=tmp_path / "r1"))
    cond = lab_networks(32, 1, num_classes=3, mbstd_group=4, seed=2)
    ten = import_stylegan2(write_ada_pickle(tmp_path / "b.pkl", cond), tmp_path / "b.ckpt")
    with pytest.raises(
        ConfigError, match="holds networks conditional on 3 classes, but the data is unconditional"
    ):
        run(compose_cfg(f"ckpt_path={ten['out']}", run_dir=tmp_path / "r2"))


def test_crafted_tensors_and_records_are_refused_in_one_line(tmp_path: Path, capsys) -> None:
    """Past find_class: a tensor viewing more than its storage (set_ would grow the storage into
    uninitialised memory), a record pickle's BUILD rewrites after it was checked, absurd sizes."""

    class Oversized:  # 64x64 floats over a storage of 3
        def __reduce__(self) -> tuple:
            storage = torch.zeros(3).storage()
            return (torch._utils._rebuild_tensor_v2, (storage, 0, (64, 64), (64, 1), False, OrderedDict()))

    oversized = tmp_path / "oversized.pkl"
    oversized.write_bytes(pickle.dumps({"G": Oversized()}))
    with pytest.raises(ImportRefused, match="a damaged tensor: larger than its storage"):
        read_source(oversized)

    class Rewritten(Persistent):  # the record, then BUILD with a state of its own
        def __reduce__(self) -> tuple:
            return (_reconstruct_persistent_obj, (self.meta,), {"state": 5})

    with reference_modules():
        meta = module_record("Generator", {"w": torch.zeros(1)}, {}).meta
        rewritten = tmp_path / "rewritten.pkl"
        rewritten.write_bytes(pickle.dumps({"G": Rewritten(meta)}))
    with pytest.raises(UnsafePickleError, match="rewrites a persistence record"):
        read_source(rewritten)

    huge = write_ada_pickle(tmp_path / "huge.pkl", lab_networks(), g_overrides={"w_dim": 1e300})
    assert import_main([str(huge), str(tmp_path / "out.ckpt")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"error: SRC={huge}"), err


def test_a_dataset_path_in_the_file_is_never_interpolated(tmp_path: Path, monkeypatch) -> None:
    """OmegaConf resolves ${...} even in quoted override values: a file naming its dataset
    ${oc.env:...} would copy an environment variable into the checkpoint."""
    monkeypatch.setenv("GAN_LAB_TEST_SECRET", "s3cr3t")
    nets = lab_networks()
    crafted = {"class_name": "training.dataset.ImageFolderDataset", "path": "${oc.env:GAN_LAB_TEST_SECRET}"}
    src = write_ada_pickle(tmp_path / "a.pkl", nets, training_set_kwargs=crafted)
    out = tmp_path / "a.ckpt"
    import_stylegan2(src, out)
    stored = torch.load(out, map_location="cpu", weights_only=True)["gan_lab"]
    assert "s3cr3t" not in json.dumps(stored, default=str)
    assert stored["config"]["data"]["root"].startswith("UNKNOWN")


def test_a_requeued_fine_tuning_job_resumes_its_own_run(
    compose_cfg, tmp_path: Path, fashion_root, monkeypatch
) -> None:
    """SLURM restarts the same command (ckpt_path=the import): the job continues from its folder's
    last.ckpt, not from the imported weights at iteration 0."""
    src = write_ada_pickle(tmp_path / "n.pkl", lab_networks(32, 1, mbstd_group=4, seed=11))
    ckpt = tmp_path / "imported.ckpt"
    import_stylegan2(src, ckpt, [*FASHION, f"data.root={fashion_root}"])
    run(compose_cfg(f"ckpt_path={ckpt}", "trainer.max_steps=2", run_dir=tmp_path / "ft"))
    monkeypatch.setenv("SLURM_RESTART_COUNT", "1")
    run(compose_cfg(f"ckpt_path={ckpt}", "trainer.max_steps=3", run_dir=tmp_path / "ft"))
    tuned = torch.load(tmp_path / "ft" / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    assert tuned["global_step"] == 3 and tuned["images_seen"] == 3 * 16  # continued, not restarted
