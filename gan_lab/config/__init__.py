"""The one check of a composed config, run inside the task before anything is built or loaded.

Each group node is matched to its typed schema (``gan_lab.config.schema``, chosen by the node's
``_target_``): every value, after its interpolations and resolvers are resolved, is assigned to
the structured config (OmegaConf checks its type), then the field's rule checks its range or
choice. Then a few rules that relate keys (batch and minibatch groups, compile and double
backward, the metrics split) run. The first failure raises ``ConfigError`` with one line naming
the full key, the bad value and what is expected. Hydra itself reports unknown group options and
unknown keys (struct mode) at composition.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import typing
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from gan_lab.config.rules import Rule, is_int, is_number, is_power_of_two, require
from gan_lab.config.schema import (
    ENTRIES,
    GROUPS,
    MIN_RESOLUTION,
    OPTIONAL_GROUPS,
    EvaluateConfig,
    ExportConfig,
    GANConfig,
    GenerateConfig,
    PathsConfig,
    ProjectConfig,
    Schema,
    TrainTopConfig,
    target_of,
)
from gan_lab.errors import ConfigError

__all__ = [
    "MIN_RESOLUTION",
    "ConfigError",
    "Rule",
    "check_arguments",
    "check_export_options",
    "is_power_of_two",
    "require",
    "schema_for",
    "validate",
    "validate_evaluate",
    "validate_export",
    "validate_generate",
    "validate_project",
]

_MISSING = "???"
TYPE_WORDS = {int: "an integer", float: "a number", bool: "true or false", str: "a string"}


def _line(text: str) -> str:
    return " ".join(str(text).split())


def _type_words(tp: Any) -> str:
    optional = False
    if typing.get_origin(tp) in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        optional, tp = len(args) < len(typing.get_args(tp)), args[0]
    origin = typing.get_origin(tp)
    if origin is list:
        (item,) = typing.get_args(tp)
        words = f"a list of {_type_words(item).split(' ', 1)[1]}s"
    else:
        words = TYPE_WORDS.get(tp, "a value")
    return words + (" or null" if optional else "")


def _hints(schema: type) -> dict[str, Any]:
    return typing.get_type_hints(schema)


def _nested_schema(tp: Any) -> type | None:
    args = typing.get_args(tp) or (tp,)
    return next((a for a in args if dataclasses.is_dataclass(a)), None)


def _expected(schema: type, name: str) -> str:
    f = schema.__dataclass_fields__[name]
    return f.metadata.get("expected") or _type_words(_hints(schema)[name])


@functools.cache
def _accepted_arguments(target: str) -> frozenset[str] | None:
    """Constructor arguments of a third-party target (None: it takes any keyword)."""
    from hydra.utils import get_object

    try:
        params = inspect.signature(get_object(target)).parameters.values()
    except Exception:
        return None
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
        return None
    return frozenset(p.name for p in params)


def _resolve(node: Any, key: str, full: str) -> Any:
    """The value of ``node[key]`` with its interpolations resolved ("???" when missing)."""
    if OmegaConf.is_missing(node, key):
        return _MISSING
    try:
        value = node[key]
        if isinstance(value, DictConfig | ListConfig):
            return OmegaConf.to_container(value, resolve=True, throw_on_missing=False)
        return value
    except OmegaConfBaseException as e:  # a failing interpolation or resolver
        raise ConfigError(f"{full} could not be computed: {_line(e).split(' full_key:')[0]}") from None


def _resolved_mapping(node: DictConfig, prefix: str) -> dict[str, Any]:
    return {str(k): _resolve(node, str(k), f"{prefix}{k}") for k in node}


def _refuse_unknown_keys(values: dict[str, Any], schema: type[Schema], prefix: str, where: str) -> None:
    """One line naming every key that is not a setting of ``where`` (an ``OPEN`` schema also takes
    its target's constructor arguments), and how to remove them all: switching
    ``model.optimizer_g._target_`` from Adam to RMSprop leaves ``betas`` and ``fused`` behind."""
    fields = schema.__dataclass_fields__
    accepted = _accepted_arguments(target_of(schema)) if schema.OPEN else frozenset()
    unknown = [
        f"{prefix}{key}"
        for key in values
        if key not in fields and not (schema.OPEN and (accepted is None or key in accepted))
    ]
    if len(unknown) == 1:
        raise ConfigError(f"{unknown[0]} is not a setting of {where} (remove it: ~{unknown[0]})")
    if unknown:
        removal = " ".join(f"~{k}" for k in unknown)
        raise ConfigError(f"{', '.join(unknown)} are not settings of {where} (remove them: {removal})")


def check_node(values: dict[str, Any], schema: type[Schema], prefix: str, where: str) -> dict[str, Any]:
    """Type- and rule-check ``values`` (resolved) against ``schema``; returns the typed values."""
    typed = OmegaConf.structured(schema)
    fields = schema.__dataclass_fields__
    hints = _hints(schema)
    out: dict[str, Any] = {}
    _refuse_unknown_keys(values, schema, prefix, where)
    for key, value in values.items():
        full = f"{prefix}{key}"
        if key not in fields:  # an argument of an OPEN schema's target (_refuse_unknown_keys)
            out[key] = value
            continue
        table = fields[key].metadata.get("nodes")
        if table is not None:
            out[key] = _check_table_node(value, table, full, where)
            continue
        nested = _nested_schema(hints[key])
        if nested is not None and isinstance(value, dict):
            out[key] = check_node(value, nested, f"{full}.", where)
            continue
        if value == _MISSING:
            raise ConfigError(f"{full} is required: {full}={_expected(schema, key)}")
        try:
            typed[key] = value
        except (OmegaConfBaseException, ValueError, TypeError):
            raise ConfigError(f"{full}={value!r} is invalid: expected {_expected(schema, key)}") from None
        checked = typed[key]
        if isinstance(checked, DictConfig | ListConfig):
            checked = OmegaConf.to_container(checked)
        rule: Rule | None = fields[key].metadata.get("rule")
        if rule is not None:
            rule.check(full, checked)
        out[key] = checked
    for name, f in fields.items():
        if name not in values and f.default == _MISSING:
            raise ConfigError(f"{prefix}{name} is required: {prefix}{name}={_expected(schema, name)}")
    return out


def _check_table_node(value: Any, table: dict[str, type[Schema]], full: str, where: str) -> dict[str, Any]:
    """A node inside a group node (``model.generator``, ``model.optimizer_g``): checked by the
    schema of its ``_target_`` among ``table``'s; any other target is refused."""
    if value == _MISSING:
        raise ConfigError(f"{full} is required: {full}._target_=CLASS and its settings")
    if not isinstance(value, dict) or "_target_" not in value:
        raise ConfigError(f"{full}={value!r} is invalid: expected a node with a _target_")
    schema = next((s for s in table.values() if target_of(s) == value["_target_"]), None)
    if schema is None:
        known = ", ".join(target_of(s) for s in table.values())
        raise ConfigError(f"{full}._target_={value['_target_']!r} is invalid: expected one of {known}")
    return check_node(value, schema, f"{full}.", value["_target_"])


def schema_for(group: str, node: Any) -> type[Schema] | None:
    """The schema of a group node, by its ``_target_`` (None for a node of no known target)."""
    options = GROUPS.get(group) or ENTRIES.get(group) or {}
    target = node.get("_target_") if isinstance(node, dict | DictConfig) else None
    return next((s for s in options.values() if target_of(s) == target), None)


def _check_group(cfg: DictConfig, group: str) -> dict[str, Any] | None:
    if group not in cfg or cfg[group] is None:
        if group in OPTIONAL_GROUPS:
            return None
        raise ConfigError(f"{group} is required: choose one of {', '.join(GROUPS[group])} ({group}=NAME)")
    node = cfg[group]
    if not isinstance(node, DictConfig):
        raise ConfigError(f"{group}={node!r} is invalid: expected a config node ({group}=NAME)")
    values = _resolved_mapping(node, f"{group}.")
    if group in ENTRIES:
        checked = {}
        for name, entry in values.items():
            if entry is None:
                continue
            if not isinstance(entry, dict) or "_target_" not in entry:
                raise ConfigError(f"{group}.{name}={entry!r} is invalid: expected a node with a _target_")
            schema = schema_for(group, entry)
            # a user's own callback or logger (no schema): its class checks its arguments
            checked[name] = entry if schema is None else check_node(entry, schema, f"{group}.{name}.", group)
        return checked
    schema = schema_for(group, values)
    if schema is None:
        known = ", ".join(target_of(s) for s in GROUPS[group].values())
        raise ConfigError(f"{group}._target_={values.get('_target_')!r} is invalid: expected one of {known}")
    choice = _choice(group) or next(name for name, s in GROUPS[group].items() if s is schema)
    return check_node(values, schema, f"{group}.", f"{group}={choice}")


def _choice(group: str) -> str | None:
    """The option the user chose for ``group`` (Hydra's runtime choices; None outside Hydra).
    Several options may share a schema (every architecture trained by the GAN loop does)."""
    from hydra.core.hydra_config import HydraConfig

    if not HydraConfig.initialized():
        return None
    choice = HydraConfig.get().runtime.choices.get(group)
    return choice if isinstance(choice, str) else None


def validate(cfg: DictConfig) -> None:
    """Raise ``ConfigError`` (one line) for the first bad value of a training config."""
    groups = ("data", "trainer", "model", "loss", "augment", "callbacks", "metrics", "logger")
    top = {str(k): _resolve(cfg, str(k), str(k)) for k in cfg if k not in (*groups, "paths")}
    if OmegaConf.select(cfg, "model.d_steps", default=None) is not None:  # data follows it: name it first
        d_steps = _resolve(cfg.model, "d_steps", "model.d_steps")
        GANConfig.__dataclass_fields__["d_steps"].metadata["rule"].check("model.d_steps", d_steps)
    check_node(top, TrainTopConfig, "", "train.py")
    if "paths" in cfg:
        check_node(_resolved_mapping(cfg.paths, "paths."), PathsConfig, "paths.", "paths")
    c = {group: _check_group(cfg, group) for group in groups}
    _check_relations(c)


def _check_relations(c: dict[str, Any]) -> None:
    """Rules that relate keys of several groups (each group already checked on its own)."""
    model, data, loss = c["model"], c["data"], c["loss"]
    group, batch = model["discriminator"].get("mbstd_group"), data["batch_size"]
    if is_int(group) and batch % min(group, batch):
        raise ConfigError(
            f"data.batch_size={batch} is not divisible by model.discriminator.mbstd_group={group} "
            "(the minibatch standard deviation layer splits each batch into groups of that size)"
        )
    if model.get("compile") is True:
        penalties = {**{f"model.{k}": model.get(k) for k in ("r1_gamma", "r2_gamma", "pl_weight")}}
        penalties["loss.gp_lambda"] = loss.get("gp_lambda")
        double_backward = [k for k, v in penalties.items() if is_number(v) and v > 0]
        if double_backward:
            raise ConfigError(
                f"model.compile=true cannot be combined with {', '.join(double_backward)} > 0: those "
                "penalties need double backward, which torch.compile does not support"
            )
    if data.get("conditional") and not schema_for("data", data).CLASSES:
        raise ConfigError(
            f"data.conditional=true needs a dataset with classes, but {data['_target_'].rsplit('.', 1)[-1]} "
            "has no class labels; train it unconditionally (data.conditional=false)"
        )
    metrics = c["metrics"]
    if metrics is not None:
        splits = schema_for("data", data).SPLITS
        if metrics.get("split", "train") not in splits:
            raise ConfigError(
                f"metrics.split={metrics['split']!r} is invalid: expected a split of data "
                f"({', '.join(splits)})"
            )
        generator = str((model.get("generator") or {}).get("_target_", ""))
        ppl_w = "ppl" in (metrics.get("extra") or []) and metrics.get("ppl_space") == "w"
        if ppl_w and generator.startswith("gan_lab.nn.dcgan."):  # the built module: checked again
            raise ConfigError(
                "metrics.ppl_space=w needs a generator with a mapping network (StyleGAN); "
                f"{generator.rsplit('.', 1)[-1]} has no w space: use metrics.ppl_space=z"
            )


def _validate_script(cfg: DictConfig, schema: type[Schema], script: str) -> dict[str, Any]:
    values = _resolved_mapping(cfg, "")
    values.pop("hydra", None)
    metrics = values.pop("metrics", None) if "metrics" in schema.__dataclass_fields__ else None
    # a key that is a Python keyword (``class``) is checked as its field and named as itself
    keys = {name: key for key, name in getattr(schema, "KEYS", {}).items()}  # field -> key
    fields = {key: name for name, key in keys.items()}
    try:
        checked = check_node({fields.get(k, k): v for k, v in values.items()}, schema, "", script)
    except ConfigError as e:
        name = next((n for n in keys if str(e).startswith((f"{n}=", f"{n} "))), None)
        if name is None:
            raise
        raise ConfigError(keys[name] + str(e).removeprefix(name)) from None
    checked = {keys.get(k, k): v for k, v in checked.items()}
    if metrics is not None:
        schema = schema_for("metrics", metrics) or _no_schema("metrics")
        checked["metrics"] = check_node(metrics, schema, "metrics.", "metrics")
    return checked


def _no_schema(group: str) -> type[Schema]:
    raise ConfigError(f"{group}._target_ is invalid: expected {target_of(GROUPS[group]['default'])}")


def validate_generate(cfg: DictConfig) -> None:
    """Check ``generate.py``'s config (``conf/generate.yaml``) before the checkpoint is loaded
    (what depends on the checkpoint, such as a class label's range, is checked once it is)."""
    checked = _validate_script(cfg, GenerateConfig, "generate.py")
    if checked.get("class") is not None and checked.get("classes") is not None:
        raise ConfigError(
            f"class={checked['class']} and classes={checked['classes']} are both given: choose one "
            "(class=K: a grid of one class; classes=[K,...]: one row per class)"
        )
    mode, seeds = checked.get("mode"), checked.get("seeds")
    if mode == "seeds" and seeds is None:
        raise ConfigError(
            "mode=seeds needs the seeds to draw: seeds=[1,2,3] writes seed0001.png to seed0003.png"
        )
    if seeds is not None and mode not in ("seeds", "grid"):
        raise ConfigError(
            f"seeds={seeds} is for mode=seeds and mode=grid; mode={mode} takes its latents from seed="
        )


def validate_evaluate(cfg: DictConfig) -> None:
    """Check ``evaluate.py``'s config (``conf/evaluate.yaml``) before the checkpoint is loaded."""
    _validate_script(cfg, EvaluateConfig, "evaluate.py")


def validate_export(cfg: DictConfig) -> None:
    """Check ``scripts/export.py``'s config (``conf/export.yaml``) before the checkpoint is loaded
    (what depends on it, such as psi for a DCGAN, is checked once it is: ``gan_lab.api``)."""
    checked = _validate_script(cfg, ExportConfig, "export.py")
    check_export_options(checked["format"], checked["psi"], checked["cutoff"], checked["noise"])


def check_export_options(format: str, psi: float, cutoff: int | None, noise: str) -> None:
    """The rule that relates the export options (each already checked on its own): a state_dict
    file holds weights, not a sampler, so it takes no truncation or noise."""
    unchanged = {"psi": (psi, 1), "cutoff": (cutoff, None), "noise": (noise, "const")}
    baked = [f"{key}={value}" for key, (value, default) in unchanged.items() if value != default]
    if format == "state_dict" and baked:
        raise ConfigError(
            f"{' '.join(baked)}: format=state_dict writes the weights (w_avg included), not a sampler; "
            "truncation and noise are baked into format=torchscript or format=export"
        )


def validate_project(cfg: DictConfig) -> None:
    """Check ``project.py``'s config (``conf/project.yaml``) before the target image and the
    checkpoint are read (the class label's range and the model kind are checked once it is)."""
    _validate_script(cfg, ProjectConfig, "project.py")


def check_arguments(schema: type[Schema], prefix: str, **values: Any) -> None:
    """For constructors used from Python: check arguments against the rules of their config keys."""
    fields = schema.__dataclass_fields__
    for name, value in values.items():
        rule = fields[name].metadata.get("rule")
        if rule is not None:
            require(f"{prefix}{name}", value, rule)
