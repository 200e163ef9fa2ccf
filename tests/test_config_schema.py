"""One validation layer: every user-facing key of every group has a typed schema field, and a bad
value given to any of them is one ``ConfigError`` line naming the key (in-process, fast)."""

from __future__ import annotations

import copy
import dataclasses
import typing
from pathlib import Path
from typing import Any

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.utils import get_class, instantiate
from omegaconf import DictConfig, OmegaConf, open_dict

from gan_lab.config import validate, validate_evaluate, validate_generate
from gan_lab.config.guards import one_line_build_errors
from gan_lab.config.schema import (
    ENTRIES,
    GROUPS,
    NODES,
    EvaluateConfig,
    GenerateConfig,
    PathsConfig,
    TrainTopConfig,
    target_of,
)
from gan_lab.errors import ConfigError
from gan_lab.train import CONFIG_DIR

CONF = Path(CONFIG_DIR)
# the option that selects each group node; the base config has the default of the others
OPTION_OVERRIDES: dict[str, list[str]] = {
    **{f"data/{o}": [f"data={o}"] for o in GROUPS["data"]},
    **{f"model/{o}": [f"model={o}"] for o in GROUPS["model"]},
    **{f"loss/{o}": [f"loss={o}"] for o in GROUPS["loss"]},
    **{f"augment/{o}": [f"augment={o}"] for o in GROUPS["augment"]},
    **{f"trainer/{o}": [f"trainer={o}"] for o in ("default", "cpu", "gpu", "ddp")},
    "metrics/default": ["metrics=default"],
    "callbacks/default": [],
    "logger/wandb": ["logger=wandb"],
    "logger/csv": ["logger=csv"],
    "logger/tensorboard": ["logger=tensorboard"],
    # the other optimizers the schema lists, swapped in from the command line
    "optimizer/adamw": ["model.optimizer_g._target_=torch.optim.AdamW"],
    "optimizer/sgd": ["model.optimizer_g._target_=torch.optim.SGD", "~model.optimizer_g.betas"],
    "optimizer/rmsprop": ["model.optimizer_g._target_=torch.optim.RMSprop", "~model.optimizer_g.betas"],
    "top": [],
}
_COMPOSED: dict[tuple[str, ...], DictConfig] = {}


def composed(*overrides: str, config: str = "train") -> DictConfig:
    """The composed config (with its hydra node), composed once per set of overrides."""
    key = (config, *overrides)
    if key not in _COMPOSED:
        GlobalHydra.instance().clear()
        initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3", job_name=config)
        root = ["data.root=/data"] if config == "train" else ["ckpt=/x.ckpt"]
        cfg = compose(config_name=config, overrides=[*root, *overrides], return_hydra_config=True)
        with open_dict(cfg):
            cfg.hydra.runtime.output_dir = "/tmp/run"
            cfg.hydra.job.num = 0
        _COMPOSED[key] = cfg
    return _COMPOSED[key]


def task_config(full: DictConfig, setting: str | None = None) -> DictConfig:
    """The task's view of ``full`` (no hydra node) with ``key=value`` applied as Hydra parses it."""
    HydraConfig.instance().set_config(full)
    cfg = copy.deepcopy(full)
    with open_dict(cfg):
        del cfg["hydra"]
    if setting is not None:
        override = OverridesParser.create().parse_override(setting)
        OmegaConf.update(cfg, override.key_or_group, override.value(), merge=False, force_add=True)
    return cfg


def bad_type_value(tp: Any) -> str | None:
    """A value of the wrong type for a field of type ``tp`` (None: any type is allowed)."""
    args = [a for a in typing.get_args(tp) if a is not type(None)]
    tp = args[0] if typing.get_origin(tp) in (typing.Union, __import__("types").UnionType) else tp
    if typing.get_origin(tp) is list:
        return "0.5"
    return {int: "0.5", float: "abc", bool: "maybe", str: "[1,2]", Any: "{a:1}"}.get(tp)


