// @ts-check
/* global document, window, fetch, EventSource, Event, Option, AbortController, URLSearchParams, HTMLElement, HTMLButtonElement, HTMLDialogElement, HTMLFormElement, HTMLInputElement, HTMLLabelElement, HTMLSelectElement, HTMLTableSectionElement, HTMLTextAreaElement */
/**
 * The ecr-bridge dashboard (web/README.md). Server data is only written as text or attribute
 * values, never as markup; everything live comes from one EventSource: the page never polls.
 */

/**
 * @typedef {{ service: string, title: string, loginLabel: string, currency?: string }} About
 * @typedef {About & { who: string, csrfToken: string, currency: string }} Session
 * @typedef {{ terminalId: string, protocol: string, serial: string | null,
 *   status: 'online' | 'offline' | 'busy', statusText: string, lastHeartbeatAt: string | null,
 *   model: string | null, address: string | null }} Terminal
 * @typedef {{ id: string, reference: string, terminalId: string, kind: string, amount: string,
 *   currency: string, state: string, outcome: string | null, errorCode: string | null,
 *   message: string | null, maskedPan: string | null, cardBrand: string | null,
 *   approvalCode: string | null, terminalTxId: string | null, attempt: number,
 *   createdAt: string, completedAt: string | null }} Transaction
 * @typedef {{ transaction: Transaction, attempts: Transaction[], receipt: string,
 *   timeline: { state: string, at: string, note: string | null }[],
 *   notifications: { state: string, attempts: number, lastAttemptAt: string | null,
 *     lastError: string | null }[] }} Detail
 * @typedef {{ id: string, reference: string, terminalId: string, state: string }} TransactionEvent
 * @typedef {Node | string | null | undefined | false} Child
 */

/** The list is refetched this long after the first of a burst of events. */
const LIST_DEBOUNCE_MS = 200;
/** Rewrites "12 s ago" locally; this timer never makes a request. */
const CLOCK_TICK_MS = 1000;
/** The browser gave up on the stream (a 401 does that): check the session after this. */
const RECONNECT_MS = 5000;
const LIST_LIMIT = 100;
/** States seen per reference, because a payment's first events may beat its 202 answer. */
const MAX_REMEMBERED = 200;

const IN_PROGRESS = new Set(['received', 'sent']);
/** @type {Record<string, [string, string]>} glyph and words of each badge */
const BADGES = {
  online: ['●', 'POS Online'],
  offline: ['✕', 'POS Offline'],
  busy: ['◐', 'Busy'],
  approved: ['✓', 'Approved'],
  declined: ['✕', 'Declined'],
  cancelled: ['–', 'Cancelled'],
  failed: ['!', 'Failed'],
  unknown: ['?', 'Unknown'],
  'in-progress': ['…', 'In progress'],
};
/** @type {Record<string, string>} */
const FIELD_LABELS = {
  terminalId: 'Terminal',
  amount: 'Amount',
  currency: 'Currency',
  outcome: 'Resolved outcome',
  reason: 'Reason',
};

/**
 * @template {HTMLElement} T
 * @param {string} id
 * @param {{ new (): T, prototype: T }} type
 * @returns {T}
 */
function byId(id, type) {
  const found = document.getElementById(id);
  if (!(found instanceof type)) throw new Error(`dashboard markup: #${id} is missing`);
  return found;
}

const E = HTMLElement;
const ui = {
  serviceTitle: byId('service-title', E),
  account: byId('account', E),
  live: byId('live-status', E),
  who: byId('who', E),
  signOut: byId('sign-out', HTMLButtonElement),
  nav: byId('nav', E),
  main: byId('main', E),
  loading: byId('loading', E),
  unavailable: byId('unavailable', E),
  unavailableText: byId('unavailable-text', E),
  retry: byId('retry', HTMLButtonElement),
  loginView: byId('login-view', E),
  loginForm: byId('login-form', HTMLFormElement),
  loginLabel: byId('login-name-label', HTMLLabelElement),
  loginName: byId('login-name', HTMLInputElement),
  loginPassword: byId('login-password', HTMLInputElement),
  loginError: byId('login-error', E),
  loginSubmit: byId('login-submit', HTMLButtonElement),
  dashboard: byId('dashboard', E),
  dashboardHeading: byId('dashboard-heading', E),
  terminalsBody: byId('terminals-body', HTMLTableSectionElement),
  terminalsLive: byId('terminals-live', E),
  payForm: byId('payment-form', HTMLFormElement),
  payTerminal: byId('payment-terminal', HTMLSelectElement),
  payAmount: byId('payment-amount', HTMLInputElement),
  payCurrency: byId('payment-currency', HTMLInputElement),
  paySubmit: byId('payment-submit', HTMLButtonElement),
  progress: byId('payment-progress', E),
  filterOutcome: byId('filter-outcome', HTMLSelectElement),
  filterUnresolved: byId('filter-unresolved', HTMLInputElement),
  txBody: byId('transactions-body', HTMLTableSectionElement),
  txError: byId('transactions-error', E),
  dialog: byId('transaction-detail', HTMLDialogElement),
  detailHeading: byId('detail-heading', E),
  detailClose: byId('detail-close', HTMLButtonElement),
  detailStatus: byId('detail-status', E),
  detailBody: byId('detail-body', E),
  detailFields: byId('detail-fields', E),
  detailReceipt: byId('detail-receipt', E),
  detailAttempts: byId('detail-attempts', E),
  detailTimeline: byId('detail-timeline', E),
  detailNotifications: byId('detail-notifications', E),
  resolveForm: byId('resolve-form', HTMLFormElement),
  resolveOutcome: byId('resolve-outcome', HTMLSelectElement),
  resolveReason: byId('resolve-reason', HTMLTextAreaElement),
  resolveError: byId('resolve-error', E),
  resolveSubmit: byId('resolve-submit', HTMLButtonElement),
};

