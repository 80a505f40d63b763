"""Grid algebra on plain TOML tables: `[[trial]]` entries and `[[grid]]` blocks -> cells.

A cell is one merged trial table (defaults -> block -> axis values -> per-model block) with
its name and its seeds; `spec.load` checks and builds each cell into one TrialSpec per
seed. Everything here is pure dict work; every problem is appended to `problems` in the
house style (file, block, key path, "Received:").

A [[grid]] block::

    name = "{model}-{dataset}"          # template: {dotted.key} of the merged trial
    epochs = 200                        # any trial key: the block's own defaults
    seeds = [0, 1, 2]                   # or repeats = 3, or seed = 0 (one trial)
    exclude = [{ model = "vgg19", dataset = "cifar100" }]
    [grid.axes]                         # product; the first key varies slowest
    model = ["resnet20", "resnet32"]
    "recipe.lr" = [0.1, 0.05]           # dotted keys reach into tables
    [grid.zip]                          # lists advanced together: one more dimension
    "recipe.schedule" = [{ kind = "step", ... }, { kind = "cosine" }]
    "reference.accuracy" = [93.09, 93.42]
    [grid.per_model.resnet110]          # trial keys for the cells of one model
    name = "ResNet-110"                 # (its own name template too)
    resources = { gpus = 1 }
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from orchestrator.errors import did_you_mean
from orchestrator.spec import schema as s
from orchestrator.spec.fields import TRIAL_KEYS
from orchestrator.spec.model import CheckpointPolicy, DataSpec, Recipe, Resources, declared
from orchestrator.spec.names import name_problem, shown_name

SEED_KEYS = ("seed", "seeds", "repeats")
# Replaced as a whole when a later level sets them: a step schedule's boundaries must not
# leak into a cosine schedule that overrides it.
ATOMIC = frozenset({"recipe.schedule"})
GRID_ONLY = ("name", "axes", "zip", "per_model", "exclude")
MAX_TRIALS = 10_000  # more than this from one job file is surely a typo (repeats = 1000...)
_NOT_AXES = SEED_KEYS

# What `{key}` means in a name template when the trial does not set the key.
_DEFAULT_VIEW: dict[str, Any] = {
    "batch_size": 128,
    "recipe": declared(Recipe()),
    "resources": asdict(Resources()),
    "data": asdict(DataSpec()),
    "checkpoint": asdict(CheckpointPolicy()),
}
_SCALARS = (str, int, float, bool)


@dataclass(frozen=True)
class Cell:
    """One grid cell or explicit trial, before checking: a merged table and its seeds."""

    where: str  # message prefix: 'jobs/x.toml: grid #1 "{model}": trial "resnet20": '
    group: str  # the trial name without the seed
    table: dict[str, Any]  # merged trial keys, without name and seeding keys
    seeds: Sequence[int] | None  # None: one trial named `group` with the table's seed


@dataclass(frozen=True)
class _Dim:
    """One dimension of a grid: an axis (one key) or a zip group (several keys)."""

    keys: tuple[str, ...]
    values: tuple[tuple[Any, ...], ...]  # one tuple per position, aligned with keys


# ------------------------------------------------------------------------ dict helpers


def merge(base: Mapping[str, Any], over: Mapping[str, Any], _path: str = "") -> dict[str, Any]:
    """`over` on top of `base`: tables merge key by key, anything else is replaced.

    Two exceptions: `recipe.schedule` is replaced whole, and a level that sets any of
    seed / seeds / repeats replaces all three (one seeding rule per trial).
    """
    out = dict(base)
    if not _path and any(k in over for k in SEED_KEYS):
        for k in SEED_KEYS:
            out.pop(k, None)
    for k, v in over.items():
        path = f"{_path}.{k}" if _path else str(k)
        old = out.get(k)
        if isinstance(v, Mapping) and isinstance(old, Mapping) and path not in ATOMIC:
            out[k] = merge(old, v, path)
        else:
            out[k] = v
    return out


def nest(path: str, value: Any) -> dict[str, Any]:
    """'recipe.lr', 0.1 -> {'recipe': {'lr': 0.1}}."""
    out: Any = value
    for part in reversed(path.split(".")):
        out = {part: out}
    return out


def get_path(table: Mapping[str, Any], path: str) -> tuple[bool, Any]:
    """(found, value) of a dotted key."""
    cur: Any = table
    for part in path.split("."):
        if not isinstance(cur, Mapping) or part not in cur:
            return False, None
        cur = cur[part]
    return True, cur


def _same(a: Any, b: Any) -> bool:
    """TOML equality: true is not 1, but 1 and 1.0 are the same number."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, Mapping | list) or isinstance(b, Mapping | list):
        return False
    try:
        return bool(a == b)
    except Exception:  # exotic values from a hand-built table
        return False