def _fields(schema: type) -> dict[str, Any]:
    return typing.get_type_hints(schema)


def _node_keys(node: DictConfig, prefix: str) -> list[tuple[str, type]]:
    """(full key, schema) of every key of a group node, entries included."""
    return [(f"{prefix}{k}", v) for k, v in node.items()]


def _table_schema(table: dict[str, type], node: DictConfig) -> type:
    return next(s for s in table.values() if target_of(s) == node._target_)


def _keys_of(option: str, prefix: str, node: DictConfig, schema: type) -> list[tuple[str, str, type]]:
    """(option, full key, type) of the keys of ``node``, descending into nodes of a table
    (``model.generator``, ``model.optimizer_g``) by their own schemas."""
    cases = []
    for k in node:
        if k == "_target_":
            continue
        table = schema.__dataclass_fields__[k].metadata.get("nodes")
        if table is not None:
            cases += _keys_of(option, f"{prefix}{k}.", node[k], _table_schema(table, node[k]))
        else:
            cases.append((option, f"{prefix}{k}", _fields(schema)[k]))
    return cases


def schema_cases() -> list[tuple[str, str, type]]:
    """(option, full key, type) of every user-facing key of every group option."""
    cases = []
    for option in OPTION_OVERRIDES:
        cfg = composed(*OPTION_OVERRIDES[option])
        group = option.split("/")[0].replace("optimizer", "model")
        if group == "top":
            for key in cfg:
                if key not in (*GROUPS, *ENTRIES, "paths", "hydra"):
                    cases.append((option, key, _fields(TrainTopConfig)[key]))
            cases += [("top", f"paths.{k}", _fields(PathsConfig)[k]) for k in cfg.paths]
        elif group in ENTRIES:
            for name, entry in cfg[group].items():
                schema = ENTRIES[group][name]
                cases += [
                    (option, f"{group}.{name}.{k}", _fields(schema)[k]) for k in entry if k != "_target_"
                ]
        else:
            schema = next(
                s
                for s in GROUPS[group].values()
                if s.__dataclass_fields__["_target_"].default == cfg[group]._target_
            )
            cases += _keys_of(option, f"{group}.", cfg[group], schema)
    return cases


# ---------------------------------------------------------------------------- every key is known
@pytest.mark.parametrize("yaml", sorted(str(p.relative_to(CONF)) for p in CONF.glob("*/*.yaml")))
def test_every_option_file_is_known_to_the_schema(yaml: str) -> None:
    group, option = yaml.removesuffix(".yaml").split("/")
    # debug/ options set keys of the other groups (checked by tests/test_config.py); experiment too
    if group in ("experiment", "hparams_search", "hydra", "paths", "debug") or option == "none":
        return
    assert f"{group}/{option}" in OPTION_OVERRIDES, (
        f"conf/{yaml} has no schema: add it to gan_lab/config/schema.py"
    )


@pytest.mark.parametrize("option", sorted(OPTION_OVERRIDES))
def test_every_user_facing_key_has_a_schema_field(option: str) -> None:
    """Fails when a key is added to conf/ without its schema entry (typed, with its rule)."""
    cfg = composed(*OPTION_OVERRIDES[option])
    group = option.split("/")[0]
    if group == "top":
        top = set(cfg) - {*GROUPS, *ENTRIES, "paths", "hydra"}
        assert top <= set(_fields(TrainTopConfig)), top - set(_fields(TrainTopConfig))
        assert set(cfg.paths) <= set(_fields(PathsConfig))
        return
    if group in ENTRIES:
        for name, entry in cfg[group].items():
            assert name in ENTRIES[group], f"{group}.{name} has no schema"
            schema = ENTRIES[group][name]
            assert entry._target_ == schema.__dataclass_fields__["_target_"].default
            assert set(entry) <= set(_fields(schema)), f"{group}.{name}: {set(entry) - set(_fields(schema))}"
        return
    if group == "optimizer":
        group = "model"
    targets = {s.__dataclass_fields__["_target_"].default: s for s in GROUPS[group].values()}
    schema = targets[cfg[group]._target_]
    missing = set(cfg[group]) - set(_fields(schema))
    assert not missing, f"{group} keys without a schema field: {missing}"
    for key, f in schema.__dataclass_fields__.items():  # nodes inside: by their own schemas
        if f.metadata.get("nodes") is not None:
            inner = _table_schema(f.metadata["nodes"], cfg[group][key])
            extra = set(cfg[group][key]) - set(_fields(inner))
            assert not extra, f"{group}.{key} keys without a schema field: {extra}"


