"""What the Ray cluster has free now, and what other jobs are waiting for (read from Ray).

`Placement` (placement.py) binds and moves trials on these figures: the free GPUs per type,
the free (GPUs, CPUs) per node (a trial moves only where one node holds all of it), and the
GPU requests of other jobs Ray has not placed yet (a move must not take a GPU one of them
waits for). Each is a plain function of the cluster's nodes, so tests hand Placement their
own.
"""

from __future__ import annotations

from collections.abc import Sequence

from orchestrator.scheduling.policy.cluster import NodeInfo
from orchestrator.scheduling.policy.migrate import Waiting, waiting_of_group, waiting_of_request
from orchestrator.scheduling.policy.placement import request_types


def free_gpus_by_type(nodes: Sequence[NodeInfo]) -> dict[str, float]:
    """Unused GPUs per type now, from Ray's per-node available resources."""
    from ray._private.state import available_resources_per_node

    available = available_resources_per_node()
    out: dict[str, float] = {}
    for n in nodes:
        if n.gpus and n.node_id in available:
            out[n.gpu_type] = out.get(n.gpu_type, 0.0) + float(available[n.node_id].get("GPU", 0))
    return out


def free_by_node(nodes: Sequence[NodeInfo]) -> dict[str, tuple[float, float]]:
    """Unused (GPUs, CPUs) per GPU node now, by node id, from Ray: a trial moves to a type
    only if one node of it has room for the whole trial (Ray places it on one node)."""
    from ray._private.state import available_resources_per_node

    available = available_resources_per_node()
    out = {}
    for n in nodes:
        if n.gpus and n.node_id in available:
            have = available[n.node_id]
            out[n.node_id] = (float(have.get("GPU", 0)), float(have.get("CPU", 0)))
    return out


def pending_elsewhere(nodes: Sequence[NodeInfo]) -> list[Waiting]:
    """GPU requests of other jobs (another orch job, a user's work) that Ray has not placed
    yet: the bundles without a node of their placement groups still PENDING (or
    RESCHEDULING after a node loss), and GPU tasks and actors outside any group
    (`_pending_tasks`). This job's own are its waiting trials, counted
    already; a group no node could ever hold (scheduling state INFEASIBLE) takes no freed
    GPU. Ray's public placement_group_table() leaves out the bundles' label selectors, so
    this reads the GCS table itself: one call, ~3 ms for 300 groups (removed ones are
    listed too). A failed read counts nothing: the move is judged as before."""
    import ray

    if not ray.is_initialized():
        return []
    try:
        from ray._private.state import state
        from ray.core.generated.common_pb2 import (  # type: ignore[attr-defined]
            PlacementStrategy,
        )
        from ray.core.generated.gcs_pb2 import (  # type: ignore[attr-defined]
            PlacementGroupStats,
            PlacementGroupTableData,
        )

        own = ray.get_runtime_context().get_job_id()
        raws = state._connect_and_get_accessor().get_placement_group_table()
    except Exception:  # a private API: never let it stop the job
        return []
    known = {n.gpu_type for n in nodes if n.gpus}
    waiting_states = (PlacementGroupTableData.PENDING, PlacementGroupTableData.RESCHEDULING)
    out: list[Waiting] = []
    for raw in raws:
        pg = PlacementGroupTableData.FromString(raw)
        if pg.state not in waiting_states or pg.creator_job_id.hex() == own:
            continue
        if pg.stats.scheduling_state == PlacementGroupStats.INFEASIBLE:
            continue
        bundles = [
            (
                float(b.unit_resources.get("GPU", 0.0)),
                request_types(b.unit_resources, b.label_selector, known),
            )
            for b in pg.bundles
            if not b.node_id
        ]
        out += waiting_of_group(bundles, one_node=pg.strategy == PlacementStrategy.STRICT_PACK)
    return out + _pending_tasks(nodes)


def _pending_tasks(nodes: Sequence[NodeInfo]) -> list[Waiting]:
    """GPU tasks and actors outside placement groups that Ray has not placed yet (a user's
    `num_gpus=1` actor): the cluster's pending resource requests, as the raylets report
    them to the GCS about once a second. This job's trials never appear there (their
    actors ask for their group's bundle resources, not for "GPU"). The report leaves out
    label selectors (waiting_of_request: a `gpu_type:<slug>` resource, else any type)."""
    try:
        import ray
        from ray._raylet import GcsClient  # type: ignore[attr-defined]
        from ray.autoscaler.v2.sdk import get_cluster_resource_state

        gcs = GcsClient(address=ray.get_runtime_context().gcs_address)
        pending = get_cluster_resource_state(gcs).pending_resource_requests
    except Exception:  # a private API: never let it stop the job
        return []
    out: list[Waiting] = []
    for each in pending:
        out += waiting_of_request(dict(each.request.resources_bundle), int(each.count), nodes)
    return out
