// Spawnpoint reference storefront: the pages' behaviour in plain JavaScript (no build step, no framework).
// Every call goes to this origin's /api/{order,payment,status}/... gateway with the customer's bearer token.
"use strict";

const SF = JSON.parse(document.getElementById("sf-config").textContent);
const T = SF.texts;

function fmt(key, values) {
  let text = T[key] || key;
  for (const [name, value] of Object.entries(values || {})) text = text.replace(`{${name}}`, String(value));
  return text;
}

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "text") node.textContent = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children) if (child !== null && child !== undefined) node.append(child);
  return node;
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const jitter = (seconds) => Math.max(1000, seconds * 1000 * (0.85 + Math.random() * 0.3));

// --- the customer's token ------------------------------------------------------------------------
// STOREFRONT_TOKEN_SOURCE says where the shop's login leaves it: local-storage:KEY, cookie:NAME, or
// url:/PATH (a same-origin endpoint answering {"access_token": ...} for the shop's session cookie).

const [tokenKind, tokenName] = (() => {
  const at = SF.tokenSource.indexOf(":");
  return [SF.tokenSource.slice(0, at), SF.tokenSource.slice(at + 1)];
})();
let tokenFromUrl = null;

async function getToken() {
  if (tokenKind === "local-storage") return localStorage.getItem(tokenName);
  if (tokenKind === "cookie") {
    const found = document.cookie.split("; ").find((c) => c.startsWith(tokenName + "="));
    return found ? decodeURIComponent(found.slice(tokenName.length + 1)) : null;
  }
  if (tokenFromUrl) return tokenFromUrl;
  try {
    const response = await fetch(tokenName, { credentials: "same-origin", headers: { Accept: "application/json" } });
    if (!response.ok) return null;
    tokenFromUrl = (await response.json()).access_token || null;
  } catch (_) {
    return null;
  }
  return tokenFromUrl;
}

function claims(token) {
  try {
    const part = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    const json = decodeURIComponent(escape(atob(part + "=".repeat((4 - (part.length % 4)) % 4))));
    return JSON.parse(json);
  } catch (_) {
    return {};
  }
}

function signInUrl() {
  const next = location.pathname + location.search;
  return `${SF.signInUrl}${SF.signInUrl.includes("?") ? "&" : "?"}next=${encodeURIComponent(next)}`;
}

async function requireToken() {
  const token = await getToken();
  const exp = token ? claims(token).exp : 0;
  if (!token || (exp && exp * 1000 < Date.now())) {
    location.assign(signInUrl());
    throw new Error("not signed in");
  }
  return token;
}

