"""`orch train MODEL`: one trial in this process, without Ray — for debugging a recipe.

The trial is built through the same validation as a job file, so a bad flag gets the same
one-line error; it checkpoints under the same content key, so a second `orch train` with
the same settings resumes where the first stopped (and `orch submit` of an equal trial
would continue from it too).
"""

from __future__ import annotations

import tomllib
from typing import Any

import typer

from orchestrator.cli.render import console
from orchestrator.errors import SpecError


def _parse_sets(sets: list[str]) -> dict[str, Any]:
    """['recipe.lr=0.1', 'model_args.depth=20'] -> nested dict; values are TOML values."""
    out: dict[str, Any] = {}
    for item in sets:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise SpecError(f"--set: expected KEY=VALUE, e.g. recipe.lr=0.1. Received: {item!r}")
        try:
            value = tomllib.loads(f"v = {raw}")["v"]
        except tomllib.TOMLDecodeError:
            value = raw  # a bare word: take it as a string (recipe.augment=standard)
        node = out
        *parents, leaf = key.strip().split(".")
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = value
    return out


def train(
    model: str = typer.Argument(..., help="Zoo preset or family (see `orch models`)."),
    dataset: str = typer.Option("digits", "--dataset", "-d"),
    epochs: int = typer.Option(3, "--epochs", "-e"),
    batch_size: int = typer.Option(64, "--batch-size", "-b"),
    seed: int = typer.Option(0, "--seed"),
    lr: float = typer.Option(None, "--lr", help="Start learning rate (recipe.lr)."),
    train_size: int = typer.Option(None, "--train-size", help="Stratified training subset."),
    sets: list[str] = typer.Option(
        [], "--set", help="Any trial key as KEY=VALUE (TOML), e.g. recipe.augment=standard."
    ),
    fresh: bool = typer.Option(False, "--fresh", help="Ignore and delete earlier checkpoints."),
    stop_after: int = typer.Option(None, "--stop-after", help="Stop after this many epochs."),
) -> None:
    """Train one trial locally without Ray, printing each epoch."""
    from orchestrator.config import workspace
    from orchestrator.spec.load import deep_merge, parse_job

    trial: dict[str, Any] = {
        "name": model,
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
    trial = deep_merge(trial, _parse_sets(sets))
    spec = parse_job({"job": {"name": "train"}, "trial": [trial]}, "orch train").trials[0]
    ws = workspace()
    from orchestrator.training.checkpoint import CheckpointStore

    store = CheckpointStore(ws.storage, spec.key)
    if fresh:
        store.clear()
    done = store.epochs()
    console.print(
        f"trial {spec.name} key {spec.key}: "
        + (f"resuming after epoch {done[-1]}" if done else "from scratch")
    )
    from orchestrator.training.loop import run_trial

    def show(m: dict[str, Any]) -> None:
        if m.get("diverged"):
            console.print(f"[red]{m['message']}[/]")
            return
        parts = [f"epoch {m['epochs_done']}/{spec.epochs}"]
        parts += [
            f"{k} {m[k]:.4f}"
            for k in ("loss", "accuracy", "val_loss", "val_accuracy", "lr", "test_accuracy")
            if k in m
        ]
        if "epoch_time_s" in m:
            parts.append(f"{m['epoch_time_s']:.1f} s, {m['images_per_s']:.0f} img/s")
        console.print("  ".join(parts))

    result = run_trial(spec, storage=ws.storage, report=show, stop_after=stop_after)
    if result.diverged:
        raise typer.Exit(1)
