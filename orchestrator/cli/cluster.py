"""`orch cluster check`: what the Ray cluster offers per GPU type, and whether every node
reaches orch's storage path."""

from __future__ import annotations

import math

import typer
from rich.markup import escape
from rich.table import Table

from orchestrator.cli.render import console
from orchestrator.config import workspace
from orchestrator.errors import OrchestratorError, did_you_mean
from orchestrator.scheduling.adapters.address import given

ACTIONS = ("check",)


def cluster(
    action: str = typer.Argument(..., help="What to do: check.", show_default=False),
    address: str = typer.Option(
        None,
        "--address",
        callback=given,
        help="Ray cluster address; default: the workspace's (ORCH_RAY_ADDRESS).",
    ),
    storage: str = typer.Option(
        None, "--storage", help="Storage path or URI to check; default: the workspace's."
    ),
    timeout: float = typer.Option(
        60.0, "--timeout", help="Seconds to wait for the nodes to answer the storage probe."
    ),
) -> None:
    """Inspect the Ray cluster: GPU types, nodes, GPUs, CPUs, memory; shared storage."""
    if action not in ACTIONS:
        raise OrchestratorError(
            f"orch cluster: unknown action {action!r}.{did_you_mean(action, ACTIONS)} "
            f"Allowed: {', '.join(ACTIONS)}."
        )
    if not (math.isfinite(timeout) and timeout > 0):  # checked before Ray starts
        raise OrchestratorError(
            f"--timeout: must be a number of seconds > 0. Received: --timeout={timeout:g}"
        )
    ws = workspace()
    source = "--address" if address else ws.origin("ray_address")
    address = address or ws.ray_address
    storage = storage or ws.storage
    from orchestrator.scheduling.adapters.runtime import connect, shutdown

    connect(address, source=source)  # bounded; one line if it does not answer or refuses
    try:
        ok = check(address, storage, timeout)
    finally:
        shutdown()
    if not ok:
        raise typer.Exit(1)


def check(address: str, storage: str, timeout_s: float) -> bool:
    """Prints the report for the connected cluster; False when storage is not shared."""
    from orchestrator.scheduling.adapters.inventory import check_storage, snapshot, summarize

    nodes = snapshot()
    summaries = summarize(nodes)
    where = "an embedded local Ray (this machine only)" if address == "local" else address
    gpus, cpus = sum(s.gpus for s in summaries), sum(s.cpus for s in summaries)
    console.print(
        f"Ray cluster at {escape(where)}: {len(nodes)} node(s), {_num(gpus)} GPU(s), "
        f"{_num(cpus)} CPU(s)"
    )
    table = Table(title="per GPU type", title_justify="left")
    for col in ("GPU type", "nodes", "GPUs", "CPUs", "memory", "largest node"):
        table.add_column(col, justify="left" if col in ("GPU type", "largest node") else "right")
    for s in summaries:
        big = s.largest
        table.add_row(
            s.gpu_type,
            str(s.nodes),
            _num(s.gpus),
            _num(s.cpus),
            f"{s.memory_gb:.0f} GB",
            f"{big.address} ({_num(big.gpus)} GPUs, {_num(big.cpus)} CPUs, {big.memory_gb:.0f} GB)",
        )
    console.print(table)
    if any(s.gpu_type == "unlabelled" for s in summaries):
        console.print(
            "[yellow]Nodes with GPUs but no GPU type: start them with "
            "cluster/start-worker.sh (label orch/gpu-type) so trials can ask for a type.[/]"
        )

    report = check_storage(storage, nodes, timeout_s=timeout_s)
    verdict = "[green]shared[/]" if report.ok else "[red]NOT shared[/]"
    console.print(f"storage {escape(storage)}: {verdict}: {escape(report.detail)}")
    if report.probes:
        per_node = Table(title="storage read from each node", title_justify="left")
        for col in ("node", "address", "host", "GPU type", "reads storage"):
            per_node.add_column(col)
        for p in report.probes:
            per_node.add_row(
                p.node.node_id[:12],
                p.node.address,
                p.hostname,
                p.node.gpu_type,
                "yes" if p.readable else f"[red]no[/]: {escape(p.detail)}",
            )
        console.print(per_node)
    if not report.ok:
        console.print(
            "Multi-node trials need storage every node reaches: an NFS path mounted at the "
            "same place on every node, or an s3:// / gs:// URI (ORCH_STORAGE)."
        )
    # Datasets per node, as orch submit checks them before launch (looks, fetches nothing).
    from orchestrator.scheduling.adapters.datacheck import FETCHED, check_datasets, describe

    for line in describe(check_datasets(FETCHED, nodes, timeout_s=timeout_s)):
        console.print(escape(line), soft_wrap=True)
    return report.ok


def _num(x: float) -> str:
    return f"{x:g}"