async function api(service, path, options = {}) {
  const token = options.anonymous ? null : await requireToken();
  const headers = { Accept: "application/json", ...(options.headers || {}) };
  if (token) headers.Authorization = `Bearer ${token}`;
  if (options.json !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(`/api/${service}${path}`, {
    method: options.method || "GET",
    headers,
    body: options.json !== undefined ? JSON.stringify(options.json) : undefined,
    cache: "no-store",
    signal: options.signal,
  });
  if (response.status === 401 && !options.anonymous) {
    location.assign(signInUrl());
    throw new Error("token refused");
  }
  return response;
}

async function showIdentity() {
  const link = document.getElementById("sign-in-link");
  const out = document.getElementById("sign-out");
  link.href = signInUrl();
  const token = await getToken();
  if (!token) return;
  const who = document.getElementById("who");
  const c = claims(token);
  who.textContent = fmt("signed_in_as", { name: localStorage.getItem("spawnpoint.name") || c.email || c.sub });
  who.hidden = false;
  if (tokenKind === "local-storage") {
    link.hidden = true;
    out.hidden = false;
    out.addEventListener("click", () => {
      localStorage.removeItem(tokenName);
      localStorage.removeItem("spawnpoint.name");
      location.assign(`/${SF.locale}/`);
    });
  }
}

function money(amount, currency) {
  return new Intl.NumberFormat(SF.locale, { style: "currency", currency: currency.toUpperCase() }).format(amount / 100);
}

/** "€15.00 per month (renews automatically)": a catalog period, or an order's amount with its billing. */
function periodText(period) {
  let every;
  if (period.kind === "fixed_term") every = fmt("per_n_days_once", { n: period.term_days });
  else if (period.interval_count > 1) every = fmt(`per_n_${period.interval}s`, { n: period.interval_count });
  else every = T[`per_${period.interval}`] || period.interval;
  return `${money(period.amount, period.currency)} ${every} (${T[period.kind] || period.kind})`;
}

/** An order's price with what it buys ("€15.00 per month (renews automatically)"), from its billing. */
function orderPrice(order) {
  if (!order.billing) return money(order.amount, order.currency);
  return periodText({ ...order.billing, amount: order.amount, currency: order.currency });
}

function translated(message) {
  return (SF.messages && SF.messages[message]) || null;
}

// --- booking -------------------------------------------------------------------------------------

function fieldError(id, message) {
  const input = document.getElementById(id);
  const error = document.getElementById(`${id}-error`);
  if (!input || !error) return false;
  if (message) {
    input.setAttribute("aria-invalid", "true");
    error.textContent = message;
    error.hidden = false;
  } else {
    input.removeAttribute("aria-invalid");
    error.textContent = "";
    error.hidden = true;
  }
  return true;
}

function fieldIdFor(apiField) {
  if (!apiField) return null;
  if (apiField.startsWith("settings.")) return `setting-${apiField.slice("settings.".length)}`;
  if (apiField === "plan_id") return "plan-" + (document.querySelector("input[name=plan]:checked") || {}).value;
  if (apiField === "game_id") return "game-" + (document.querySelector("input[name=game]:checked") || {}).value;
  return apiField;
}

function apiFieldErrors(detail) {
  // order-service answers [{field, message}] (catalog rules) or FastAPI's [{loc: ["body", ...], msg}].
  if (!Array.isArray(detail)) return [];
  return detail.map((d) => {
    let field = d.field;
    if (!field && Array.isArray(d.loc)) field = d.loc.slice(1).join(".");
    return { field, message: d.message || d.msg || "" };
  });
}

async function bookingPage() {
  const form = document.getElementById("booking");
  const status = document.getElementById("form-status");
  const submit = document.getElementById("book-submit");
  const games = document.getElementById("games");
  let catalog;
  try {
    const response = await api("order", "/catalog", { anonymous: true });
    if (!response.ok) throw new Error(`catalog ${response.status}`);
    catalog = await response.json();
  } catch (_) {
    document.getElementById("catalog-loading").textContent = T.catalog_error;
    return;
  }
  document.getElementById("catalog-loading").remove();
  const plans = Object.fromEntries(catalog.plans.map((p) => [p.id, p]));

  for (const game of catalog.games) {
    games.append(
      el("label", { class: "choice", for: `game-${game.id}` },
        el("input", { type: "radio", name: "game", id: `game-${game.id}`, value: game.id, required: true }),
        el("span", {}, el("span", { class: "name", text: game.name }), el("span", { class: "desc", text: game.description || "" })))
    );
  }
  const selectedGame = () => catalog.games.find((g) => g.id === (form.querySelector("input[name=game]:checked") || {}).value);
  const selectedPlan = () => plans[(form.querySelector("input[name=plan]:checked") || {}).value];
  const periodSelect = document.getElementById("period");
  let wantedPeriod = null; // the period the customer picked; kept when they switch to a plan that offers it

  /** The period a plan is shown with: the one picked in the select when the plan offers it, else its default. */
  function shownPeriod(plan) {
    return plan.periods.find((p) => p.id === wantedPeriod)
      || plan.periods.find((p) => p.id === plan.default_period) || plan.periods[0];
  }

  function renderPrice() {
    const plan = selectedPlan();
    const period = plan && plan.periods.find((p) => p.id === periodSelect.value);
    document.getElementById("price").textContent = period ? `${T.total}: ${periodText(period)}` : "";
    // Every plan line shows its price for the period the select shows, so the lines, the select and the
    // total always say the same.
    for (const line of document.querySelectorAll("#plan-list [data-plan-price]")) {
      const other = plans[line.dataset.planPrice];
      if (other) line.textContent = `${other.name} · ${periodText(shownPeriod(other))}`;
    }
  }

  function renderPeriods() {
    const plan = selectedPlan();
    periodSelect.replaceChildren();
    if (!plan) return;
    const shown = shownPeriod(plan);
    for (const period of plan.periods) {
      periodSelect.append(el("option", { value: period.id, selected: period.id === shown.id, text: periodText(period) }));
    }
    periodSelect.value = shown.id;
    renderPrice();
  }

  function renderGame() {
    const game = selectedGame();
    if (!game) return;
    const list = document.getElementById("plan-list");
    list.replaceChildren();
    for (const planId of game.plans) {
      const plan = plans[planId];
      if (!plan) continue;
      list.append(
        el("label", { class: "choice", for: `plan-${plan.id}` },
          el("input", { type: "radio", name: "plan", id: `plan-${plan.id}`, value: plan.id, "aria-describedby": `plan-${plan.id}-desc` }),
          el("span", {},
            el("span", { class: "name", "data-plan-price": plan.id, text: `${plan.name} · ${periodText(shownPeriod(plan))}` }),
            el("span", { class: "desc", id: `plan-${plan.id}-desc`,
              text: `${plan.description} · ${fmt("memory", { mb: plan.memory_mb })} · ${fmt("disk", { mb: plan.disk_mb })}` })))
      );
    }
    const first = list.querySelector("input[name=plan]");
    if (first) first.checked = true;
    renderPeriods();
    const fields = document.getElementById("setting-fields");
    fields.replaceChildren();
    for (const [key, setting] of Object.entries(game.settings)) {
      const id = `setting-${key}`;
      const describedBy = [setting.description ? `${id}-help` : null, `${id}-error`].filter(Boolean).join(" ");
      let input;
      if (setting.choices && setting.choices.length) {
        input = el("select", { id, name: key, "aria-describedby": describedBy });
        for (const choice of setting.choices) input.append(el("option", { value: choice, selected: choice === setting.default, text: choice }));
      } else {
        input = el("input", {
          id, name: key, type: setting.secret ? "password" : "text", maxlength: setting.max_length,
          autocomplete: setting.secret ? "new-password" : "off", "aria-describedby": describedBy,
          required: setting.default === null && !setting.choices,
        });
        if (setting.default !== null && !setting.secret) input.value = setting.default;
      }
      input.dataset.setting = key;
      fields.append(el("div", { class: "field" },
        el("label", { for: id, text: setting.label }),
        input,
        setting.description ? el("p", { class: "help", id: `${id}-help`, text: setting.description }) : null,
        el("p", { class: "error", id: `${id}-error`, hidden: true })));
    }
    document.getElementById("plans").hidden = false;
    document.getElementById("settings").hidden = false;
    submit.disabled = false;
  }

  games.addEventListener("change", renderGame);
  document.getElementById("plan-list").addEventListener("change", renderPeriods);
  periodSelect.addEventListener("change", () => {
    wantedPeriod = periodSelect.value;
    renderPrice();
  });

  function validate() {
    const game = selectedGame();
    const problems = [];
    const name = document.getElementById("server_name");
    const nameValue = name.value.trim();
    problems.push(["server_name", !nameValue ? T.required : nameValue.length > 64 ? fmt("too_long", { n: 64 }) : null]);
    for (const [key, setting] of Object.entries(game.settings)) {
      const input = document.getElementById(`setting-${key}`);
      const value = input.value;
      let problem = null;
      if (setting.choices && setting.choices.length && !setting.choices.includes(value)) problem = T.choose_one;
      else if (!value && setting.default === null) problem = T.required;
      else if (value.length > setting.max_length) problem = fmt("too_long", { n: setting.max_length });
      else if (value && setting.pattern) {
        let re = null;
        try { re = new RegExp(setting.pattern, "u"); } catch (_) { re = null; }
        if (re && !re.test(value)) problem = setting.description ? `${T.pattern_mismatch} ${setting.description}` : T.pattern_mismatch;
      }
      problems.push([`setting-${key}`, problem]);
    }
    let firstBad = null;
    for (const [id, problem] of problems) {
      fieldError(id, problem);
      if (problem && !firstBad) firstBad = id;
    }
    return firstBad;
  }

  // One Idempotency-Key per submission: the same form sent again (a double click, a retry after a network
  // error) reuses it, so order-service makes one order; a changed form is a new submission.
  let pending = null;
  let inFlight = false;

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    status.hidden = true;
    const game = selectedGame();
    const plan = selectedPlan();
    if (!game || !plan) return;
    const firstBad = validate();
    if (firstBad) {
      status.textContent = T.form_errors;
      status.hidden = false;
      document.getElementById(firstBad).focus();
      return;
    }
    const settings = {};
    for (const key of Object.keys(game.settings)) {
      const value = document.getElementById(`setting-${key}`).value;
      if (value !== "") settings[key] = value;
    }
    const body = {
      game_id: game.id, plan_id: plan.id, period: periodSelect.value,
      server_name: document.getElementById("server_name").value.trim(), settings, locale: SF.locale,
    };
    const fingerprint = JSON.stringify(body);
    if (!pending || pending.fingerprint !== fingerprint) pending = { fingerprint, key: crypto.randomUUID() };
    if (inFlight) return;
    inFlight = true;
    submit.disabled = true;
    submit.textContent = T.booking;
    try {
      let response;
      try {
        response = await api("order", "/orders", { method: "POST", json: body, headers: { "Idempotency-Key": pending.key } });
      } catch (error) {
        if (String(error.message).startsWith("not signed in") || String(error.message).startsWith("token")) return;
        status.textContent = T.network_error;
        status.hidden = false;
        return;
      }
      if (response.ok) {
        const order = await response.json();
        location.assign(`/${SF.locale}/checkout/${order.id}`);
        return;
      }
      const answer = await response.json().catch(() => ({}));
      if (response.status === 422) {
        let firstBad = null;
        for (const { field, message } of apiFieldErrors(answer.detail)) {
          const id = fieldIdFor(field);
          if (id && fieldError(id, fmt("api_refused", { message })) && !firstBad) firstBad = id;
        }
        status.textContent = T.form_errors;
        status.hidden = false;
        pending = null; // the next attempt is a corrected, new submission
        if (firstBad) document.getElementById(firstBad).focus();
        return;
      }
      status.textContent = T.server_problem;
      status.hidden = false;
    } finally {
      inFlight = false;
      submit.disabled = false;
      submit.textContent = T.book_submit;
    }
  });
}

