"""An imported model (``Imported``) as a lab checkpoint: ``generate.py ckpt=``, ``evaluate.py ckpt=``
and ``train.py ckpt_path=`` (fine-tuning) read it like one of the lab's own.

The checkpoint is what a run writes (``gan_lab.checkpoints``): the module's ``state_dict`` (G, D,
G_ema, the fixed sample latents), ``global_step`` 0, and the ``"gan_lab"`` entry with

* ``overrides``: ``model=stylegan`` and the networks' sizes (``model.generator.*``,
  ``model.discriminator.*``), plus ``model.ema_rampup=null``; ``train.py ckpt_path=`` composes
  the fine-tuning run from them and the command line (the data comes from the command line);
* ``config``: the resolved training config of those overrides with the data the networks were
  trained on (``data=image_folder``, ``data.root`` from the file when it names its dataset, or the
  extra overrides given to the importer), which ``evaluate.py`` scores against;
* ``weights_only``: the marker that the checkpoint carries networks and no training state, with
  the networks' resolution, channels and classes and where they came from.

``w_avg`` (the truncation centre) is the file's when it has one; else, and for the lab's per-class
averages ``w_avg_class`` (which the reference does not track), the mean mapped ``w`` of 10,000
seeded latents (per class: ``max(10000 / classes, 100)`` latents with that label; ``mean_w``).
"""

from __future__ import annotations

import copy
import hashlib
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf, open_dict
from torch import Tensor, nn

from gan_lab.interop import rosinality, stylegan2_ada
from gan_lab.interop.common import Imported, ImportRefused
from gan_lab.nn.stylegan import StyleGANDiscriminator, StyleGANGenerator

W_AVG_SAMPLES = 10_000
W_AVG_MIN_PER_CLASS = 100
W_AVG_SEED = 0
AVERAGES = ("mapping.w_avg", "mapping.w_avg_class")
G_KEYS = ("z_dim", "w_dim", "map_layers", "channel_base", "channel_max", "conv_clamp")
D_KEYS = (
    "architecture",
    "channel_base",
    "channel_max",
    "conv_clamp",
    "mbstd_group",
    "mbstd_channels",
)
# the networks' settings come from the file: an importer override of them is refused
NETWORK_KEYS = ("model", "model.generator", "model.discriminator", "ckpt_path")
UNKNOWN_ROOT = "UNKNOWN (give evaluate.py data_root=DIR: the images this model was trained on)"


# ---------------------------------------------------------------------------- reading
def read_source(path: str | Path, fresh_d: bool = False) -> Imported:
    """The networks of a stylegan2-ada-pytorch pickle or a rosinality checkpoint (by content)."""
    p = Path(path).expanduser()
    what = f"SRC={path}"
    if not p.exists():
        raise ImportRefused(f"{what} does not exist")
    if not p.is_file():
        raise ImportRefused(f"{what} is not a file (expected a .pkl or .pt model file)")
    if p.stat().st_size == 0:
        raise ImportRefused(f"{what} is an empty file")
    if rosinality.is_torch_file(p):
        return rosinality.read(p, what, fresh_d=fresh_d)
    return stylegan2_ada.read(p, what)


# ---------------------------------------------------------------------------- networks
@torch.no_grad()
def mean_w(mapping: nn.Module, label: int | None = None, samples: int = W_AVG_SAMPLES) -> Tensor:
    """``w_avg = (1/N) sum_i mapping(z_i, c)``, the centre of the truncation trick ``w' = w_avg +
    psi (w - w_avg)`` (Karras et al. 2019, "A Style-Based Generator Architecture", section 3.3), over
    ``N = samples`` latents drawn with seed ``W_AVG_SEED`` (class ``c``: ``W_AVG_SEED + 1 + c``)."""
    gen = torch.Generator().manual_seed(W_AVG_SEED if label is None else W_AVG_SEED + 1 + label)
    total = torch.zeros(mapping.w_dim, dtype=torch.float64)
    was_training = mapping.training
    mapping.eval()
    for start in range(0, samples, 1000):
        n = min(1000, samples - start)
        z = torch.randn(n, mapping.z_dim, generator=gen)
        c = None if label is None else torch.full((n,), label, dtype=torch.int64)
        total += mapping(z, c)[:, 0].double().sum(dim=0)
    mapping.train(was_training)
    return (total / samples).float()