def seeds_of(table: Mapping[str, Any]) -> Sequence[int] | None:
    """The seeds axis of a merged (checked) table, or None without one. `repeats` stays a
    range, so a huge count is refused by the trial limit before any list is built."""
    if "seeds" in table:
        return tuple(table["seeds"])
    if "repeats" in table:
        return range(table["repeats"])
    return None


def max_seeds(base: Mapping[str, Any], per_model: Mapping[str, Any]) -> int:
    """The most trials one cell of a grid can make: its seeds, or a per-model block's."""
    levels = [base, *(merge(base, b) for b in per_model.values() if isinstance(b, Mapping))]
    return max(len(seeds_of(t) or (0,)) for t in levels)


def seeding_problems(table: Mapping[str, Any], where: str, problems: list[str]) -> None:
    """At most one of seed / seeds / repeats per level."""
    present = [k for k in SEED_KEYS if k in table]
    if len(present) > 1:
        shown = ", ".join(f"{k}={table[k]!r}" for k in present)
        problems.append(
            f"{where}{present[1]}: set only one of seed (one trial), seeds (a list) or "
            f"repeats (seeds 0..R-1). Received: {shown}"
        )


# ------------------------------------------------------------------------ name templates

_FIELD = re.compile(r"\{\{|\}\}|\{([^{}]*)\}|[{}]")


def render(template: str, table: Mapping[str, Any]) -> tuple[str, str | None]:
    """Fill `{dotted.key}` fields from the merged trial; (name, problem or None)."""
    out: list[str] = []
    pos = 0
    for m in _FIELD.finditer(template):
        out.append(template[pos : m.start()])
        pos = m.end()
        token = m.group(0)
        if token in ("{{", "}}"):
            out.append(token[0])
            continue
        if m.group(1) is None:
            return "", f"unmatched {token!r}; write {token * 2} for a literal brace"
        value, problem = _field_value(m.group(1).strip(), table)
        if problem:
            return "", problem
        out.append(value)
    out.append(template[pos:])
    name = "".join(out)
    return (name, None) if name.strip() else ("", "renders to an empty name")


def _field_value(path: str, table: Mapping[str, Any]) -> tuple[str, str | None]:
    if path in SEED_KEYS:
        return "", f"{{{path}}}: the seed is appended as -s<seed> when seeds or repeats is set"
    found, value = get_path(table, path) if path else (False, None)
    if not found:
        found, value = get_path(_DEFAULT_VIEW, path) if path else (False, None)
    if not found:
        known = sorted(_paths(merge(_DEFAULT_VIEW, table)))
        return "", f"{{{path}}} is no key of the trial.{did_you_mean(path, known)}"
    if isinstance(value, bool):
        return ("true" if value else "false"), None
    if value is None or not isinstance(value, _SCALARS):
        return "", f"{{{path}}} is not a single value; name a key inside it"
    return str(value), None


def _paths(table: Mapping[str, Any], prefix: str = "") -> list[str]:
    out = []
    for k, v in table.items():
        p = f"{prefix}{k}"
        out.append(p)
        if isinstance(v, Mapping):
            out += _paths(v, p + ".")
    return out


# ------------------------------------------------------------------------ expansion


