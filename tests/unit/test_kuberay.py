"""cluster/kuberay.yaml: a RayCluster whose GPU groups carry orch's GPU type the same way
the on-prem start scripts do (label, num-gpus, gpu_type:<slug> resource)."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import pytest
import yaml

from orchestrator.scheduling.policy.gputypes import LABEL, RESOURCE_PREFIX, slug

MANIFEST = Path(__file__).resolve().parents[2] / "cluster" / "kuberay.yaml"


@pytest.fixture(scope="module")
def cluster() -> dict:
    docs = list(yaml.safe_load_all(MANIFEST.read_text()))
    assert len(docs) == 1
    return docs[0]


def _start_params(params: dict[str, str]) -> tuple[dict[str, str], int, dict[str, float]]:
    """rayStartParams as `ray start` will read them: KubeRay writes `--key=value` into a
    shell command, so the resources value is shell-quoted JSON."""
    from ray._private.label_utils import parse_node_labels_string, validate_node_labels

    assert all(isinstance(v, str) for v in params.values()), params  # KubeRay wants strings
    labels = parse_node_labels_string(params["labels"])
    validate_node_labels(labels)
    resources = {}
    if "resources" in params:
        (text,) = shlex.split(params["resources"])
        resources = json.loads(text)
    return labels, int(params["num-gpus"]), resources


def _gpu_limit(container: dict) -> int:
    res = container["resources"]
    limit = int(res["limits"].get("nvidia.com/gpu", 0))
    assert int(res.get("requests", {}).get("nvidia.com/gpu", limit)) == limit
    return limit


def test_is_a_raycluster(cluster: dict) -> None:
    assert cluster["apiVersion"] == "ray.io/v1" and cluster["kind"] == "RayCluster"
    assert cluster["metadata"]["name"]
    import ray

    assert cluster["spec"]["rayVersion"] == ray.__version__


def test_head_is_a_cpu_node_with_metrics(cluster: dict) -> None:
    head = cluster["spec"]["headGroupSpec"]
    labels, gpus, resources = _start_params(head["rayStartParams"])
    assert labels == {LABEL: "cpu"} and gpus == 0 and resources == {}
    assert head["rayStartParams"]["metrics-export-port"] == "8080"
    (container,) = head["template"]["spec"]["containers"]
    assert _gpu_limit(container) == 0
    ports = {p["containerPort"] for p in container["ports"]}
    assert {6379, 8265, 8080} <= ports


def test_gpu_groups_match_their_hardware(cluster: dict) -> None:
    groups = cluster["spec"]["workerGroupSpecs"]
    assert len(groups) == 2
    gpu_counts = []
    for g in groups:
        labels, gpus, resources = _start_params(g["rayStartParams"])
        spec = g["template"]["spec"]
        (container,) = spec["containers"]
        assert _gpu_limit(container) == gpus > 0, g["groupName"]
        gpu_type = labels[LABEL]
        assert resources == {f"{RESOURCE_PREFIX}{gpu_type}": gpus}, g["groupName"]
        # The node selector's GPU model (feature discovery spells spaces as "-") slugs to
        # the label: the pod lands on the GPUs it claims to have.
        product = spec["nodeSelector"]["nvidia.com/gpu.product"]
        assert slug(product) == gpu_type, g["groupName"]
        assert g["minReplicas"] <= g["replicas"] <= g["maxReplicas"]
        gpu_counts.append((gpu_type, gpus))
    assert sorted(gpu_counts) == [("a100-sxm4-80gb", 8), ("gtx-1080-ti", 4)]


def test_every_pod_shares_storage_and_databases(cluster: dict) -> None:
    pods = [cluster["spec"]["headGroupSpec"]] + cluster["spec"]["workerGroupSpecs"]
    for pod in pods:
        spec = pod["template"]["spec"]
        (container,) = spec["containers"]
        env = {e["name"]: e for e in container["env"]}
        assert {"ORCH_STORAGE", "ORCH_LEDGER_URL", "ORCH_TRACKING_URI"} <= set(env)
        mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
        assert env["ORCH_STORAGE"]["value"].startswith(mounts["orch-shared"])
        volumes = {v["name"]: v for v in spec["volumes"]}
        assert volumes["orch-shared"]["persistentVolumeClaim"]["claimName"]


# The first KubeRay release whose RayCluster has each authOptions field (read off
# ray-operator/apis/ray/v1/raycluster_types.go at its tags: mode in v1.5.1, secretName in
# v1.6.0; v1.5.x names its generated Secret after the cluster).
AUTH_FIELDS_SINCE = {"mode": (1, 5, 1), "secretName": (1, 6, 0)}


def test_every_pod_gets_the_cluster_token(cluster: dict) -> None:
    # KubeRay sets RAY_AUTH_MODE=token and RAY_AUTH_TOKEN from this Secret in every Ray
    # container; Ray 2.60 refuses nodes and drivers without the token.
    auth = cluster["spec"]["authOptions"]
    assert auth["mode"] == "token" and auth["secretName"]
    header = MANIFEST.read_text().split("apiVersion:")[0]
    assert f"secret generic {auth['secretName']} --from-literal=auth_token=" in header


def test_the_stated_operator_version_has_every_auth_field_used(cluster: dict) -> None:
    """The manifest and cluster/README.md name a KubeRay release that knows every
    authOptions field the manifest sets (an older one refuses the unknown field)."""
    needed = max(AUTH_FIELDS_SINCE[k] for k in cluster["spec"]["authOptions"])
    first = MANIFEST.read_text().splitlines()[0]
    stated = re.search(r"KubeRay >= (\d+)\.(\d+)\.(\d+)", first)
    assert stated, first
    assert tuple(map(int, stated.groups())) >= needed, first
    readme = (MANIFEST.parent / "README.md").read_text()
    minimum = re.search(r"KubeRay operator \(≥ (\d+)\.(\d+)\.(\d+)", readme)
    assert minimum and tuple(map(int, minimum.groups())) >= needed