/** @type {About | null} what the page shows before sign-in */
let about = null;
/** @type {Session | null} */
let session = null;
/** @type {EventSource | null} */
let events = null;
let streamOpened = false;
/** @type {Terminal[]} */
let terminals = [];
/** @type {Map<string, string>} terminalId → last status, to announce changes */
const lastStatus = new Map();
/** @type {Map<string, TransactionEvent>} reference → latest event */
const remembered = new Map();
/** @type {{ reference: string, done: boolean } | null} the test payment being watched */
let pending = null;
/** @type {string | null} the transaction shown in the detail dialog (its public id, tx_…) */
let detailId = null;
let detailNotice = '';
/** @type {Map<string, { signature: string, row: HTMLTableRowElement }>} */
let txRows = new Map();
/** @type {AbortController | null} */
let listAbort = null;
let listTimer = 0;
let tickTimer = 0;
let reconnectTimer = 0;
const busy = { login: false, payment: false, resolve: false };

// ——— small helpers ———

/**
 * Builds an element; strings become text nodes, so server data can never become markup.
 * @template {keyof HTMLElementTagNameMap} K
 * @param {K} tag
 * @param {Record<string, string> | null} [attributes]
 * @param {...Child} children
 * @returns {HTMLElementTagNameMap[K]}
 */
function h(tag, attributes, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes ?? {})) element.setAttribute(name, value);
  for (const child of children)
    if (child !== null && child !== undefined && child !== false) element.append(child);
  return element;
}

/** @param {string} kind a key of BADGES @param {string} [words] */
function badge(kind, words) {
  const [glyph, text] = BADGES[kind] ?? ['', kind];
  return h(
    'span',
    { class: `badge badge-${kind}` },
    h('span', { 'aria-hidden': 'true' }, glyph),
    words ?? text,
  );
}

const fullFormat = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'medium' });
const timeFormat = new Intl.DateTimeFormat(undefined, { timeStyle: 'medium' });
const dayFormat = new Intl.DateTimeFormat(undefined, {
  month: 'short',
  day: 'numeric',
  hour: '2-digit',
  minute: '2-digit',
});

/** @param {string} iso @param {Intl.DateTimeFormat} [format] */
function formatTime(iso, format = fullFormat) {
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? iso : format.format(date);
}

/** "12 s ago"; the server's clock may run slightly ahead, so never "in the future". */
function ago(/** @type {string} */ iso) {
  const seconds = Math.max(0, Math.round((Date.now() - Date.parse(iso)) / 1000));
  if (Number.isNaN(seconds)) return iso;
  if (seconds < 60) return `${seconds} s ago`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `${minutes} min ago`;
  const hours = Math.floor(minutes / 60);
  return hours < 48 ? `${hours} h ago` : `${Math.floor(hours / 24)} d ago`;
}

/** A `<time>` with the full date and time as its tooltip; `relative` ones are kept current. */
function timeElement(/** @type {string} */ iso, relative = false) {
  const today = new Date(iso).toDateString() === new Date().toDateString();
  const text = relative ? ago(iso) : formatTime(iso, today ? timeFormat : dayFormat);
  const element = h('time', { datetime: iso, title: formatTime(iso) }, text);
  if (relative) element.dataset.relative = '';
  return element;
}

function tick() {
  for (const element of document.getElementsByTagName('time')) {
    if (element.dataset.relative === undefined) continue;
    const text = ago(element.dateTime);
    if (element.textContent !== text) element.textContent = text;
  }
}