def expand_trial(
    t: Mapping[str, Any],
    defaults: Mapping[str, Any],
    where: str,
    twhere: str,
    problems: list[str],
) -> Cell | None:
    """An explicit [[trial]] (already schema-checked): one cell, maybe with seeds.

    `where` names the file, `twhere` the file and the trial as written.
    """
    seeding_problems(t, twhere, problems)
    merged = merge(defaults, t)
    template = t.get("name", "{model}")
    name, problem = render(template, merged)
    if problem:
        problems.append(f"{twhere}name: {s.end(problem)} Received: name={template!r}")
        return None
    table = {k: v for k, v in merged.items() if k not in ("name", *SEED_KEYS)}
    table["seed"] = merged.get("seed", 0)
    seeds = seeds_of(merged)
    if not _name_ok(name, seeds, twhere, problems):
        return None
    return Cell(f'{where}trial "{name}": ', name, table, seeds)


def grid_dimensions(g: Mapping[str, Any], gwhere: str, problems: list[str]) -> list[_Dim]:
    """[grid.axes] (one dimension per key) then each [grid.zip] group, in file order."""
    dims: list[_Dim] = []
    axes = g.get("axes", {})
    if not isinstance(axes, Mapping):
        problems.append(f"{gwhere}axes: must be a table of key = [values]. Received: axes={axes!r}")
        axes = {}
    for key, values in axes.items():
        if _check_axis(f"axes.{key}", key, values, gwhere, problems):
            dims.append(_Dim((key,), tuple((v,) for v in values)))
    groups = g.get("zip", [])
    if isinstance(groups, Mapping):
        groups = [groups]
    if not isinstance(groups, list) or not all(isinstance(z, Mapping) for z in groups):
        problems.append(
            f"{gwhere}zip: must be a table ([grid.zip]) or tables ([[grid.zip]]) of "
            f"key = [values]. Received: zip={groups!r}"
        )
        groups = []
    for i, group in enumerate(groups):
        label = "zip" if len(groups) == 1 else f"zip[{i}]"
        if not group:
            problems.append(f"{gwhere}{label}: is empty; give key = [values] pairs.")
            continue
        ok = [_check_axis(f"{label}.{k}", k, v, gwhere, problems) for k, v in group.items()]
        if not all(ok):
            continue
        lengths = {k: len(v) for k, v in group.items()}
        if len(set(lengths.values())) > 1:
            shown = ", ".join(f"{k}: {n}" for k, n in lengths.items())
            problems.append(
                f"{gwhere}{label}: zipped lists must have the same length. Received: {shown}"
            )
            continue
        dims.append(_Dim(tuple(group), tuple(zip(*group.values(), strict=True))))
    _overlaps(dims, gwhere, problems)
    return dims


def _check_axis(label: str, key: str, values: Any, gwhere: str, problems: list[str]) -> bool:
    before = len(problems)
    parts = key.split(".")
    if not all(p.strip() for p in parts):
        problems.append(f"{gwhere}{label}: not a key path. Received: {key!r}")
    elif parts[0] in _NOT_AXES:
        problems.append(
            f"{gwhere}{label}: {parts[0]} cannot be an axis; use seeds = [...] or repeats = N."
        )
    elif not isinstance(values, list) or not values:
        problems.append(
            f"{gwhere}{label}: must be a non-empty array of values. Received: {key}={values!r}"
        )
    elif key == "name":  # one name (template) per position, e.g. zipped with the model
        if not all(isinstance(v, str) and v.strip() for v in values):
            problems.append(
                f"{gwhere}{label}: must be an array of non-empty strings (name templates). "
                f"Received: name={s.shown(values)}"
            )
        return len(problems) == before
    if len(problems) > before:
        return False
    for v in values:
        s.validate_table(nest(key, v), TRIAL_KEYS, f"{gwhere}{label.split('.')[0]}: ", "", problems)
    return len(problems) == before


def _overlaps(dims: list[_Dim], gwhere: str, problems: list[str]) -> None:
    keys = [k for d in dims for k in d.keys]
    for a, b in itertools.combinations(keys, 2):
        if a == b or b.startswith(a + ".") or a.startswith(b + "."):
            problems.append(
                f"{gwhere}{a!r} and {b!r} are both varied; vary a key in one place only."
            )


