"""serving/monitoring/ offline: the Prometheus config and rules pass promtool, the alert rules pass their promtool
unit tests, and the Grafana dashboard reads only metrics the servers define or the rules record. (The same config,
rules and dashboard against a real Prometheus scraping real servers: tests/test_serving.py.)"""

from __future__ import annotations

import json
import re
import shutil
import subprocess

import yaml

from serving import metrics as m
from tests.conftest import ROOT

MONITORING = ROOT / "serving" / "monitoring"
DASHBOARD = MONITORING / "grafana" / "cardflow-serving.json"
PROMTOOL = shutil.which("promtool")


def _promtool(*args: str) -> subprocess.CompletedProcess:
    assert PROMTOOL, "promtool is missing: run `make system-deps` (Debian package prometheus)"
    return subprocess.run([PROMTOOL, *args], cwd=MONITORING, capture_output=True, text=True, timeout=120)


def _rules(name: str) -> list[dict]:
    return [rule for group in yaml.safe_load((MONITORING / "rules" / name).read_text())["groups"]
            for rule in group["rules"]]


def dashboard_queries() -> list[tuple[str, str]]:
    """(panel title, PromQL) for every query of the dashboard."""
    board = json.loads(DASHBOARD.read_text())
    return [(panel["title"], target["expr"]) for panel in board["panels"] for target in panel.get("targets", [])]


def concrete(expr: str, step: str = ".*", rate_interval: str = "1m") -> str:
    """A dashboard query with Grafana's variables filled in, as Grafana sends it."""
    return expr.replace("$step", step).replace("$__rate_interval", rate_interval)


def exposed_names() -> set[str]:
    """Every series name the CardFlow metrics produce (a histogram's _bucket/_sum/_count, a counter's _total)."""
    names = set()
    for metric in m.REQUESTS.collect() + [c for x in (m.REQUEST_SECONDS, m.STEP_SECONDS, m.QUEUE_SECONDS,
                                                      m.COMPUTE_SECONDS, m.BATCH_SIZE, m.IN_FLIGHT,
                                                      m.SLA_VIOLATIONS, m.SLA_BUDGET, m.MODEL_INFO, m.DOCUMENTS,
                                                      m.MRZ_CHECKS, m.FIELD_FORMAT, m.OCR_CONFIDENCE,
                                                      m.CLASSIFIER_CONFIDENCE) for c in x.collect()]:
        suffixes = {"counter": ["_total"], "histogram": ["_bucket", "_sum", "_count"]}.get(metric.type, [""])
        names |= {metric.name + s for s in suffixes}
    return names


def test_the_config_and_rules_pass_promtool() -> None:
    checked = _promtool("check", "config", "prometheus.yml")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "2 rule files found" in checked.stdout
    out = checked.stdout + checked.stderr
    assert re.search(r"rules/recording.yml\s+SUCCESS: (\d+) rules found", out)
    assert re.search(r"rules/alerts.yml\s+SUCCESS: 8 rules found", out)


def test_the_alert_rules_pass_their_unit_tests() -> None:
    tested = _promtool("test", "rules", "tests/alerts_test.yml")
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert "SUCCESS" in tested.stdout
    # every alert has a test that expects it to fire
    tests = yaml.safe_load((MONITORING / "tests" / "alerts_test.yml").read_text())["tests"]
    fired = {case["alertname"] for test in tests for case in test.get("alert_rule_test", []) if case["exp_alerts"]}
    assert fired == {rule["alert"] for rule in _rules("alerts.yml")}


def test_a_broken_rule_fails_its_unit_test(tmp_path) -> None:
    """The unit tests can fail: the same tests against an SLA alert that compares with twice the budget."""
    shutil.copytree(MONITORING / "rules", tmp_path / "rules")
    (tmp_path / "tests").mkdir()
    spec = yaml.safe_load((MONITORING / "tests" / "alerts_test.yml").read_text())
    spec["tests"] = [t for t in spec["tests"] if t["name"] == "latency over the SLA"]
    (tmp_path / "tests" / "alerts_test.yml").write_text(yaml.safe_dump(spec))
    alerts = tmp_path / "rules" / "alerts.yml"
    alerts.write_text(alerts.read_text().replace("> on (step) step:cardflow_sla_budget_seconds:max",
                                                 "> on (step) 2 * step:cardflow_sla_budget_seconds:max"))
    tested = subprocess.run([PROMTOOL, "test", "rules", "tests/alerts_test.yml"], cwd=tmp_path, capture_output=True,
                            text=True, timeout=120)
    assert tested.returncode != 0
    assert "CardflowStepLatencyOverSLA" in tested.stdout + tested.stderr


