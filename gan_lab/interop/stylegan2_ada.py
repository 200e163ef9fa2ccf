"""stylegan2-ada-pytorch's network pickles (``network-snapshot-*.pkl``, the published ``*.pkl``).

A snapshot is a dict ``{G, D, G_ema, augment_pipe, training_set_kwargs}`` (Karras et al. 2020,
"Training Generative Adversarial Networks with Limited Data", its ``training_loop.py``), each
network an object of a ``torch_utils.persistence`` class. ``gan_lab.interop.pickles`` reads it as
records (class name, constructor arguments, parameters and buffers) without running the file's
code; this module turns the records into the lab's networks:

* the constructor arguments (``init_kwargs``: ``z_dim``, ``w_dim``, ``c_dim``, ``img_resolution``,
  ``img_channels``, ``mapping_kwargs``, ``synthesis_kwargs``; D's ``architecture``,
  ``channel_base``, ``channel_max``, ``conv_clamp``, ``cmap_dim``, ``block_kwargs``,
  ``mapping_kwargs``, ``epilogue_kwargs``) become the lab's ``StyleGANGenerator`` /
  ``StyleGANDiscriminator`` arguments; a setting the lab's networks cannot represent (a synthesis
  architecture other than ``skip``, another activation or resampling filter, no noise inputs, a
  mapping learning-rate multiplier other than 0.01, ...) is refused with one line naming it;
  ``num_fp16_res`` and the channels-last flags are how the reference ran, not what it computes,
  and are ignored (the lab picks its precision from ``trainer.precision``);
* the parameters and buffers, gathered from the records' ``_parameters`` / ``_buffers`` /
  ``_modules`` as ``state_dict`` would, are renamed by ``gan_lab.interop.keys.lab_key``; the key
  sets must then equal the lab network's exactly, and every shape must match.

``augment_pipe`` is not imported: StyleGAN2-ADA's own transfer learning (``--resume``) restores
only G, D and G_ema and starts the augmentation probability afresh.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from torch import Tensor

from gan_lab.config.schema import MIN_RESOLUTION  # the lab's configs train at 32 px and above
from gan_lab.interop.common import Imported, ImportRefused
from gan_lab.interop.keys import map_state
from gan_lab.interop.pickles import PersistentRecord, load_pickle

SOURCE = "stylegan2-ada-pytorch"
NETWORKS = ("G", "D", "G_ema")
LAB_MAPPING_LR = 0.01  # gan_lab.nn.stylegan: the mapping network's learning-rate multiplier
LAB_W_AVG_BETA = 0.995
LAB_D_MAPPING_LAYERS = 8
RESAMPLE_FILTER = [1, 3, 3, 1]

# positional parameters of the reference's constructors (in case a network was built positionally)
G_PARAMS = ("z_dim", "c_dim", "w_dim", "img_resolution", "img_channels", "mapping_kwargs", "synthesis_kwargs")
D_PARAMS = (
    "c_dim",
    "img_resolution",
    "img_channels",
    "architecture",
    "channel_base",
    "channel_max",
    "num_fp16_res",
    "conv_clamp",
    "cmap_dim",
    "block_kwargs",
    "mapping_kwargs",
    "epilogue_kwargs",
)
# settings that change how the reference runs, not what it computes
IGNORED = {"num_fp16_res", "fp16_channels_last", "channels_last"}


# ---------------------------------------------------------------------------- records -> state
def record_state(record: PersistentRecord, what: str, prefix: str = "") -> dict[str, Tensor]:
    """The ``state_dict`` of a persistent module record: its parameters, persistent buffers and the
    same of its submodules, under dotted names."""
    state = record.state
    params, buffers = state.get("_parameters", {}), state.get("_buffers", {})
    skipped = state.get("_non_persistent_buffers_set", set())
    if not isinstance(params, dict) or not isinstance(buffers, dict):
        raise ImportRefused(f"{what}: {prefix or record.class_name} has no parameter or buffer table")
    out: dict[str, Tensor] = {}
    for table, is_buffer in ((params, False), (buffers, True)):
        for name, value in table.items():
            if value is None or (is_buffer and name in skipped):
                continue
            if not isinstance(value, Tensor):
                raise ImportRefused(f"{what}: {prefix}{name} is a {type(value).__name__}, not a tensor")
            out[prefix + name] = value
    for name, child in record.children.items():
        if child is None:
            continue
        if not isinstance(child, PersistentRecord):
            raise ImportRefused(
                f"{what}: {prefix}{name} is a {type(child).__name__}, not a stylegan2-ada-pytorch module"
            )
        out |= record_state(child, what, f"{prefix}{name}.")
    return out


def arguments(record: PersistentRecord, params: tuple[str, ...], what: str) -> dict[str, Any]:
    """The record's constructor arguments by name (positional ones named after ``params``)."""
    args = record.init_args
    if len(args) > len(params):
        raise ImportRefused(
            f"{what}: {len(args)} positional constructor arguments, expected at most {len(params)}"
        )
    kwargs = dict(zip(params, args, strict=False))
    kwargs.update(record.init_kwargs)
    if not kwargs:
        raise ImportRefused(
            f"{what}: no constructor arguments were stored (not a stylegan2-ada-pytorch network)"
        )
    return kwargs


