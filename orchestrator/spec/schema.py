"""The job file's schema: every key, its type and its allowed values, in one place.

A check returns None when the value is fine, or the reason it is not ("must be > 0").
Validation walks a TOML table against a schema and collects every problem (SkyPilot style)
instead of stopping at the first.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from orchestrator.errors import did_you_mean

Check = Callable[[Any], str | None]


def _type_name(v: Any) -> str:
    return {
        bool: "boolean",
        int: "integer",
        float: "float",
        str: "string",
        list: "array",
        dict: "table",
    }.get(type(v), type(v).__name__)


def is_int(lo: int | None = None, hi: int | None = None) -> Check:
    def check(v: Any) -> str | None:
        if isinstance(v, bool) or not isinstance(v, int):
            return f"must be an integer, not a {_type_name(v)}"
        if lo is not None and v < lo:
            return f"must be >= {lo}"
        if hi is not None and v > hi:
            return f"must be <= {hi}"
        return None

    return check


def is_number(
    *,
    gt: float | None = None,
    ge: float | None = None,
    lt: float | None = None,
    le: float | None = None,
) -> Check:
    def check(v: Any) -> str | None:
        if isinstance(v, bool) or not isinstance(v, int | float):
            return f"must be a number, not a {_type_name(v)}"
        try:
            finite = math.isfinite(v)
        except OverflowError:  # an integer beyond the float range
            finite = False
        if not finite:
            return "must be a finite number"
        if gt is not None and not v > gt:
            return f"must be > {gt}"
        if ge is not None and not v >= ge:
            return f"must be >= {ge}"
        if lt is not None and not v < lt:
            return f"must be < {lt}"
        if le is not None and not v <= le:
            return f"must be <= {le}"
        return None

    return check


def is_bool(v: Any) -> str | None:
    return None if isinstance(v, bool) else f"must be true or false, not a {_type_name(v)}"


def is_str(v: Any) -> str | None:
    if not isinstance(v, str):
        return f"must be a string, not a {_type_name(v)}"
    return None if v.strip() else "must not be empty"


def one_of(choices: Iterable[str] | Callable[[], Iterable[str]], what: str = "value") -> Check:
    def check(v: Any) -> str | None:
        if (err := is_str(v)) is not None:
            return err
        known = list(choices() if callable(choices) else choices)
        if v in known:
            return None
        hint = did_you_mean(v, known)
        return f"unknown {what}.{hint or ' Choose one of: ' + ', '.join(sorted(known)) + '.'}"

    return check


def str_or_str_list(v: Any) -> str | None:
    if isinstance(v, str):
        return is_str(v)
    if isinstance(v, list) and v and all(isinstance(x, str) and x.strip() for x in v):
        return None
    return "must be a string or a non-empty array of strings"


# Keras seeds NumPy's global generator, which takes 0 .. 2**32 - 1: a bigger seed validates
# nowhere else and fails in the trial (keras.utils.set_random_seed).
MAX_SEED = 2**32 - 1
# Sanity limits, far above any real run (the seeds train 300 epochs at most; svhn_extra, the
# largest dataset, has 604,388 training images): a bigger value is a typo. They also keep
# the values inside the ledger's INTEGER columns (32-bit on PostgreSQL) and Ray's retry
# counter, where a 64-bit TOML integer validates here and fails at run time.
MAX_EPOCHS = 100_000
MAX_BATCH_SIZE = 1_000_000
MAX_RETRIES = 1_000


def seed_list(v: Any) -> str | None:
    """`seeds = [0, 1, 2]`: a non-empty array of distinct whole numbers in 0..MAX_SEED."""
    ok = (
        isinstance(v, list)
        and v
        and all(isinstance(x, int) and not isinstance(x, bool) and 0 <= x <= MAX_SEED for x in v)
    )
    if not ok:
        return f"must be a non-empty array of whole numbers in 0..{MAX_SEED}"
    return None if len(set(v)) == len(v) else "must not repeat a seed"


def is_tables(v: Any) -> str | None:
    """An array of tables ([[trial]], exclude = [{...}, ...])."""
    if isinstance(v, list) and all(isinstance(x, Mapping) for x in v):
        return None
    return f"must be an array of tables, not a {_type_name(v)}"


def is_table_or_tables(v: Any) -> str | None:
    """One table ([grid.zip]) or an array of tables ([[grid.zip]])."""
    return None if isinstance(v, Mapping) else is_tables(v)


def is_table(v: Any) -> str | None:
    return None if isinstance(v, Mapping) else f"must be a table, not a {_type_name(v)}"


def end(text: str) -> str:
    """A sentence ends once: "Did you mean: sgd?" takes no extra full stop."""
    return text if text.endswith((".", "?")) else text + "."


def shown(value: Any, limit: int = 120) -> str:
    """repr(value), shortened: a message quotes the bad value, not a whole table."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 4] + " ..."


@dataclass(frozen=True)
class Table:
    """A sub-table with its own schema (validated recursively)."""

    fields: Mapping[str, Check | Table]
    free: bool = False  # free-form: any keys (checked elsewhere, e.g. model_args by the zoo)


def validate_table(
    table: Mapping[str, Any], schema: Table, where: str, path: str, problems: list[str]
) -> None:
    """Append one message per problem in `table` (recursively) to `problems`."""
    for key, value in table.items():
        full = f"{path}.{key}" if path else key
        rule = schema.fields.get(key)
        if rule is None:
            if not schema.free:
                hint = did_you_mean(key, schema.fields)
                hint = hint or f" Allowed: {', '.join(schema.fields)}."
                problems.append(f"{where}{full}: unknown key.{hint}")
            continue
        if isinstance(rule, Table):
            if (err := is_table(value)) is not None:
                problems.append(f"{where}{full}: {end(err)} Received: {key}={shown(value)}")
            else:
                validate_table(value, rule, where, full, problems)
            continue
        if (err := rule(value)) is not None:
            problems.append(f"{where}{full}: {end(err)} Received: {key}={shown(value)}")