/** @param {string} text */
const capital = (text) => text.charAt(0).toUpperCase() + text.slice(1);

/** @param {Transaction} tx */
const card = (tx) => [tx.cardBrand, tx.maskedPan].filter(Boolean).join(' ') || '—';

/** @param {Transaction} tx */
const outcomeOf = (tx) => (IN_PROGRESS.has(tx.state) ? 'in-progress' : tx.state);

// ——— the API ———

class ApiError extends Error {
  /**
   * @param {number} status
   * @param {string} code
   * @param {string} message
   * @param {string | undefined} field
   * @param {string | null} retryAfter
   */
  constructor(status, code, message, field, retryAfter) {
    super(message);
    this.status = status;
    this.code = code;
    this.field = field;
    this.retryAfter = retryAfter;
  }
}

/** Thrown after a 401 has already brought the login view back: callers just stop. */
class SignedOut extends Error {}

/**
 * Same-origin JSON with the session cookie. POSTs carry the CSRF token and always a JSON body
 * (`{}` at least: Fastify refuses an empty body sent as application/json).
 * @param {string} path
 * @param {{ method?: 'GET' | 'POST', body?: unknown, signal?: AbortSignal }} [init]
 * @returns {Promise<unknown>}
 */
async function api(path, init = {}) {
  const method = init.method ?? 'GET';
  /** @type {Record<string, string>} */
  const headers = { accept: 'application/json' };
  /** @type {RequestInit} */
  const request = { method, headers, cache: 'no-store', credentials: 'same-origin' };
  if (init.signal) request.signal = init.signal;
  if (method === 'POST') {
    headers['content-type'] = 'application/json';
    if (session) headers['x-csrf-token'] = session.csrfToken;
    request.body = JSON.stringify(init.body ?? {});
  }
  const response = await fetch(path, request);
  if (response.status === 204) return null;
  /** @type {any} */
  const json = await response.json().catch(() => null);
  if (response.ok) return json;
  if (response.status === 401 && path !== '/ui/api/login') {
    signedOut(json);
    throw new SignedOut();
  }
  const error = json?.error ?? {};
  throw new ApiError(
    response.status,
    String(error.code ?? 'HTTP_' + response.status),
    typeof error.message === 'string' ? error.message : `the request failed (${response.status})`,
    typeof error.field === 'string' ? error.field : undefined,
    response.headers.get('retry-after'),
  );
}

/** For people: the field named by its label, never "TypeError". */
function describe(/** @type {unknown} */ error) {
  if (!(error instanceof ApiError))
    return 'Cannot reach ecr-bridge. Check the connection and try again.';
  let text = error.message;
  const label = error.field && FIELD_LABELS[error.field];
  if (label && text.startsWith(`${error.field}:`))
    text = label + text.slice(String(error.field).length);
  return capital(text);
}

/** @param {HTMLElement} region @param {string} text @param {HTMLElement} [field] */
function showError(region, text, field) {
  region.textContent = text;
  if (!field) return;
  field.setAttribute('aria-invalid', 'true');
  field.setAttribute('aria-describedby', region.id);
  field.focus();
}

/** @param {HTMLFormElement} form */
function clearInvalid(form) {
  for (const field of form.querySelectorAll('[aria-invalid]')) {
    field.removeAttribute('aria-invalid');
    field.removeAttribute('aria-describedby');
  }
}

/** @param {boolean} on @param {HTMLButtonElement} button */
function setBusy(on, button) {
  // aria-disabled rather than disabled: a disabled button drops keyboard focus.
  if (on) button.setAttribute('aria-disabled', 'true');
  else button.removeAttribute('aria-disabled');
}

// ——— views ———

/** @param {'loading' | 'unavailable' | 'login' | 'dashboard'} view */
function show(view) {
  ui.loading.hidden = view !== 'loading';
  ui.unavailable.hidden = view !== 'unavailable';
  ui.loginView.hidden = view !== 'login';
  ui.dashboard.hidden = view !== 'dashboard';
  ui.nav.hidden = view !== 'dashboard';
  ui.account.hidden = view !== 'dashboard';
}

/** @param {About} info */
function applyAbout(info) {
  about = info;
  ui.serviceTitle.textContent = info.title;
  ui.dashboardHeading.textContent = info.title;
  ui.loginLabel.textContent = info.loginLabel;
  document.title = `${info.title} · ecr-bridge`;
}

async function start() {
  show('loading');
  try {
    enter(/** @type {Session} */ (await api('/ui/api/session')), false);
  } catch (error) {
    if (error instanceof SignedOut) return;
    ui.unavailableText.textContent = describe(error);
    show('unavailable');
  }
}

