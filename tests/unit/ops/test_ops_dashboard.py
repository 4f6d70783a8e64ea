"""Grafana and Prometheus files: valid, provisioned, and naming only metrics the code exports."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from services.common.metrics import PipelineMetrics

DEPLOY = Path(__file__).resolve().parents[3] / "deploy"
DASHBOARD = DEPLOY / "grafana" / "dashboards" / "aiguillage.json"
METRIC = re.compile(r"\baiguillage_[a-z0-9_]+\b")
EXPORTED = PipelineMetrics().exported_names()


def panels() -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for panel in json.loads(DASHBOARD.read_text(encoding="utf-8"))["panels"]:
        found += [panel, *panel.get("panels", [])]
    return found


def expressions() -> list[str]:
    return [t["expr"] for p in panels() for t in p.get("targets", [])]


def alert_rules() -> list[dict[str, Any]]:
    rules = yaml.safe_load((DEPLOY / "prometheus" / "alerts.yml").read_text(encoding="utf-8"))
    return [rule for group in rules["groups"] for rule in group["rules"]]


def test_ops_alerts_see_every_dead_letter_whichever_way_it_came() -> None:
    """Dead letters written through an outbox (intake-phone's refusals, parked rows) never
    touch aiguillage_dead_letters_total, and a counter's first increment is invisible to
    increase(): only the topic's growth sees them all."""
    rules = {rule["alert"]: rule for rule in alert_rules()}
    growth = rules["DeadLetterTopicGrowing"]["expr"]
    assert "max(aiguillage_dlq_messages)" in growth
    assert "offset 15m" in growth
    assert growth.rstrip().endswith("> 0")


def test_ops_dashboard_is_valid_json_with_unique_panels() -> None:
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    assert dashboard["uid"]
    assert dashboard["title"]
    ids = [p["id"] for p in panels()]
    assert len(ids) == len(set(ids))
    for panel in panels():
        position = panel["gridPos"]
        assert position["x"] >= 0
        assert position["x"] + position["w"] <= 24


def test_ops_dashboard_shows_lag_throughput_dlq_and_sla() -> None:
    queries = " ".join(expressions())
    for metric in (
        "aiguillage_consumer_lag",
        "aiguillage_oldest_unprocessed_age_seconds",
        "aiguillage_items_in_total",
        "aiguillage_dead_letters_total",
        "aiguillage_deadlines_at_risk",
        "aiguillage_outbox_oldest_pending_age_seconds",
        "aiguillage_outbox_parked_rows",
    ):
        assert metric in queries


def test_ops_alerts_page_on_an_outbox_that_stopped_publishing() -> None:
    rules = {rule["alert"]: rule for rule in alert_rules()}
    stuck, parked = rules["OutboxNotPublishing"], rules["OutboxRowsParked"]
    assert "aiguillage_outbox_oldest_pending_age_seconds" in stuck["expr"]
    assert stuck["expr"].endswith("> 300")
    assert (stuck["for"], stuck["labels"]["severity"]) == ("5m", "page")
    assert "broker connection" in stuck["annotations"]["summary"]
    assert "aiguillage_outbox_parked_rows" in parked["expr"]
    assert parked["labels"]["severity"] == "ticket"
    assert "aiguillage outbox parked" in parked["annotations"]["summary"]


@pytest.mark.parametrize(
    "source",
    [pytest.param("dashboard", id="dashboard"), pytest.param("alerts", id="alerts")],
)
def test_ops_queries_name_only_exported_metrics(source: str) -> None:
    exprs = expressions() if source == "dashboard" else [r["expr"] for r in alert_rules()]
    named = {name for expr in exprs for name in METRIC.findall(expr)}
    assert named, "no metric named at all"
    assert named <= EXPORTED, f"not exported by services/common/metrics.py: {named - EXPORTED}"


def test_ops_grafana_provisions_the_datasource_the_dashboard_uses() -> None:
    provisioning = DEPLOY / "grafana" / "provisioning"
    datasources = yaml.safe_load((provisioning / "datasources" / "prometheus.yaml").read_text())
    uids = {d["uid"] for d in datasources["datasources"]}
    used = {p["datasource"]["uid"] for p in panels() if "datasource" in p}
    assert used <= uids
    providers = yaml.safe_load((provisioning / "dashboards" / "aiguillage.yaml").read_text())
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text(encoding="utf-8"))
    mounts = dict(m.split(":")[:2] for m in compose["services"]["grafana"]["volumes"])
    assert mounts["./grafana/dashboards"] == providers["providers"][0]["options"]["path"]


def test_ops_prometheus_scrapes_every_service_container() -> None:
    config = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text(encoding="utf-8"))
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text(encoding="utf-8"))
    running = {
        name
        for name, spec in compose["services"].items()
        if spec.get("command", [None])[0] == "run"
    }
    scraped = {
        name
        for job in config["scrape_configs"]
        for sd in job["dns_sd_configs"]
        for name in sd["names"]
    }
    assert scraped == running
    ports = {sd["port"] for job in config["scrape_configs"] for sd in job["dns_sd_configs"]}
    assert ports == {int(compose["x-env"]["METRICS_PORT"])}


def test_ops_gauges_only_the_lag_exporter_sets_are_read_through_max() -> None:
    # Every process serves the whole registry: a gauge without labels that only the lag
    # exporter sets is a 0 series in each other service. Read raw, an alert on the
    # exporter's freshness fired for every service; a panel drew one 0 line per process.
    registry = PipelineMetrics().registry
    unlabeled = {
        family.name
        for family in registry.collect()
        if family.type == "gauge" and all(not sample.labels for sample in family.samples)
    }
    exporter_only = {
        "aiguillage_lag_last_success_timestamp_seconds",
        "aiguillage_dlq_messages",
        "aiguillage_dlq_replayed",
        "aiguillage_outbox_pending_rows",
        "aiguillage_outbox_parked_rows",
        "aiguillage_outbox_oldest_pending_age_seconds",
    }
    assert exporter_only <= unlabeled
    for expr in [*expressions(), *(rule["expr"] for rule in alert_rules())]:
        for metric in exporter_only & set(METRIC.findall(expr)):
            assert re.search(rf"max\(\s*{metric}\b", expr), expr
