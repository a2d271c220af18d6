"""`llmcost alertmanager-config`: Alertmanager's routes, receivers and inhibition from the config.

The rendering is ``llmcost_collector.budget.alertmanager``; this command only reads the config
and writes the result (stdout, or a file with the notification templates next to it).
"""

from __future__ import annotations

from pathlib import Path

import click

from llmcost_collector.cli.output import ConfigInvalid


@click.command("alertmanager-config")
@click.option("--config", "config_path", envvar="LLMCOST_CONFIG", required=True, help="the config file")
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="write the configuration to this file and the templates (llmcost.tmpl) next to it; default: stdout",
)
def alertmanager_config(config_path: str, out: Path | None) -> None:
    """Alertmanager configuration from the config's alerting section and teams' contacts."""
    from llmcost_collector.budget.alertmanager import (
        TEMPLATE_NAME,
        AlertingConfigError,
        render,
        template_text,
    )
    from llmcost_collector.config.schema import load_config
    from llmcost_collector.config.yaml_loader import ConfigError

    try:
        config = load_config(config_path)
    except ConfigError as exc:
        raise ConfigInvalid(exc) from None
    try:
        text = render(config, config_path)
    except AlertingConfigError as exc:
        raise click.ClickException(f"{config_path}: {exc}") from None
    if out is None:
        click.echo(text, nl=False)
        return
    try:
        out.write_text(text, encoding="utf-8")
        (out.parent / TEMPLATE_NAME).write_text(template_text(), encoding="utf-8")
    except OSError as exc:
        raise click.ClickException(f"cannot write {exc.filename}: {exc.strerror}") from None
    click.echo(f"wrote {out} and {out.parent / TEMPLATE_NAME}", err=True)