// --- checkout ------------------------------------------------------------------------------------

async function checkoutPage() {
  const box = document.getElementById("checkout-status");
  const summary = document.getElementById("summary");
  const fail = (text) => { box.textContent = text; box.hidden = false; };
  const response = await api("order", `/orders/${encodeURIComponent(SF.orderId)}`).catch(() => null);
  if (!response || !response.ok) {
    fail(response && (response.status === 404 || response.status === 422) ? T.state_not_found : T.checkout_error);
    return;
  }
  const order = await response.json();
  summary.replaceChildren(
    el("dt", { text: T.game }), el("dd", { text: order.game_name }),
    el("dt", { text: T.plan }), el("dd", { text: order.plan_name }),
    el("dt", { text: T.server_name }), el("dd", { text: order.server_name }),
    el("dt", { text: T.total }), el("dd", { id: "summary-total", text: orderPrice(order) }),
  );
  if (order.status !== "pending_payment") {
    box.className = "alert info";
    fail(T.checkout_paid);
    box.append(" ", el("a", { href: `/${SF.locale}/orders/${order.id}`, text: T.details }));
    return;
  }
  const fetchClientSecret = async () => {
    const answer = await api("payment", "/checkout-sessions", { method: "POST", json: { order_id: SF.orderId } });
    if (answer.status === 409) {
      location.assign(`/${SF.locale}/orders/${SF.orderId}`);
      throw new Error("already paid");
    }
    if (!answer.ok) {
      fail(T.checkout_error);
      throw new Error(`checkout ${answer.status}`);
    }
    return (await answer.json()).client_secret;
  };
  try {
    const stripe = window.Stripe(SF.publishableKey);
    const open = stripe.createEmbeddedCheckoutPage || stripe.initEmbeddedCheckout; // renamed in dahlia
    const checkout = await open.call(stripe, { fetchClientSecret });
    checkout.mount("#checkout");
    window.spawnpointCheckout = checkout; // for the browser tests (and a shop's own debugging)
  } catch (error) {
    if (box.hidden) fail(T.checkout_error);
  }
}