@pytest.mark.parametrize(("name", "schema"), [("generate", GenerateConfig), ("evaluate", EvaluateConfig)])
def test_tool_configs_have_schemas(name: str, schema: type) -> None:
    cfg = composed(config=name)
    assert set(cfg) - {"hydra"} <= set(_fields(schema)) | set(getattr(schema, "KEYS", {}))
    validate = validate_generate if name == "generate" else validate_evaluate
    validate(task_config(cfg))


def test_every_group_option_has_a_schema() -> None:
    """Each conf/<group>/<option>.yaml of a checked group is checked by a schema of that name."""
    for group in ("model", "data", "loss", "augment", "metrics"):
        options = {p.stem for p in Path(CONFIG_DIR, group).glob("*.yaml")} - {"none"}
        assert options == set(GROUPS[group]), group
    loggers = {p.stem for p in Path(CONFIG_DIR, "logger").glob("*.yaml")} - {"none"}
    assert loggers == set(ENTRIES["logger"])


def test_split_choices_match_the_datamodules() -> None:
    for schema in GROUPS["data"].values():
        datamodule = get_class(schema.__dataclass_fields__["_target_"].default)
        assert tuple(schema.SPLITS) == tuple(datamodule.splits), datamodule


@pytest.mark.parametrize("option", sorted(OPTION_OVERRIDES))
def test_defaults_of_every_option_validate(option: str) -> None:
    validate(task_config(composed(*OPTION_OVERRIDES[option])))


# ---------------------------------------------------------------------------- wrong types
WRONG_TYPE = [(o, k, bad_type_value(t)) for o, k, t in schema_cases() if bad_type_value(t) is not None]


def test_every_key_gets_a_wrong_type_case() -> None:
    untested = [(o, k) for o, k, t in schema_cases() if bad_type_value(t) is None]
    assert not untested


@pytest.mark.parametrize(("option", "key", "value"), WRONG_TYPE, ids=[f"{o}:{k}" for o, k, _ in WRONG_TYPE])
def test_a_wrong_type_is_one_line_naming_the_key(option: str, key: str, value: str) -> None:
    cfg = task_config(composed(*OPTION_OVERRIDES[option]), f"{key}={value}")
    with pytest.raises(ConfigError) as err:
        validate(cfg)
    message = str(err.value)
    assert message.startswith(f"{key}=") or f" {key}=" in message, message
    assert "\n" not in message


