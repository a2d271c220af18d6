// Small DOM and HTTP helpers shared by the page's views. Every value from the API is put on the
// page as text (textContent, setAttribute), never parsed as HTML, so any name renders as written.

/** An element: el("td", {class: "num"}, "12.00", child, ...). Attributes are set as attributes. */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === false || value === null || value === undefined) continue;
    if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value === true ? "" : String(value));
  }
  append(node, children);
  return node;
}

function append(node, children) {
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.appendChild(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

export function replace(node, ...children) {
  node.replaceChildren();
  append(node, children);
}

/** A money string from the API ("12.345678901") shown to the cent, without float arithmetic. */
export function usd(text) {
  if (text === null || text === undefined) return "unpriced";
  const negative = text.startsWith("-");
  const [whole, fraction = ""] = (negative ? text.slice(1) : text).split(".");
  let cents = BigInt(whole + (fraction + "00").slice(0, 2));
  const rest = fraction.slice(2);
  // half to even on the digits past the cent
  const half = rest.length > 0 && (rest[0] > "5" || (rest[0] === "5" && (/[1-9]/.test(rest.slice(1)) || cents % 2n === 1n)));
  if (half) cents += 1n;
  const digits = cents.toString().padStart(3, "0");
  const dollars = digits.slice(0, -2).replace(/\B(?=(\d{3})+(?!\d))/g, ",");
  return (negative && cents !== 0n ? "-$" : "$") + dollars + "." + digits.slice(-2);
}

/** The exact amount the API sent, for a title or a test: "$12.345678901". */
export function exact(text) {
  return text === null || text === undefined ? "unpriced" : (text.startsWith("-") ? "-$" + text.slice(1) : "$" + text);
}

export function count(n) {
  return Number(n).toLocaleString("en-US");
}

/** One value of a filter parameter (team=a,b lists values): its commas and backslashes escaped. */
export function filterValue(value) {
  return value.replace(/\\/g, "\\\\").replace(/,/g, "\\,");
}

export class ApiError extends Error {}

async function answer(response) {
  const body = await response.json().catch(() => ({}));
  if (!response.ok) throw new ApiError(body.error || `HTTP ${response.status}`);
  return body;
}

export async function getJson(path, params = {}) {
  const query = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) if (value !== null && value !== undefined) query.set(key, value);
  const qs = query.toString();
  return answer(await fetch(qs ? `${path}?${qs}` : path, { headers: { Accept: "application/json" } }));
}

export async function postJson(path, body, signal) {
  return answer(await fetch(path, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body), signal }));
}

/** The page's state lives in the query string: read it, and write it back without a reload. */
export const state = {
  params: new URLSearchParams(location.search),
  get(name, fallback = "") { return this.params.has(name) ? this.params.get(name) : fallback; },
  all(name) { return this.params.getAll(name); },
  set(values) {
    for (const [name, value] of Object.entries(values)) {
      this.params.delete(name);
      if (Array.isArray(value)) value.forEach(v => this.params.append(name, v));
      else if (value !== "" && value !== null && value !== undefined) this.params.set(name, value);
    }
    const qs = this.params.toString();
    history.replaceState(null, "", qs ? `?${qs}${location.hash}` : location.pathname + location.hash);
  },
};

/** A labelled form control: <label for=id>text</label><input id=id ...>. */
export function field(text, control, hint) {
  const wrap = el("div", { class: "field" }, el("label", { for: control.id }, text), control);
  if (hint) {
    const hintId = control.id + "-hint";
    control.setAttribute("aria-describedby", hintId);
    wrap.appendChild(el("small", { id: hintId }, hint));
  }
  return wrap;
}

export function select(id, options, value) {
  const node = el("select", { id, name: id });
  for (const [optionValue, text] of options) node.appendChild(el("option", { value: optionValue }, text));
  if (value !== undefined && options.some(([v]) => v === value)) node.value = value;
  return node;
}

export function status(node, message, isError = false) {
  node.textContent = message;
  node.classList.toggle("err", isError);
}

export function debounce(fn, ms) {
  let timer;
  return (...args) => { clearTimeout(timer); timer = setTimeout(() => fn(...args), ms); };
}