/** @param {unknown} json the 401 body, which names the service even before sign-in */
function signedOut(json) {
  const body = /** @type {Partial<About> | null} */ (json);
  const wasIn = session !== null;
  teardown();
  if (body && typeof body.title === 'string' && typeof body.loginLabel === 'string')
    applyAbout({ service: String(body.service), title: body.title, loginLabel: body.loginLabel });
  show('login');
  if (wasIn) ui.loginError.textContent = 'Your session has ended. Sign in again to continue.';
  ui.loginName.focus();
}

/** @param {Session} next @param {boolean} fromLogin */
function enter(next, fromLogin) {
  session = next;
  applyAbout(next);
  ui.who.textContent = next.who;
  if (!ui.payCurrency.value) ui.payCurrency.value = next.currency;
  ui.loginError.textContent = '';
  ui.loginPassword.value = '';
  ui.terminalsBody.replaceChildren(emptyRow(5, 'Loading terminals…'));
  show('dashboard');
  if (fromLogin) ui.main.focus();
  connect();
  void refreshList();
  tickTimer = window.setInterval(tick, CLOCK_TICK_MS);
}

function teardown() {
  session = null;
  events?.close();
  events = null;
  streamOpened = false;
  for (const timer of [tickTimer, reconnectTimer, listTimer]) window.clearTimeout(timer);
  tickTimer = reconnectTimer = listTimer = 0;
  listAbort?.abort();
  pending = null;
  detailId = null;
  if (ui.dialog.open) ui.dialog.close();
  terminals = [];
  lastStatus.clear();
  remembered.clear();
  txRows = new Map();
  ui.terminalsBody.replaceChildren();
  ui.txBody.replaceChildren();
  ui.progress.replaceChildren();
  ui.progress.removeAttribute('data-outcome');
  ui.progress.removeAttribute('data-state');
  ui.payTerminal.replaceChildren();
  delete ui.payTerminal.dataset.key;
}

ui.retry.addEventListener('click', () => void start());

ui.loginForm.addEventListener('submit', async (event) => {
  event.preventDefault();
  if (busy.login) return;
  clearInvalid(ui.loginForm);
  const label = about?.loginLabel ?? 'Login';
  if (!ui.loginName.value)
    return showError(ui.loginError, `Enter your ${label.toLowerCase()}.`, ui.loginName);
  if (!ui.loginPassword.value)
    return showError(ui.loginError, 'Enter your password.', ui.loginPassword);
  busy.login = true;
  setBusy(true, ui.loginSubmit);
  ui.loginError.textContent = '';
  try {
    const body = { login: ui.loginName.value, password: ui.loginPassword.value };
    enter(/** @type {Session} */ (await api('/ui/api/login', { method: 'POST', body })), true);
  } catch (error) {
    let text = describe(error);
    if (error instanceof ApiError && error.status === 401)
      text = `Wrong ${label.toLowerCase()} or password.`;
    if (error instanceof ApiError && error.status === 429)
      text = error.retryAfter
        ? `Too many failed sign-ins. Wait ${error.retryAfter} s and try again.`
        : text;
    ui.loginPassword.value = '';
    showError(ui.loginError, text, ui.loginPassword);
  } finally {
    busy.login = false;
    setBusy(false, ui.loginSubmit);
  }
});

ui.signOut.addEventListener('click', async () => {
  let failed = false;
  try {
    await api('/ui/api/logout', { method: 'POST' });
  } catch (error) {
    if (error instanceof SignedOut) return;
    failed = true;
  }
  signedOut(null);
  ui.loginError.textContent = failed
    ? 'Signed out on this page, but the server could not be told: the session ends when it expires.'
    : '';
});

// ——— live events ———

/** @param {'connecting' | 'open' | 'reconnecting' | 'closed'} state */
function setLive(state) {
  const words = {
    connecting: 'Connecting…',
    open: 'Live',
    reconnecting: 'Reconnecting…',
    closed: 'Disconnected — retrying',
  };
  ui.live.dataset.live = state;
  ui.live.textContent = words[state];
}

function connect() {
  events?.close();
  const source = new EventSource('/ui/api/events');
  events = source;
  setLive('connecting');
  source.addEventListener('open', () => {
    if (events !== source) return;
    setLive('open');
    // Anything may have happened while the stream was down: catch up once.
    if (streamOpened) {
      scheduleList();
      if (detailId !== null) void loadDetail();
    }
    streamOpened = true;
  });
  source.addEventListener('terminals', (event) => {
    const data = parseEvent(event);
    if (events !== source || !data || !Array.isArray(data.terminals)) return;
    renderTerminals(data.terminals);
  });
  source.addEventListener('transaction', (event) => {
    const data = /** @type {TransactionEvent | null} */ (parseEvent(event));
    if (events !== source || !data || typeof data.reference !== 'string') return;
    onTransactionEvent(data);
  });
  source.addEventListener('error', () => {
    if (events !== source) return;
    if (source.readyState !== EventSource.CLOSED) return setLive('reconnecting');
    setLive('closed');
    window.clearTimeout(reconnectTimer);
    reconnectTimer = window.setTimeout(async () => {
      try {
        await api('/ui/api/session');
        if (events === source) connect();
      } catch (error) {
        if (!(error instanceof SignedOut) && events === source)
          source.dispatchEvent(new Event('error'));
      }
    }, RECONNECT_MS);
  });
}