def grid_size(dims: list[_Dim]) -> int:
    return math.prod(len(d.values) for d in dims)


def grid_cells(
    g: Mapping[str, Any],
    dims: list[_Dim],
    base: Mapping[str, Any],
    gwhere: str,
    problems: list[str],
) -> list[Cell]:
    """The product of `dims` over `base`, per-model blocks applied, exclusions dropped."""
    per_model: Mapping[str, Any] = g.get("per_model", {})
    rules: list[Mapping[str, Any]] = g.get("exclude", [])
    used: set[int] = set()
    models: set[str] = set()
    tables = []
    for combo in itertools.product(*(d.values for d in dims)):
        t = dict(base)
        for dim, values in zip(dims, combo, strict=True):
            for key, value in zip(dim.keys, values, strict=True):
                t = merge(t, nest(key, value))
        model = t.get("model")
        if isinstance(model, str):
            models.add(model)
            if model in per_model:
                t = merge(t, per_model[model])
        hits = [i for i, rule in enumerate(rules) if _matches(t, rule)]
        used.update(hits)
        if not hits:
            tables.append(t)
    for i, rule in enumerate(rules):
        if i not in used:
            problems.append(
                f"{gwhere}exclude[{i}]: matches no trial of this grid; check its keys and "
                f"values. Received: {dict(rule)!r}"
            )
    for name in per_model:
        if name not in models:
            problems.append(
                f"{gwhere}per_model.{name}: no trial of this grid has model {name!r}."
                f"{did_you_mean(name, models)}"
            )
    if not tables and not rules:
        return []
    if not tables:
        problems.append(f"{gwhere}exclude: removes every trial of this grid.")
    return _named(g, dims, tables, gwhere, problems)


def _matches(t: Mapping[str, Any], rule: Mapping[str, Any]) -> bool:
    for key, want in rule.items():
        found, value = get_path(t, key)
        if not found or not _same(value, want):
            return False
    return True


def _named(
    g: Mapping[str, Any],
    dims: list[_Dim],
    tables: list[dict[str, Any]],
    gwhere: str,
    problems: list[str],
) -> list[Cell]:
    default = g.get("name") or default_template(dims)
    cells = []
    for t in tables:
        template = t.pop("name", default)  # set by a per_model block
        name, problem = render(template, t)
        if problem:
            problems.append(f"{gwhere}name: {s.end(problem)} Received: name={template!r}")
            return []
        seeds = seeds_of(t)
        if not _name_ok(name, seeds, gwhere, problems):
            return []
        table = {k: v for k, v in t.items() if k not in SEED_KEYS}
        table["seed"] = t.get("seed", 0)
        cells.append(Cell(f'{gwhere}trial "{name}": ', name, table, seeds))
    return cells


def _name_ok(name: str, seeds: Sequence[int] | None, where: str, problems: list[str]) -> bool:
    """The trial's name, with the longest "-s<seed>" it gets, fits the ledger and a file."""
    # a range (repeats = N) is never walked: N may be 10**18, refused later by the limit
    biggest = (seeds[-1] if isinstance(seeds, range) else max(seeds)) if seeds else None
    suffix = f"-s{biggest}" if biggest is not None else ""
    problem = name_problem(name + suffix)
    if problem is not None:
        with_seed = f" with the seed suffix {suffix!r}" if suffix else ""
        problems.append(
            f"{where}name{with_seed}: {problem}. Received: name={shown_name(name + suffix)}"
        )
    return problem is None


def default_template(dims: list[_Dim]) -> str:
    """'{model}' plus '-{key}' for every varied key whose values are plain scalars."""
    keys = [
        k
        for d in dims
        for i, k in enumerate(d.keys)
        if all(isinstance(v[i], _SCALARS) for v in d.values)
    ]
    if "model" not in keys:
        keys.insert(0, "model")
    return "-".join(f"{{{k}}}" for k in keys)
