"""Every metric a dashboard or an alert rule uses exists in the code, and every query parses.

Names are collected from the default prometheus_client registry after importing each
`trakr.<service>.metrics` module, in every form Prometheus exposes them (`_total`, `_bucket`,
`_count`, `_sum`, `_created`), so a renamed metric breaks this test instead of a dashboard.
"""

from __future__ import annotations

import importlib
import json
import pkgutil
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import trakr
import yaml
from prometheus_client import REGISTRY

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
DASHBOARDS = DEPLOY / "grafana" / "dashboards"
SERVICES = {"jet", "ein", "julia", "hermes", "spike"}
# Series Prometheus itself makes (not the code's).
PROMETHEUS_SERIES = {"up", "ALERTS", "ALERTS_FOR_STATE"}
# PromQL words that look like names in an expression.
PROMQL_WORDS = {
    "sum", "rate", "increase", "histogram_quantile", "count", "max", "min", "avg", "time",
    "vector", "deriv", "and", "or", "unless", "bool",
}  # fmt: skip


def code_metric_names() -> set[str]:
    modules = {m.name for m in pkgutil.iter_modules(trakr.__path__) if m.ispkg}
    for service in sorted(modules):
        try:
            importlib.import_module(f"trakr.{service}.metrics")
        except ModuleNotFoundError as exc:
            if exc.name != f"trakr.{service}.metrics":
                raise
    names: set[str] = set()
    for collector in list(REGISTRY._collector_to_names):  # every collector registered so far
        for family in collector.collect():
            names.add(family.name)
            names.update(sample.name for sample in family.samples)
            if family.type in ("histogram", "summary"):
                names.update(f"{family.name}{suffix}" for suffix in ("_bucket", "_count", "_sum"))
            if family.type == "counter":
                names.add(f"{family.name}_total")
    return names


def dashboard_queries() -> Iterator[tuple[str, str]]:
    for path in sorted(DASHBOARDS.glob("*.json")):
        for panel in json.loads(path.read_text())["panels"]:
            for target in panel.get("targets", []):
                yield f"{path.name}: {panel['title']}", target["expr"]


def alert_queries() -> Iterator[tuple[str, str]]:
    document = yaml.safe_load((DEPLOY / "prometheus" / "alerts.yml").read_text())
    for group in document["groups"]:
        for rule in group["rules"]:
            yield f"alerts.yml: {rule['alert']}", rule["expr"]


def names_in(expr: str) -> set[str]:
    without_strings = re.sub(r'"[^"]*"', '""', expr)
    without_labels = re.sub(r"\{[^}]*\}", "{}", without_strings)
    without_ranges = re.sub(r"\[[^\]]*\]", "[]", without_labels)
    without_groupings = re.sub(
        r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", without_ranges
    )
    found = set(re.findall(r"[a-zA-Z_:][a-zA-Z0-9_:]*", without_groupings))
    return {
        name for name in found if name not in PROMQL_WORDS and not re.fullmatch(r"\d.*|e\d+", name)
    }


@pytest.fixture(scope="module")
def known() -> set[str]:
    return code_metric_names()


def test_every_service_defines_metrics(known: set[str]) -> None:
    for service in SERVICES:
        assert any(name.startswith(f"trakr_{service}_") for name in known), (
            f"no trakr_{service}_* metric"
        )


@pytest.mark.parametrize(("where", "expr"), [*dashboard_queries(), *alert_queries()])
def test_query_uses_only_existing_metrics(where: str, expr: str, known: set[str]) -> None:
    unknown = {
        name for name in names_in(expr) if name not in known and name not in PROMETHEUS_SERIES
    }
    assert not unknown, f"{where}: {sorted(unknown)} not defined in any trakr.<service>.metrics"


def test_the_name_check_catches_a_typo(known: set[str]) -> None:
    assert names_in('sum(rate(trakr_jet_scrapes_totl{result="queued"}[5m]))') == {
        "trakr_jet_scrapes_totl"
    }
    assert "trakr_jet_scrapes_totl" not in known
    assert {"trakr_jet_scrapes_total", "trakr_ein_ingest_duration_seconds_bucket"} <= known


def test_dashboards_cover_every_service() -> None:
    used = {name for _, expr in dashboard_queries() for name in names_in(expr)}
    for service in SERVICES:
        assert any(name.startswith(f"trakr_{service}_") for name in used), (
            f"no dashboard shows {service}"
        )


def test_dashboards_are_provisionable() -> None:
    uids = set()
    for path in sorted(DASHBOARDS.glob("*.json")):
        board = json.loads(path.read_text())
        assert board["uid"] not in uids and len(board["uid"]) <= 40
        uids.add(board["uid"])
        ids = [panel["id"] for panel in board["panels"]]
        assert len(ids) == len(set(ids)), f"{path.name}: duplicate panel ids"
        for panel in board["panels"]:
            if panel["type"] != "row":
                assert panel["datasource"]["uid"] == "prometheus", (path.name, panel["title"])
    assert {"trakr-pipeline", "trakr-ein", "trakr-hermes", "trakr-spike"} <= uids
    datasource = yaml.safe_load(
        (DEPLOY / "grafana/provisioning/datasources/prometheus.yml").read_text()
    )
    assert datasource["datasources"][0]["uid"] == "prometheus"
    provider = yaml.safe_load((DEPLOY / "grafana/provisioning/dashboards/trakr.yml").read_text())
    compose = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())
    mounts = compose["services"]["grafana"]["volumes"]
    assert f"./grafana/dashboards:{provider['providers'][0]['options']['path']}:ro" in mounts


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool not installed")
def test_every_dashboard_query_parses(tmp_path: Path) -> None:
    """promtool checks PromQL only in rule files: each dashboard query becomes a recording rule."""
    rules = [
        {"record": f"dashboard:query_{i}", "expr": expr}
        for i, (_, expr) in enumerate(dashboard_queries())
    ]
    (tmp_path / "dashboards.yml").write_text(
        yaml.safe_dump({"groups": [{"name": "dashboards", "rules": rules}]})
    )
    result = subprocess.run(
        ["promtool", "check", "rules", "dashboards.yml"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_fluentd_receives_on_24224_and_writes_per_service() -> None:
    text = (DEPLOY / "fluentd" / "fluent.conf").read_text()
    source = re.search(r"<source>(.*?)</source>", text, re.S)
    assert source and "@type forward" in source.group(1) and "port 24224" in source.group(1)
    match = re.search(r"<match \*\*>(.*?)</match>", text, re.S)
    assert match and "@type file" in match.group(1)
    assert "path /fluentd/log/${service}/" in match.group(
        1
    ) and "<buffer service,time>" in match.group(1)
    assert "@type json" in text  # trakr's JSON lines are parsed into fields
