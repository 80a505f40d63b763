"""dashboards/grafana/orch.json: a valid Grafana dashboard whose queries name only series
that exist — orch's as Ray exports them (METRICS, via exported_name) and Ray's own."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from orchestrator.tracking.metrics import METRICS, exported_name

DASHBOARD = Path(__file__).resolve().parents[2] / "dashboards" / "grafana" / "orch.json"
SERIES = re.compile(r"\bray_[a-z0-9_]+\b")
SELECTOR = re.compile(r"\b(ray_[a-z0-9_]+)\{([^}]*)\}")
BY = re.compile(r"\bby \(([^)]*)\)")
ORCH = {exported_name(m): m for m in METRICS}


@pytest.fixture(scope="module")
def dash() -> dict:
    return json.loads(DASHBOARD.read_text())


def _panels(dash: dict) -> list[dict]:
    return [p for p in dash["panels"] if p["type"] != "row"]


def _exprs(dash: dict) -> list[str]:
    return [t["expr"] for p in _panels(dash) for t in p["targets"]]


def test_is_a_grafana_dashboard_on_a_prometheus_variable(dash: dict) -> None:
    assert dash["title"] and dash["uid"] and isinstance(dash["schemaVersion"], int)
    variables = {v["name"]: v for v in dash["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    for p in _panels(dash):
        assert p["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, p["title"]
        assert p["targets"], p["title"]
        for t in p["targets"]:
            assert t["datasource"]["uid"] == "${datasource}" and t["expr"].strip()
    assert variables["job"]["datasource"]["uid"] == "${datasource}"
    assert "ray_orch_trials" in variables["job"]["definition"]


def test_panels_have_unique_ids_and_do_not_overlap(dash: dict) -> None:
    ids = [p["id"] for p in dash["panels"]]
    assert len(ids) == len(set(ids))
    cells: dict[tuple[int, int], str] = {}
    for p in dash["panels"]:
        g = p["gridPos"]
        assert g["x"] >= 0 and g["x"] + g["w"] <= 24, p["title"]
        for x in range(g["x"], g["x"] + g["w"]):
            for y in range(g["y"], g["y"] + g["h"]):
                assert (x, y) not in cells, f"{p['title']} overlaps {cells[(x, y)]}"
                cells[(x, y)] = p["title"]


def test_queries_are_balanced(dash: dict) -> None:
    for expr in _exprs(dash):
        for open_, close in ("()", "{}", "[]"):
            depth = 0
            for ch in expr:
                depth += (ch == open_) - (ch == close)
                assert depth >= 0, expr
            assert depth == 0, expr
        assert expr.count('"') % 2 == 0, expr


def test_every_orch_series_queried_exists_and_every_metric_is_shown(dash: dict) -> None:
    queried = {name for expr in _exprs(dash) for name in SERIES.findall(expr)}
    orch = {n for n in queried if n.startswith("ray_orch_")}
    unknown = orch - set(ORCH)
    assert not unknown, f"not in METRICS (as exported): {sorted(unknown)}"
    assert set(ORCH) <= orch, f"METRICS not on the dashboard: {sorted(set(ORCH) - orch)}"


def test_orch_queries_use_only_the_metrics_tags(dash: dict) -> None:
    # Labels Prometheus or Ray add to every series, on top of a metric's own tags.
    added = {"instance", "Component", "NodeAddress", "SessionName", "Version", "WorkerId"}
    for expr in _exprs(dash):
        names = set(SERIES.findall(expr))
        if not names or not names <= set(ORCH):
            continue
        allowed = added.union(*(METRICS[ORCH[n]].tags for n in names))
        for _, matchers in SELECTOR.findall(expr):
            for m in filter(None, (s.strip() for s in matchers.split(","))):
                label = re.split(r"=~|!~|!=|=", m)[0].strip()
                assert label in allowed, f"{label!r} in {expr}"
        for group in BY.findall(expr):
            for label in (s.strip() for s in group.split(",")):
                assert label in allowed, f"{label!r} in {expr}"


def test_rays_series_are_ones_ray_exports(dash: dict) -> None:
    """Ray's own series: each must appear in the Grafana panels Ray ships for its metrics."""
    import ray

    shipped = Path(ray.__file__).parent / "dashboard" / "modules" / "metrics" / "dashboards"
    text = "\n".join(f.read_text() for f in shipped.glob("*.py"))
    queried = {n for e in _exprs(dash) for n in SERIES.findall(e) if not n.startswith("ray_orch_")}
    assert {"ray_node_gpus_utilization", "ray_tasks"} <= queried
    for name in queried:
        assert re.search(rf"\b{name}\b", text), f"{name} is not a series Ray exports"
