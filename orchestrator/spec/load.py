"""TOML job file -> validated JobSpec. The only code in orch that reads job files.

Layout of a job file (docs/job_files.md has the full guide)::

    [job]                      name, description, max_concurrent, experiment, migrate
    [cluster]                  optional: [[cluster.node_type]] the job expects
    [defaults]                 any trial key; inherited by every trial and grid
    [[trial]]                  one trial (or one per seed): name, model, dataset, ...
    [[grid]]                   a product of axes, zipped lists, per-model blocks, exclusions

Trials come out in file order: the [[trial]] entries, then each [[grid]] block's cells
(first axis slowest), each cell's seeds innermost. Every problem in the file is collected
and reported together in one SpecError, each line naming the file, the trial or grid block
and the key path.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from orchestrator.config import toml_text
from orchestrator.errors import SpecError
from orchestrator.spec import grid as g
from orchestrator.spec import schema as s
from orchestrator.spec.checks import Checked, check_cell, resolved_recipe
from orchestrator.spec.cluster import parse_cluster
from orchestrator.spec.fields import GRID, PER_MODEL, TOP, TRIAL
from orchestrator.spec.keys import trial_key
from orchestrator.spec.model import (
    CheckpointPolicy,
    DataSpec,
    JobSpec,
    NodeType,
    Recipe,
    Reference,
    Resources,
    TrialSpec,
    freeze,
)
from orchestrator.spec.names import name_problem, shown_name

_HEADER = re.compile(r"^[ \t]*\[\[[ \t]*(trial|grid)[ \t]*\]\]", re.MULTILINE)
deep_merge = g.merge  # tables merge key by key; recipe.schedule and seeding keys replace
_INT64 = 2**63


def load_job(path: str | Path) -> JobSpec:
    """Read, validate and expand a job file. Raises SpecError listing every problem."""
    return load_job_text(path)[0]


def load_job_text(path: str | Path) -> tuple[JobSpec, str]:
    """`load_job`, and the text it was read from: what the ledger keeps as the job's spec.
    The file is read once: a second read could see another file, or nothing (`<(...)`)."""
    path = Path(path)
    shown = str(path)
    try:
        text = toml_text(_read_bounded(path, shown))
        raw = tomllib.loads(text)
    except FileNotFoundError:
        raise SpecError(f"{shown}: no such job file. Check the path.") from None
    except IsADirectoryError:
        raise SpecError(f"{shown}: is a folder, not a job file. Name the .toml file.") from None
    except UnicodeError as e:  # toml_text's: not UTF-8 text
        raise SpecError(f"{shown}: {e}.") from None
    except OSError as e:
        raise SpecError(
            f"{shown}: cannot read the job file ({e.strerror or e}). Check the path and its "
            "permissions."
        ) from None
    except tomllib.TOMLDecodeError as e:
        raise SpecError(f"{shown}: not valid TOML: {e}") from None
    except RecursionError:
        raise SpecError(f"{shown}: not valid TOML: nested too deeply.") from None
    return parse_job(raw, shown, default_name=path.stem, order=_block_order(text, raw)), text


MAX_JOB_FILE_BYTES = 16 << 20  # a 10,000-trial job file is a few MB


def _read_bounded(path: Path, shown: str) -> bytes:
    """The file's bytes, at most MAX_JOB_FILE_BYTES (read no further: bounded memory).
    Opened without blocking, so a named pipe nobody writes to reads as empty instead of
    hanging; a pipe with a writer (`orch validate <(...)`) is read to its end."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    with os.fdopen(fd, "rb") as f:
        os.set_blocking(fd, True)
        data = f.read(MAX_JOB_FILE_BYTES + 1)
    if len(data) > MAX_JOB_FILE_BYTES:
        raise SpecError(
            f"{shown}: larger than {MAX_JOB_FILE_BYTES >> 20} MiB, which is no job file (10,000 "
            "trials take a few MB). Check that this is the file you meant."
        )
    return data