def load_state(net: nn.Module, state: dict[str, Tensor], name: str, what: str) -> None:
    """Load an imported state into a lab network; ``w_avg`` / ``w_avg_class`` the file lacks are
    computed (``mean_w``). Any other missing, extra or misshapen entry is refused."""
    wanted = net.state_dict()
    missing = sorted(set(wanted) - set(state) - set(AVERAGES))
    extra = sorted(set(state) - set(wanted))
    if missing or extra:
        detail = "; ".join([*(f"no {k}" for k in missing[:3]), *(f"unexpected {k}" for k in extra[:3])])
        raise ImportRefused(f"{what}: its {name} does not match the lab's StyleGAN2 ({detail})")
    for key, value in state.items():
        if tuple(value.shape) != tuple(wanted[key].shape):
            raise ImportRefused(
                f"{what}: {name} {key} has shape {tuple(value.shape)}, expected {tuple(wanted[key].shape)}"
            )
    net.load_state_dict({**wanted, **state}, strict=True)
    mapping = getattr(net, "mapping", None)
    if isinstance(net, StyleGANGenerator) and mapping is not None:
        if "mapping.w_avg" not in state:
            mapping.w_avg.copy_(mean_w(mapping) if not net.num_classes else _class_mean_all(mapping))
        if net.num_classes and "mapping.w_avg_class" not in state:
            per_class = max(W_AVG_SAMPLES // net.num_classes, W_AVG_MIN_PER_CLASS)
            for c in range(net.num_classes):
                mapping.w_avg_class[c].copy_(mean_w(mapping, c, per_class))


def _class_mean_all(mapping: nn.Module) -> Tensor:
    """A conditional mapping's global average: the mean over classes of the class averages."""
    per_class = max(W_AVG_SAMPLES // mapping.num_classes, W_AVG_MIN_PER_CLASS)
    return torch.stack([mean_w(mapping, c, per_class) for c in range(mapping.num_classes)]).mean(dim=0)


def build_networks(imported: Imported, what: str) -> dict[str, nn.Module]:
    """The lab's G, D and G_ema with the imported weights (D freshly initialised when the file has none)."""
    G = StyleGANGenerator(**imported.generator)
    G_ema = copy.deepcopy(G)
    D = StyleGANDiscriminator(**imported.discriminator)
    load_state(G, imported.G, "G", what)
    load_state(G_ema, imported.G_ema, "G_ema", what)
    if imported.D is not None:
        load_state(D, imported.D, "D", what)
    return {"G": G.eval(), "D": D.eval(), "G_ema": G_ema.eval()}


# ---------------------------------------------------------------------------- config
def _value(v: Any) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return str(v).lower()
    return str(v)


def model_overrides(imported: Imported) -> list[str]:
    """``model=stylegan`` and the networks' sizes as Hydra overrides (what fine-tuning re-applies).

    The resolution, image channels and classes stay the data's (``${data.*}``): a fine-tuning run
    on data of another size is refused (``train.py``), not silently resized. ``ema_rampup=null``:
    StyleGAN2-ADA's ``--resume`` disables the EMA ramp-up, so that G_ema starts as the imported
    average instead of following G closely for the first images."""
    g, d = imported.generator, imported.discriminator
    return [
        "model=stylegan",
        *(f"model.generator.{k}={_value(g[k])}" for k in G_KEYS),
        *(f"model.discriminator.{k}={_value(d[k])}" for k in D_KEYS),
        # not in conf/model/stylegan.yaml (None there: the channels at 4x4)
        *([f"++model.discriminator.cmap_dim={d['cmap_dim']}"] if d.get("cmap_dim") is not None else []),
        "model.ema_rampup=null",
    ]


def stored_root(root: str | None) -> str:
    """The dataset folder the file names, for the stored config; a path with ``$`` is dropped
    (``UNKNOWN_ROOT``): OmegaConf would resolve ``${...}`` in it, so a file could read environment
    variables into the checkpoint or create folders through the lab's resolvers."""
    if not root or "$" in root:
        return UNKNOWN_ROOT
    return root


def _quoted(text: str) -> str:
    """``text`` as a quoted Hydra override value."""
    if "'" not in text:
        return f"'{text}'"
    if '"' not in text:
        return f'"{text}"'
    raise ImportRefused(f"the dataset path {text!r} holds both quote characters: give data.root=... yourself")


def _key(override: str) -> str:
    return override.split("=", 1)[0].lstrip("+~")


def data_overrides(imported: Imported, user: Sequence[str]) -> list[str]:
    """The data of the stored config: the user's overrides, ``data=image_folder`` with the file's
    dataset folder when they choose none, and the networks' resolution, channels and conditioning
    (an explicit different value is refused)."""
    g = imported.generator
    given = {_key(o): o.split("=", 1)[1] if "=" in o else "" for o in user}
    for key in given:
        if key in NETWORK_KEYS or key.startswith(tuple(f"{k}." for k in NETWORK_KEYS[1:])):
            raise ImportRefused(f"{key} cannot be overridden: the imported file sets the networks")
    wanted = {
        "data.resolution": str(g["resolution"]),
        "data.channels": str(g["channels"]),
        "data.conditional": _value(g["num_classes"] > 0),
    }
    for key, value in wanted.items():
        if key in given and given[key].lower() != value:
            raise ImportRefused(f"{key}={given[key]} does not match the imported networks ({key}={value})")
    out = list(user)
    if "data" not in given:
        out.append("data=image_folder")
        if "data.root" not in given:
            out.append(f"data.root={_quoted(stored_root(imported.dataset.get('root')))}")
        if "data.hflip" not in given and "hflip" in imported.dataset:
            out.append(f"data.hflip={_value(imported.dataset['hflip'])}")
    out += [f"{k}={v}" for k, v in wanted.items() if k not in given]
    return out


def compose(overrides: list[str], output_dir: Path, num_classes: int) -> DictConfig:
    """``conf/train.yaml`` composed with ``overrides`` as ``train.py`` would, ``data.num_classes`` set
    (as train.py sets it from the dataset), validated (``gan_lab.config.validate``) and resolved,
    without the ``hydra`` node (Hydra's runtime is set meanwhile, so that ``${hydra:...}`` works;
    Hydra's global state is restored afterwards: the importer may run inside a Hydra app)."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.hydra_config import HydraConfig
    from hydra.errors import HydraException
    from hydra.initialize import get_gh_backup, restore_gh_from_backup
    from omegaconf.errors import OmegaConfBaseException

    from gan_lab.config import validate
    from gan_lab.train import CONFIG_DIR

    backup, hydra_cfg = get_gh_backup(), HydraConfig.instance().cfg
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3", job_name="import"):
            cfg = hydra_compose(config_name="train", overrides=overrides, return_hydra_config=True)
        with open_dict(cfg):
            cfg.hydra.runtime.output_dir = str(output_dir)
        HydraConfig.instance().set_config(cfg)
        with open_dict(cfg):
            del cfg["hydra"]
            cfg.data.num_classes = num_classes
        validate(cfg)
        return OmegaConf.create(OmegaConf.to_container(cfg, resolve=True))
    except (HydraException, OmegaConfBaseException) as e:
        raise ImportRefused(f"the overrides do not compose ({str(e).splitlines()[0]})") from None
    finally:
        restore_gh_from_backup(backup)
        HydraConfig.instance().cfg = hydra_cfg


# ---------------------------------------------------------------------------- the checkpoint
def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def make_checkpoint(
    imported: Imported, user_overrides: Sequence[str], out: Path
) -> tuple[dict[str, Any], dict[str, int]]:
    """The lab checkpoint of ``imported`` (see the module docstring), not yet written, and the
    parameter counts of its G and D."""
    import lightning.pytorch as pl

    from gan_lab.builders import build_module
    from gan_lab.checkpoints import FORMAT, KEY, WEIGHTS_ONLY

    what = f"SRC={imported.path}"
    stored = model_overrides(imported)
    overrides = [*stored, *data_overrides(imported, user_overrides)]
    cfg = compose(overrides, out.parent.absolute(), imported.generator["num_classes"])
    torch.manual_seed(int(cfg.seed))  # a fresh D (--fresh-d) is reproducible
    module = build_module(cfg)
    networks = build_networks(imported, what)
    for name in ("G", "G_ema") if imported.D is None else ("G", "D", "G_ema"):
        getattr(module, name).load_state_dict(networks[name].state_dict(), strict=True)
    g = imported.generator
    marker = {
        "source": imported.source,
        "file": imported.path.name,
        "sha256": sha256(imported.path),
        "resolution": g["resolution"],
        "channels": g["channels"],
        "num_classes": g["num_classes"],
        "w_avg": imported.w_avg,
        "notes": list(imported.notes),
    }
    counts = {name: sum(p.numel() for p in getattr(module, name).parameters()) for name in ("G", "D")}
    return {
        "epoch": 0,
        "global_step": 0,
        "images_seen": 0,
        "pytorch-lightning_version": pl.__version__,
        "state_dict": {k: v.detach().clone().contiguous() for k, v in module.state_dict().items()},
        KEY: {
            "format": FORMAT,
            "module": type(module).__name__,
            "overrides": stored,
            "config": OmegaConf.to_container(cfg, resolve=True),
            "wandb_id": None,
            WEIGHTS_ONLY: marker,
        },
    }, counts


def import_stylegan2(
    src: str | Path,
    out: str | Path,
    overrides: Sequence[str] = (),
    fresh_d: bool = False,
    force: bool = False,
) -> dict[str, Any]:
    """Read ``src`` (stylegan2-ada-pytorch pickle or rosinality checkpoint), write the lab checkpoint
    ``out``; returns what was written (the ``weights_only`` marker, sizes and parameter counts)."""
    out = Path(out).expanduser()
    if out.exists() and not force:
        raise ImportRefused(f"OUT={out} exists (add --force to replace it)")
    if out.suffix != ".ckpt":
        raise ImportRefused(f"OUT={out} should end in .ckpt (it is a lab checkpoint)")
    if out.parent != Path("") and not out.parent.is_dir():
        raise ImportRefused(f"OUT={out}: the folder {out.parent} does not exist")
    imported = read_source(src, fresh_d=fresh_d)
    ckpt, counts = make_checkpoint(imported, overrides, out)
    tmp = out.with_name(out.name + ".tmp")
    torch.save(ckpt, tmp)
    os.replace(tmp, out)
    from gan_lab.checkpoints import KEY, WEIGHTS_ONLY

    return {
        **ckpt[KEY][WEIGHTS_ONLY],
        "generator": imported.generator,
        "discriminator": imported.discriminator,
        "out": str(out),
        "parameters": counts,
        "data": ckpt[KEY]["config"]["data"],
    }
