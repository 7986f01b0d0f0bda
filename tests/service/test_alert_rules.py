"""ops/prometheus/alerts.yml: well-formed rules, each actionable (severity, summary), each watching metrics the
platform really exports — a renamed or dropped metric fails here, not silently in production — and valid for
Prometheus itself (`promtool check rules`, when promtool is installed: Debian's `prometheus` package)."""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families
from starlette.testclient import TestClient

from bentos.api.app import create_app
from bentos.core.platform import compose

REPO = Path(__file__).resolve().parents[2]
RULES = REPO / "ops" / "prometheus" / "alerts.yml"
SEVERITIES = {"critical", "warning", "info"}
# PromQL words that are not metric names (functions are recognised by the "(" that follows them).
KEYWORDS = {
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "bool",
    "offset",
    "and",
    "or",
    "unless",
}
SUFFIXES = {
    "counter": ("_total", "_created"),
    "gauge": ("",),
    "histogram": ("_bucket", "_count", "_sum", "_created"),
    "summary": ("", "_count", "_sum", "_created"),
}


def _rules() -> list[dict[str, Any]]:
    doc = yaml.safe_load(RULES.read_text())
    return [rule for group in doc["groups"] for rule in group["rules"]]


def metric_names(expr: str) -> set[str]:
    """The metric names an expression reads: identifiers outside strings, label matchers, ranges and
    groupings that are neither PromQL keywords nor function calls."""
    bare = re.sub(r'"(?:[^"\\]|\\.)*"', "", expr)
    bare = re.sub(r"\{[^}]*\}|\[[^]]*\]", " ", bare)
    bare = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", bare)
    names = re.findall(r"\b([a-zA-Z_:][a-zA-Z0-9_:]*)\b(?!\s*\()", bare)
    return {n for n in names if n not in KEYWORDS}


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Iterator[set[str]]:
    """Every sample name the platform's GET /metrics can show (a labelled family shows its samples only once
    observed, so names come from the families' types)."""
    platform = compose([f"data_dir={tmp_path_factory.mktemp('alerts')}", "encoder=seeded"])
    try:
        with TestClient(create_app(platform)) as client:
            text = client.get("/metrics").text
    finally:
        platform.stop()
    yield {
        family.name + suffix
        for family in text_string_to_metric_families(text)
        for suffix in SUFFIXES.get(family.type, ("",))
    }


def test_every_rule_is_complete_and_actionable() -> None:
    rules = _rules()
    assert len(rules) >= 6
    names = [rule["alert"] for rule in rules]
    assert len(names) == len(set(names)), "alert names must be unique"
    for rule in rules:
        assert set(rule) >= {"alert", "expr", "for", "labels", "annotations"}, rule.get("alert")
        assert re.fullmatch(r"[A-Z][A-Za-z0-9]+", rule["alert"]), rule["alert"]
        assert re.fullmatch(r"\d+[smh]", str(rule["for"])), rule["alert"]
        assert rule["labels"]["severity"] in SEVERITIES, rule["alert"]
        assert rule["annotations"]["summary"].strip(), rule["alert"]


def test_the_operator_alerts_of_issue_13_are_all_there() -> None:
    watched = {name for rule in _rules() for name in metric_names(rule["expr"])}
    assert {
        "stepfun_requests_total",  # invalid provider key (401s)
        "stepfun_breaker_open",
        "voxpersona_outbox_oldest_pending_age_seconds",
        "voxpersona_outbox_backlog",
        "voxpersona_reconciliation_mismatch_creators",
        "voxpersona_jobs_oldest_unfinished_age_seconds",
        "voxpersona_http_requests_total",  # 5xx rate
    } <= watched


def test_every_metric_an_alert_reads_is_exported_by_the_platform(exported: set[str]) -> None:
    missing = {
        rule["alert"]: sorted(metric_names(rule["expr"]) - exported)
        for rule in _rules()
        if metric_names(rule["expr"]) - exported
    }
    assert missing == {}


def test_the_metric_name_parser_sees_through_promql() -> None:
    expr = (
        'histogram_quantile(0.95, sum by (le) (rate(a_bucket{status=~"5..", x="y z"}[5m]))) > 2 or max(b) > 0'
    )
    assert metric_names(expr) == {"a_bucket", "b"}


@pytest.mark.skipif(
    shutil.which("promtool") is None, reason="promtool is not installed (apt-get install prometheus)"
)
def test_promtool_accepts_the_rules() -> None:
    checked = subprocess.run(
        ["promtool", "check", "rules", str(RULES)], capture_output=True, text=True, timeout=60, check=False
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert f"SUCCESS: {len(_rules())} rules found" in checked.stdout
