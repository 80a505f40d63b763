"""`[cluster]`: the node types a job expects, and the contradictions a trial can have with them.

    [[cluster.node_type]]
    name = "1080ti-box"
    gpu_type = "GTX 1080 Ti"
    gpus = 4            # per node
    cpus = 32
    memory_gb = 128
    count = 2           # how many such nodes

A trial contradicts the cluster when no declared node type of an acceptable GPU type can
hold its GPUs, CPUs and memory together, or when it names a GPU type no node type has.
Without a [cluster] section only the request itself is checked (e.g. gpus = 1.5).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from orchestrator.errors import did_you_mean
from orchestrator.spec import schema as s
from orchestrator.spec.fields import NODE_TYPE
from orchestrator.spec.model import NodeType

ANY = "any"


def parse_cluster(raw: Any, where: str, problems: list[str]) -> tuple[NodeType, ...]:
    """The [[cluster.node_type]] entries as NodeTypes (the section's keys already checked)."""
    if not isinstance(raw, Mapping):
        return ()
    entries = raw.get("node_type", [])
    if not isinstance(entries, list) or not all(isinstance(e, Mapping) for e in entries):
        return ()
    if not entries:
        problems.append(f"{where}cluster: declares no node types; add [[cluster.node_type]].")
    nodes: list[NodeType] = []
    for i, e in enumerate(entries):
        label = e.get("name") if isinstance(e.get("name"), str) else f"#{i + 1}"
        nwhere = f'{where}cluster.node_type "{label}": '
        before = len(problems)
        s.validate_table(e, NODE_TYPE, nwhere, "", problems)
        for key in ("name", "cpus"):
            if key not in e:
                problems.append(f"{nwhere}{key}: missing. Every node type needs one.")
        if len(problems) > before:
            continue
        if "gpu_type" in e and not e.get("gpus"):
            problems.append(
                f"{nwhere}gpu_type: a node type without GPUs has no GPU type; set gpus or "
                f"remove gpu_type. Received: gpu_type={e['gpu_type']!r}, gpus={e.get('gpus', 0)}"
            )
            continue
        nodes.append(NodeType(**e))
    names = [n.name for n in nodes]
    for n in sorted({n for n in names if names.count(n) > 1}):
        problems.append(f'{where}cluster.node_type "{n}": name used twice; names must be unique.')
    return tuple(nodes)


def gpu_types(raw: Any, where: str, problems: list[str]) -> tuple[str, ...]:
    """`gpu_type` as an ordered tuple of acceptable types; "any" -> () (any type will do)."""
    if raw is None:
        return ()
    types = [raw] if isinstance(raw, str) else list(raw)
    if any(t.strip().lower() == ANY for t in types):
        if len(types) > 1:
            problems.append(
                f'{where}resources.gpu_type: "any" accepts every type; give it alone or list '
                f"the acceptable types. Received: gpu_type={raw!r}"
            )
        return ()
    if len(set(types)) != len(types):
        problems.append(
            f"{where}resources.gpu_type: names a type twice. Received: gpu_type={raw!r}"
        )
    return tuple(types)


def check_request(
    gpus: float,
    cpus: float,
    memory_gb: float | None,
    types: Sequence[str],
    nodes: Sequence[NodeType],
    where: str,
    problems: list[str],
) -> None:
    """Problems with one trial's resources, alone and against the declared node types."""
    if gpus > 1 and gpus != int(gpus):
        problems.append(
            f"{where}resources.gpus: more than one GPU must be a whole number (a fraction "
            f"shares ONE GPU between trials). Received: gpus={gpus!r}"
        )
    if not nodes:
        return
    unknown = _unknown_types(types, nodes, where, problems)
    ok = [
        n
        for n in nodes
        if (not types or any(_same_type(n.gpu_type, t) for t in types)) and (n.gpus > 0 or not gpus)
    ]
    what = "of an acceptable GPU type " if types else ("with GPUs " if gpus else "")
    if ok:
        _capacity({"gpus": gpus, "cpus": cpus, "memory_gb": memory_gb}, ok, what, where, problems)
    elif gpus and not unknown:
        problems.append(
            f"{where}resources.gpus: no node type {what}in [cluster]. Received: gpus={gpus!r}"
        )


def _unknown_types(
    types: Sequence[str], nodes: Sequence[NodeType], where: str, problems: list[str]
) -> list[str]:
    declared = sorted({n.gpu_type for n in nodes if n.gpu_type})
    unknown = [t for t in types if not any(_same_type(n, t) for n in declared)]
    for t in unknown:
        hint = did_you_mean(t, declared) or (
            f" Declared: {', '.join(declared)}." if declared else " No node type has GPUs."
        )
        problems.append(
            f"{where}resources.gpu_type: no node type in [cluster] has GPU type {t!r}."
            f"{hint} Received: gpu_type={t!r}"
        )
    return unknown


def _capacity(
    wants: dict[str, float | None],
    ok: Sequence[NodeType],
    what: str,
    where: str,
    problems: list[str],
) -> None:
    """Each amount against the largest acceptable node, then all of them on one node."""
    short = False
    for key, need in wants.items():
        have = [getattr(n, key) for n in ok]
        if not need or None in have:
            continue
        if need > (best := max(have)):
            short = True
            problems.append(
                f"{where}resources.{key}: asks for {need:g} but the largest node type {what}"
                f"in [cluster] has {best:g}. Received: {key}={need!r}"
            )
    if not short and not any(_fits(n, **wants) for n in ok):  # type: ignore[arg-type]
        asked = ", ".join(f"{k}={v!r}" for k, v in wants.items() if v)
        problems.append(
            f"{where}resources: no single node type {what}in [cluster] has all of "
            f"{asked} (one trial runs on one node). Received: {asked}"
        )


def _same_type(node_type: str | None, wanted: str) -> bool:
    """As the scheduler places trials: "GTX 1080 Ti" == "gtx-1080-ti", and "A100" accepts
    a node declared "A100-SXM4-80GB" (compared as slugs)."""
    if not node_type:
        return False
    from orchestrator.scheduling.policy.gputypes import slug, type_matches  # pure: names only

    return type_matches(slug(node_type), (slug(wanted),))


def _fits(n: NodeType, gpus: float, cpus: float, memory_gb: float | None) -> bool:
    mem_ok = not memory_gb or n.memory_gb is None or memory_gb <= n.memory_gb
    return gpus <= n.gpus and cpus <= n.cpus and mem_ok