# ---------------------------------------------------------------------------- settings
class Settings:
    """Reads one keyword dict of the reference, refusing what the lab cannot represent."""

    def __init__(self, values: Any, where: str, what: str) -> None:
        if values is None:
            values = {}
        if not isinstance(values, dict):
            raise ImportRefused(f"{what}: {where} is a {type(values).__name__}, not a dict")
        self.values, self.where, self.what = dict(values), where, what
        self.used: set[str] = set()

    def get(self, key: str, default: Any) -> Any:
        self.used.add(key)
        return self.values.get(key, default)

    def require(self, key: str, default: Any, allowed: Any, why: str) -> Any:
        """The value, which must equal ``allowed`` (after None -> ``default``) or ImportRefused."""
        value = self.get(key, default)
        value = default if value is None and default is not None else value
        normal = list(value) if isinstance(value, list | tuple) else value
        if normal != allowed:
            raise ImportRefused(f"{self.what}: {self.where}{key}={value!r} cannot be imported: {why}")
        return value

    def number(self, key: str, default: Any, test: Any, expected: str) -> Any:
        value = self.get(key, default)
        if isinstance(value, bool) or not test(value):
            raise ImportRefused(f"{self.what}: {self.where}{key}={value!r} cannot be imported: {expected}")
        return int(value) if isinstance(value, int | float) and float(value).is_integer() else value

    def finish(self, nested: tuple[str, ...] = ()) -> None:
        """Refuse a setting this reader does not know (it could change the network)."""
        for key in self.values:
            if key not in self.used and key not in IGNORED and key not in nested and key != "class_name":
                raise ImportRefused(
                    f"{self.what}: {self.where}{key}={self.values[key]!r} is a setting the lab's "
                    "StyleGAN2 does not have"
                )


def _positive_int(v: Any) -> bool:
    return isinstance(v, int | float) and float(v).is_integer() and v > 0


def _clamp(v: Any) -> bool:
    return v is None or (isinstance(v, int | float) and math.isfinite(v) and v > 0)


def _resolution(value: Any, what: str) -> int:
    if not _positive_int(value) or int(value) & (int(value) - 1) or int(value) < MIN_RESOLUTION:
        raise ImportRefused(
            f"{what}: img_resolution={value!r} cannot be imported: the lab's StyleGAN2 needs a power of "
            f"two >= {MIN_RESOLUTION}"
        )
    return int(value)


