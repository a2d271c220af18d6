// Cost explorer: the ledger's spend from GET /api/v1/costs by team, feature, model or environment
// over a chosen period, a daily trend, drill-down team -> feature -> sessions, and the top users.
import { el, replace, usd, exact, count, getJson, state, field, select, status, filterValue } from "./dom.js";
import { barChart } from "./chart.js";

const DIMENSIONS = [["team", "Team"], ["feature", "Feature"], ["model", "Model"], ["environment", "Environment"]];
const PERIODS = [["this_month", "This month"], ["last_month", "Last month"], ["this_week", "This week"],
  ["last_week", "Last week"], ["today", "Today"], ["month", "A month…"]];
const OTHERS = "__others__";

const tokens = row => Object.values(row.tokens || {}).reduce((a, b) => a + b, 0);
const name = (row, column) => row.others ? "(all others)" : (row[column] === "" ? "(none)" : row[column]);

function costTable(id, caption, column, body, onPick) {
  const head = [column, "Requests", "Tokens", "Cost", "Charged"];
  const rows = body.rows.map(row => el("tr", {},
    el("th", { scope: "row" }, onPick && !row.others
      ? el("button", { type: "button", class: "link", onclick: () => onPick(row[column]), "aria-label": `Drill into ${name(row, column)}` }, name(row, column))
      : name(row, column)),
    el("td", { class: "num" }, count(row.requests)), el("td", { class: "num" }, count(tokens(row))),
    el("td", { class: "num", title: exact(row.contracted_cost_usd), "data-exact": row.contracted_cost_usd }, usd(row.contracted_cost_usd)),
    el("td", { class: "num", title: exact(row.charged_usd), "data-exact": row.charged_usd }, usd(row.charged_usd))));
  const t = body.totals;
  return el("table", { id }, el("caption", {}, caption),
    el("thead", {}, el("tr", {}, head.map((h, i) => el("th", { scope: "col", class: i ? "num" : null }, h)))),
    el("tbody", {}, rows),
    el("tfoot", {}, el("tr", { class: "total" }, el("th", { scope: "row" }, "Total"),
      el("td", { class: "num" }, count(t.requests)), el("td", { class: "num" }, count(tokens(t))),
      el("td", { class: "num", "data-exact": t.contracted_cost_usd, title: exact(t.contracted_cost_usd) }, usd(t.contracted_cost_usd)),
      el("td", { class: "num", "data-exact": t.charged_usd, title: exact(t.charged_usd) }, usd(t.charged_usd)))));
}

