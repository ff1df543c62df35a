"""Write serving/k8s/monitoring/prometheusrule.yaml from the rule files (rules/*.yml): the same groups, wrapped in
the Prometheus Operator's PrometheusRule, so the cluster and the local Prometheus alert on the same rules.

    python serving/monitoring/render_prometheusrule.py          # (re)write it: `make k8s-rules`
    python serving/monitoring/render_prometheusrule.py --check  # exit 1 if it is out of date (tests/test_deploy.py)
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
RULE_FILES = ("recording.yml", "alerts.yml")
OUT = HERE.parent / "k8s" / "monitoring" / "prometheusrule.yaml"
HEADER = ("# Generated from serving/monitoring/rules/ by `make k8s-rules` (serving/monitoring/render_prometheusrule.py)."
          " Do not edit:\n# edit the rule files, whose alerts have promtool unit tests, and regenerate.\n")


class _Dumper(yaml.SafeDumper):
    """Multi-line strings (the longer PromQL) as literal blocks, as in the rule files."""


_Dumper.add_representer(str, lambda dumper, value: dumper.represent_scalar(
    "tag:yaml.org,2002:str", value, style="|" if "\n" in value else None))


def render() -> str:
    groups = [group for name in RULE_FILES for group in yaml.safe_load((HERE / "rules" / name).read_text())["groups"]]
    rule = {"apiVersion": "monitoring.coreos.com/v1", "kind": "PrometheusRule",
            "metadata": {"name": "cardflow", "labels": {"app.kubernetes.io/name": "cardflow-rules"}},
            "spec": {"groups": groups}}
    return HEADER + yaml.dump(rule, Dumper=_Dumper, sort_keys=False, width=120)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if the PrometheusRule is out of date")
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        if not OUT.is_file() or OUT.read_text() != text:
            print(f"{OUT} is out of date with serving/monitoring/rules: run `make k8s-rules`", file=sys.stderr)
            return 1
        return 0
    OUT.write_text(text)
    print(f"wrote {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
