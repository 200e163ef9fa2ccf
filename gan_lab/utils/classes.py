"""Class labels for pictures of class-conditional models (issue 13).

``grid_classes`` lays out the labels of a sample grid with one row per class, the layout of the
training sample grid (``module.sample_c``) and of ``generate.py``'s default conditional grid.
``check_classes`` turns ``generate.py``'s ``class=``/``classes=`` into labels, refusing what does
not fit the checkpoint in one line (``ConfigError``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

from gan_lab.config.rules import is_int
from gan_lab.errors import ConfigError

MAX_ROWS = 10


def row_classes(num_classes: int, max_rows: int = MAX_ROWS) -> list[int]:
    """The classes of the rows: all of them when there are at most ``max_rows``, else
    ``max_rows`` evenly spaced ones (the first and the last included)."""
    if num_classes < 1:
        raise ValueError(f"num_classes={num_classes} must be >= 1 for a grid of classes")
    if max_rows < 1:
        raise ValueError(f"max_rows={max_rows} must be >= 1")
    rows = min(num_classes, max_rows)
    if rows == num_classes:
        return list(range(num_classes))
    return torch.linspace(0, num_classes - 1, rows).round().long().tolist()


def grid_classes(num_samples: int, num_classes: int, max_rows: int = MAX_ROWS) -> Tensor:
    """int64 labels of a grid with one row per class, row-major: ``rows = min(num_classes,
    max_rows)`` classes (``row_classes``), ``cols = max(num_samples // rows, 1)`` images of each;
    length ``rows * cols``."""
    classes = row_classes(num_classes, max_rows)
    cols = max(num_samples // len(classes), 1)
    return torch.tensor(classes, dtype=torch.int64).repeat_interleave(cols)


def rows_of(labels: Tensor, cols: int) -> list[int]:
    """The class of each row of a grid of ``labels`` laid out ``cols`` per row (one class a row)."""
    return labels[::cols].tolist() if cols > 0 else []


def describe_rows(classes: Sequence[int]) -> str:
    """``'rows: classes 0, 1, 2'``: the words a caption or a log line uses for a grid's rows."""
    return f"rows: class{'es' if len(classes) > 1 else ''} {', '.join(str(k) for k in classes)}"


def num_classes_of(module: Any) -> int:
    """The module's number of classes (0: unconditional; modules from before issue 13 have none)."""
    n = getattr(module, "num_classes", 0)
    return int(n or 0)


def label_range(num_classes: int) -> str:
    return f"this checkpoint has {num_classes} classes, labels 0 to {num_classes - 1}"


def check_classes(class_: Any, classes: Any, num_classes: int) -> list[int] | None:
    """The labels chosen by ``class=`` (one) or ``classes=`` (a list) for a checkpoint of
    ``num_classes`` classes; None when neither is given. Refused (``ConfigError``, one line): both
    given, either given for an unconditional checkpoint, an empty list, a non-integer, a label out of
    range (the message names the range)."""
    if class_ is not None and classes is not None:
        raise ConfigError(
            f"class={class_!r} and classes={classes!r} are both given: choose one "
            "(class=K for one class, classes=[K,...] for one row per class)"
        )
    if class_ is None and classes is None:
        return None
    key, value = ("class", class_) if class_ is not None else ("classes", classes)
    if num_classes == 0:
        raise ConfigError(f"{key}={value!r} needs a class-conditional checkpoint; this one is unconditional")
    if class_ is not None:
        if not is_int(class_):
            raise ConfigError(f"class={class_!r} is invalid: expected an integer class label")
        if not 0 <= class_ < num_classes:
            raise ConfigError(f"class={class_} is out of range: {label_range(num_classes)}")
        return [class_]
    labels = list(classes) if isinstance(classes, Sequence) and not isinstance(classes, str) else None
    if not labels or not all(is_int(k) for k in labels):  # a ListConfig is a Sequence too
        raise ConfigError(
            f"classes={value!r} is invalid: expected a non-empty list of integer labels, e.g. [0,1,2]"
        )
    bad = [k for k in labels if not 0 <= k < num_classes]
    if bad:
        raise ConfigError(f"classes={labels} has {bad[0]}, out of range: {label_range(num_classes)}")
    return labels