/** @param {MessageEvent} event @returns {any} */
function parseEvent(event) {
  try {
    return JSON.parse(event.data);
  } catch {
    return null;
  }
}

/** @param {TransactionEvent} data */
function onTransactionEvent(data) {
  remembered.delete(data.reference);
  remembered.set(data.reference, data);
  if (remembered.size > MAX_REMEMBERED) remembered.delete(String(remembered.keys().next().value));
  if (pending && pending.reference === data.reference) void showPayment(data);
  scheduleList();
  if (detailId === data.id) void loadDetail();
}

// ——— terminals ———

/** @param {number} columns @param {string} text */
function emptyRow(columns, text) {
  return h('tr', null, h('td', { colspan: String(columns), class: 'empty' }, text));
}

/** @param {Terminal[]} list */
function renderTerminals(list) {
  terminals = list;
  const changes = [];
  for (const t of list) {
    const before = lastStatus.get(t.terminalId);
    if (before !== undefined && before !== t.status)
      changes.push(`${t.terminalId}: ${t.statusText}`);
    lastStatus.set(t.terminalId, t.status);
  }
  if (changes.length > 0)
    ui.terminalsLive.textContent = `Terminal status changed. ${changes.join('. ')}.`;
  const rows = list.map((t) =>
    h(
      'tr',
      { 'data-terminal-id': t.terminalId, 'data-status': t.status },
      h(
        'th',
        { scope: 'row' },
        t.terminalId,
        t.address && h('span', { class: 'sub mono' }, t.address),
      ),
      h('td', null, t.protocol),
      h('td', null, badge(t.status, t.statusText)),
      h('td', null, t.lastHeartbeatAt ? timeElement(t.lastHeartbeatAt, true) : 'Never'),
      h('td', null, [t.model, t.serial].filter(Boolean).join(' · ') || '—'),
    ),
  );
  ui.terminalsBody.replaceChildren(...(rows.length ? rows : [emptyRow(5, 'No terminals yet.')]));
  renderTerminalSelect();
}

/** Rebuilt only when a terminal or its status changes, so an open list is not disturbed. */
function renderTerminalSelect() {
  const select = ui.payTerminal;
  const key = terminals.map((t) => `${t.terminalId}:${t.status}`).join('|');
  if (select.dataset.key === key) return;
  select.dataset.key = key;
  const previous = select.value;
  const options = terminals.map((t) => {
    const suffix = t.status === 'offline' ? ' (offline)' : t.status === 'busy' ? ' (busy)' : '';
    const option = new Option(t.terminalId + suffix, t.terminalId);
    option.disabled = t.status === 'offline';
    return option;
  });
  if (options.length === 0)
    options.push(Object.assign(new Option('No terminals', ''), { disabled: true }));
  select.replaceChildren(...options);
  const usable = terminals.filter((t) => t.status !== 'offline');
  const keep =
    usable.find((t) => t.terminalId === previous) ??
    usable.find((t) => t.status === 'online') ??
    usable[0];
  select.value = keep ? keep.terminalId : '';
}

// ——— test payment ———

ui.payForm.addEventListener('submit', async (event) => {
  event.preventDefault();
  if (busy.payment) return;
  clearInvalid(ui.payForm);
  const terminalId = ui.payTerminal.value;
  const amount = ui.payAmount.value.trim();
  const currency = ui.payCurrency.value.trim().toUpperCase();
  ui.payCurrency.value = currency;
  if (!terminalId) return payError('Choose a terminal that is online.', ui.payTerminal);
  if (!/^\d+([.,]\d+)?$/.test(amount))
    return payError('Enter an amount such as 1.00.', ui.payAmount);
  if (!/^[A-Z]{3}$/.test(currency))
    return payError('Enter a three-letter currency code such as USD.', ui.payCurrency);
  busy.payment = true;
  setBusy(true, ui.paySubmit);
  pending = null;
  setProgress('sending', null, h('p', { class: 'big' }, 'Sending…'));
  try {
    const answer = /** @type {{ reference: string }} */ (
      await api('/ui/api/test-payment', { method: 'POST', body: { terminalId, amount, currency } })
    );
    pending = { reference: answer.reference, done: false };
    const seen = remembered.get(answer.reference);
    await showPayment(
      seen ?? { id: '', reference: answer.reference, terminalId, state: 'received' },
    );
  } catch (error) {
    if (error instanceof SignedOut) return;
    const field = error instanceof ApiError ? error.field : undefined;
    const input = { terminalId: ui.payTerminal, amount: ui.payAmount, currency: ui.payCurrency }[
      field ?? ''
    ];
    payError(describe(error), input);
  } finally {
    busy.payment = false;
    setBusy(false, ui.paySubmit);
  }
});