def _block_order(text: str, raw: Mapping[str, Any]) -> list[str] | None:
    """ "trial" / "grid" in the order their [[...]] headers appear, so that trials come out
    in file order even when explicit trials and grids alternate. None when the headers do
    not account for every block (e.g. `trial = [{...}]` written inline)."""
    order = _HEADER.findall(text)
    for kind in ("trial", "grid"):
        blocks = raw.get(kind)
        n = len(blocks) if isinstance(blocks, list) else 0
        if order.count(kind) != n:
            return None
    return order


def parse_job(
    raw: Mapping[str, Any],
    shown: str,
    default_name: str = "job",
    order: list[str] | None = None,
) -> JobSpec:
    """Validate and expand a parsed job file; `shown` names it in messages.

    `order` lists "trial" / "grid" per block in file order (`load_job` reads it from the
    text); without it, the [[trial]] entries come first, then the [[grid]] blocks.
    """
    where = f"{shown}: "
    if not isinstance(raw, Mapping):
        raise SpecError(f"{where}must be a TOML document (a table). Received: {s.shown(raw)}")
    problems: list[str] = []
    _huge_numbers(raw, where, "", problems, depth=0)
    if problems:  # nothing else can be trusted to compare or convert these
        raise SpecError(problems)
    s.validate_table(raw, TOP, where, "", problems)
    job = _table(raw, "job")
    defaults = _table(raw, "defaults")
    g.seeding_problems(defaults, f"{where}defaults.", problems)
    cluster = parse_cluster(raw.get("cluster"), where, problems)
    trusted = not problems  # [defaults] is sound, so cells built on it can be checked
    # With a broken [defaults] the blocks are still checked, but not expanded on top of it.
    cells = _cells(raw, defaults if trusted else None, where, problems, order)
    if not cells and not problems:
        problems.append(f"{where}no trials: add at least one [[trial]] or [[grid]] with a model.")
    total = sum(len(c.seeds or (0,)) for c in cells)
    if total > g.MAX_TRIALS:
        problems.append(
            f"{where}expands to {total} trials, more than {g.MAX_TRIALS}; check axes, seeds "
            "and repeats."
        )
    trials = _build_all(cells, cluster, problems) if trusted and total <= g.MAX_TRIALS else []
    name = job.get("name", default_name)
    if isinstance(name, str) and (problem := name_problem(name)) is not None:
        key = "job.name" if "name" in job else "job.name (the file's name)"
        problems.append(f"{where}{key}: {problem}. Received: name={shown_name(name)}")
    experiment = job.get("experiment")  # an MLflow experiment and a ledger column, as a name
    if isinstance(experiment, str) and (problem := name_problem(experiment)) is not None:
        problems.append(
            f"{where}job.experiment: {problem}. Received: experiment={shown_name(experiment)}"
        )
    if problems:
        raise SpecError(list(dict.fromkeys(problems)))  # each distinct message once
    return JobSpec(
        name=str(job.get("name", default_name)),
        path=shown,
        trials=tuple(trials),
        description=str(job.get("description", "")),
        max_concurrent=job.get("max_concurrent"),
        experiment=str(job.get("experiment", "")),
        cluster=cluster,
        migrate=job.get("migrate", True),
    )