# ---------------------------------------------------------------------------- out of range
OUT_OF_RANGE = [
    ("top", "seed=-1"),
    ("top", "seed=4294967296"),
    ("top", "run_name=a/b"),
    ("data/fashion_mnist", "data.resolution=48"),
    ("data/fashion_mnist", "data.channels=2"),
    ("data/fashion_mnist", "data.batch_size=0"),
    ("data/fashion_mnist", "data.split=valid"),
    ("data/fashion_mnist", "data.seed=-1"),
    ("data/mnist", "data.split=nope"),
    ("data/cifar10", "data.split=valid"),
    ("data/celeba", "data.split=nope"),
    ("data/celeba", "data.crop=0"),
    ("data/celeba", "data.in_memory=maybe"),
    ("data/celeba", "data.memory_budget_gb=-1"),
    ("data/celeba", "data.num_workers=-1"),
    ("data/celeba", "data.cache_verify=md5"),
    ("data/image_folder", "data.split=test"),
    ("data/fashion_mnist", "data.num_classes=-1"),
    ("data/fashion_mnist", "data.batches_per_iteration=0"),
    ("model/dcgan", "model.generator.resolution=48"),
    ("model/dcgan", "model.generator.channels=4"),
    ("model/dcgan", "model.generator.num_classes=-1"),
    ("model/dcgan", "model.generator.z_dim=0"),
    ("model/dcgan", "model.generator.width=0"),
    ("model/dcgan", "model.generator.max_width=0"),
    ("model/dcgan", "model.generator.embed_dim=0"),
    ("model/dcgan", "model.discriminator.resolution=12"),
    ("model/dcgan", "model.discriminator.channels=2"),
    ("model/dcgan", "model.discriminator.num_classes=-3"),
    ("model/dcgan", "model.discriminator.width=-1"),
    ("model/dcgan", "model.discriminator.max_width=0"),
    ("model/dcgan", "model.discriminator.norm=layer"),
    ("model/dcgan", "model.generator._target_=os.system"),
    ("model/dcgan", "model.optimizer_g._target_=builtins.open"),
    ("model/dcgan", "model.optimizer_g._partial_=false"),
    ("model/dcgan", "model.optimizer_g.lr=0"),
    ("model/dcgan", "model.optimizer_d.lr=-1e-4"),
    ("model/dcgan", "model.optimizer_d.betas=[0.5,1.5]"),
    ("model/dcgan", "model.optimizer_d.eps=0"),
    ("model/dcgan", "+model.optimizer_d.weight_decay=-1"),
    ("optimizer/adamw", "model.optimizer_g.weight_decay=-0.1"),
    ("optimizer/sgd", "+model.optimizer_g.momentum=1"),
    ("optimizer/rmsprop", "+model.optimizer_g.alpha=-1"),
    ("model/dcgan", "model.d_steps=0"),
    ("model/dcgan", "model.ema_kimg=-1"),
    ("model/dcgan", "model.ema_rampup=0"),
    ("model/dcgan", "model.r1_gamma=-1"),
    ("model/dcgan", "model.r2_gamma=-1"),
    ("model/dcgan", "model.d_reg_interval=0"),
    ("model/dcgan", "model.num_samples=0"),
    ("model/dcgan", "model.seed=-2"),
    ("model/stylegan", "model.generator.w_dim=0"),
    ("model/stylegan", "model.generator.map_layers=0"),
    ("model/stylegan", "model.generator.channel_base=0"),
    ("model/stylegan", "model.generator.channel_max=0"),
    ("model/stylegan", "model.generator.conv_clamp=0"),
    ("model/stylegan", "model.discriminator.channel_base=0"),
    ("model/stylegan", "model.discriminator.channel_max=0"),
    ("model/stylegan", "model.discriminator.conv_clamp=-1"),
    ("model/stylegan", "model.discriminator.mbstd_group=0"),
    ("model/stylegan", "model.discriminator.mbstd_channels=-1"),
    ("model/stylegan", "+model.discriminator.cmap_dim=0"),
    ("model/stylegan", "model.discriminator.architecture=dense"),
    ("model/stylegan", "model.style_mixing_prob=1.5"),
    ("model/stylegan", "model.pl_weight=-1"),
    ("model/stylegan", "model.pl_interval=0"),
    ("model/stylegan", "model.pl_decay=0"),
    ("model/stylegan", "model.pl_batch_shrink=0"),
    ("loss/wgan_gp", "loss.gp_lambda=-1"),
    ("augment/diffaug", "augment.policy=[color,blur]"),
    ("augment/ada", "augment.target=1"),
    ("augment/ada", "augment.interval=0"),
    ("augment/ada", "augment.kimg=0"),
    ("augment/ada", "augment.p=2"),
    ("augment/ada", "+augment.translate_max=-1"),
    ("augment/ada", "+augment.scale_std=-1"),
    ("augment/ada", "+augment.brightness_std=-1"),
    ("augment/ada", "+augment.contrast_std=-1"),
    ("augment/ada", "+augment.saturation_std=-1"),
    ("augment/ada", "augment.xflip=-1"),
    ("augment/ada", "augment.rotate90=-1"),
    ("augment/ada", "augment.translate=-1"),
    ("augment/ada", "augment.scale=-1"),
    ("augment/ada", "augment.rotate=-1"),
    ("augment/ada", "augment.aniso=-1"),
    ("augment/ada", "augment.xfrac=-1"),
    ("augment/ada", "augment.brightness=-1"),
    ("augment/ada", "augment.contrast=-1"),
    ("augment/ada", "augment.lumaflip=-1"),
    ("augment/ada", "augment.hue=-1"),
    ("augment/ada", "augment.saturation=-1"),
    ("augment/ada", "augment.translate_max=1.5"),
    ("augment/ada", "augment.rotate_max=2"),
    ("augment/ada", "augment.aniso_std=-1"),
    ("augment/ada", "augment.xfrac_std=-0.1"),
    ("augment/ada", "augment.hue_max=-0.5"),
    ("augment/ada", "augment.imgfilter_bands=[1,1,1]"),
    ("augment/ada", "augment.imgfilter_bands=[1,-1,1,1]"),
    ("augment/ada", "augment.imgfilter_std=-1"),
    ("augment/ada", "augment.noise_std=-1"),
    ("augment/ada", "augment.cutout_size=2"),
    ("trainer/default", "trainer.accelerator=quantum"),
    ("trainer/default", "trainer.devices=0"),
    ("trainer/default", "+trainer.num_nodes=0"),
    ("trainer/default", "trainer.precision=8"),
    ("trainer/default", "trainer.precision=64-true"),  # the loop draws float32 latents
    ("trainer/default", "trainer.precision=bf16-true"),
    ("trainer/default", "trainer.max_steps=0"),
    ("trainer/default", "trainer.max_epochs=-2"),
    ("trainer/default", "trainer.log_every_n_steps=0"),
    ("trainer/default", "trainer.num_sanity_val_steps=-2"),
    ("trainer/default", "trainer.deterministic=sometimes"),
    ("trainer/default", "trainer.use_distributed_sampler=true"),
    ("callbacks/default", "callbacks.checkpoint.every_n_train_steps=0"),
    ("callbacks/default", "callbacks.checkpoint.save_last=sometimes"),
    ("callbacks/default", "callbacks.checkpoint.mode=middle"),
    ("callbacks/default", "callbacks.checkpoint.save_top_k=-2"),
    ("callbacks/default", "callbacks.samples.every_n_iters=0"),
    ("callbacks/default", "+callbacks.samples.nrow=0"),
    ("callbacks/default", "callbacks.progress.refresh_rate=-1"),
    ("callbacks/default", "callbacks.iteration_log.every_n_iters=0"),
    ("callbacks/default", "callbacks.divergence.check_every_n_iters=0"),
    ("callbacks/default", "callbacks.replica_check.every_n_iters=-1"),
    ("callbacks/default", "+callbacks.replica_check.rtol=-1"),
    ("callbacks/default", "callbacks.model_summary.max_depth=-2"),
    ("metrics/default", "metrics.features=nope"),
    ("metrics/default", "metrics.every_n_iters=0"),
    ("metrics/default", "metrics.num_real=1"),
    ("metrics/default", "metrics.num_fake=0"),
    ("metrics/default", "metrics.batch_size=1"),
    ("metrics/default", "metrics.split=valid"),
    ("metrics/default", "metrics.monitor=is"),
    ("metrics/default", "metrics.kid_subsets=0"),
    ("metrics/default", "metrics.kid_subset_size=1"),
    ("metrics/default", "metrics.seed=-1"),
    ("metrics/default", "metrics.per_class=maybe"),
    ("metrics/default", "metrics.extra=[is,fid]"),
    ("metrics/default", "metrics.is_splits=0"),
    ("metrics/default", "metrics.pr_k=0"),
    ("metrics/default", "metrics.ppl_num_samples=1"),
    ("metrics/default", "metrics.ppl_space=y"),
    ("metrics/default", "metrics.ppl_sampling=middle"),
    ("metrics/default", "metrics.ppl_epsilon=0"),
    ("metrics/default", "metrics.ppl_crop=maybe"),
    ("metrics/default", "metrics.ppl_distance=l2"),
    ("logger/wandb", "logger.wandb.log_model=sometimes"),
]


