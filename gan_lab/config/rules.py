"""Range and choice rules of config values, each written once.

A ``Rule`` is a predicate with the words a user reads when it fails. The schemas
(``gan_lab.config.schema``) attach one to a field (``setting(default, RULE)``); the config check
(``gan_lab.config.validate``) applies it to the composed value, and constructors that must still
guard library users call ``require`` with the same rule, never a second copy of it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from gan_lab.errors import ConfigError


def is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value: Any) -> bool:
    """A finite int or float (nan and inf are no setting's value: psi=nan drew black images)."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def is_power_of_two(value: Any) -> bool:
    return is_int(value) and value > 0 and value & (value - 1) == 0


@dataclass(frozen=True)
class Rule:
    """``ok(value)`` says whether a (type-checked) value is allowed; ``expected`` says what is."""

    ok: Callable[[Any], bool]
    expected: str

    def check(self, key: str, value: Any) -> None:
        """Raise ``ConfigError`` naming ``key`` and ``value`` when the rule rejects the value."""
        if not self.ok(value):
            raise ConfigError(f"{key}={value!r} is invalid: expected {self.expected}")


def require(key: str, value: Any, rule: Rule) -> Any:
    """Check one constructor argument against its config rule; returns the value."""
    rule.check(key, value)
    return value


def optional(rule: Rule) -> Rule:
    return Rule(lambda v: v is None or rule.ok(v), f"{rule.expected} or null")


def at_least(low: float, integer: bool = False, what: str = "") -> Rule:
    kind = "an integer" if integer else "a number"
    return Rule(lambda v: (is_int(v) if integer else is_number(v)) and v >= low, what or f"{kind} >= {low:g}")


def greater_than(low: float, integer: bool = False, what: str = "") -> Rule:
    kind = "an integer" if integer else "a number"
    return Rule(lambda v: (is_int(v) if integer else is_number(v)) and v > low, what or f"{kind} > {low:g}")


def between(low: float, high: float, what: str = "", open_low: bool = False, open_high: bool = False) -> Rule:
    def ok(v: Any) -> bool:
        if not is_number(v):
            return False
        return (v > low if open_low else v >= low) and (v < high if open_high else v <= high)

    interval = f"{'(' if open_low else '['}{low:g}, {high:g}{')' if open_high else ']'}"
    return Rule(ok, what or f"a number in {interval}")


def one_of(*choices: Any) -> Rule:
    def ok(v: Any) -> bool:  # True == 1 in Python: compare types too
        return any(v == c and type(v) is type(c) for c in choices)

    return Rule(ok, "one of " + ", ".join(str(c).lower() if isinstance(c, bool) else str(c) for c in choices))


def subset_of(choices: Iterable[str], example: str) -> Rule:
    allowed = tuple(choices)
    return Rule(
        lambda v: isinstance(v, list | tuple) and all(p in allowed for p in v),
        f"a list from {', '.join(allowed)}, e.g. {example}",
    )


POSITIVE_INT = greater_than(0, integer=True, what="a positive integer")
NON_NEGATIVE_INT = at_least(0, integer=True, what="an integer >= 0")
POSITIVE = greater_than(0, what="a positive number")
NON_NEGATIVE = at_least(0, what="a number >= 0")
PENALTY = at_least(0, what="a number >= 0 (0 disables it)")
PROBABILITY = between(0, 1, what="a probability in [0, 1]")
# Lightning's seed_everything (and numpy) take seeds in [0, 2^32 - 1]
MAX_SEED = 2**32 - 1
SEED = Rule(lambda v: is_int(v) and 0 <= v <= MAX_SEED, f"an integer from 0 to {MAX_SEED}")
ANY_NUMBER = Rule(is_number, "a number")
