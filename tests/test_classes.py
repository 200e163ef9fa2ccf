"""Labels of class-conditional pictures: the grid layout (one row per class) and generate.py's
``class=``/``classes=`` checks against a checkpoint's classes."""

from __future__ import annotations

import pytest
import torch

from gan_lab.errors import ConfigError
from gan_lab.utils.classes import check_classes, describe_rows, grid_classes, row_classes, rows_of


def test_grid_classes_has_one_row_per_class_row_major() -> None:
    labels = grid_classes(64, 10)
    assert labels.dtype == torch.int64 and labels.shape == (60,)  # 10 rows of 64 // 10 = 6
    assert labels.view(10, 6).tolist() == [[k] * 6 for k in range(10)]
    assert rows_of(labels, 6) == list(range(10))
    assert grid_classes(10, 3).tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2]


def test_grid_classes_with_fewer_samples_than_classes_keeps_one_image_a_row() -> None:
    assert grid_classes(4, 10).tolist() == list(range(10))
    assert grid_classes(1, 1).tolist() == [0]


def test_grid_classes_of_many_classes_are_evenly_spaced_and_include_both_ends() -> None:
    labels = grid_classes(64, 100)
    assert labels.shape == (60,)
    assert rows_of(labels, 6) == [0, 11, 22, 33, 44, 55, 66, 77, 88, 99]
    assert row_classes(100) == torch.linspace(0, 99, 10).round().long().tolist()
    assert row_classes(12, max_rows=3) == [0, 6, 11]
    assert grid_classes(8, 12, max_rows=3).tolist() == [0, 0, 6, 6, 11, 11]


def test_grid_classes_refuses_an_unconditional_model() -> None:
    with pytest.raises(ValueError, match="num_classes=0"):
        grid_classes(64, 0)


def test_rows_are_described_for_captions() -> None:
    assert describe_rows([3]) == "rows: class 3"
    assert describe_rows([0, 1, 2]) == "rows: classes 0, 1, 2"


def test_check_classes_returns_the_chosen_labels() -> None:
    assert check_classes(None, None, 10) is None
    assert check_classes(None, None, 0) is None
    assert check_classes(3, None, 10) == [3]
    assert check_classes(None, [0, 9, 4], 10) == [0, 9, 4]


@pytest.mark.parametrize(
    ("class_", "classes", "num_classes", "message"),
    [
        (3, [1], 10, r"^class=3 and classes=\[1\] are both given: choose one"),
        (3, None, 0, r"^class=3 needs a class-conditional checkpoint; this one is unconditional$"),
        (None, [0, 1], 0, r"^classes=\[0, 1\] needs a class-conditional checkpoint"),
        (10, None, 10, r"^class=10 is out of range: this checkpoint has 10 classes, labels 0 to 9$"),
        (-1, None, 10, r"^class=-1 is out of range: .* labels 0 to 9$"),
        (None, [0, 12, 3], 10, r"^classes=\[0, 12, 3\] has 12, out of range: .* labels 0 to 9$"),
        ("a", None, 10, r"^class='a' is invalid: expected an integer class label$"),
        (1.5, None, 10, r"^class=1.5 is invalid"),
        (True, None, 10, r"^class=True is invalid"),
        (None, [], 10, r"^classes=\[\] is invalid: expected a non-empty list"),
        (None, [1.5], 10, r"^classes=\[1.5\] is invalid"),
        (None, "012", 10, r"^classes='012' is invalid"),
    ],
)
def test_check_classes_refuses_in_one_line(class_, classes, num_classes: int, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as err:
        check_classes(class_, classes, num_classes)
    assert "\n" not in str(err.value)