// --- the order's status: the event stream, with polling as the fallback ----------------------------

class OrderFollower {
  constructor(orderId, render) {
    this.orderId = orderId;
    this.render = render;
    this.etag = null;
    this.lastVersion = null;
    this.missingSince = null;
  }

  async start() {
    for (;;) {
      const streamed = await this.stream();
      if (streamed === "not-found") {
        if (await this.waitForOrder()) continue;
        return;
      }
      await this.poll(20000); // poll for a while, then try the stream again
    }
  }

  /** Whether the order appeared; status-service may not know a brand-new order for a few seconds. */
  async waitForOrder() {
    if (this.missingSince === null) this.missingSince = Date.now();
    if (Date.now() - this.missingSince > 8000) {
      this.render({ notFound: true });
      return false;
    }
    await sleep(1000);
    return true;
  }

  async stream() {
    const token = await requireToken();
    const headers = { Authorization: `Bearer ${token}`, Accept: "text/event-stream" };
    if (this.lastVersion !== null) headers["Last-Event-ID"] = String(this.lastVersion);
    let response;
    try {
      response = await fetch(`/api/status/orders/${encodeURIComponent(this.orderId)}/events`, { headers, cache: "no-store" });
    } catch (_) {
      return "failed";
    }
    if (response.status === 404 || response.status === 422) return "not-found";
    if (response.status === 401) { location.assign(signInUrl()); return "failed"; }
    if (!response.ok || !response.body) return "failed";
    this.missingSince = null;
    this.transport("stream");
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += value.replace(/\r\n?/g, "\n");
        let end;
        while ((end = buffer.indexOf("\n\n")) >= 0) {
          this.frame(buffer.slice(0, end));
          buffer = buffer.slice(end + 2);
        }
      }
    } catch (_) {
      // the connection dropped: fall back to polling
    }
    return "ended";
  }

  frame(text) {
    let event = "message";
    let data = "";
    let id = null;
    for (const line of text.split("\n")) {
      if (line.startsWith(":")) continue;
      const at = line.indexOf(":");
      const field = at < 0 ? line : line.slice(0, at);
      const value = at < 0 ? "" : line.slice(at + 1).replace(/^ /, "");
      if (field === "event") event = value;
      else if (field === "data") data += (data ? "\n" : "") + value;
      else if (field === "id") id = value;
    }
    if (event !== "status" || !data) return;
    const body = JSON.parse(data);
    if (id !== null) this.lastVersion = Number(id);
    this.render(body);
  }

  async poll(forMs) {
    this.transport("polling");
    const until = Date.now() + forMs;
    while (Date.now() < until) {
      let wait = 3;
      try {
        const token = await requireToken();
        const headers = { Authorization: `Bearer ${token}` };
        if (this.etag) headers["If-None-Match"] = this.etag;
        const response = await fetch(`/api/status/orders/${encodeURIComponent(this.orderId)}/status`, { headers, cache: "no-store" });
        if (response.status === 200) {
          this.missingSince = null;
          this.etag = response.headers.get("ETag");
          const body = await response.json();
          this.lastVersion = body.version;
          this.render(body);
          wait = body.poll_after_seconds || wait;
        } else if (response.status === 304) {
          wait = Number(response.headers.get("Retry-After")) || wait;
        } else if (response.status === 404) {
          if (!(await this.waitForOrder())) return;
          continue;
        } else {
          wait = Number(response.headers.get("Retry-After")) || 5;
        }
      } catch (_) {
        wait = 5;
      }
      await sleep(Math.min(jitter(wait), Math.max(1000, until - Date.now())));
    }
  }

  transport(kind) {
    const section = document.getElementById("status");
    section.dataset.transport = kind;
    document.getElementById("transport").textContent = kind === "stream" ? T.live_stream : T.live_polling;
  }
}

