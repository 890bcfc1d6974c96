"""infra/prometheus/alerts.yml names only metrics that /metrics serves (it cannot drift from
the code), and every alert says why it matters."""

from __future__ import annotations

import re
from collections.abc import Callable

import yaml
from prometheus_client.parser import text_string_to_metric_families

from callgateway.app import create_app
from callgateway.wiring import Services
from tests.support.settings import ROOT

RULES = ROOT / "infra" / "prometheus" / "alerts.yml"
TOKEN = "scrape-token-0123456789abcdef"


def test_every_metric_an_alert_uses_is_served(
    make_services: Callable[..., Services], sqlite_url: str
) -> None:
    svc = make_services(sqlite_url, metrics_token=TOKEN)
    client = create_app({"TESTING": True}, services=svc).test_client()
    text = client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"}).get_data(
        as_text=True
    )
    served = set()
    for family in text_string_to_metric_families(text):
        served.add(family.name)
        suffixes = {"counter": ["_total"], "histogram": ["_bucket", "_count", "_sum"]}
        served.update(family.name + s for s in suffixes.get(family.type, []))
    rules = [r for g in yaml.safe_load(RULES.read_text())["groups"] for r in g["rules"]]
    assert len(rules) >= 10
    used = {name for r in rules for name in re.findall(r"\bcallgateway_\w+", r["expr"])}
    assert used and used <= served, sorted(used - served)
    for rule in rules:
        assert rule["alert"].startswith("CallGateway") and rule["annotations"]["summary"]
        assert rule["labels"]["severity"] in ("page", "ticket")