def _table(raw: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = raw.get(key, {})
    return value if isinstance(value, Mapping) else {}


def _huge_numbers(v: Any, where: str, path: str, problems: list[str], depth: int) -> None:
    """TOML integers are 64-bit; bigger ones (or 200-deep nesting) are refused up front."""
    if depth > 64:
        problems.append(f"{where}{path or 'document'}: nested too deeply.")
    elif isinstance(v, Mapping):
        for k, x in v.items():
            _huge_numbers(x, where, f"{path}.{k}" if path else str(k), problems, depth + 1)
    elif isinstance(v, list | tuple):
        for i, x in enumerate(v):
            _huge_numbers(x, where, f"{path}[{i}]", problems, depth + 1)
    elif isinstance(v, int) and not isinstance(v, bool) and not -_INT64 <= v < _INT64:
        problems.append(f"{where}{path}: integers must fit in 64 bits. Received: {v}")


def _cells(
    raw: Mapping[str, Any],
    defaults: Mapping[str, Any] | None,
    where: str,
    problems: list[str],
    order: list[str] | None,
) -> list[g.Cell]:
    """Every [[trial]] and [[grid]] block as cells (schema-checked sources), in `order`."""
    blocks: dict[str, list[Any]] = {}
    for kind in ("trial", "grid"):
        value = raw.get(kind, [])
        blocks[kind] = value if s.is_tables(value) is None else []
    if len(blocks["trial"]) > g.MAX_TRIALS:  # counted before any is checked: bounded time
        problems.append(
            f"{where}has {len(blocks['trial'])} [[trial]] tables, more than {g.MAX_TRIALS} "
            "trials; split the job or use a [[grid]]."
        )
        return []
    if order is None:
        order = ["trial"] * len(blocks["trial"]) + ["grid"] * len(blocks["grid"])
    cells: list[g.Cell] = []
    seen = {"trial": 0, "grid": 0}
    over = False
    count = 0  # trials so far (kept as it grows: a sum per block would be quadratic)
    for kind in order:
        i = seen[kind]
        seen[kind] += 1
        # Trials so far: a grid that would pass the limit is refused before it expands.
        # After one grid passed the limit, later ones are checked but neither expanded
        # nor counted again (one message, not one per grid).
        budget = g.MAX_TRIALS - count if not over else -1
        if kind == "grid":
            grid = _grid(blocks["grid"][i], i + 1, defaults, where, problems, budget)
            over = over or grid is None
            new = grid or []
        else:
            cell = _trial(blocks["trial"][i], i + 1, defaults, where, problems)
            new = [cell] if cell else []
        cells += new
        count += sum(len(c.seeds or (0,)) for c in new)
    return cells


def _trial(
    t: Mapping[str, Any],
    index: int,
    defaults: Mapping[str, Any] | None,
    where: str,
    problems: list[str],
) -> g.Cell | None:
    label = next((t[k] for k in ("name", "model") if isinstance(t.get(k), str)), f"#{index}")
    twhere = f'{where}trial "{label}": '
    before = len(problems)
    s.validate_table(t, TRIAL, twhere, "", problems)
    if len(problems) > before or defaults is None:
        return None
    return g.expand_trial(t, defaults, where, twhere, problems)


def _grid(
    block: Mapping[str, Any],
    index: int,
    defaults: Mapping[str, Any] | None,
    where: str,
    problems: list[str],
    budget: int = g.MAX_TRIALS,
) -> list[g.Cell] | None:
    """The block's cells; None when expanding it would pass the trial limit (`budget`: the
    trials it may add; < 0: the limit is passed already, so the block is only checked)."""
    name = block.get("name")
    gwhere = f"{where}grid #{index}" + (f' "{name}"' if isinstance(name, str) else "") + ": "
    before = len(problems)
    s.validate_table(block, GRID, gwhere, "", problems)
    g.seeding_problems(block, gwhere, problems)
    per_model = block.get("per_model", {})
    for model, sub in per_model.items() if isinstance(per_model, Mapping) else ():
        pwhere = f"{gwhere}per_model.{model}: "
        if (err := s.is_table(sub)) is not None:
            problems.append(f"{pwhere}{err}. Received: {s.shown(sub)}")
            continue
        s.validate_table(sub, PER_MODEL, pwhere, "", problems)
        g.seeding_problems(sub, pwhere, problems)
    rules = block.get("exclude", [])
    for j, rule in enumerate(rules if isinstance(rules, list) else []):
        if isinstance(rule, Mapping):
            _check_rule(rule, f"{gwhere}exclude[{j}]: ", problems)
    dims = g.grid_dimensions(block, gwhere, problems) if len(problems) == before else []
    if len(problems) > before or defaults is None:
        return []
    if (size := g.grid_size(dims)) > g.MAX_TRIALS:
        problems.append(f"{gwhere}axes and zip make {size} cells, more than {g.MAX_TRIALS}.")
        return []
    base = g.merge(defaults, {k: v for k, v in block.items() if k not in g.GRID_ONLY})
    # Counted, not built: cells times the most seeds any of its cells can have.
    bound = size * g.max_seeds(base, per_model if isinstance(per_model, Mapping) else {})
    if budget < 0:
        return None
    if bound > budget:
        problems.append(
            f"{gwhere}makes up to {bound} trials, and with the {g.MAX_TRIALS - budget} before "
            f"it the job would pass {g.MAX_TRIALS} trials; check axes, seeds and repeats."
        )
        return None
    return g.grid_cells(block, dims, base, gwhere, problems)


def _check_rule(rule: Mapping[str, Any], rwhere: str, problems: list[str]) -> None:
    if not rule:
        problems.append(f"{rwhere}an empty rule would exclude every trial; give key = value pairs.")
    for key, value in rule.items():
        if not all(part.strip() for part in str(key).split(".")):
            problems.append(f"{rwhere}not a key path. Received: {key!r}")
        elif key not in g.SEED_KEYS:
            s.validate_table(g.nest(key, value), g.TRIAL_KEYS, rwhere, "", problems)


def _build_all(
    cells: list[g.Cell], cluster: tuple[NodeType, ...], problems: list[str]
) -> list[TrialSpec]:
    trials: list[TrialSpec] = []
    seen: dict[str, str] = {}
    named: set[str] = set()
    for cell in cells:
        checked = check_cell(cell, cluster, problems)
        if checked is None:
            continue
        base = build_trial(cell.table, name=cell.group, checked=checked)
        for seed in cell.seeds or (None,):
            trial = (
                base
                if seed is None
                else _with_key(
                    replace(base, name=f"{cell.group}-s{seed}", seed=seed, group=cell.group)
                )
            )
            if trial.key in seen:
                problems.append(
                    f'{cell.where}same model, data, recipe and seed as trial "{seen[trial.key]}" '
                    f"(content key {trial.key}). Remove one or change its seed."
                )
            if trial.name in named:
                problems.append(
                    f'{cell.where}name "{trial.name}" is used by more than one trial. Names '
                    "must be unique; a grid's name template must tell its cells apart "
                    '(e.g. "{model}-{dataset}").'
                )
            seen.setdefault(trial.key, trial.name)
            named.add(trial.name)
            trials.append(trial)
    return trials


def build_trial(
    t: Mapping[str, Any], name: str, group: str = "", checked: Checked | None = None
) -> TrialSpec:
    """A checked, merged trial table -> TrialSpec with its content key. `checked` holds
    what `check_cell` parsed (the schedule); without it the cell is checked here."""
    if checked is None:
        problems: list[str] = []
        checked = check_cell(g.Cell("", name, dict(t), None), (), problems)
        if checked is None:
            raise SpecError(problems)
    recipe = resolved_recipe(t)
    recipe["schedule"] = freeze(recipe["schedule"]) if recipe.get("schedule") else ()
    recipe["lr_schedule"] = checked.schedule
    resources = dict(t.get("resources", {}))
    resources["gpu_type"] = _gpu_types(resources.get("gpu_type"))
    reference = dict(t.get("reference", {}))
    if reference.get("error") is not None and reference.get("accuracy") is None:
        reference["accuracy"] = round(100.0 - reference["error"], 6)
    trial = TrialSpec(
        name=name,
        group=group or name,
        model=t["model"],
        model_args=freeze(t.get("model_args")),
        data=DataSpec(name=t["dataset"], **t.get("data", {})),
        epochs=t["epochs"],
        batch_size=t.get("batch_size", 128),
        seed=t.get("seed", 0),
        recipe=Recipe(**recipe),
        resources=Resources(**resources),
        reference=Reference(**reference),
        checkpoint=CheckpointPolicy(**t.get("checkpoint", {})),
    )
    return _with_key(trial)


def _gpu_types(raw: Any) -> tuple[str, ...]:
    if raw is None:
        return ()
    types = (raw,) if isinstance(raw, str) else tuple(raw)
    return () if any(t.strip().lower() == "any" for t in types) else types


def _with_key(trial: TrialSpec) -> TrialSpec:
    return replace(trial, key=trial_key(trial))


__all__ = ["build_trial", "deep_merge", "load_job", "parse_job"]
