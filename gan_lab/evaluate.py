"""``python evaluate.py ckpt=PATH``: FID and KID of any lab checkpoint (DCGAN or StyleGAN).

The model is rebuilt from the config stored in the checkpoint and loaded with ``weights_only``;
the dataset is the one it was trained on (``data_root=DIR`` if it moved); the metrics follow
``conf/metrics/`` (``metrics.features=inception metrics.num_fake=50000 ...``). The scores are
printed and written with their protocol to ``scores.json`` in the evaluation's folder.

A conditional checkpoint is scored as in training: fakes asked for labels balanced to the real
label distribution, ``class_acc`` with the domain features, and the intra-class FID with
``metrics.per_class=true`` (``gan_lab/metrics/evaluator.py``).

``metrics.extra=[is,pr,ppl]`` adds the Inception Score, precision/recall and the perceptual path
length (``python evaluate.py ckpt=... metrics.extra=[is,pr,ppl] metrics.ppl_num_samples=10000``),
in ``scores.json`` with their protocol; a request the model cannot answer (PPL in w space of a
DCGAN) is refused before the real features are computed.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import torch
from hydra.core.hydra_config import HydraConfig
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from gan_lab.checkpoints import load_model
from gan_lab.config import validate_evaluate
from gan_lab.errors import ConfigError
from gan_lab.resolvers import register as register_resolvers
from gan_lab.utils.cli import tool_main

log = logging.getLogger("gan_lab.evaluate")
register_resolvers()


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"device={name} but no CUDA device is available")
    return torch.device(name)


def evaluate(cfg: DictConfig) -> dict[str, Any]:
    validate_evaluate(cfg)  # every option, before the checkpoint is loaded
    module, info = load_model(cfg.ckpt)
    if not cfg.get("metrics"):
        raise ConfigError("metrics=none: nothing to evaluate")
    evaluator = instantiate(cfg.metrics).evaluator
    evaluator.check_module(module)  # what the model cannot be scored with, before any work
    data_cfg = OmegaConf.create(info["config"]["data"])
    if cfg.get("data_root"):
        data_cfg.root = cfg.data_root
    if "cache_dir" in data_cfg:  # where this machine keeps its caches, not where the checkpoint says
        data_cfg.cache_dir = f"{cfg.paths.cache_dir}/datasets"
    datamodule = instantiate(data_cfg, _convert_="all")
    datamodule.prepare_data()
    datamodule.setup("fit")
    device = pick_device(cfg.device)
    module.to(device)
    evaluator.setup(datamodule, device)
    scores = evaluator.score(module)
    record = {
        "ckpt": str(Path(cfg.ckpt).resolve()),
        "iteration": info["iteration"],
        "kimg": info["kimg"],
        **scores,
    }
    out = Path(HydraConfig.get().runtime.output_dir) if HydraConfig.initialized() else Path(".")
    (out / "scores.json").write_text(json.dumps(record, indent=2))
    name = evaluator.feature_name
    floor = record.get("floor_fid")
    print(f"checkpoint   {record['ckpt']} (iteration {record['iteration']}, {record['kimg']:.1f} kimg)")
    print(
        f"fid_{name:<9} {record[f'fid_{name}']:.4f}"
        + (f"   (floor, test vs train: {floor:.4f})" if floor else "")
    )
    print(f"kid_{name:<9} {record[f'kid_{name}']:.6f} +- {record[f'kid_{name}_std']:.6f}")
    intra = record.get(f"fid_{name}_intra")
    if intra is not None:
        per_class = " ".join("-" if v is None else f"{v:.2f}" for v in record[f"fid_{name}_class"])
        print(f"intra-FID    {intra:.4f}   (per class: {per_class})")
    if record.get("class_acc") is not None:
        real = record.get("real_class_acc")
        reference = f"   (the classifier on the reals: {real:.4f})" if real is not None else ""
        print(f"class_acc    {record['class_acc']:.4f}{reference}")
    if record.get("is") is not None:
        print(
            f"is           {record['is']:.4f} +- {record['is_std']:.4f}   "
            f"({record['is_splits']} splits, {record['is_logits']})"
        )
    if record.get("precision") is not None:
        print(
            f"precision    {record['precision']:.4f}   recall {record['recall']:.4f}   "
            f"(k={record['pr_k']}, {record['pr_features']} features)"
        )
    if record.get("ppl") is not None:
        print(
            f"ppl          {record['ppl']:.4f}   ({record['ppl_pairs']} pairs, {record['ppl_space']} space, "
            f"sampling {record['ppl_sampling']}, epsilon {record['ppl_epsilon']:g}, "
            f"{record['ppl_distance'].split(':')[0]} distance, {record['ppl_seconds']:.1f} s)"
        )
    if record.get("conditional"):
        print(f"labels       {record['num_classes']} classes, {record['fake_labels']}")
    print(
        f"protocol     {record['num_fake']} fakes vs {record['num_real']} {record['split']} reals, "
        f"{record['resolution']} px, {record['resize']}, weights sha256 {record['weights_sha256'][:12]}"
    )
    print(f"written to   {out / 'scores.json'} ({record['seconds']:.1f} s)")
    return record


def objective(cfg: DictConfig) -> float | None:
    """The checkpoint's FID (None without one): what a sweeper over ``evaluate.py`` minimises."""
    record = evaluate(cfg)
    return next((v for k, v in record.items() if k.startswith("fid_")), None)


main = tool_main("evaluate", objective, log)


if __name__ == "__main__":
    main()