const STATE_OF = { PENDING: "waiting", PAID: "creating", CREATED: "ready", FAILED: "error" };
const STATE_TITLE = { waiting: "state_waiting", creating: "state_creating", ready: "state_ready", error: "state_error", "not-found": "state_not_found" };

function renderStatus(body) {
  const section = document.getElementById("status");
  const title = document.getElementById("state");
  const detail = document.getElementById("state-detail");
  const phase = document.getElementById("phase");
  const rental = document.getElementById("rental");
  const connectWrap = document.getElementById("connect-wrap");
  const state = body.notFound ? "not-found" : body.waitingCheckout ? "waiting" : STATE_OF[body.status] || "creating";
  section.dataset.state = state;
  section.dataset.phase = body.phase || "";
  title.textContent = T[STATE_TITLE[state]];
  phase.hidden = true;
  rental.hidden = true;
  connectWrap.hidden = true;
  document.getElementById("retry-wrap").hidden = !body.waitingCheckout;
  if (body.notFound) {
    document.getElementById("server-summary").hidden = true;
    detail.textContent = T.not_found_detail;
    return;
  }
  if (body.waitingCheckout) {
    detail.textContent = "";
    document.getElementById("retry-payment").href = `/${SF.locale}/checkout/${body.order_id}`;
    return;
  }
  const inWords = translated(body.message) || (SF.locale === "en" ? body.message : T[`phase_${body.phase}`]) || "";
  if (state === "waiting") detail.textContent = body.phase === "payment_processing" ? T.state_waiting_processing : inWords;
  else if (state === "error") detail.textContent = inWords || T.phase_failed;
  else if (state === "creating") {
    detail.textContent = inWords;
    phase.hidden = false;
    document.getElementById("phase-text").textContent = T[`phase_${body.phase}`] || body.phase;
  } else if (state === "ready") {
    detail.textContent = "";
    const connect = document.getElementById("connect");
    connect.href = body.connect_path || `/gameserver/${body.server_id}`;
    connectWrap.hidden = false;
  }
  if (state === "ready" && body.rental && body.rental.message) {
    rental.textContent = translated(body.rental.message) || (SF.locale === "en" ? body.rental.message : T[`rental_${body.rental.phase}`]);
    rental.hidden = false;
  }
}