def test_every_rule_has_an_out_of_range_case() -> None:
    """Each field with a range or choice rule appears in OUT_OF_RANGE (types aside)."""
    covered = {s.split("=")[0].lstrip("+") for _, s in OUT_OF_RANGE}
    type_only = {"sample_psi"}  # any number is allowed: only its type is checked
    missing = []

    def check(schema: type, prefixes: list[str]) -> None:
        for f in dataclasses.fields(schema):
            keys = [f"{prefix}{f.name}" for prefix in prefixes]
            if f.metadata.get("rule") and f.name not in ("_target_", *type_only) and not covered & set(keys):
                missing.append(keys[0])

    for group, options in {**GROUPS, **ENTRIES}.items():
        for name, schema in options.items():
            check(schema, [f"{group}." if group in GROUPS else f"{group}.{name}."])
    roles = {
        "networks": ["model.generator.", "model.discriminator."],
        "optimizers": ["model.optimizer_g.", "model.optimizer_d."],
    }
    for table, schemas in NODES.items():
        for schema in schemas.values():
            check(schema, roles[table])
    assert not missing


@pytest.mark.parametrize(("option", "setting"), OUT_OF_RANGE, ids=[s for _, s in OUT_OF_RANGE])
def test_an_out_of_range_value_is_one_line_naming_the_key(option: str, setting: str) -> None:
    cfg = task_config(composed(*OPTION_OVERRIDES[option]), setting)
    with pytest.raises(ConfigError) as err:
        validate(cfg)
    message = str(err.value)
    assert setting.split("=")[0].lstrip("+") in message and "\n" not in message


