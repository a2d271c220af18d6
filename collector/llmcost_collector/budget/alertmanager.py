"""Alertmanager's configuration from the collector's: routes, receivers and inhibition.

Who hears what is already in the config (``alerting:`` and each team's ``contact``), and the
alert labels come from its budgets, so the Alertmanager side is rendered from it rather than kept
by hand next to it, where a new team or threshold would be forgotten:

* FinOps (``alerting.finops_contact``) gets every budget and pricing alert, and the routing goes on;
* each team with a contact gets its own alerts (budget, forecast, error rate) by the ``team`` label;
* critical alerts no team takes go to ``alerting.oncall_contact``, the rest to the default.

Budget alerts are grouped per budget, scope and period, so one budget's thresholds make one
thread; inhibition keeps only the highest threshold crossed: each configured threshold silences
every lower one of the same budget, scope and period (100 over 95 over 80 over 50, and any custom
list, such as a 120 over 100). Slack and e-mail use the templates of ``templates/llmcost.tmpl``,
written next to the configuration. Secrets stay in files Alertmanager reads.
"""

from __future__ import annotations

from collections.abc import Iterable
from importlib import resources
from typing import Any

import yaml

from llmcost_collector.config.alerting import Destination, parse_contact
from llmcost_collector.config.schema import Config

TEMPLATE_NAME = "llmcost.tmpl"
THRESHOLD = "LLMCostBudgetThreshold"
BUDGET_ALERTS = (THRESHOLD, "LLMCostBudgetForecast")
FINOPS_ALERTS = (*BUDGET_ALERTS, "LLMCostUnpricedModel")
# Budget alerts group by the first four; the others by their own labels (absent labels are empty).
GROUP_BY = ["alertname", "budget", "scope", "period", "team", "provider", "model"]
HEADER = (
    "# Alertmanager for otel-llmcost, rendered by `llmcost alertmanager-config --config {source}`\n"
    "# from the config's `alerting:` section and teams[].contact: render it again rather than edit it.\n"
    "# Templates: {template} (next to this file). Routes, receivers and inhibition: docs/reference.md.\n"
)


class AlertingConfigError(ValueError):
    """The config asks for a receiver it gives no means to reach (Slack without a webhook URL
    file, e-mail without SMTP settings)."""


def template_text() -> str:
    """The notification templates (Go templates, as Alertmanager reads them)."""
    return resources.files(__package__).joinpath("templates", TEMPLATE_NAME).read_text(encoding="utf-8")


def render(config: Config, source: str) -> str:
    """The Alertmanager configuration as YAML text, with a header naming the config it came from."""
    body = yaml.safe_dump(alertmanager_config(config), sort_keys=False, default_flow_style=False, width=100)
    return HEADER.format(source=source, template=TEMPLATE_NAME) + body


def alertmanager_config(config: Config) -> dict[str, Any]:
    alerting = config.alerting
    receivers: dict[str, list[Destination]] = {"default": parse_contact(alerting.default_contact)}
    routes: list[dict[str, Any]] = []
    if alerting.finops_contact:
        receivers["finops"] = parse_contact(alerting.finops_contact)
        routes.append(
            {"receiver": "finops", "matchers": [_any_of("alertname", FINOPS_ALERTS)], "continue": True}
        )
    for team in config.teams:
        if team.contact:
            name = f"team-{team.name}"
            receivers[name] = parse_contact(team.contact)
            routes.append({"receiver": name, "matchers": [f'team="{team.name}"']})
    if alerting.oncall_contact:
        receivers["oncall"] = parse_contact(alerting.oncall_contact)
        routes.append({"receiver": "oncall", "matchers": ['severity="critical"']})
    kinds: set[str] = {d.kind for destinations in receivers.values() for d in destinations}
    rendered: dict[str, Any] = {
        "global": _global(config, kinds),
        "templates": [TEMPLATE_NAME],
        "route": {
            "receiver": "default",
            "group_by": GROUP_BY,
            "group_wait": alerting.group_wait,
            "group_interval": alerting.group_interval,
            "repeat_interval": alerting.repeat_interval,
            "routes": routes,
        },
        "inhibit_rules": inhibit_rules(t for b in config.all_budgets() for t in b.thresholds),
        "receivers": [_receiver(name, destinations) for name, destinations in receivers.items()],
    }
    return rendered


def inhibit_rules(thresholds: Iterable[int]) -> list[dict[str, Any]]:
    """Each threshold inhibits every lower one of the same budget, scope and period.

    Alertmanager compares label values as strings, so the order is spelt out per threshold. One
    rule per threshold against all the lower ones, not a chain to the next lower: a budget need
    not have every threshold the others have (60/90 next to 50/80/95/100).
    """
    ordered = sorted(set(thresholds))
    return [
        {
            "source_matchers": [f'alertname="{THRESHOLD}"', f'threshold="{high}"'],
            "target_matchers": [f'alertname="{THRESHOLD}"', _any_of("threshold", map(str, ordered[:index]))],
            "equal": ["budget", "scope", "period"],
        }
        for index, high in enumerate(ordered)
        if index
    ]


def _any_of(label: str, values: Iterable[str]) -> str:
    values = list(values)
    return f'{label}="{values[0]}"' if len(values) == 1 else f'{label}=~"{"|".join(values)}"'


def _global(config: Config, kinds: set[str]) -> dict[str, Any]:
    alerting = config.alerting
    found: dict[str, Any] = {"resolve_timeout": "5m"}
    if "slack" in kinds:
        if not alerting.slack_api_url_file:
            raise AlertingConfigError(
                "a contact is a #slack-channel: set alerting.slack_api_url_file to the file holding "
                "the Slack incoming-webhook URL"
            )
        found["slack_api_url_file"] = alerting.slack_api_url_file
    if "email" in kinds:
        smtp = alerting.smtp
        if smtp is None:
            raise AlertingConfigError("a contact is an e-mail address: set alerting.smtp (smarthost, from)")
        found.update(smtp_smarthost=smtp.smarthost, smtp_from=smtp.sender, smtp_require_tls=smtp.require_tls)
        if smtp.auth_username:
            found["smtp_auth_username"] = smtp.auth_username
        if smtp.auth_password_file:
            found["smtp_auth_password_file"] = smtp.auth_password_file
    return found


def _receiver(name: str, destinations: list[Destination]) -> dict[str, Any]:
    """One receiver, its destinations grouped by kind; resolved notices are sent too."""
    receiver: dict[str, Any] = {"name": name}
    slack = [
        {
            "channel": d.target,
            "send_resolved": True,
            "title": '{{ template "llmcost.title" . }}',
            "title_link": "{{ (index .Alerts 0).Annotations.dashboard_url }}",
            "text": '{{ template "llmcost.slack.text" . }}',
            "color": '{{ template "llmcost.slack.color" . }}',
        }
        for d in destinations
        if d.kind == "slack"
    ]
    email = [
        {
            "to": d.target,
            "send_resolved": True,
            "headers": {"Subject": '{{ template "llmcost.email.subject" . }}'},
            "html": '{{ template "llmcost.email.html" . }}',
            "text": '{{ template "llmcost.email.text" . }}',
        }
        for d in destinations
        if d.kind == "email"
    ]
    webhook = [{"url": d.target, "send_resolved": True} for d in destinations if d.kind == "webhook"]
    for key, configs in (("slack_configs", slack), ("email_configs", email), ("webhook_configs", webhook)):
        if configs:
            receiver[key] = configs
    return receiver