/** The server's name and what it is (from the order at order-service: the status body names neither), at
 * the top of the status card. Best effort: without it the card still shows the status and Connect. */
async function showServer(orderId) {
  let order;
  try {
    const response = await api("order", `/orders/${encodeURIComponent(orderId)}`);
    if (!response.ok) return;
    order = await response.json();
  } catch (_) {
    return;
  }
  if (document.getElementById("status").dataset.state === "not-found") return;
  document.getElementById("server-title").textContent = order.server_name;
  document.getElementById("server-what").textContent = [order.game_name, order.plan_name, orderPrice(order)].join(" · ");
  document.getElementById("server-summary").hidden = false;
}

async function returnPage() {
  if (!SF.sessionId) {
    renderStatus({ notFound: true });
    return;
  }
  let outcome = null;
  for (let attempt = 0; attempt < 20 && outcome === null; attempt += 1) {
    let response;
    try {
      response = await api("payment", `/checkout-sessions/${encodeURIComponent(SF.sessionId)}/status`);
    } catch (_) {
      await sleep(2000);
      continue;
    }
    if (response.ok) outcome = await response.json();
    else if (response.status === 404 || response.status === 422) {
      renderStatus({ notFound: true });
      return;
    } else await sleep(jitter(Number(response.headers.get("Retry-After")) || 2));
  }
  if (outcome === null) {
    renderStatus({ notFound: true });
    return;
  }
  if (outcome.session_status === "open") {
    renderStatus({ waitingCheckout: true, order_id: outcome.order_id });
    return;
  }
  document.getElementById("status").dataset.orderId = outcome.order_id;
  showServer(outcome.order_id);
  await new OrderFollower(outcome.order_id, renderStatus).start();
}

async function orderPage() {
  await requireToken();
  document.getElementById("status").dataset.orderId = SF.orderId;
  showServer(SF.orderId);
  await new OrderFollower(SF.orderId, renderStatus).start();
}

// --- my servers ----------------------------------------------------------------------------------