def generator_arguments(kwargs: dict[str, Any], what: str) -> dict[str, Any]:
    """The lab's ``StyleGANGenerator`` arguments for the reference ``Generator``'s."""
    top = Settings(kwargs, "", what)
    z_dim = top.number("z_dim", None, _positive_int, "the lab's generator needs a latent z (z_dim > 0)")
    w_dim = top.number("w_dim", None, _positive_int, "a positive integer")
    c_dim = top.number("c_dim", 0, lambda v: _positive_int(v) or v == 0, "a number of classes >= 0")
    resolution = _resolution(top.get("img_resolution", None), what)
    channels = top.number("img_channels", None, _positive_int, "a positive integer")
    mapping = Settings(top.get("mapping_kwargs", {}), "mapping_kwargs.", what)
    map_layers = mapping.number("num_layers", 8, _positive_int, "a positive integer")
    if c_dim:
        mapping.require("embed_features", w_dim, w_dim, f"the lab embeds the label in w_dim={w_dim} features")
    mapping.get("embed_features", None)  # unused without labels
    mapping.require("layer_features", w_dim, w_dim, f"the lab's mapping layers are w_dim={w_dim} wide")
    mapping.require("activation", "lrelu", "lrelu", "the lab's mapping uses leaky ReLU")
    mapping.require("lr_multiplier", LAB_MAPPING_LR, LAB_MAPPING_LR, "the lab's mapping uses 0.01")
    mapping.require("w_avg_beta", LAB_W_AVG_BETA, LAB_W_AVG_BETA, "the lab tracks w_avg with beta 0.995")
    mapping.finish()
    synthesis = Settings(top.get("synthesis_kwargs", {}), "synthesis_kwargs.", what)
    channel_base = synthesis.number("channel_base", 32768, _positive_int, "a positive integer")
    channel_max = synthesis.number("channel_max", 512, _positive_int, "a positive integer")
    conv_clamp = synthesis.number("conv_clamp", None, _clamp, "a positive number or None")
    synthesis.require("architecture", "skip", "skip", "the lab's generator is StyleGAN2's skip architecture")
    synthesis.require("resample_filter", RESAMPLE_FILTER, RESAMPLE_FILTER, "the lab resamples with [1,3,3,1]")
    synthesis.require("use_noise", True, True, "the lab's synthesis layers always have noise inputs")
    synthesis.require("activation", "lrelu", "lrelu", "the lab's synthesis layers use leaky ReLU")
    synthesis.require("kernel_size", 3, 3, "the lab's synthesis convolutions are 3x3")
    synthesis.finish()
    top.finish(("mapping_kwargs", "synthesis_kwargs"))
    return dict(
        resolution=resolution,
        channels=channels,
        z_dim=z_dim,
        w_dim=w_dim,
        map_layers=map_layers,
        channel_base=channel_base,
        channel_max=channel_max,
        conv_clamp=conv_clamp,
        num_classes=c_dim,
    )


