"""``llmcost config check`` through click's in-process runner. The config file itself is tested in
``test_config_file.py``, attribution rules in ``test_attribution_rules.py``, chargeback in
``test_chargeback.py`` and reloads in ``test_config_reload.py``.

Line and column numbers in the expectations are counted by hand from the YAML texts (1-based).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from click.testing import Result

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "llmcost.yaml"
DEMO = ROOT / "collector" / "llmcost_demo" / "demo-config.yaml"


def test_config_check_cli(tmp_path: Path, llmcost: Callable[..., Result]) -> None:
    def config_check(path: Path) -> Result:
        return llmcost("config", "check", str(path))

    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "version: 1\n"
        "teams:\n"
        "  - name: search\n"
        "    budgets: {monthly: -3}\n"  # '{' at 13, "monthly: " 9 chars -> '-' at 23, column 24
        "  - name: search\n"  # duplicate: value at index 10 -> column 11
        "chargeback:\n"
        "  modle: cost_plus\n"  # unknown key at column 3
    )
    result = config_check(bad)
    assert result.exit_code == 1
    assert result.stderr.strip().splitlines() == [
        f"{bad}:4:24: teams[0].budgets.monthly: Input should be greater than or equal to 0",
        f"{bad}:7:3: chargeback.modle: unknown key 'modle'",
    ]
    # the duplicate team is a cross-field check, run once the fields themselves are valid
    bad.write_text("version: 1\nteams:\n  - name: search\n  - name: search\n")
    result = config_check(bad)
    assert (result.exit_code, result.stderr.strip()) == (
        1,
        f"{bad}:4:11: teams[1].name: duplicate team 'search' (also teams[0])",
    )
    syntax = tmp_path / "syntax.yaml"
    syntax.write_text("teams: [\n")
    result = config_check(syntax)
    assert result.exit_code == 1 and result.stderr.startswith(f"{syntax}:2:1: YAML syntax error")


# --- the running collector --------------------------------------------------------------------
