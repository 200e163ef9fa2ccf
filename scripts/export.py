"""``python scripts/export.py ckpt=PATH [format=torchscript|export|state_dict] [out=FILE] [psi=0.7]``:
a checkpoint's EMA generator as one file that plain PyTorch loads, without the lab installed.

* ``format=torchscript`` (default): ``torch.jit.load(FILE)`` runs ``G(z)`` / ``G(z, c)``;
* ``format=export``: ``torch.export.load(FILE).module()`` runs the same (``out`` ends in ``.pt2``);
* ``format=state_dict``: ``torch.load(FILE, weights_only=True)`` gives ``{"state_dict": tensors,
  "metadata": dict}``.

``psi``/``cutoff`` (StyleGAN truncation) and ``noise`` (``const`` or ``none``) are baked into the
two runnable formats. The options are those of ``conf/export.yaml`` (checked before the checkpoint
is loaded: a bad value is one line and exit status 2); the work is ``gan_lab.api``'s
``export_generator``, which loads the written file back and checks that it reproduces the lab's
images. The path of the file is printed, and its metadata logged.
"""

from __future__ import annotations

import logging
from pathlib import Path

from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from gan_lab.api import SUFFIXES, check_out, export_generator, load_generator
from gan_lab.config import validate_export
from gan_lab.evaluate import pick_device
from gan_lab.utils.cli import tool_main

log = logging.getLogger("gan_lab.export")


def output_path(cfg: DictConfig) -> Path:
    """``out``, or ``<run folder>/<checkpoint name>-generator.<suffix>`` (``last-generator.pt``)."""
    if cfg.out is not None:
        return Path(str(cfg.out)).expanduser()
    folder = Path(HydraConfig.get().runtime.output_dir) if HydraConfig.initialized() else Path(".")
    return folder / f"{Path(str(cfg.ckpt)).stem}-generator{SUFFIXES[cfg.format]}"


def export(cfg: DictConfig) -> Path:
    validate_export(cfg)  # every option, before the checkpoint is loaded
    out = output_path(cfg)
    check_out(out, cfg.format)
    generator = load_generator(cfg.ckpt, pick_device(cfg.device), key="ckpt")
    path = export_generator(generator, out, cfg.format, psi=cfg.psi, cutoff=cfg.cutoff, noise=cfg.noise)
    what = f"{generator.kind} {generator.resolution}x{generator.resolution}x{generator.channels}"
    classes = f", {generator.num_classes} classes" if generator.conditional else ""
    baked = f", psi={cfg.psi}, noise={cfg.noise}" if cfg.format != "state_dict" and generator.stylegan else ""
    log.info("%s: %s (%s%s%s), checked by loading it back", cfg.format, path, what, classes, baked)
    print(path)
    return path


main = tool_main("export", export, log)


if __name__ == "__main__":
    main()