/** @param {string} text @param {HTMLElement} [field] */
function payError(text, field) {
  setProgress('error', null, h('p', { class: 'big' }, text));
  if (field) showError(ui.progress, text, field);
}

/** @param {string} state @param {string | null} outcome @param {...Child} children */
function setProgress(state, outcome, ...children) {
  ui.progress.dataset.state = state;
  if (outcome) ui.progress.dataset.outcome = outcome;
  else ui.progress.removeAttribute('data-outcome');
  ui.progress.replaceChildren(
    ...children.filter((c) => c !== null && c !== undefined && c !== false),
  );
}

/** @param {TransactionEvent} event */
async function showPayment(event) {
  const watched = pending;
  if (!watched || watched.done || watched.reference !== event.reference) return;
  const reference = h('p', null, 'Reference ', h('span', { class: 'mono' }, event.reference));
  if (IN_PROGRESS.has(event.state)) {
    setProgress(
      'waiting',
      null,
      h(
        'p',
        { class: 'big' },
        h('span', { class: 'spinner', 'aria-hidden': 'true' }),
        'Sent to terminal — waiting for the card…',
      ),
      reference,
    );
    return;
  }
  watched.done = true;
  // One look at the journal for the bank's words, so the outcome is announced once, complete.
  /** @type {Transaction | null} */
  let tx = null;
  if (event.id !== '') {
    try {
      tx = /** @type {Detail} */ (await api(transactionPath(event.id))).transaction;
    } catch {
      tx = null;
    }
  }
  if (pending !== watched) return;
  const facts = tx
    ? [tx.approvalCode && `Approval code ${tx.approvalCode}`, tx.maskedPan && card(tx), tx.message]
        .filter(Boolean)
        .join(' · ')
    : '';
  const open =
    event.id !== '' &&
    h('button', { type: 'button', class: 'quiet', 'aria-haspopup': 'dialog' }, 'Show details');
  if (open) open.addEventListener('click', () => openDetail(event.id, open));
  setProgress(
    'done',
    event.state,
    h(
      'p',
      { class: 'big' },
      event.state === 'unknown'
        ? 'Unknown — check the terminal'
        : (BADGES[event.state]?.[1] ?? event.state),
    ),
    reference,
    facts && h('p', null, facts),
    open,
  );
}

// ——— transactions ———

function scheduleList() {
  if (listTimer) return;
  listTimer = window.setTimeout(() => {
    listTimer = 0;
    void refreshList();
  }, LIST_DEBOUNCE_MS);
}

ui.filterOutcome.addEventListener('change', scheduleList);
ui.filterUnresolved.addEventListener('change', scheduleList);
// Enter in the filter form must not reload the page.
byId('filters', HTMLFormElement).addEventListener('submit', (event) => {
  event.preventDefault();
  scheduleList();
});

async function refreshList() {
  listAbort?.abort();
  const abort = (listAbort = new AbortController());
  const query = new URLSearchParams();
  if (ui.filterOutcome.value) query.set('outcome', ui.filterOutcome.value);
  if (ui.filterUnresolved.checked) query.set('unresolved', 'true');
  query.set('limit', String(LIST_LIMIT));
  try {
    const data = /** @type {{ transactions: Transaction[] }} */ (
      await api(`/ui/api/transactions?${query}`, { signal: abort.signal })
    );
    if (abort !== listAbort) return;
    renderTransactions(data.transactions);
    ui.txError.textContent = '';
  } catch (error) {
    if (error instanceof SignedOut || abort.signal.aborted) return;
    ui.txError.textContent = `Could not load transactions. ${describe(error)}`;
  }
}

/** @param {Transaction} tx */
function transactionRow(tx) {
  const outcome = outcomeOf(tx);
  return h(
    'tr',
    { 'data-id': String(tx.id), 'data-reference': tx.reference, 'data-outcome': outcome },
    h('td', null, timeElement(tx.createdAt)),
    h(
      'th',
      { scope: 'row' },
      h('button', { type: 'button', class: 'link', 'aria-haspopup': 'dialog' }, tx.reference),
    ),
    h('td', null, tx.terminalId),
    h('td', null, capital(tx.kind)),
    h('td', { class: 'num' }, `${tx.amount} ${tx.currency}`),
    h('td', null, badge(outcome)),
    h('td', { class: 'mono' }, card(tx)),
  );
}

