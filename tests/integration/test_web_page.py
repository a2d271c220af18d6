"""The collector's web page in headless Chromium: the chargeback calculator shows the server's
quote, the URL carries the state, the explorer shows the ledger's totals, the invoice preview is
the invoice engine's, axe-core finds no serious accessibility violation, and each view fits a phone.

The browser is the Debian ``chromium`` with ``chromedriver`` (``require_binary``: skipped locally
when absent, required in CI), driven by Selenium. Every run saves screenshots of the three views
in ``test-artifacts/web/``. Amounts are worked out by hand in the comments.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from llmcost_collector.app import CollectorApp
from llmcost_collector.invoice.build import Invoicing, Period
from llmcost_collector.invoice.render import render_one
from llmcost_collector.model import Usage
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import Select, WebDriverWait

from tests.integration.conftest import Collectors
from tests.support import priced_entry, require_binary

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts" / "web"
AXE = Path(__file__).parent / "vendor" / "axe-core" / "axe.min.js"
CATALOG = ROOT / "examples" / "model-catalog.json"
CONFIG = f"""
version: 1
teams:
  - {{name: search, display_name: Search}}
price_book:
  include: {CATALOG}
  entries:
    - {{name: house, model: house-model, input: 2.00, output: 8.00}}
chargeback: {{model: cost_plus, markup_percent: 10}}
"""
MONTH = "2026-11"
GRAFANA = "http://grafana.example:3000"
ODD_TEAM = "__proto__"  # a plain-object key in JavaScript: must show like any other team
ODD_USER = "<img src=x onerror=alert(1)>"  # must show as text, never as markup
ODD_FEATURE = "constructor, v2\\b"  # a comma and a backslash: escaped in the filter it is sent as


@pytest.fixture(scope="module")
def browser() -> Iterator[WebDriver]:
    """One headless Chromium for the module's tests (a new page per test)."""
    chromium = require_binary("chromium")
    driver_path = require_binary("chromedriver")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--window-size=1280,1600",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(executable_path=driver_path), options=options)
    driver.set_script_timeout(30)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture
def page(collector: Collectors, browser: WebDriver) -> Iterator[tuple[CollectorApp, WebDriver]]:
    """A collector with a seeded November 2026 ledger, and the browser at a desktop width."""
    app = collector(CONFIG, grafana_url=GRAFANA)
    seed_page(app)
    browser.set_window_size(1280, 1600)
    yield app, browser


def seed_page(app: CollectorApp) -> None:
    config = app.config
    # house-model at $2 input / $8 output per million tokens; cost-plus 10 %
    app.ledger.insert(
        [
            # search/answers: 1M input + 100k output = $2.00 + $0.80 = $2.80
            priced_entry(config, 1, team="search", day=date(2026, 11, 3), feature="answers", user_id="ann",
                         session_id="s-1", session_name="Answer", usage=Usage(input_tokens=1_000_000, output_tokens=100_000)),
            # search/answers: 500k input = $1.00
            priced_entry(config, 2, team="search", day=date(2026, 11, 9), feature="answers", user_id="bob",
                         session_id="s-2", session_name="Answer", usage=Usage(input_tokens=500_000)),
            # search/summaries: 250k input = $0.50
            priced_entry(config, 3, team="search", day=date(2026, 11, 9), feature="summaries", user_id="ann",
                         usage=Usage(input_tokens=250_000)),
            # __proto__/constructor, v2\b: 1M input = $2.00
            priced_entry(config, 4, team=ODD_TEAM, day=date(2026, 11, 4), feature=ODD_FEATURE, user_id=ODD_USER,
                         session_id="s-3", session_name="Ticket", usage=Usage(input_tokens=1_000_000), environment="production"),
        ]
    )  # fmt: skip


def open_page(browser: WebDriver, app: CollectorApp, query: str = "") -> None:
    browser.get(app.urls()["web"] + (f"?{query}" if query else ""))


def wait(browser: WebDriver, css: str, timeout: float = 15) -> WebElement:
    """The first element matching ``css`` once there is one (found again if a redraw replaced it)."""
    return WebDriverWait(browser, timeout, ignored_exceptions=(StaleElementReferenceException,)).until(
        lambda d: d.find_elements(By.CSS_SELECTOR, css) and d.find_element(By.CSS_SELECTOR, css)
    )


