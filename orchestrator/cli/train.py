"""`orch train MODEL`: one trial in this process, without Ray — for debugging a recipe.

The trial is built through the same validation as a job file, so a bad flag gets the same
one-line error; it checkpoints under the same content key, so a second `orch train` with
the same settings resumes where the first stopped (and `orch submit` of an equal trial
would continue from it too).
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import typer

from orchestrator.cli.render import console
from orchestrator.cli.text import safe
from orchestrator.errors import SpecError
from orchestrator.protocol import EpochReport, Report, TrialEnd

# What `orch train` honours of a trial (one trial, in this process, without Ray). The rest
# would be silently ignored: seeds/repeats make several trials, resources other than
# cpus/timeout_s are Ray's scheduling, reference only feeds the benchmark table.
TRAIN_KEYS = {
    "name": None,
    "model_args": None,
    "dataset": None,
    "data": None,
    "epochs": None,
    "batch_size": None,
    "seed": None,
    "recipe": None,
    "checkpoint": None,
    "resources": {"cpus", "timeout_s"},
}
_IGNORED_HINT = {
    "seeds": "one `orch train` per seed (--seed N), or a job file with seeds for `orch submit`",
    "repeats": "one `orch train` per seed (--seed N), or a job file for `orch submit`",
    "reference": "a job file: the reference only feeds `orch table`",
}


def _parse_sets(sets: list[str]) -> dict[str, Any]:
    """['recipe.lr=0.1', 'model_args.depth=20'] -> nested dict; values are TOML values."""
    out: dict[str, Any] = {}
    for item in sets:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key or any(not part.strip() for part in key.split(".")):
            raise SpecError(f"--set: expected KEY=VALUE, e.g. recipe.lr=0.1. Received: {item!r}")
        try:
            value = tomllib.loads(f"v = {raw}")["v"]
        except tomllib.TOMLDecodeError:
            value = raw  # a bare word: take it as a string (recipe.augment=standard)
        *parents, leaf = [p.strip() for p in key.split(".")]
        node = out
        for i, p in enumerate(parents):
            child = node.setdefault(p, {})
            if not isinstance(child, dict):
                set_as = ".".join(parents[: i + 1])
                raise SpecError(
                    f"--set {item}: {set_as} was already set to {child!r} by an earlier "
                    f"--set, which is not a table. Set either {set_as}=... or {key}=..., "
                    "not both."
                )
            node = child
        if leaf in node and not isinstance(node[leaf], dict):
            raise SpecError(
                f"--set {item}: {key} was already set to {node[leaf]!r} by an earlier "
                "--set. Give each key once."
            )
        if isinstance(node.get(leaf), dict):  # a table would replace the keys set before
            raise SpecError(
                f"--set {item}: {key} already has keys set by an earlier --set "
                f"({', '.join(sorted(node[leaf]))}). Set either {key}=... or {key}.KEY=..., "
                "not both."
            )
        node[leaf] = value
    _check_train_keys(out)
    return out


def _check_train_keys(sets: dict[str, Any]) -> None:
    """Refuse a key `orch train` would accept and then ignore."""
    if "model" in sets:  # the argument names it, and the trial after it
        raise SpecError(
            f"--set model: the MODEL argument names the model. Run `orch train "
            f"{sets['model']}` instead."
        )
    for top, value in sets.items():
        if top not in TRAIN_KEYS:
            hint = _IGNORED_HINT.get(top)
            fix = f"Use {hint}." if hint else f"orch train takes: {', '.join(sorted(TRAIN_KEYS))}."
            raise SpecError(
                f"--set {top}: not used by `orch train` (one trial, here, without Ray). {fix}"
            )
        allowed = TRAIN_KEYS[top]
        if allowed is None or not isinstance(value, dict):
            continue
        for sub in value:
            if sub not in allowed:
                raise SpecError(
                    f"--set {top}.{sub}: not used by `orch train` (Ray schedules trials by "
                    f"it). orch train takes {', '.join(f'{top}.{a}' for a in sorted(allowed))}."
                )


# Options that set a trial key, and the key they set.
OPTION_KEYS = {
    "dataset": "dataset",
    "data_dir": "data.data_dir",
    "epochs": "epochs",
    "batch_size": "batch_size",
    "seed": "seed",
    "lr": "recipe.lr",
    "train_size": "data.train_size",
}


def _check_not_given_twice(ctx: typer.Context, sets: dict[str, Any]) -> None:
    """`--epochs 5 --set epochs=7`: two values for one key; refused, not one silently."""
    for param, key in OPTION_KEYS.items():
        node: Any = sets
        for part in key.split("."):
            node = node.get(part, {}) if isinstance(node, dict) else {}
        source = ctx.get_parameter_source(param)  # typed on the command line, or a default
        if not isinstance(node, dict) and getattr(source, "name", "") == "COMMANDLINE":
            option = "--" + param.replace("_", "-")
            raise SpecError(
                f"--set {key}={node!r} and {option} {ctx.params[param]} both set {key}. "
                "Give it once."
            )


def train(
    ctx: typer.Context,
    model: str = typer.Argument(..., help="Zoo preset or family (see `orch models`)."),
    dataset: str = typer.Option(
        "digits",
        "--dataset",
        "-d",
        help="digits (bundled), synthetic, cifar10, cifar100, svhn, svhn_extra. CIFAR and "
        "SVHN are fetched into the Keras cache on first use (checked against the published "
        "md5); ORCH_OFFLINE=1 never downloads.",
    ),
    data_dir: Path = typer.Option(
        None,
        "--data-dir",
        help="Folder holding the dataset files (e.g. cifar-10-python.tar.gz). Also: "
        "ORCH_DATA_DIR, or --set data.data_dir=DIR. Default: $ORCH_DATA_DIR, then the Keras "
        "cache ~/.keras/datasets.",
    ),
    epochs: int = typer.Option(3, "--epochs", "-e"),
    batch_size: int = typer.Option(64, "--batch-size", "-b"),
    seed: int = typer.Option(0, "--seed"),
    lr: float = typer.Option(None, "--lr", help="Start learning rate (recipe.lr)."),
    train_size: int = typer.Option(None, "--train-size", help="Stratified training subset."),
    sets: list[str] = typer.Option(
        [], "--set", help="Any trial key as KEY=VALUE (TOML), e.g. recipe.augment=standard."
    ),
    fresh: bool = typer.Option(False, "--fresh", help="Ignore and delete earlier checkpoints."),
    stop_after: int = typer.Option(
        None, "--stop-after", min=1, help="Stop after this many epochs (at least 1)."
    ),
) -> None:
    """Train one trial locally without Ray, printing each epoch."""
    from orchestrator.config import workspace
    from orchestrator.spec.load import deep_merge, parse_job

    trial: dict[str, Any] = {
        **({"name": model} if model.strip() else {}),  # no name: one error, the model's
        "model": model,
        "dataset": dataset,
        "epochs": epochs,
        "batch_size": batch_size,
        "seed": seed,
    }
    if lr is not None:
        trial["recipe"] = {"lr": lr}
    if train_size is not None:
        trial["data"] = {"train_size": train_size}
    if data_dir is not None:
        trial.setdefault("data", {})["data_dir"] = str(data_dir)
    given = _parse_sets(sets)
    _check_not_given_twice(ctx, given)
    trial = deep_merge(trial, given)
    spec = parse_job({"job": {"name": "train"}, "trial": [trial]}, "orch train").trials[0]
    ws = workspace()
    from orchestrator.stores import check_storage_writable
    from orchestrator.training.checkpoint import CheckpointStore

    check_storage_writable(ws.storage)  # before an epoch is spent, not after it

    store = CheckpointStore(ws.storage, spec.key)
    if fresh:
        store.clear()
    done = store.epochs()
    console.print(
        f"trial {safe(spec.name)} key {spec.key}: "
        + (f"resuming after epoch {done[-1]}" if done else "from scratch")
    )
    from orchestrator.training.loop import run_trial

    lines = EpochLines(spec.epochs, val_is_test=spec.data.validation_size == 0)

    def show(r: Report) -> None:  # the trial's own reports, typed (no dict to parse)
        if isinstance(r, TrialEnd):
            console.print(f"[red]{safe(r.message)}[/]")
            return
        if isinstance(r, EpochReport):
            for line in lines.of(r):
                console.print(line, highlight=False, markup=False)

    result = run_trial(spec, storage=ws.storage, report=show, stop_after=stop_after)
    if result.diverged:
        raise typer.Exit(1)


class EpochLines:
    """`orch train`'s epoch lines: a header once, then one line per epoch in fixed-width
    columns that fit an 80-column terminal (78 at most up to 999 epochs).

    When validation is the test set (validation_size = 0: the seeds' protocol, the
    quickstart's) the validation numbers are test numbers, so they are headed "test" and
    shown once; the header's note says so. With a held-out validation set the test
    accuracy, measured after the last epoch, gets a line of its own."""

    def __init__(self, epochs: int, *, val_is_test: bool) -> None:
        self.epochs = epochs
        self.val_is_test = val_is_test
        held = "test" if val_is_test else "val"
        self.columns = (
            ("epoch", max(5, 2 * len(str(epochs)) + 1)),
            ("loss", 9),
            ("train acc", 9),
            (f"{held} loss", 9),
            (f"{held} acc", 8),
            ("lr", 8),
            ("time", 8),
            ("img/s", 6),
        )
        self.header_shown = False

    def header(self) -> list[str]:
        note = (
            "validation set = test set (the seeds' protocol): test acc after every epoch"
            if self.val_is_test
            else "test acc: measured once, after the last epoch"
        )
        return [note, self._row(name for name, _ in self.columns)]

    def of(self, r: EpochReport) -> list[str]:
        """The lines to print for one report (the header before the first)."""
        out = [] if self.header_shown else self.header()
        self.header_shown = True
        if r.loss is not None or r.val_accuracy is not None:
            time = None if r.epoch_time_s is None else f"{r.epoch_time_s:.1f} s"
            speed = None if r.images_per_s is None else f"{r.images_per_s:.0f}"
            cells = [
                f"{r.epochs_done}/{self.epochs}",
                _num(r.loss),
                _pct(r.accuracy),
                _num(r.val_loss),
                _pct(r.val_accuracy),
                None if r.lr is None else f"{r.lr:.3g}",
                time,
                speed,
            ]
            out.append(self._row(c or "-" for c in cells))
        if r.test_accuracy is not None and not (self.val_is_test and r.val_accuracy is not None):
            # held-out validation: the test set's one measurement; validation on the test set:
            # only a trial restarted after its last epoch reports the test alone
            loss = "" if r.test_loss is None else f" (test loss {_num(r.test_loss)})"
            out.append(f"test accuracy {_pct(r.test_accuracy)}{loss} after {r.epochs_done} epochs")
        return out

    def _row(self, cells: Iterable[str]) -> str:
        return "  ".join(c.rjust(w) for c, (_, w) in zip(cells, self.columns, strict=True))


def _num(v: float | None) -> str:
    """At most 9 characters: 0.1234, 123.4567, then 1.235e+04 (a loss that blows up)."""
    if v is None:
        return "-"
    return f"{v:.4f}" if abs(v) < 1000 else f"{v:.3e}"


def _pct(v: float | None) -> str:
    return "-" if v is None else f"{v:.2%}"