/**
 * Updates rows in place (unchanged rows are the same nodes), so a refresh caused by someone
 * else's payment does not take keyboard focus away from the row you are on.
 * @param {Transaction[]} list
 */
function renderTransactions(list) {
  const body = ui.txBody;
  const focused = document.activeElement?.closest('tr[data-id]');
  const focusedAt = focused ? [...body.children].indexOf(focused) : -1;
  /** @type {Map<string, { signature: string, row: HTMLTableRowElement }>} */
  const next = new Map();
  const rows = list.map((tx) => {
    const signature = JSON.stringify(tx);
    const old = txRows.get(tx.id);
    const row = old && old.signature === signature ? old.row : transactionRow(tx);
    next.set(tx.id, { signature, row });
    return row;
  });
  txRows = next;
  if (rows.length === 0) {
    const filtered = ui.filterOutcome.value !== '' || ui.filterUnresolved.checked;
    rows.push(
      emptyRow(7, filtered ? 'No transactions match these filters.' : 'No transactions yet.'),
    );
  }
  rows.forEach((row, i) => {
    const at = body.children[i];
    if (at !== row) body.insertBefore(row, at ?? null);
  });
  while (body.children.length > rows.length) body.lastElementChild?.remove();
  markSelected();
  // Keep keyboard focus in the table: on the same transaction, or where it was if it left the list.
  if (focused && !body.contains(document.activeElement)) {
    const row =
      txRows.get(focused.getAttribute('data-id') ?? '')?.row ??
      body.children[Math.min(focusedAt, body.children.length - 1)];
    (row?.querySelector('button') ?? ui.filterOutcome).focus();
  }
}

function markSelected() {
  for (const [id, { row }] of txRows) {
    row.classList.toggle('selected', id === detailId);
    const button = row.querySelector('button');
    if (id === detailId) button?.setAttribute('aria-current', 'true');
    else button?.removeAttribute('aria-current');
  }
}

ui.txBody.addEventListener('click', (event) => {
  const target = /** @type {Element} */ (event.target);
  const row = target.closest('tr[data-id]');
  // Selecting text in a row (to copy a reference) is not a click on the row.
  if (!row || (target.tagName !== 'BUTTON' && String(window.getSelection() ?? '') !== '')) return;
  openDetail(row.getAttribute('data-id') ?? '', row.querySelector('button'));
});

// ——— detail ———

/** @type {HTMLElement | null} where focus returns when the dialog closes */
let returnFocus = null;

/** @param {string} id @param {HTMLElement | null} from */
function openDetail(id, from) {
  if (detailId !== id) {
    ui.resolveForm.reset();
    clearInvalid(ui.resolveForm);
    ui.resolveError.textContent = '';
    ui.detailBody.hidden = true;
    ui.detailHeading.textContent = 'Transaction';
  }
  detailId = id;
  detailNotice = '';
  returnFocus = from;
  ui.detailStatus.textContent = 'Loading…';
  markSelected();
  if (!ui.dialog.open) ui.dialog.showModal();
  void loadDetail();
}

/**
 * The API path of a transaction. Its id is the public one (`tx_…`, random): the journal's
 * sequential ids never reach the page.
 * @param {string} id
 */
function transactionPath(id) {
  return `/ui/api/transactions/${encodeURIComponent(id)}`;
}

async function loadDetail() {
  const id = detailId;
  if (id === null) return;
  try {
    const detail = /** @type {Detail} */ (await api(transactionPath(id)));
    if (id === detailId) renderDetail(detail);
  } catch (error) {
    if (!(error instanceof SignedOut) && id === detailId)
      ui.detailStatus.textContent = `Could not load this transaction. ${describe(error)}`;
  }
}