async function serversPage() {
  const table = document.getElementById("servers");
  const tbody = table.querySelector("tbody");
  const note = document.getElementById("servers-status");
  const more = document.getElementById("servers-more");
  let cursor = null;
  const rows = new Map();

  async function act(order, how) {
    note.textContent = T.loading;
    let response;
    if (how === "portal") {
      response = await api("payment", "/billing-portal-sessions", {
        method: "POST", json: { order_id: order.order_id, return_url: `${location.origin}/${SF.locale}/servers` },
      });
      if (response.ok) { location.assign((await response.json()).url); return; }
    } else {
      response = await api("payment", `/rentals/${order.order_id}/cancellation`, { method: how === "cancel" ? "POST" : "DELETE" });
    }
    if (!response.ok) {
      const answer = await response.json().catch(() => ({}));
      note.textContent = fmt("action_failed", { detail: typeof answer.detail === "string" ? answer.detail : response.status });
      return;
    }
    note.textContent = T.action_done;
    await refresh();
  }

  function row(order) {
    const state = STATE_OF[order.status] || "creating";
    const rental = order.rental;
    const rentalText = rental ? (translated(rental.message) || (SF.locale === "en" ? rental.message : T[`rental_${rental.phase}`])) : "";
    const actions = el("div", { class: "actions" });
    if (rental && ["active", "past_due"].includes(rental.phase) && rental.kind === "subscription") {
      actions.append(el("button", { type: "button", class: "secondary", text: T.cancel_rental, onclick: () => act(order, "cancel") }));
    }
    if (rental && rental.phase === "cancelling") {
      actions.append(el("button", { type: "button", class: "secondary", text: T.undo_cancel, onclick: () => act(order, "undo") }));
    }
    if (rental && rental.kind === "subscription" && rental.phase !== "ended") {
      actions.append(el("button", { type: "button", class: "secondary", text: T.change_card, onclick: () => act(order, "portal") }));
    }
    if (order.status === "CREATED" && order.connect_path) {
      actions.append(el("a", { class: "button", href: order.connect_path, text: T.connect }));
    }
    return el("tr", { "data-order-id": order.order_id, "data-state": state },
      el("td", { "data-label": T.col_server }, el("a", { href: `/${SF.locale}/orders/${order.order_id}`, text: order.server_name || order.order_id })),
      el("td", { "data-label": T.col_game, text: [order.game_name, order.plan_name].filter(Boolean).join(" · ") }),
      el("td", { "data-label": T.col_status, text: T[STATE_TITLE[state]] }),
      el("td", { "data-label": T.col_rental, text: rentalText }),
      el("td", { "data-label": T.col_actions }, actions));
  }

  async function load(after) {
    const query = new URLSearchParams({ limit: "20" });
    if (after) query.set("cursor", after);
    const response = await api("status", `/orders?${query}`);
    if (!response.ok) throw new Error(`list ${response.status}`);
    return response.json();
  }

  function show(orders, replace) {
    if (replace) { tbody.replaceChildren(); rows.clear(); }
    for (const order of orders) {
      const node = row(order);
      if (rows.has(order.order_id)) rows.get(order.order_id).replaceWith(node);
      else tbody.append(node);
      rows.set(order.order_id, node);
    }
    table.hidden = rows.size === 0;
    document.getElementById("servers-empty").hidden = rows.size !== 0;
  }

  async function refresh() {
    // Live status: the first page again every few seconds (one cheap read of status-service's model).
    const page = await load(null);
    show(page.orders, false);
  }

  try {
    const first = await load(null);
    show(first.orders, true);
    cursor = first.next_cursor;
    more.hidden = !cursor;
  } catch (_) {
    note.textContent = T.server_problem;
    return;
  }
  more.addEventListener("click", async () => {
    const next = await load(cursor);
    show(next.orders, false);
    cursor = next.next_cursor;
    more.hidden = !cursor;
  });
  for (;;) {
    await sleep(jitter(5));
    try { await refresh(); } catch (_) { /* keep the last list */ }
  }
}

// --- sign-in (development) -----------------------------------------------------------------------

function signInPage() {
  const form = document.getElementById("signin");
  if (!form) return;
  const status = document.getElementById("signin-status");
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const name = document.getElementById("signin-name");
    const email = document.getElementById("signin-email");
    const nameBad = name.value.trim() ? null : T.required;
    const emailBad = /^[^@\s]+@[^@\s]+\.[^@\s]+$/.test(email.value.trim()) ? null : T.pattern_mismatch;
    fieldError("signin-name", nameBad);
    fieldError("signin-email", emailBad);
    if (nameBad || emailBad) { (nameBad ? name : email).focus(); return; }
    const response = await fetch("/dev/sign-in", {
      method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ name: name.value.trim(), email: email.value.trim() }),
    }).catch(() => null);
    if (!response || !response.ok) { status.textContent = T.server_problem; status.hidden = false; return; }
    const answer = await response.json();
    localStorage.setItem(tokenKind === "local-storage" ? tokenName : "spawnpoint.token", answer.access_token);
    localStorage.setItem("spawnpoint.name", answer.name);
    location.assign(SF.next || `/${SF.locale}/`);
  });
}

const PAGES = { book: bookingPage, checkout: checkoutPage, return: returnPage, order: orderPage, servers: serversPage, signin: signInPage };

document.addEventListener("DOMContentLoaded", () => {
  showIdentity();
  const run = PAGES[document.body.dataset.page];
  if (run) Promise.resolve(run()).catch((error) => console.error(error));
});