export function explorer(root) {
  const initial = state.get("period", "this_month");
  const isMonth = /^\d{4}-\d{2}$/.test(initial);
  const period = select("exp-period", PERIODS, isMonth ? "month" : initial);
  const month = el("input", { id: "exp-month", type: "month", value: isMonth ? initial : new Date().toISOString().slice(0, 7) });
  const monthField = field("Month", month);
  const dimension = select("exp-group", DIMENSIONS, state.get("by", "team"));
  const message = el("p", { id: "exp-status", role: "status", "aria-live": "polite" });
  const trend = el("figure", { id: "exp-trend" });
  const main = el("div", { id: "exp-main" });
  const drill = el("section", { id: "exp-drill", "aria-live": "polite" });
  const users = el("div", { id: "exp-users" });
  const links = el("nav", { id: "exp-grafana", "aria-label": "Grafana dashboards" });
  let drillTeam = state.get("team", null);
  let drillFeature = state.get("feature", null);

  root.append(el("h2", {}, "Cost explorer"),
    el("div", { class: "grid" }, field("Period", period), monthField, field("Spend by", dimension)),
    message, links, trend, main, drill, el("h3", {}, "Top users"), users);

  const chosenPeriod = () => period.value === "month" ? month.value : period.value;

  function save() {
    state.set({ period: chosenPeriod() === "this_month" ? "" : chosenPeriod(), by: dimension.value === "team" ? "" : dimension.value,
      team: drillTeam, feature: drillFeature });
  }

  async function drawDrill() {
    if (drillTeam === null) { replace(drill); return; }
    const p = chosenPeriod();
    const back = el("button", { type: "button", onclick: () => { drillTeam = drillFeature = null; save(); drawDrill(); } }, "Close drill-down");
    if (drillFeature === null) {
      const body = await getJson("/api/v1/costs", { group_by: "feature", team: filterValue(drillTeam), period: p });
      replace(drill, el("h3", {}, `Features of team ${drillTeam}`), back,
        costTable("exp-features", `Spend by feature, team ${drillTeam}`, "feature", body, f => { drillFeature = f; save(); drawDrill(); }));
    } else {
      const body = await getJson("/api/v1/costs", { group_by: "session_id,session_name", team: filterValue(drillTeam), feature: filterValue(drillFeature), period: p, order_by: "-contracted_cost", limit: 50 });
      const up = el("button", { type: "button", onclick: () => { drillFeature = null; save(); drawDrill(); } }, `Back to team ${drillTeam}`);
      const rows = body.rows.map(r => ({ ...r, session: r.others ? r.session_id : (r.session_id ? `${r.session_name || "session"} ${r.session_id}` : "") }));
      replace(drill, el("h3", {}, `Sessions of ${drillTeam} / ${drillFeature === "" ? "(none)" : drillFeature}`), el("div", { class: "buttons" }, up, back),
        costTable("exp-sessions", `Sessions, team ${drillTeam}, feature ${drillFeature === "" ? "(none)" : drillFeature}`, "session", { ...body, rows }, null));
    }
  }

  let generation = 0;  // a later refresh wins: an earlier answer arriving late is dropped

  async function refresh() {
    monthField.hidden = period.value !== "month";
    save();
    const p = chosenPeriod();
    const mine = ++generation;
    status(message, "Loading…");
    try {
      const [byGroup, daily, top] = await Promise.all([
        getJson("/api/v1/costs", { group_by: dimension.value, period: p }),
        getJson("/api/v1/costs", { group_by: "", bucket: "day", period: p, order_by: "-charged" }),
        getJson("/api/v1/costs", { group_by: "user_id", period: p, limit: 10, "user_id!": "" }),
      ]);
      if (mine !== generation) return;
      const label = DIMENSIONS.find(([v]) => v === dimension.value)[1];
      replace(main, costTable("exp-table", `Spend by ${label.toLowerCase()}, ${byGroup.from.slice(0, 10)} to ${byGroup.to.slice(0, 10)} (exclusive)`,
        dimension.value, byGroup, dimension.value === "team" ? t => { drillTeam = t; drillFeature = null; save(); drawDrill(); } : null));
      const points = daily.rows.slice().sort((a, b) => a.bucket.localeCompare(b.bucket))
        .map(r => ({ label: r.bucket.slice(5, 10), value: Number(r.charged_usd), text: usd(r.charged_usd) }));
      replace(trend, barChart(points, "Charged per day"), el("figcaption", {}, `Charged per day, ${points.length} days with spend.`));
      replace(users, costTable("exp-top-users", "Top 10 users by charged spend", "user_id", top, null));
      await drawDrill();
      status(message, `Spend from the ledger, ${byGroup.from.slice(0, 10)} to ${byGroup.to.slice(0, 10)}.`);
    } catch (e) {
      status(message, `Cannot load spend: ${e.message}`, true);
    }
  }

  getJson("/api/v1/links").then(answer => {
    if (!answer.dashboards.length) return;
    replace(links, "Grafana: ", answer.dashboards.map(d => el("a", { href: d.url, rel: "noopener" }, d.title)));
  }).catch(() => {});
  for (const control of [period, month, dimension]) control.addEventListener("change", refresh);
  return refresh;
}