/** @param {Detail} detail */
function renderDetail(detail) {
  const tx = detail.transaction;
  ui.detailHeading.textContent = `Transaction ${tx.reference}`;
  ui.detailStatus.textContent = detailNotice;
  /** @type {[string, Child][]} */
  const fields = [
    ['Reference', h('span', { class: 'mono' }, tx.reference)],
    ['Id', h('span', { class: 'mono' }, tx.id)],
    ['Terminal', tx.terminalId],
    ['Attempt', `${tx.attempt} of ${detail.attempts.length}`],
    ['Kind', capital(tx.kind)],
    ['Amount', `${tx.amount} ${tx.currency}`],
    ['Outcome', badge(outcomeOf(tx))],
    ['State', tx.state],
    ['Card', h('span', { class: 'mono' }, card(tx))],
    ['Approval code', tx.approvalCode],
    ['Terminal transaction', tx.terminalTxId && h('span', { class: 'mono' }, tx.terminalTxId)],
    ['Error code', tx.errorCode && h('span', { class: 'mono' }, tx.errorCode)],
    ['Message', tx.message],
    ['Created', formatTime(tx.createdAt)],
    ['Completed', tx.completedAt ? formatTime(tx.completedAt) : 'Not yet'],
  ];
  ui.detailFields.replaceChildren(
    ...fields.flatMap(([name, value]) => [h('dt', null, name), h('dd', null, value || '—')]),
  );
  ui.detailAttempts.replaceChildren(
    ...detail.attempts.map((a) =>
      h(
        'li',
        a.id === tx.id ? { class: 'current' } : null,
        h('strong', null, `Attempt ${a.attempt}`),
        ' · ',
        badge(outcomeOf(a)),
        ' · ',
        timeElement(a.createdAt),
        a.errorCode && ` — ${a.errorCode}`,
      ),
    ),
  );
  ui.detailReceipt.textContent = detail.receipt || 'No receipt.';
  ui.detailTimeline.replaceChildren(
    ...detail.timeline.map((step) =>
      h(
        'li',
        null,
        h('strong', null, capital(step.state)),
        ' · ',
        timeElement(step.at),
        step.note && ` — ${step.note}`,
      ),
    ),
  );
  ui.detailNotifications.replaceChildren(
    ...(detail.notifications.length === 0
      ? [h('li', { class: 'muted' }, 'No notifications')]
      : detail.notifications.map((n) =>
          h(
            'li',
            null,
            h('strong', null, capital(n.state)),
            ` · ${n.attempts} ${n.attempts === 1 ? 'attempt' : 'attempts'}`,
            n.lastAttemptAt && ' · last ',
            n.lastAttemptAt && timeElement(n.lastAttemptAt),
            n.lastError && ` — ${n.lastError}`,
          ),
        )),
  );
  ui.resolveForm.hidden = tx.state !== 'unknown';
  ui.detailBody.hidden = false;
}

ui.detailClose.addEventListener('click', () => ui.dialog.close());
ui.dialog.addEventListener('close', () => {
  const id = detailId;
  detailId = null;
  markSelected();
  if (!session) return;
  // The row may have been rebuilt while the dialog was open: find it again by id.
  const row = id === null ? undefined : txRows.get(id)?.row;
  const target =
    row?.querySelector('button') ?? (returnFocus?.isConnected ? returnFocus : ui.filterOutcome);
  target.focus();
});

ui.resolveForm.addEventListener('submit', async (event) => {
  event.preventDefault();
  const id = detailId;
  if (id === null || busy.resolve) return;
  clearInvalid(ui.resolveForm);
  ui.resolveError.textContent = '';
  const outcome = ui.resolveOutcome.value;
  const reason = ui.resolveReason.value.trim();
  if (!outcome)
    return showError(ui.resolveError, 'Choose the outcome the records show.', ui.resolveOutcome);
  if (reason.length < 3 || reason.length > 500)
    return showError(
      ui.resolveError,
      'Say what the records show, in 3 to 500 characters.',
      ui.resolveReason,
    );
  busy.resolve = true;
  setBusy(true, ui.resolveSubmit);
  try {
    await api(`${transactionPath(id)}/resolve`, { method: 'POST', body: { outcome, reason } });
    // Nothing charged reopens the reference: the POS's next retry is a new attempt.
    const reopened = ['declined', 'cancelled', 'failed'].includes(outcome)
      ? ' Nothing was charged: the same reference sent again is a new attempt.'
      : '';
    detailNotice = `Resolution recorded: ${BADGES[outcome]?.[1] ?? outcome}. The earlier state stays in the timeline.${reopened}`;
    ui.detailHeading.focus(); // the form disappears once the transaction is no longer unknown
    ui.resolveForm.reset();
    await loadDetail();
    scheduleList();
  } catch (error) {
    if (error instanceof SignedOut) return;
    if (error instanceof ApiError && error.code === 'INVALID_INPUT' && error.field === 'id') {
      detailNotice =
        'Nothing recorded: this transaction is no longer unknown. Its current state is shown.';
      ui.detailHeading.focus();
      await loadDetail();
      return;
    }
    const field =
      error instanceof ApiError && error.field === 'outcome' ? ui.resolveOutcome : ui.resolveReason;
    showError(
      ui.resolveError,
      describe(error),
      error instanceof ApiError && error.field ? field : undefined,
    );
  } finally {
    busy.resolve = false;
    setBusy(false, ui.resolveSubmit);
  }
});

void start();
