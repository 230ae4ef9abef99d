"""Configuration files: one way to read a TOML file and check its tables and values.

The policy file and the scan-rules file both go through here, so both refuse an unknown table or
key and a value of the wrong type or range with the same kind of one-line message, naming it.
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

from cs_metrics.errors import CsMetricsError

Problem = Callable[[Any], str | None]
"""A value check: what is wrong with the value (None: nothing)."""


def read_toml(source: Path | Traversable, error: type[CsMetricsError], what: str) -> dict[str, Any]:
    """A TOML file's tables; an unreadable or malformed file is `error` naming it."""
    try:
        return tomllib.loads(source.read_text(encoding="utf-8"))
    except OSError as exc:
        raise error(f"{what}: cannot read {source}: {exc.strerror}") from None
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise error(f"{what}: {source}: {exc}") from None


def unknown_names(found: Iterable[str], allowed: Iterable[str]) -> list[str]:
    """The names in `found` that are not `allowed`, sorted."""
    return sorted(set(found) - set(allowed))


@dataclass(frozen=True)
class Number:
    """A number from `low` to `high` (`low` itself only when `low_included`)."""

    low: float
    high: float
    low_included: bool = True

    def __call__(self, value: Any) -> str | None:
        """What is wrong with `value` as this number."""
        if isinstance(value, bool) or not isinstance(value, int | float):
            return "must be a number"
        if self.low_included and not self.low <= value <= self.high:
            return f"must be from {self.low:g} to {self.high:g}"
        if not self.low_included and not self.low < value <= self.high:
            return f"must be over {self.low:g} and at most {self.high:g}"
        return None


@dataclass(frozen=True)
class Whole:
    """A whole number from `low` to `high`."""

    low: int
    high: int

    def __call__(self, value: Any) -> str | None:
        """What is wrong with `value` as this whole number."""
        if (
            isinstance(value, bool)
            or not isinstance(value, int)
            or not self.low <= value <= self.high
        ):
            return f"must be a whole number from {self.low} to {self.high}"
        return None


def boolean(value: Any) -> str | None:
    """What is wrong with `value` as true or false."""
    return None if isinstance(value, bool) else "must be true or false"


def first_problem(
    values: Mapping[str, Any], checks: Mapping[str, Problem]
) -> tuple[str, str] | None:
    """The first (key, problem) of `values` under `checks` (keys without a check pass)."""
    for key, value in values.items():
        check = checks.get(key)
        problem = check(value) if check is not None else None
        if problem:
            return key, problem
    return None
