// The page's entry: three views (calculator, invoices, explorer), one visible at a time, the
// chosen one kept in the URL with the rest of the state so a link reopens the same screen.
import { state } from "./dom.js";
import { calculator } from "./calculator.js";
import { invoices } from "./invoices.js";
import { explorer } from "./explorer.js";

const VIEWS = { calculator, invoices, explorer };
const started = new Map();

function show(name) {
  if (!(name in VIEWS)) name = "calculator";
  for (const view of Object.keys(VIEWS)) {
    const panel = document.getElementById(`view-${view}`);
    const tab = document.getElementById(`tab-${view}`);
    panel.hidden = view !== name;
    tab.setAttribute("aria-selected", String(view === name));
    tab.tabIndex = view === name ? 0 : -1;
  }
  if (!started.has(name)) started.set(name, VIEWS[name](document.getElementById(`view-${name}`)) || null);
  started.get(name)?.();  // views that read the ledger return their loader: fresh data on each visit
  state.set({ view: name === "calculator" ? "" : name });
}

const tabs = [...document.querySelectorAll("[role=tab]")];
tabs.forEach((tab, i) => {
  tab.addEventListener("click", () => show(tab.dataset.view));
  tab.addEventListener("keydown", e => {  // arrow keys move between tabs, as the ARIA tabs pattern
    const step = { ArrowRight: 1, ArrowLeft: -1 }[e.key];
    if (!step) return;
    const next = tabs[(i + step + tabs.length) % tabs.length];
    next.focus();
    show(next.dataset.view);
  });
});
show(state.get("view", "calculator"));
