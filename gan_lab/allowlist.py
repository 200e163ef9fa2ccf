"""What a config that comes from a checkpoint may build: the lab's own classes, nothing else.

A checkpoint is data. ``torch.load(weights_only=True)`` reads it without running code, but the
config and the Hydra overrides stored in it are handed to ``hydra.utils.instantiate`` when
``train.py ckpt_path=``, ``generate.py ckpt=`` or ``evaluate.py ckpt=`` rebuild the run, and
``instantiate`` calls whatever ``_target_`` names. Hydra's own blocklist stops ``os.system`` but
not ``pathlib.Path.write_text``, ``builtins.open`` or ``shutil.copyfile``, so a shared checkpoint
could write files on the machine that loads it.

Rules for anything that comes from a checkpoint, checked before anything is built:

* every ``_target_``, at any depth (``_args_`` and lists included), after interpolations are
  resolved, is one of ``ALLOWED_TARGETS``: the classes that have a typed schema in
  ``gan_lab.config.schema`` (one list for both; a test checks that ``conf/`` names no other);
* a stored override may not call a resolver (``${oc.env:...}``, ``${ensure_dir:...}``):
  resolvers read the environment or write folders, and a genuine override has no need of them
  on a resume (the resolved config is stored too);
* a stored config holds no interpolation at all: it is saved resolved, so ``${`` there means the
  file was crafted.

Each refusal is one ``CheckpointError`` line naming the key and the target.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from gan_lab.errors import CheckpointError


def _schema_targets() -> frozenset[str]:
    """The ``_target_`` of every typed schema (``gan_lab.config.schema``): the classes the lab's
    configs may name, each reviewed where its schema is written."""
    from gan_lab.config.schema import ENTRIES, GROUPS, NODES, target_of

    tables = (*GROUPS.values(), *ENTRIES.values(), *NODES.values())
    return frozenset(target_of(schema) for table in tables for schema in table.values())


ALLOWED_TARGETS = _schema_targets()

# ${name:...} calls a resolver; ${a.b} (no colon before the closing brace) is a plain reference
_RESOLVER_CALL = re.compile(r"\$\{\s*[\w.]+\s*:")
TARGET_KEY = "_target_"


def _walk(node: Any, path: str) -> Iterator[tuple[str, Any]]:
    """(dotted key, value) of every entry of a nested plain container."""
    if isinstance(node, dict):
        for key, value in node.items():
            child = f"{path}.{key}" if path else str(key)
            yield child, value
            yield from _walk(value, child)
    elif isinstance(node, list | tuple):
        for i, value in enumerate(node):
            child = f"{path}[{i}]"
            yield child, value
            yield from _walk(value, child)


def check_targets(config: Any, source: str) -> None:
    """Refuse any ``_target_`` of ``config`` (plain container or OmegaConf node) not in the allowlist."""
    if isinstance(config, DictConfig | ListConfig):
        try:
            config = OmegaConf.to_container(config, resolve=True)
        except OmegaConfBaseException as e:
            raise CheckpointError(
                f"{source}: its config cannot be resolved ({str(e).splitlines()[0]})"
            ) from e
    for key, value in _walk(config, ""):
        if key.rsplit(".", 1)[-1] == TARGET_KEY and value not in ALLOWED_TARGETS:
            raise CheckpointError(
                f"{source}: refused to build {key}={value!r}: a checkpoint may only name the lab's own "
                "classes (gan_lab/allowlist.py)"
            )


def check_stored_config(config: Any, source: str) -> None:
    """A config stored in a checkpoint: plain data, resolved, and only the lab's targets."""
    if not isinstance(config, dict):
        raise CheckpointError(f"{source}: its stored config is not a mapping")
    for key, value in _walk(config, ""):
        if isinstance(value, str) and "${" in value:
            raise CheckpointError(
                f"{source}: its stored config holds an interpolation at {key}={value!r} "
                "(stored configs are saved resolved: the file was altered)"
            )
    check_targets(config, source)


def check_stored_overrides(overrides: Any, source: str) -> list[str]:
    """Hydra overrides stored in a checkpoint: a list of strings that call no resolver."""
    if not isinstance(overrides, list | tuple) or not all(isinstance(o, str) for o in overrides):
        raise CheckpointError(f"{source}: its stored overrides are not a list of strings")
    for override in overrides:
        if _RESOLVER_CALL.search(override):
            raise CheckpointError(
                f"{source}: refused its stored override {override!r}: a resolver call is not re-run "
                "from a checkpoint (give the value on the command line instead)"
            )
    return list(overrides)


def conf_targets(conf_dir: str | Path) -> set[str]:
    """Every ``_target_`` named in the run-time groups of ``conf/`` (not Hydra's own settings)."""
    targets = set()
    for path in Path(conf_dir).rglob("*.yaml"):
        if "hydra" in path.relative_to(conf_dir).parts[:1]:
            continue
        node = OmegaConf.to_container(OmegaConf.load(path))
        if isinstance(node, dict):
            node.pop("hydra", None)  # Hydra's own settings are never stored in a checkpoint
        for key, value in _walk(node, ""):
            if key.rsplit(".", 1)[-1] == TARGET_KEY:
                targets.add(value)
    return targets