def test_a_key_added_with_plus_is_refused(compose_cfg) -> None:
    with pytest.raises(ConfigError, match=r"^model.lr_gg is not a setting of model=dcgan \(remove it: "):
        validate(compose_cfg("+model.lr_gg=1"))
    with pytest.raises(ConfigError, match=r"^model.optimizer_d.betas is not a setting of torch.optim.SGD"):
        validate(compose_cfg("model.optimizer_d._target_=torch.optim.SGD"))


def test_every_key_a_new_optimizer_lacks_is_named_in_one_line(compose_cfg) -> None:
    """StyleGAN's Adam has betas and fused; RMSprop has neither: one refusal names both and how to
    remove them (not one key per run)."""
    to_rmsprop = ("model=stylegan", "model.optimizer_g._target_=torch.optim.RMSprop")
    with pytest.raises(ConfigError) as err:
        validate(compose_cfg(*to_rmsprop))
    assert str(err.value) == (
        "model.optimizer_g.betas, model.optimizer_g.fused are not settings of torch.optim.RMSprop "
        "(remove them: ~model.optimizer_g.betas ~model.optimizer_g.fused)"
    )
    validate(compose_cfg(*to_rmsprop, "~model.optimizer_g.betas", "~model.optimizer_g.fused"))


def test_an_unknown_trainer_argument_is_refused_but_a_lightning_one_passes(compose_cfg) -> None:
    with pytest.raises(ConfigError, match=r"trainer\.bogus is not a setting"):
        validate(compose_cfg("+trainer.bogus=1"))
    validate(compose_cfg("+trainer.benchmark=true"))