def discriminator_arguments(kwargs: dict[str, Any], what: str) -> tuple[dict[str, Any], list[str]]:
    """The lab's ``StyleGANDiscriminator`` arguments for the reference ``Discriminator``'s, and notes."""
    notes = []
    top = Settings(kwargs, "", what)
    c_dim = top.number("c_dim", 0, lambda v: _positive_int(v) or v == 0, "a number of classes >= 0")
    resolution = _resolution(top.get("img_resolution", None), what)
    channels = top.number("img_channels", None, _positive_int, "a positive integer")
    architecture = top.get("architecture", "resnet")
    if architecture not in ("orig", "skip", "resnet"):
        raise ImportRefused(
            f"{what}: architecture={architecture!r} cannot be imported: expected orig, skip or resnet"
        )
    channel_base = top.number("channel_base", 32768, _positive_int, "a positive integer")
    channel_max = top.number("channel_max", 512, _positive_int, "a positive integer")
    conv_clamp = top.number("conv_clamp", None, _clamp, "a positive number or None")
    cmap_dim = top.number(
        "cmap_dim", None, lambda v: v is None or _positive_int(v), "a positive integer or None"
    )
    block = Settings(top.get("block_kwargs", {}), "block_kwargs.", what)
    block.require("activation", "lrelu", "lrelu", "the lab's discriminator uses leaky ReLU")
    block.require("resample_filter", RESAMPLE_FILTER, RESAMPLE_FILTER, "the lab resamples with [1,3,3,1]")
    if block.get("freeze_layers", 0):
        notes.append(
            f"block_kwargs.freeze_layers={block.values['freeze_layers']} (Freeze-D) is not carried over"
        )
    block.finish()
    mapping = Settings(top.get("mapping_kwargs", {}), "mapping_kwargs.", what)
    if c_dim:  # D's label mapping (none without labels)
        cmap = cmap_dim or min(channel_base // 4, channel_max)
        mapping.require(
            "num_layers", LAB_D_MAPPING_LAYERS, LAB_D_MAPPING_LAYERS, "the lab's D maps labels with 8 layers"
        )
        mapping.require("lr_multiplier", LAB_MAPPING_LR, LAB_MAPPING_LR, "the lab's D mapping uses 0.01")
        mapping.require("activation", "lrelu", "lrelu", "the lab's D mapping uses leaky ReLU")
        mapping.require("embed_features", cmap, cmap, f"the lab embeds D's label in cmap_dim={cmap} features")
        mapping.require("layer_features", cmap, cmap, f"the lab's D mapping layers are cmap_dim={cmap} wide")
        mapping.finish()
    epilogue = Settings(top.get("epilogue_kwargs", {}), "epilogue_kwargs.", what)
    group = epilogue.get("mbstd_group_size", 4)
    if not _positive_int(group):
        raise ImportRefused(
            f"{what}: epilogue_kwargs.mbstd_group_size={group!r} cannot be imported: the lab's minibatch "
            "standard deviation needs a group size (a positive integer)"
        )
    mbstd_channels = epilogue.number(
        "mbstd_num_channels", 1, lambda v: _positive_int(v) or v == 0, "an integer >= 0"
    )
    epilogue.require("activation", "lrelu", "lrelu", "the lab's discriminator uses leaky ReLU")
    epilogue.finish()
    top.finish(("block_kwargs", "mapping_kwargs", "epilogue_kwargs"))
    return (
        dict(
            resolution=resolution,
            channels=channels,
            channel_base=channel_base,
            channel_max=channel_max,
            mbstd_group=int(group),
            mbstd_channels=mbstd_channels,
            conv_clamp=conv_clamp,
            num_classes=c_dim,
            cmap_dim=cmap_dim if c_dim else None,
            architecture=architecture,
        ),
        notes,
    )


def _check_stylegan2(record: PersistentRecord, what: str) -> None:
    """Refuse StyleGAN3 (and other networks pickled with the same persistence) early, by name."""
    synthesis = record.children.get("synthesis")
    if isinstance(synthesis, PersistentRecord):
        names = list(synthesis.children)
        if names and not all(n.startswith("b") and n[1:].isdigit() for n in names):
            raise ImportRefused(
                f"{what}: its synthesis network has layers {', '.join(names[:3])}, ... (StyleGAN3?): only "
                "StyleGAN2 networks can be imported"
            )


# ---------------------------------------------------------------------------- the file
def _network(data: dict[str, Any], name: str, what: str, class_name: str) -> PersistentRecord:
    record = data.get(name)
    if not isinstance(record, PersistentRecord):
        got = "missing" if record is None else f"a {type(record).__name__}"
        raise ImportRefused(f"{what}: its {name} is {got}, expected a stylegan2-ada-pytorch {class_name}")
    if record.class_name != class_name:
        raise ImportRefused(f"{what}: its {name} is a {record.class_name}, expected a {class_name}")
    return record


def read(path: str | Path, what: str | None = None) -> Imported:
    """The networks of a stylegan2-ada-pytorch pickle, in the lab's terms (see the module docstring)."""
    what = what or f"{path}"
    data = load_pickle(path, what)
    if isinstance(data, tuple):
        raise ImportRefused(f"{what}: a tuple of networks (a TensorFlow StyleGAN2 pickle?): not supported")
    if not isinstance(data, dict):
        raise ImportRefused(f"{what}: holds a {type(data).__name__}, expected a dict with G, D and G_ema")
    G, D, G_ema = (_network(data, n, what, "Generator" if n != "D" else "Discriminator") for n in NETWORKS)
    _check_stylegan2(G, what)
    g_args = generator_arguments(arguments(G, G_PARAMS, f"{what} G"), f"{what} G")
    ema_args = generator_arguments(arguments(G_ema, G_PARAMS, f"{what} G_ema"), f"{what} G_ema")
    if ema_args != g_args:
        raise ImportRefused(f"{what}: G and G_ema are built with different arguments")
    d_args, notes = discriminator_arguments(arguments(D, D_PARAMS, f"{what} D"), f"{what} D")
    for key in ("resolution", "channels", "num_classes"):
        if d_args[key] != g_args[key]:
            raise ImportRefused(f"{what}: G and D disagree on {key} ({g_args[key]} vs {d_args[key]})")
    resolution = g_args["resolution"]
    states = {
        name: map_state(record_state(record, f"{what} {name}"), "D" if name == "D" else "G", resolution)
        for name, record in (("G", G), ("D", D), ("G_ema", G_ema))
    }
    dataset = {}
    kwargs = data.get("training_set_kwargs")
    if isinstance(kwargs, dict):
        if isinstance(kwargs.get("path"), str):
            dataset["root"] = kwargs["path"]
        if isinstance(kwargs.get("xflip"), bool):
            dataset["hflip"] = kwargs["xflip"]
    return Imported(
        source=SOURCE,
        path=Path(path),
        generator=g_args,
        discriminator=d_args,
        G=states["G"],
        D=states["D"],
        G_ema=states["G_ema"],
        w_avg="the file's (tracked in training)",
        dataset=dataset,
        notes=notes,
    )