def test_recording_rules_follow_the_naming_convention() -> None:
    for rule in _rules("recording.yml"):
        level, metric, operations = rule["record"].split(":")
        assert level and operations, rule["record"]
        assert metric.startswith("cardflow_"), rule["record"]
        assert f"by ({level.replace('_', ', ')}" in rule["expr"] or level == "step", rule["record"]
    assert all(rule["labels"]["severity"] in {"warning", "critical"} and rule["annotations"]["runbook_url"]
               for rule in _rules("alerts.yml"))


def test_every_metric_the_rules_and_dashboard_read_is_exposed_or_recorded() -> None:
    recorded = {rule["record"] for rule in _rules("recording.yml")}
    exposed = exposed_names() | {"up"}
    exprs = [rule["expr"] for rule in _rules("recording.yml") + _rules("alerts.yml")]
    exprs += [expr for _, expr in dashboard_queries()]
    used = set()
    for expr in exprs:
        used |= set(re.findall(r"\b((?:[a-z_]+:)?cardflow_[a-z_]+(?::[a-z0-9_]+)?|up)\b", expr))
    missing = used - recorded - exposed
    assert not missing, f"read but neither exposed by serving/metrics.py nor recorded: {sorted(missing)}"
    # and every recording is used by an alert or a panel
    unused = recorded - used
    assert not unused, f"recorded but read by no alert or panel: {sorted(unused)}"


def test_the_dashboard_has_a_fixed_uid_and_provisioning() -> None:
    board = json.loads(DASHBOARD.read_text())
    assert board["uid"] == "cardflow-serving"
    titles = [p["title"] for p in board["panels"] if p["type"] != "row"]
    assert len(titles) == len(set(titles)) >= 12
    assert all(p["datasource"]["uid"] == "${datasource}" for p in board["panels"] if p["type"] != "row")
    ids = [p["id"] for p in board["panels"]]
    assert len(ids) == len(set(ids))
    provider = yaml.safe_load((MONITORING / "grafana" / "provisioning" / "dashboards" / "cardflow.yml").read_text())
    assert provider["providers"][0]["type"] == "file"
    source = yaml.safe_load((MONITORING / "grafana" / "provisioning" / "datasources" / "prometheus.yml").read_text())
    uid = source["datasources"][0]["uid"]
    datasource = next(v for v in board["templating"]["list"] if v["name"] == "datasource")
    assert datasource["current"]["value"] == uid


def test_every_sla_budget_of_the_spec_is_a_bucket_edge() -> None:
    """So p95 > budget is exact in histogram_quantile and in the alerts."""
    from steps.catalog import default_catalog
    from steps.spec import load_spec

    sla = load_spec(default_catalog()).sla
    budgets = [*sla.steps_ms.values(), sla.end_to_end_ms]
    assert len(budgets) == 5
    assert all(ms / 1000 in m.BUCKETS for ms in budgets), (budgets, m.BUCKETS)


def test_every_alert_links_to_a_runbook_section_that_exists() -> None:
    """runbook_url: docs/operations.md#<anchor>, the anchor being a heading there (GitHub's slug)."""
    text = (ROOT / "docs" / "operations.md").read_text()
    anchors = {re.sub(r"[^a-z0-9 -]", "", line.lstrip("#").strip().lower()).replace(" ", "-")
               for line in text.splitlines() if line.startswith("#")}
    for rule in _rules("alerts.yml"):
        page, _, anchor = rule["annotations"]["runbook_url"].partition("#")
        assert page == "docs/operations.md" and anchor in anchors, (rule["alert"], anchor)
        assert rule["alert"] in text, rule["alert"]  # and the section names the alert
