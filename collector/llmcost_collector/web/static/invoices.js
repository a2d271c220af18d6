// Invoice generator: a team's invoice for a month from the invoice engine (GET /api/v1/invoices),
// previewed from its JSON document and downloadable as Markdown, CSV or PDF. The page shows the
// document's own presented amounts (cents that add up to the total), computing none itself.
import { el, replace, usd, count, getJson, state, field, select, status } from "./dom.js";

const FORMATS = [["md", "Markdown"], ["csv", "CSV"], ["pdf", "PDF"]];

export function invoices(root) {
  const month = el("input", { id: "inv-period", type: "month", value: state.get("ip", new Date().toISOString().slice(0, 7)) });
  const team = select("inv-team", [], undefined);
  const message = el("p", { id: "inv-status", role: "status", "aria-live": "polite" });
  const downloads = el("nav", { id: "inv-downloads", "aria-label": "Download the invoice" });
  const preview = el("article", { id: "inv-preview", "aria-label": "Invoice preview" });
  let documents = [];

  root.append(el("h2", {}, "Invoice generator"),
    el("div", { class: "grid" }, field("Period (month)", month), field("Team", team)),
    message, downloads, preview);

  function draw() {
    const doc = documents.find(d => d.team === team.value);
    state.set({ ip: month.value, it: doc ? doc.team : "" });
    if (!doc) { replace(preview); replace(downloads); return; }
    const url = fmt => `/api/v1/invoices?${new URLSearchParams({ period: doc.period, team: doc.team, format: fmt })}`;
    replace(downloads, "Download: ", FORMATS.map(([fmt, text]) => el("a", { href: url(fmt), download: "", "data-format": fmt }, text)));
    const lines = doc.lines.map(line => el("tr", { class: line.informational ? "informational" : null },
      el("td", {}, line.description), el("td", {}, line.kind),
      el("td", { class: "num" }, line.quantity === null || line.quantity === undefined ? "" : `${line.quantity} ${line.unit || ""}`),
      el("td", { class: "num amount", title: `$${line.amount_usd}`, "data-exact": line.amount_usd }, `${line.informational ? "(" : ""}$${line.amount}${line.informational ? ")" : ""}`)));
    replace(preview,
      el("h3", {}, `Invoice ${doc.number}`),
      el("dl", { class: "facts" },
        el("dt", {}, "Team"), el("dd", { id: "inv-team-name" }, doc.team_name),
        el("dt", {}, "Period"), el("dd", {}, `${doc.period_start} to ${doc.period_end} (exclusive)`),
        el("dt", {}, "Status"), el("dd", {}, doc.status),
        el("dt", {}, "Tokens"), el("dd", {}, count(doc.volume_tokens)),
        el("dt", {}, "Tier"), el("dd", {}, doc.tier ? `${doc.tier.name}, ${doc.tier.markup_percent} % (${doc.tier.range})` : "—"),
        el("dt", {}, "Contracted cost"), el("dd", {}, usd(doc.contracted_usd))),
      el("table", { id: "inv-lines" }, el("caption", {}, "Invoice lines"),
        el("thead", {}, el("tr", {}, ["Line", "Kind", "Quantity", "Amount"].map((h, i) => el("th", { scope: "col", class: i > 1 ? "num" : null }, h)))),
        el("tbody", {}, lines),
        el("tfoot", {}, el("tr", { class: "total" }, el("th", { scope: "row", colspan: 3 }, "Total"),
          el("td", { class: "num", id: "inv-total", title: `$${doc.total_usd}`, "data-exact": doc.total_usd }, `$${doc.total}`)))),
      el("p", { class: "sub" }, doc.rounding));
  }

  async function load() {
    status(message, "Loading…");
    try {
      const asked = month.value;
      const answer = await getJson("/api/v1/invoices", { period: asked });
      if (asked !== month.value) return;  // the month changed meanwhile: its own load draws
      documents = answer.invoices;
      const wanted = team.value || state.get("it");
      replace(team, documents.map(d => el("option", { value: d.team }, d.team_name === d.team ? d.team : `${d.team_name} (${d.team})`)));
      if (documents.some(d => d.team === wanted)) team.value = wanted;
      status(message, documents.length ? `${documents.length} invoice(s) for ${answer.period}, from the invoice engine.` : `No invoices for ${answer.period}.`);
      draw();
    } catch (e) {
      status(message, `Cannot load invoices: ${e.message}`, true);
    }
  }

  month.addEventListener("change", load);
  team.addEventListener("change", draw);
  return load;
}