def exact(browser: WebDriver, css: str) -> list[Decimal]:
    """The exact amounts (``data-exact``) of the matching cells, read in one script: the page
    redraws on every quote, so elements found one by one could go stale in between."""
    script = "return [...document.querySelectorAll(arguments[0])].map(e => e.dataset.exact);"
    return [Decimal(text or "nan") for text in browser.execute_script(script, css)]


def wait_for_quote(browser: WebDriver, css: str, expected: list[Decimal], timeout: float = 15) -> None:
    """Until the page shows ``expected`` (the page re-quotes on every change)."""
    try:
        WebDriverWait(browser, timeout).until(lambda d: exact(d, css) == expected)
    except Exception:
        raise AssertionError(f"{css}: page shows {exact(browser, css)}, expected {expected}") from None


def retype(element: WebElement, text: str) -> None:
    element.clear()
    element.send_keys(text)


def quote(app: CollectorApp, body: dict) -> dict:
    request = urllib.request.Request(
        app.urls()["web"] + "api/v1/quote", json.dumps(body).encode(), {"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())  # type: ignore[no-any-return]


def screenshot(browser: WebDriver, name: str) -> None:
    browser.save_screenshot(str(ARTIFACTS / f"{name}.png"))


TEXT = "return document.querySelector(arguments[0])?.textContent || '';"
MINI_VS_SONNET = (
    "m=openai/gpt-4o-mini&m=anthropic/claude-3-5-sonnet&in=10000000&cached=0&out=2000000"
    "&cb=cost_plus&markup=10&fee=5&feem=0"
)


def test_calculator_shows_the_servers_quote_and_follows_a_change(
    page: tuple[CollectorApp, WebDriver],
) -> None:
    app, browser = page
    open_page(browser, app, MINI_VS_SONNET)
    # 10M input + 2M output: gpt-4o-mini $0.15 / $0.60 per Mtok = $1.50 + $1.20 = $2.70;
    # claude-3-5-sonnet $3 / $15 = $30 + $30 = $60; cost-plus 10 % markup + 5 % platform fee
    mini, sonnet = Decimal("2.70"), Decimal("60.00")
    wait_for_quote(browser, "#calc-quotes td.cost", [mini, sonnet])
    wait_for_quote(browser, "#calc-quotes td.charge", [mini * Decimal("1.15"), sonnet * Decimal("1.15")])
    # delta: ($60 - $2.70) x 1.15 = $65.895, 57.30 / 2.70 = 2122.22 %
    assert exact(browser, "#calc-deltas td.delta-usd") == [Decimal("65.895")]
    assert exact(browser, "#calc-deltas td.delta-percent") == [Decimal("2122.22")]
    assert browser.find_element(By.CSS_SELECTOR, "#calc-deltas td.delta-usd").text == "+$65.90"
    served = quote(app, {
        "choices": [{"provider": "openai", "model": "gpt-4o-mini"}, {"provider": "anthropic", "model": "claude-3-5-sonnet"}],
        "volume": {"input_tokens": 10_000_000, "cached_input_tokens": 0, "output_tokens": 2_000_000},
        "chargeback": {"model": "cost_plus", "markup_percent": "10", "platform_fee_percent": "5", "platform_fee_monthly_usd": "0"},
    })  # fmt: skip
    assert exact(browser, "#calc-quotes td.charge") == [Decimal(q["charge_usd"]) for q in served["quotes"]]
    screenshot(browser, "calculator")

    retype(browser.find_element(By.ID, "calc-markup"), "20")  # markup 20 % + fee 5 %: x 1.25
    wait_for_quote(browser, "#calc-quotes td.charge", [Decimal("3.375"), Decimal("75.00")])
    Select(browser.find_element(By.ID, "calc-chargeback")).select_by_value("at_cost")
    wait_for_quote(browser, "#calc-quotes td.charge", [mini, sonnet])
    assert [e.text for e in browser.find_elements(By.CSS_SELECTOR, "#calc-quotes td.markup")] == [
        "0 %",
        "0 %",
    ]


def test_calculator_crosses_a_volume_tier_boundary(page: tuple[CollectorApp, WebDriver]) -> None:
    app, browser = page
    open_page(
        browser, app, "m=openai/gpt-4o-mini&mode=requests&req=9999&inreq=800&outreq=200&share=0&cb=tiered"
    )
    # 9,999 requests x (800 x $0.15 + 200 x $0.60) / 1M = $2.39976 at 9,999,000 tokens: Experimental, 50 %
    wait_for_quote(browser, "#calc-quotes td.charge", [Decimal("2.39976") * Decimal("1.5")])
    assert browser.find_element(By.CSS_SELECTOR, "#calc-quotes td.markup").text == "50 %"
    assert browser.find_element(By.CSS_SELECTOR, "#calc-quotes td.tier").text.startswith("Experimental")
    retype(browser.find_element(By.ID, "calc-requests"), "10000")
    # 10,000 requests: exactly 10M tokens, Standard, 20 %: $2.40 x 1.2 = $2.88
    wait_for_quote(browser, "#calc-quotes td.charge", [Decimal("2.88")])
    assert browser.find_element(By.CSS_SELECTOR, "#calc-quotes td.markup").text == "20 %"
    assert browser.find_element(By.CSS_SELECTOR, "#calc-quotes td.tier").text.startswith("Standard")


def test_the_catalogue_is_searchable_and_sorted_by_price(page: tuple[CollectorApp, WebDriver]) -> None:
    app, browser = page
    open_page(browser, app, "q=seed-catalog-never&sort=-input")
    wait(browser, "#calc-source:not(:empty)")
    rows = "return [...document.querySelectorAll('.catalog tbody tr')].map(r => [...r.cells].map(c => c.textContent));"
    retype(browser.find_element(By.ID, "calc-search"), "claude-3-5")
    WebDriverWait(browser, 10).until(lambda d: d.execute_script(rows))
    found = browser.execute_script(rows)
    assert all("claude-3-5" in r[1] for r in found)
    inputs = [Decimal(r[4]) for r in found]
    assert inputs == sorted(inputs, reverse=True)  # input price, high to low (from the URL)
    seed = {r[1]: (r[2], r[3], r[4], r[6]) for r in found if r[2] == "price-book"}
    # examples/model-catalog.json: each entry with its source and date
    assert seed["anthropic/claude-3-5-sonnet*"] == ("price-book", "2024-11-15", "3.00", "15.00")
    Select(browser.find_element(By.ID, "calc-sort")).select_by_value("output")
    found = browser.execute_script(rows)
    outputs = [Decimal(r[6]) for r in found]
    assert outputs == sorted(outputs) and "sort=output" in browser.current_url


def test_the_url_round_trips_the_calculators_state(page: tuple[CollectorApp, WebDriver]) -> None:
    app, browser = page
    open_page(browser, app, "m=openai/gpt-4o-mini")
    wait(browser, "#calc-quotes td.charge")
    search = browser.find_element(By.ID, "calc-search")
    retype(search, "gpt-4o")
    box = wait(browser, "#calc-source:not(:empty)")  # the catalogue is loaded, then filtered as typed
    names = (
        "return [...document.querySelectorAll('.catalog tbody tr td:nth-child(2)')].map(e => e.textContent);"
    )
    WebDriverWait(browser, 10).until(
        lambda d: (n := d.execute_script(names)) and all("gpt-4o" in x for x in n)
    )
    label = browser.find_element(By.XPATH, "//label[starts-with(., 'Compare openai/gpt-4o (')]")
    box = browser.find_element(By.ID, label.get_attribute("for") or "")
    box.send_keys(" ")  # keyboard, not a click: the control is reachable and operable by keys
    browser.find_element(By.ID, "calc-mode-requests").click()
    retype(browser.find_element(By.ID, "calc-requests"), "1234")
    Select(browser.find_element(By.ID, "calc-chargeback")).select_by_value("value_based")
    retype(browser.find_element(By.ID, "calc-outcomes"), "40")
    # value-based: 40 outcomes x $0.05 (the page's default price) = $2.00 for either model, tokens not billed
    shown = [Decimal("2.00"), Decimal("2.00")]
    wait_for_quote(browser, "#calc-quotes td.charge", shown)
    url = browser.current_url
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(url).query)
    assert query["m"] == ["openai/gpt-4o-mini", "openai/gpt-4o"] and query["mode"] == ["requests"]
    assert query["cb"] == ["value_based"] and query["req"] == ["1234"] and query["q"] == ["gpt-4o"]

    browser.get("about:blank")
    browser.get(url)
    wait_for_quote(browser, "#calc-quotes td.charge", shown)
    assert browser.find_element(By.ID, "calc-mode-requests").is_selected()
    assert browser.find_element(By.ID, "calc-requests").get_attribute("value") == "1234"
    assert (
        Select(browser.find_element(By.ID, "calc-chargeback")).first_selected_option.get_attribute("value")
        == "value_based"
    )
    assert browser.find_element(By.ID, "calc-search").get_attribute("value") == "gpt-4o"
    models = [
        e.get_attribute("data-model") for e in browser.find_elements(By.CSS_SELECTOR, "#calc-quotes tbody tr")
    ]
    assert models == ["openai/gpt-4o-mini", "openai/gpt-4o"]


def test_the_explorer_shows_the_ledgers_totals(page: tuple[CollectorApp, WebDriver]) -> None:
    app, browser = page
    open_page(browser, app, f"view=explorer&period={MONTH}")
    wait(browser, "#exp-table tfoot td")
    # cost $2.80 + $1.00 + $0.50 + $2.00 = $6.30; charged x 1.10 = $6.93
    WebDriverWait(browser, 10).until(
        lambda d: exact(d, "#exp-table tfoot td[data-exact]") == [Decimal("6.30"), Decimal("6.93")]
    )
    assert table(browser, "#exp-table") == {
        "search": [Decimal("4.30"), Decimal("4.73")],
        ODD_TEAM: [Decimal("2.00"), Decimal("2.20")],
    }
    assert list(table(browser, "#exp-top-users")) == [
        "ann",
        ODD_USER,
        "bob",
    ]  # ann $3.30, the odd user $2.00, bob $1.00: shown as text
    assert not browser.find_elements(By.CSS_SELECTOR, "#exp-top-users img")
    bars = browser.find_elements(By.CSS_SELECTOR, "#exp-trend rect.bar")
    assert len(bars) == 3  # 3, 4 and 9 November
    screenshot(browser, "explorer")

    Select(browser.find_element(By.ID, "exp-group")).select_by_value("feature")
    WebDriverWait(browser, 10).until(lambda d: ODD_FEATURE in d.execute_script(TEXT, "#exp-table"))
    assert table(browser, "#exp-table")["answers"] == [Decimal("3.80"), Decimal("4.18")]
    Select(browser.find_element(By.ID, "exp-group")).select_by_value("team")
    button = wait(browser, "#exp-table tbody button[aria-label='Drill into search']")
    button.send_keys("\n")  # Enter on the focused button
    wait(browser, "#exp-features tbody button")
    assert table(browser, "#exp-features") == {
        "answers": [Decimal("3.80"), Decimal("4.18")],
        "summaries": [Decimal("0.50"), Decimal("0.55")],
    }
    browser.find_element(By.CSS_SELECTOR, "#exp-features button[aria-label='Drill into answers']").click()
    wait(browser, "#exp-sessions tbody tr")
    assert table(browser, "#exp-sessions") == {
        "Answer s-1": [Decimal("2.80"), Decimal("3.08")],
        "Answer s-2": [Decimal("1.00"), Decimal("1.10")],
    }
    assert "team=search" in browser.current_url and "feature=answers" in browser.current_url
    browser.get(browser.current_url)  # the drill-down is in the URL: a link reopens it
    wait(browser, "#exp-sessions tbody tr")
    assert list(table(browser, "#exp-sessions")) == ["Answer s-1", "Answer s-2"]

    # the odd team and feature, drilled by keyboard-operable buttons found by their exact names
    browser.find_element(By.XPATH, "//button[.='Close drill-down']").click()
    press(browser, "#exp-table", f"Drill into {ODD_TEAM}")
    wait(browser, "#exp-features tbody button")
    assert table(browser, "#exp-features") == {ODD_FEATURE: [Decimal("2.00"), Decimal("2.20")]}
    press(browser, "#exp-features", f"Drill into {ODD_FEATURE}")
    wait(browser, "#exp-sessions tbody tr")
    assert table(browser, "#exp-sessions") == {"Ticket s-3": [Decimal("2.00"), Decimal("2.20")]}
    links = [
        (a.text, a.get_attribute("href")) for a in browser.find_elements(By.CSS_SELECTOR, "#exp-grafana a")
    ]
    assert ("Overview", f"{GRAFANA}/d/llmcost-overview") in links and len(links) == 5


def press(browser: WebDriver, within: str, label: str) -> None:
    """Click the button named ``label`` (any characters) inside ``within``."""
    script = (
        "const b = [...document.querySelectorAll(arguments[0] + ' button')].find(b => b.getAttribute('aria-label') === arguments[1]);"
        "if (!b) return false; b.click(); return true;"
    )
    assert browser.execute_script(script, within, label), f"no button {label!r} in {within}"


def table(browser: WebDriver, css: str) -> dict[str, list[Decimal]]:
    """Each body row's heading and exact amounts, read in one script (no stale elements)."""
    script = (
        "return [...document.querySelectorAll(arguments[0] + ' tbody tr')].map(r => [r.querySelector('th').textContent,"
        " [...r.querySelectorAll('td[data-exact]')].map(e => e.dataset.exact)]);"
    )
    return {name: [Decimal(v) for v in values] for name, values in browser.execute_script(script, css)}


def test_the_invoice_preview_is_the_invoice_engines(page: tuple[CollectorApp, WebDriver]) -> None:
    app, browser = page
    (expected,) = Invoicing(app.ledger, app.config, app.pricer).invoices(Period.parse(MONTH), "search")
    open_page(browser, app, f"view=invoices&ip={MONTH}&it=search")
    wait(browser, "#inv-total")
    assert browser.find_element(By.ID, "inv-total").text == f"${expected['total']}"
    assert exact(browser, "#inv-total") == [Decimal(expected["total_usd"])]
    shown = [
        (
            r.find_elements(By.TAG_NAME, "td")[0].text,
            Decimal(r.find_element(By.CSS_SELECTOR, "td.amount").get_attribute("data-exact") or "nan"),
        )
        for r in browser.find_elements(By.CSS_SELECTOR, "#inv-lines tbody tr")
    ]
    assert shown == [(line["description"], Decimal(line["amount_usd"])) for line in expected["lines"]]
    assert browser.find_element(By.ID, "inv-team-name").text == "Search"
    screenshot(browser, "invoices")

    links = {
        a.get_attribute("data-format"): a.get_attribute("href")
        for a in browser.find_elements(By.CSS_SELECTOR, "#inv-downloads a")
    }
    assert set(links) == {"md", "csv", "pdf"}
    with urllib.request.urlopen(links["md"], timeout=10) as response:
        assert response.read().decode() == render_one(expected, "md")
    with urllib.request.urlopen(links["pdf"], timeout=60) as response:
        assert response.headers["Content-Type"] == "application/pdf" and response.read().startswith(b"%PDF")

    Select(browser.find_element(By.ID, "inv-team")).select_by_value(ODD_TEAM)  # any team name works
    WebDriverWait(browser, 10).until(lambda d: d.execute_script(TEXT, "#inv-team-name") == ODD_TEAM)
    (odd,) = Invoicing(app.ledger, app.config, app.pricer).invoices(Period.parse(MONTH), ODD_TEAM)
    assert browser.find_element(By.ID, "inv-total").text == f"${odd['total']}"


def test_a_team_token_sees_its_team_in_the_browser(collector: Collectors, browser: WebDriver) -> None:
    """With tokens configured the page asks for one (HTTP Basic); given a read token scoped to
    search (the password of the prompt), the page and its data calls
    are answered with search's numbers only: the other team's $2.00 is not in the totals."""
    tokens = "access: {tokens: [{name: search-team, role: read, teams: [search], token: search-t0ken}]}\n"
    app = collector(CONFIG + tokens, grafana_url=GRAFANA)
    seed_page(app)
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(app.urls()["web"], timeout=10)
    assert refused.value.code == 401 and refused.value.headers["WWW-Authenticate"].startswith("Basic")
    # what answering the prompt does: the browser keeps the credentials for the origin and sends
    # them with the page, its scripts and its data calls (a page whose own URL carries
    # credentials could not fetch at all, so they are given on another path first)
    browser.get(app.urls()["web"].replace("http://", "http://me:search-t0ken@") + "static/page/style.css")
    browser.get(app.urls()["web"] + f"?view=explorer&period={MONTH}")
    wait(browser, "#exp-table tfoot td")
    # search only: $2.80 + $1.00 + $0.50 = $4.30, charged x 1.10 = $4.73
    WebDriverWait(browser, 10).until(
        lambda d: exact(d, "#exp-table tfoot td[data-exact]") == [Decimal("4.30"), Decimal("4.73")]
    )
    assert table(browser, "#exp-table") == {"search": [Decimal("4.30"), Decimal("4.73")]}
    assert ODD_USER not in browser.execute_script(TEXT, "#exp-top-users")


def test_the_views_are_reached_by_keyboard(page: tuple[CollectorApp, WebDriver]) -> None:
    app, browser = page
    open_page(browser, app)
    wait(browser, "#calc-quotes td.charge")
    tab = browser.find_element(By.ID, "tab-calculator")
    tab.send_keys(Keys.ARROW_RIGHT)  # the ARIA tabs pattern: arrows move between views
    wait(browser, "#view-invoices:not([hidden])")
    assert browser.switch_to.active_element.get_attribute("id") == "tab-invoices"
    assert browser.find_element(By.ID, "view-calculator").get_attribute("hidden") is not None
    assert "view=invoices" in browser.current_url
    browser.switch_to.active_element.send_keys(Keys.ARROW_RIGHT)
    wait(browser, "#view-explorer:not([hidden]) #exp-table")
    browser.switch_to.active_element.send_keys(Keys.ARROW_RIGHT)  # wraps round to the first view
    wait(browser, "#view-calculator:not([hidden])")
    assert "view=" not in browser.current_url


@pytest.mark.parametrize("view", ["calculator", "invoices", "explorer"])
def test_no_serious_accessibility_violation_and_it_fits_a_phone(
    page: tuple[CollectorApp, WebDriver], view: str
) -> None:
    app, browser = page
    query = {
        "calculator": MINI_VS_SONNET,
        "invoices": f"view=invoices&ip={MONTH}&it=search",
        "explorer": f"view=explorer&period={MONTH}",
    }
    ready = {
        "calculator": "#calc-quotes td.charge",
        "invoices": "#inv-total",
        "explorer": "#exp-table tfoot td",
    }
    open_page(browser, app, query[view])
    wait(browser, ready[view])
    browser.execute_script(AXE.read_text())
    result = browser.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "axe.run(document, {resultTypes: ['violations']}).then(r => done(r.violations)).catch(e => done(String(e)));"
    )
    assert isinstance(result, list), result
    serious = [
        (v["id"], v["impact"], [n["target"] for n in v["nodes"]][:3])
        for v in result
        if v["impact"] in ("serious", "critical")
    ]
    assert serious == []
    browser.set_window_size(390, 844)  # a phone: nothing wider than the screen but the scrollable tables
    WebDriverWait(browser, 5).until(lambda d: d.execute_script("return window.innerWidth") <= 400)
    overflow = browser.execute_script("return document.documentElement.scrollWidth - window.innerWidth")
    wide = browser.execute_script(
        "return [...document.querySelectorAll('body *')].filter(e => e.getBoundingClientRect().right > window.innerWidth + 1)"
        ".slice(0, 5).map(e => e.tagName + '#' + e.id + '.' + e.className + ' ' + e.textContent.slice(0, 40));"
    )
    assert overflow <= 0, wide
    screenshot(browser, f"{view}-phone")
