// Chargeback calculator: the user picks models and a monthly volume and a chargeback model; the
// collector's POST /api/v1/quote prices it with the invoice engine. Nothing here computes money:
// it only sends the scenario and shows the answer.
import { el, replace, usd, exact, count, getJson, postJson, state, field, select, status, debounce } from "./dom.js";

const CHARGEBACK_MODELS = [
  ["at_cost", "At cost"],
  ["cost_plus", "Cost-plus (markup and platform fee)"],
  ["tiered", "Tiered volume markup"],
  ["value_based", "Value-based (per outcome)"],
];
const SORTS = [
  ["name", "Name"],
  ["input", "Input price, low to high"],
  ["-input", "Input price, high to low"],
  ["output", "Output price, low to high"],
  ["-output", "Output price, high to low"],
];
const SHOWN = 100;
const DEFAULT_MODELS = ["openai/gpt-4o-mini", "anthropic/claude-3-5-sonnet"];

const key = m => `${m.provider}/${m.model}`;

function numberInput(id, value, attrs = {}) {
  return el("input", { id, name: id, type: "number", min: 0, step: "any", inputmode: "decimal", value, ...attrs });
}

export function calculator(root) {
  let catalog = [];
  let chosen = state.all("m").length ? state.all("m") : [...DEFAULT_MODELS];
  let inflight = null;

  const search = el("input", { id: "calc-search", type: "search", value: state.get("q"), autocomplete: "off" });
  const sort = select("calc-sort", SORTS, state.get("sort", "name"));
  const source = el("p", { class: "sub", id: "calc-source" });
  const catalogBody = el("tbody");
  const catalogTable = el("table", { class: "catalog", "aria-describedby": "calc-source" },
    el("caption", {}, "Catalogue: tick the models to compare; the first ticked is the baseline"),
    el("thead", {}, el("tr", {}, ...["Compare", "Model", "Source", "Since", "Input $/Mtok", "Cached $/Mtok", "Output $/Mtok"]
      .map((t, i) => el("th", { scope: "col", class: i > 3 ? "num" : null }, t)))),
    catalogBody);
  const more = el("p", { class: "sub", "aria-live": "polite" });
  const chosenList = el("ol", { class: "chosen", "aria-label": "Models compared, baseline first" });

  const mode = state.get("mode", "tokens");
  const modeTokens = el("input", { type: "radio", name: "calc-mode", id: "calc-mode-tokens", value: "tokens", checked: mode !== "requests" });
  const modeRequests = el("input", { type: "radio", name: "calc-mode", id: "calc-mode-requests", value: "requests", checked: mode === "requests" });
  const inputs = {
    in: numberInput("calc-input", state.get("in", "10000000")),
    cached: numberInput("calc-cached", state.get("cached", "0")),
    out: numberInput("calc-output", state.get("out", "2000000")),
    req: numberInput("calc-requests", state.get("req", "10000")),
    inreq: numberInput("calc-in-per-request", state.get("inreq", "800")),
    outreq: numberInput("calc-out-per-request", state.get("outreq", "200")),
    share: numberInput("calc-cached-share", state.get("share", "0"), { max: 100 }),
  };
  const tokensBox = el("div", { class: "grid", id: "calc-tokens-box" },
    field("Input tokens / month", inputs.in), field("Cached input tokens / month", inputs.cached), field("Output tokens / month", inputs.out));
  const requestsBox = el("div", { class: "grid", id: "calc-requests-box" },
    field("Requests / month", inputs.req), field("Input tokens per request", inputs.inreq),
    field("Output tokens per request", inputs.outreq), field("Cached share of input, %", inputs.share));

  const cbModel = select("calc-chargeback", CHARGEBACK_MODELS, state.get("cb", "cost_plus"));
  const cb = {
    markup: numberInput("calc-markup", state.get("markup", "10")),
    fee: numberInput("calc-fee", state.get("fee", "5")),
    feeMonthly: numberInput("calc-fee-monthly", state.get("feem", "0")),
    outcome: el("input", { id: "calc-outcome", type: "text", value: state.get("outcome", "ticket_resolved") }),
    outcomes: numberInput("calc-outcomes", state.get("outcomes", "1000"), { step: 1 }),
    outcomePrice: numberInput("calc-outcome-price", state.get("oprice", "0.05")),
  };
  const costPlusBox = el("div", { class: "grid" },
    field("Markup, %", cb.markup), field("Platform fee, % of cost", cb.fee), field("Platform fee, USD / month", cb.feeMonthly));
  const valueBox = el("div", { class: "grid" },
    field("Outcome", cb.outcome), field("Outcomes / month", cb.outcomes), field("USD per outcome", cb.outcomePrice));
  const tieredNote = el("p", { class: "sub" }, "Tiered: the markup is the tier of the month's tokens (the seed's tiers: Experimental under 10M, Standard 10M-100M, Enterprise above).");

  const message = el("p", { id: "calc-status", role: "status", "aria-live": "polite" });
  const results = el("div", { id: "calc-results" });

  root.append(
    el("h2", {}, "Chargeback calculator"),
    el("fieldset", {}, el("legend", {}, "Models"),
      el("div", { class: "grid" }, field("Search the catalogue", search), field("Sort by", sort)),
      source, el("div", { class: "scroll" }, catalogTable), more, chosenList),
    el("fieldset", {}, el("legend", {}, "Monthly volume"),
      el("div", { class: "radios", role: "radiogroup", "aria-label": "Volume as" },
        el("span", {}, modeTokens, el("label", { for: modeTokens.id }, "Tokens")),
        el("span", {}, modeRequests, el("label", { for: modeRequests.id }, "Requests × tokens per request"))),
      tokensBox, requestsBox),
    el("fieldset", {}, el("legend", {}, "Chargeback"), field("Chargeback model", cbModel), costPlusBox, valueBox, tieredNote),
    message, results);

  function syncVisibility() {
    const requests = modeRequests.checked;
    tokensBox.hidden = requests;
    requestsBox.hidden = !requests;
    costPlusBox.hidden = cbModel.value !== "cost_plus";
    valueBox.hidden = cbModel.value !== "value_based";
    tieredNote.hidden = cbModel.value !== "tiered";
  }

  function drawCatalog() {
    const needle = search.value.trim().toLowerCase();
    const rows = catalog.filter(m => !needle || key(m).toLowerCase().includes(needle));
    const field_ = sort.value.replace("-", "");
    const sign = sort.value.startsWith("-") ? -1 : 1;
    if (sort.value === "name") rows.sort((a, b) => key(a).localeCompare(key(b)));
    // ordering only: the prices are shown as the API's strings, never computed with
    else rows.sort((a, b) => sign * (Number(a[`${field_}_per_mtok`] ?? Infinity) - Number(b[`${field_}_per_mtok`] ?? Infinity)));
    replace(catalogBody, rows.slice(0, SHOWN).map((m, i) => {
      const box = el("input", { type: "checkbox", id: `calc-pick-${i}`, checked: chosen.includes(key(m)),
        onchange: e => { toggle(key(m), e.target.checked); } });
      return el("tr", {},
        el("td", {}, box, el("label", { for: box.id, class: "visually-hidden" }, `Compare ${key(m)} (${m.source})`)),
        el("td", {}, key(m)), el("td", {}, m.source || ""), el("td", {}, m.effective_from || ""),
        el("td", { class: "num" }, m.input_per_mtok ?? "—"), el("td", { class: "num" }, m.cached_input_per_mtok ?? "—"),
        el("td", { class: "num" }, m.output_per_mtok ?? "—"));
    }));
    more.textContent = rows.length > SHOWN ? `${count(rows.length - SHOWN)} more match: narrow the search.` : `${count(rows.length)} models.`;
  }

  function drawChosen() {
    replace(chosenList, chosen.map((name, i) => el("li", {}, name, i === 0 ? " (baseline) " : " ",
      el("button", { type: "button", onclick: () => toggle(name, false), "aria-label": `Remove ${name}` }, "Remove"),
      i > 0 ? el("button", { type: "button", onclick: () => { chosen.splice(i, 1); chosen.unshift(name); changed(); }, "aria-label": `Make baseline: ${name}` }, "Make baseline") : null)));
  }

  function toggle(name, on) {
    chosen = chosen.filter(n => n !== name);
    if (on) chosen.push(name);
    changed();
  }

  function scenario() {
    const choices = chosen.map(name => { const at = name.indexOf("/"); return { provider: name.slice(0, at), model: name.slice(at + 1) }; });
    const whole = v => Math.max(0, Math.trunc(Number(v) || 0));
    const volume = modeRequests.checked
      ? { requests: whole(inputs.req.value), input_tokens_per_request: whole(inputs.inreq.value),
          output_tokens_per_request: whole(inputs.outreq.value), cached_percent: inputs.share.value || "0" }
      : { input_tokens: whole(inputs.in.value), cached_input_tokens: whole(inputs.cached.value), output_tokens: whole(inputs.out.value) };
    const chargeback = { model: cbModel.value };
    const body = { choices, volume, chargeback };
    if (cbModel.value === "cost_plus") {
      Object.assign(chargeback, { markup_percent: cb.markup.value || "0", platform_fee_percent: cb.fee.value || "0", platform_fee_monthly_usd: cb.feeMonthly.value || "0" });
    }
    if (cbModel.value === "value_based" && cb.outcome.value.trim()) {
      chargeback.outcomes = { [cb.outcome.value.trim()]: cb.outcomePrice.value || "0" };
      body.outcome_counts = { [cb.outcome.value.trim()]: whole(cb.outcomes.value) };
    }
    return body;
  }

  function saveState() {
    state.set({
      m: chosen, q: search.value, sort: sort.value === "name" ? "" : sort.value, mode: modeRequests.checked ? "requests" : "",
      in: inputs.in.value, cached: inputs.cached.value, out: inputs.out.value, req: inputs.req.value, inreq: inputs.inreq.value,
      outreq: inputs.outreq.value, share: inputs.share.value, cb: cbModel.value, markup: cb.markup.value, fee: cb.fee.value,
      feem: cb.feeMonthly.value, outcome: cb.outcome.value, outcomes: cb.outcomes.value, oprice: cb.outcomePrice.value,
    });
  }

  const requote = debounce(async () => {
    if (!chosen.length) { status(message, "Tick at least one model."); replace(results); return; }
    inflight?.abort();
    inflight = new AbortController();
    status(message, "Quoting…");
    results.setAttribute("aria-busy", "true");
    try {
      const answer = await postJson("/api/v1/quote", scenario(), inflight.signal);
      drawResults(answer);
      status(message, `Quoted ${answer.period} (${answer.days} days, prices of ${answer.price_day}) by the invoice engine.`);
    } catch (e) {
      if (e.name === "AbortError") return;
      status(message, `Cannot quote: ${e.message}`, true);
      replace(results);
    } finally {
      results.removeAttribute("aria-busy");
    }
  }, 150);

  function changed() {
    syncVisibility();
    drawChosen();
    drawCatalog();
    saveState();
    requote();
  }

  function drawResults(answer) {
    const head = ["Model", "Price source", "Tokens (in / cached / out)", "Cost", "Tier", "Markup", "Charge to team"];
    const table = el("table", { id: "calc-quotes" }, el("caption", {}, "Monthly cost and charge per model"),
      el("thead", {}, el("tr", {}, head.map((t, i) => el("th", { scope: "col", class: i >= 3 ? "num" : null }, t)))),
      el("tbody", {}, answer.quotes.map(q => el("tr", { "data-model": `${q.provider}/${q.model}` },
        el("th", { scope: "row" }, `${q.provider}/${q.model}`),
        el("td", {}, q.price ? `${q.price.source}, ${q.price.effective_from || "undated"}` : ""),
        el("td", { class: "num" }, `${count(q.tokens.input)} / ${count(q.tokens.cached_input)} / ${count(q.tokens.output)}`),
        el("td", { class: "num cost", title: exact(q.cost_usd), "data-exact": q.cost_usd }, usd(q.cost_usd)),
        el("td", { class: "num tier" }, q.tier ? `${q.tier.name} (${q.tier.range})` : "—"),
        el("td", { class: "num markup" }, q.markup_percent === null ? "—" : `${q.markup_percent} %`),
        el("td", { class: "num charge", title: exact(q.charge_usd), "data-exact": q.charge_usd }, usd(q.charge_usd))))));
    const lines = answer.quotes.map(q => el("details", {}, el("summary", {}, `Invoice lines: ${q.provider}/${q.model}`),
      el("ul", {}, q.lines.map(l => el("li", {}, `${l.description}: `, el("span", { title: exact(l.amount_usd) }, usd(l.amount_usd)), l.informational ? " (informational)" : "")))));
    const deltas = answer.comparisons.length ? el("table", { id: "calc-deltas" }, el("caption", {}, "Comparison to the baseline"),
      el("thead", {}, el("tr", {}, ["From", "To", "Delta, $ / month", "Delta, %"].map((t, i) => el("th", { scope: "col", class: i > 1 ? "num" : null }, t)))),
      el("tbody", {}, answer.comparisons.map(c => el("tr", {}, el("td", {}, c.from), el("td", {}, c.to),
        el("td", { class: "num delta-usd", title: exact(c.delta_usd), "data-exact": c.delta_usd }, (c.delta_usd.startsWith("-") ? "" : "+") + usd(c.delta_usd)),
        el("td", { class: "num delta-percent", "data-exact": c.delta_percent ?? "" }, c.delta_percent === null ? "—" : `${c.delta_percent.startsWith("-") ? "" : "+"}${c.delta_percent} %`))))) : null;
    replace(results, table, deltas, lines);
  }

  // as typed (a search's change event on blur would redraw under the pointer); a select on change
  search.addEventListener("input", () => { drawCatalog(); saveState(); });
  sort.addEventListener("change", () => { drawCatalog(); saveState(); });
  for (const control of [modeTokens, modeRequests, cbModel, ...Object.values(inputs), ...Object.values(cb)]) {
    control.addEventListener("input", changed);
    control.addEventListener("change", changed);
  }

  syncVisibility();
  drawChosen();
  getJson("/api/v1/catalog", { limit: 10000 }).then(answer => {  // the whole catalogue (about 2,300 models)
    catalog = answer.models;
    const sources = [...new Set(catalog.map(m => m.source))].join(", ");
    source.textContent = `Prices from ${sources || "nowhere"}; each row shows its source and the date it applies from.`
      + (answer.truncated ? ` Only the first ${count(catalog.length)} models are listed.` : "");
    drawCatalog();
  }).catch(e => status(message, `Cannot load the catalogue: ${e.message}`, true));
  requote();
}