def test_interpolated_values_are_checked_after_resolution(compose_cfg) -> None:
    """model.r1_gamma is computed by a resolver from data and trainer settings."""
    cfg = compose_cfg("model=stylegan", "data.batch_size=16")
    validate(cfg)
    with pytest.raises(ConfigError, match=r"^data.batch_size='x' is invalid"):
        validate(compose_cfg("model=stylegan", "data.batch_size=x"))


# ---------------------------------------------------------------------------- generate, evaluate
@pytest.mark.parametrize(
    "setting",
    [
        "mode=nope",
        "seed=-1",
        "num=0",
        "nrow=0",
        "psi=abc",
        "psi=nan",
        "psi=inf",
        "cutoff=-1",
        "noise=loud",
        "keyframes=1",
        "steps=0",
        "fps=0",
        "rows=0",
        "cols=0",
        "mix=all",
        "device=gpu",
        "ckpt=[1,2]",
    ],
)
def test_generate_options_are_checked_before_loading(setting: str) -> None:
    with pytest.raises(ConfigError) as err:
        validate_generate(task_config(composed(config="generate"), setting))
    assert setting.split("=")[0] in str(err.value) and "\n" not in str(err.value)


@pytest.mark.parametrize(
    "setting", ["device=tpu", "metrics.num_fake=0", "metrics.features=nope", "data_root=[1]"]
)
def test_evaluate_options_are_checked_before_loading(setting: str) -> None:
    with pytest.raises(ConfigError) as err:
        validate_evaluate(task_config(composed(config="evaluate"), setting))
    assert setting.split("=")[0] in str(err.value) and "\n" not in str(err.value)


def test_generate_refuses_a_bad_mode_before_reading_the_checkpoint(tmp_path: Path) -> None:
    from gan_lab.generate import generate

    cfg = task_config(composed(config="generate"), f"ckpt={tmp_path / 'missing.ckpt'}")
    cfg.mode = "nope"
    with pytest.raises(ConfigError, match=r"^mode='nope' is invalid: expected one of grid, interpolate"):
        generate(cfg)


# ---------------------------------------------------------------------------- constructors, safety net
def test_constructors_use_the_same_rules() -> None:
    from gan_lab.augment import AdaptiveAugment, DiffAugment
    from gan_lab.callbacks import GANProgressBar, IterationLog, QualityCallback, SampleGrid
    from gan_lab.losses import WGANGPLoss

    cases = [
        (lambda: DiffAugment("color,blur"), "augment.policy=['color', 'blur']"),
        (lambda: AdaptiveAugment(p=2), "augment.p=2"),
        (lambda: WGANGPLoss(gp_lambda=-1), "loss.gp_lambda=-1"),
        (lambda: SampleGrid(".", every_n_iters=0), "callbacks.samples.every_n_iters=0"),
        (lambda: IterationLog(every_n_iters=0), "callbacks.iteration_log.every_n_iters=0"),
        (lambda: GANProgressBar(refresh_rate=-1), "callbacks.progress.refresh_rate=-1"),
        (lambda: QualityCallback(monitor="is"), "metrics.monitor='is'"),
        (lambda: QualityCallback(num_fake=1), "metrics.num_fake=1"),
    ]
    for build, named in cases:
        with pytest.raises(ConfigError) as err:
            build()
        assert str(err.value).startswith(named), str(err.value)


def test_a_refusal_inside_instantiate_is_one_line_naming_the_node() -> None:
    cfg = OmegaConf.create(
        {"callbacks": {"samples": {"_target_": "gan_lab.callbacks.SampleGrid", "dirpath": "."}}}
    )
    cfg.callbacks.samples.every_n_iters = 0
    with pytest.raises(ConfigError) as err, one_line_build_errors():
        instantiate(cfg.callbacks.samples)
    message = str(err.value)
    assert message.startswith(
        "callbacks.samples (gan_lab.callbacks.samples.SampleGrid) refused its settings:"
    )
    assert "callbacks.samples.every_n_iters=0" in message and "\n" not in message
