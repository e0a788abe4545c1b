// tradeloom console: every page's script (the page names itself: <body data-page>).
"use strict";
const RUN = document.body.dataset.run;
// A run id in a URL: each of its folders escaped ("0/paper1#x" is "0/paper1%23x"), as
// tradeloom.files.addresses.url_path does on the server; every URL built from a run id uses it.
const runPath = id => String(id).split("/").map(encodeURIComponent).join("/");
const esc = s => String(s ?? "").replace(/[&<>"']/g, c => ({"&":"&amp;","<":"&lt;",">":"&gt;",'"':"&quot;","'":"&#39;"}[c]));
const num = (v, d=2) => v === null || v === undefined ? "-" : Number(v).toLocaleString("en-US", {minimumFractionDigits:d, maximumFractionDigits:d});
const pct = v => v === null || v === undefined ? "-" : (100*v).toFixed(2) + "%";
async function api(path, options) {
  const r = await fetch(path, Object.assign({credentials: "same-origin", headers: {"Accept": "application/json"}}, options || {}));
  const body = await r.json();
  if (!r.ok) throw new Error(body.error || r.status);
  return body;
}
function table(head, rows) {
  if (!rows.length) return "<p class='note'>none</p>";
  // a wide table scrolls inside its box, never the page (a phone's 390 px)
  return "<div class='table-box'><table><tr>" + head.map(h => "<th>" + esc(h) + "</th>").join("") + "</tr>" +
    rows.map(r => "<tr>" + r.map(c => typeof c === "object" && c !== null ? c.html : "<td>" + esc(c) + "</td>").join("") + "</tr>").join("") + "</table></div>";
}
const cell = (html) => ({html: html});
const numCell = (v, d) => cell("<td class='num'>" + esc(num(v, d)) + "</td>");
function chart(series, height, percent) {
  const W = 620, H = height, P = 36;
  const pts = series.flatMap(s => s.y.map((y, i) => [Date.parse(s.x[i]), y])).filter(p => isFinite(p[0]) && p[1] !== null && isFinite(p[1]));
  if (pts.length < 1) return "<p class='note'>no bars yet</p>";
  let x0 = Math.min(...pts.map(p => p[0])), x1 = Math.max(...pts.map(p => p[0]));
  let y0 = Math.min(...pts.map(p => p[1])), y1 = Math.max(...pts.map(p => p[1]));
  if (x1 === x0) x1 = x0 + 1; if (y1 === y0) { y1 += 1; y0 -= 1; }
  const sx = x => P + (x - x0) / (x1 - x0) * (W - P - 8), sy = y => 8 + (1 - (y - y0) / (y1 - y0)) * (H - 24);
  const label = v => percent ? (100*v).toFixed(1) + "%" : num(v, 0);
  let out = `<svg viewBox="0 0 ${W} ${H}" width="100%" height="${H}" role="img">`;
  out += `<text x="2" y="14" font-size="10">${esc(label(y1))}</text><text x="2" y="${H-12}" font-size="10">${esc(label(y0))}</text>`;
  for (const s of series) {
    const p = s.y.map((y, i) => [Date.parse(s.x[i]), y]).filter(q => isFinite(q[0]) && q[1] !== null && isFinite(q[1]));
    out += `<polyline class="${esc(s.cls||'')}" fill="none" stroke="${esc(s.color)}" stroke-width="1.5" points="${p.map(q => sx(q[0]).toFixed(1) + "," + sy(q[1]).toFixed(1)).join(" ")}"><title>${esc(s.name)}</title></polyline>`;
  }
  return out + "</svg>";
}

function page_runs() {
let rows = [];
function draw() {
  const f = document.getElementById("filter").value.toLowerCase();
  const shown = rows.filter(r => !f || JSON.stringify([r.id, r.strategy, r.mode, r.state, r.health, r.process]).toLowerCase().includes(f));
  document.getElementById("count").textContent = shown.length + " of " + rows.length + " runs";
  document.getElementById("runs").innerHTML = table(
    ["", "run", "mode", "process", "state", "equity", "P&L", "return", "drawdown", "max DD", "health", "last bar", "staleness"],
    shown.map(r => r.error ? [cell(""), cell("<td><a href='/run/" + esc(runPath(r.id)) + "'>" + esc(r.id) + "</a></td>"), cell("<td colspan='11' class='err'>" + esc(r.error) + "</td>")] : [
      cell("<td><input type='checkbox' class='pick' value='" + esc(r.id) + "'></td>"),
      cell("<td><a class='run-link' href='/run/" + esc(runPath(r.id)) + "'>" + esc(r.id) + "</a></td>"),
      r.mode, r.process, cell("<td class='" + esc(r.state) + "'>" + esc(r.state) + (r.state_code ? " (" + esc(r.state_code) + ")" : "") + "</td>"),
      numCell(r.equity), numCell(r.pnl), cell("<td class='num'>" + pct(r.total_return) + "</td>"),
      cell("<td class='num'>" + pct(r.drawdown) + "</td>"), cell("<td class='num'>" + pct(r.max_drawdown) + "</td>"),
      cell("<td class='" + esc(r.health) + "'>" + esc(r.health || "-") + (r.health_worst && r.health_worst.length ? " " + esc(r.health_worst.join(", ")) : "") + "</td>"),
      r.last_bar_time || "-", r.staleness]));
}
async function load() {
  try { rows = (await api("/api/v1/runs")).runs; draw(); }
  catch (e) { document.getElementById("runs").innerHTML = "<p class='err'>" + esc(e.message) + "</p>"; }
}
document.getElementById("filter").addEventListener("input", draw);
document.getElementById("compare").addEventListener("click", () => {
  const ids = [...document.querySelectorAll(".pick:checked")].map(c => c.value);
  location.href = "/compare?" + ids.map(i => "run=" + encodeURIComponent(i)).join("&");
});
load(); setInterval(load, 5000);
}

function page_run() {
let session = null, updates = 0;
const PARITY_CLASS = {ok: "HEALTHY", diverged: "CRITICAL", failed: "WARNING"};
function tile(label, value, cls) { return "<div class='tile'><small>" + esc(label) + "</small><span class='" + esc(cls||"") + "'>" + esc(value) + "</span></div>"; }
function draw(d) {
  if (d.error) { document.getElementById("live").textContent = d.error; return; }
  const s = d.status; updates += 1;
  document.getElementById("live").textContent = "updated " + new Date().toISOString().slice(11, 19) + " UTC, " + updates + " updates; last bar " + (s.last_bar ?? "-") + " " + (s.last_bar_time || "");
  document.getElementById("tiles").innerHTML = [
    tile("mode", s.mode), tile("process", s.process), tile("state", s.state + (s.state_code ? " " + s.state_code : ""), s.state),
    "<div class='tile'><small>equity</small><span id='equity-value'>" + esc(num(s.equity)) + "</span></div>",
    tile("return", pct(s.total_return)), tile("drawdown", pct(d.drawdown)), tile("max drawdown", pct(d.max_drawdown)),
    tile("health", s.health || "-", s.health), tile("last bar", s.last_bar ?? "-"), tile("staleness", s.staleness),
    ...(s.parity ? [tile("parity at bar " + s.parity.bar, s.parity.verdict, PARITY_CLASS[s.parity.verdict])] : []),
    ...Object.entries(s.strategies || {}).map(([k, v]) => tile("P&L of " + k, num(v)))].join("");
  document.getElementById("equity").innerHTML = chart([{name: "equity", color: "#2c7fb8", x: d.curve.time, y: d.curve.equity, cls: "equity-line"}], 220);
  document.getElementById("drawdown").innerHTML = chart([{name: "drawdown", color: "#d73027", x: d.curve.time, y: d.curve.drawdown.map(v => v === null ? null : -v)}], 220, true);
  document.getElementById("positions").innerHTML = table(["symbol", "quantity", "cost", "mark", "unrealized"],
    s.positions.map(p => [p.symbol, cell("<td class='num position-qty'>" + esc(num(p.quantity, 8)) + "</td>"), numCell(p.cost), numCell(p.mark), numCell(p.unrealized)]));
  drawBooks(s.books || [], d.promotion);
  drawAllocation(s.allocation);
  document.getElementById("orders").innerHTML = table(["id", "symbol", "side", "quantity", "filled", "reason", "bar"],
    s.open_orders.map(o => [o.id, o.symbol, o.side, numCell(o.quantity, 8), numCell(o.filled, 8), o.reason, o.bar]));
  document.getElementById("recent-orders").innerHTML = table(["bar", "symbol", "side", "quantity", "reason", "kind"],
    d.orders.map(o => [o.bar, o.symbol, o.side > 0 ? "buy" : "sell", numCell(o.quantity, 8), cell("<td><b>" + esc(o.reason) + "</b></td>"), o.kind]));
  document.getElementById("fills").innerHTML = table(["bar", "time", "symbol", "side", "quantity", "price", "fee"],
    d.fills.map(f => [f.bar, f.time, f.symbol, f.side > 0 ? "buy" : "sell", numCell(f.quantity, 8), numCell(f.price), numCell(f.fee)]));
  document.getElementById("exits-refused").textContent = d.exits_refused ? "WARNING: " + d.exits_refused : "";
  document.getElementById("refusals").innerHTML = table(["stage", "code", "purpose", "count"],
    d.refusals.map(r => [r.stage, cell("<td><b>" + esc(r.code) + "</b></td>"),
      cell("<td class='" + (r.protective ? "exit protective" : r.exit ? "exit" : "") + "'>" + esc(r.purpose) + "</td>"), numCell(r.count, 0)]));
  document.getElementById("rejections").innerHTML = table(["bar", "symbol", "code", "message"],
    d.rejections.map(r => [r.bar, r.symbol, cell("<td><b>" + esc(r.code) + "</b></td>"), r.message]));
  document.getElementById("health").innerHTML = table(["monitor", "symbol", "status", "now"],
    d.monitoring.map(m => [m.monitor, m.symbol || "-", cell("<td class='" + esc(m.status) + "'>" + esc(m.status || "-") + "</td>"),
      cell("<td class='figures'>" + Object.entries(m.figures).map(([k, v]) => esc(k) + " <b>" + esc(Number.isInteger(v) ? v : num(v, 4)) + "</b>").join(" &middot; ") + "</td>")]));
  document.getElementById("health-changes").innerHTML = table(["bar", "time", "monitor", "symbol", "from", "to", "value"],
    d.health_changes.map(h => [h.bar, h.time, h.monitor, h.symbol || "-", cell("<td class='" + esc(h.previous) + "'>" + esc(h.previous) + "</td>"),
      cell("<td class='" + esc(h.status) + "'>" + esc(h.status) + "</td>"), numCell(h.value, 4)]));
  document.getElementById("notice").textContent = d.notice ? "The journal was read again: " + d.notice : "";
  document.getElementById("alerts").innerHTML = table(["kind", "when", "what"],
    s.errors.map(e => [e.kind, e.timestamp || e.at || "", e.message || e.error || JSON.stringify(e)]));
  drawActions(d);
  if (d.report && !document.getElementById("report-link")) {
    const url = "/report/" + runPath(RUN) + "/report.html";
    document.getElementById("report").innerHTML = d.mode !== "backtest" ?
      "<h2>Report <a id='report-link' href='" + esc(url) + "'>open</a> <small class='note'>(as last written: at the run's start and stop)</small></h2>" : "<h2>Report <a id='report-link' href='" + esc(url) + "'>open</a></h2><iframe id='report-frame' src='" + esc(url) + "' style='width:100%;height:700px;border:1px solid #ddd'></iframe>";
  }
}
// the champion's and each challenger's figures, as tradeloom.reporting.book_figures
// computes them; each cell holds the value (data-value) and shows it rounded
const BOOK_COLUMNS = [
  ["first_bar", "from bar", v => v.toFixed(0)], ["bars", "bars", v => v.toFixed(0)],
  ["equity", "equity", v => num(v)], ["total_return", "return", v => (v >= 0 ? "+" : "") + pct(v)],
  ["sharpe", "Sharpe", v => v.toFixed(2)], ["max_drawdown", "max drawdown", v => pct(v)],
  ["fills", "fills", v => v.toFixed(0)], ["turnover", "turnover", v => v.toFixed(2) + "x"],
  ["auc", "AUC", v => v.toFixed(3)], ["ece", "ECE", v => v.toFixed(4)]];
function drawBooks(books, promotion) {
  document.getElementById("books-box").hidden = !books.length;
  if (!books.length) return;
  const gated = books.some(b => b.gate !== null && b.gate !== undefined);
  // the promote buttons: where the API's check of the journal would take the request now
  // (promotion.promote, as tradeloom.live.lifecycle.promotion_stage.promotion_choices judges it)
  const acting = !!promotion && writable();
  const figure = (v, shown) => v === null || v === undefined ? cell("<td data-value=''>-</td>") :
    cell("<td class='num' data-value='" + esc(v) + "'>" + esc(shown(v)) + "</td>");
  const button = b => cell("<td>" + (promotion.promote.includes(b.name) ?
    "<button class='promote' data-action='promote' data-challenger='" + esc(b.name) + "'>promote</button>" : "") + "</td>");
  const rows = books.map(b => [b.name, ...BOOK_COLUMNS.map(([key, , shown]) => figure(b[key], shown)), ...(gated ? [b.gate || "-"] : []), ...(acting ? [button(b)] : [])]);
  document.getElementById("books").innerHTML = table(["book", ...BOOK_COLUMNS.map(c => c[1]), ...(gated ? ["gate"] : []), ...(acting ? [""] : [])], rows);
  document.getElementById("in-force").textContent = promotion ? "model in force: " + promotion.in_force : "";
  document.getElementById("canary").textContent = promotion && promotion.canary ? "canary: " + promotion.canary : "";
  document.getElementById("watch").textContent = promotion && promotion.watch ? "watch: " + promotion.watch : "";
  document.getElementById("rollback-box").innerHTML = acting && promotion.rollback ?
    "<button id='act-rollback' data-action='rollback'>roll back to the previous model</button>" : "";
}
function drawAllocation(a) {
  document.getElementById("allocation-box").hidden = !a;
  if (!a) return;
  const weight = v => v === null || v === undefined ? "-" : (v >= 0 ? "+" : "") + pct(v);
  document.getElementById("allocation-last").textContent = a.allocator + ", last rebalance bar " + a.bar + " " + (a.time || "") + ": " +
    (a.status === "ok" ? "ok" : a.status + " (" + a.message + "): the last weights hold") + "; " + a.rebalances + " rebalances, " + a.kept + " kept the last weights";
  const rows = a.weights.slice().sort((p, q) => Math.max(Math.abs(q.target || 0), Math.abs(q.held || 0)) - Math.max(Math.abs(p.target || 0), Math.abs(p.held || 0)))
    .map(w => [w.symbol, cell("<td class='num'>" + esc(weight(w.target)) + "</td>"), cell("<td class='num'>" + esc(weight(w.held)) + "</td>")]);
  if (a.others) rows.push([a.others + " more", cell("<td class='num'>" + esc(weight(a.others_target)) + "</td>"), cell("<td class='num'>" + esc(weight(a.others_held)) + "</td>")]);
  document.getElementById("allocation").innerHTML = table([a.weighs || "symbol", "target", a.held_at === "now" ? "held now" : "held at the rebalance"], rows);
}
const writable = () => !!session && session.scope === "write";
function drawActions(d) {
  const box = document.getElementById("actions");
  if (!d.controllable) { box.innerHTML = ""; return; }
  if (box.dataset.ready) return;
  box.dataset.ready = "1";
  if (!writable()) { box.innerHTML = "<p class='note'>read-only session: log in with the operator's link to act</p>"; return; }
  box.innerHTML = "<section><h2>Actions</h2><input id='reason' type='text' maxlength='500' placeholder='reason'> " +
    "<button id='act-kill' data-action='kill'>kill</button><button id='act-flatten' class='danger' data-action='flatten'>kill and flatten</button>" +
    "<button id='act-resume' data-action='resume'>resume</button> <span id='act-confirm'></span> <span id='act-result' class='note'></span></section>";
  for (const b of box.querySelectorAll("button[data-action]")) b.addEventListener("click", () => arm(b.dataset.action, null, "act"));
}
// the promote and rollback buttons are drawn again at each update: one listener for them all
document.getElementById("books-box").addEventListener("click", e => {
  const b = e.target.closest("button[data-action]");
  if (b && (b.dataset.action === "promote" || b.dataset.action === "rollback")) arm(b.dataset.action, b.dataset.challenger || null, "promote");
});
// arm: show the confirm button of ``action`` (a promotion: of ``challenger``) beside the
// buttons of ``where`` ("act": the actions, "promote": the books); act: send it, show the answer
function arm(action, challenger, where) {
  const asked = {action: action, challenger: challenger};
  for (const other of ["act", "promote"]) { const c = document.getElementById(other + "-confirm"); if (c) c.innerHTML = ""; }
  const what = action + (challenger ? " " + challenger : "");
  document.getElementById(where + "-confirm").innerHTML = "<button id='" + where + "-yes' class='danger'>confirm " + esc(what) + "</button>";
  document.getElementById(where + "-yes").addEventListener("click", () => act(asked, where));
}
async function act(asked, where) {
  const out = document.getElementById(where + "-result");
  document.getElementById(where + "-confirm").innerHTML = "";
  const body = {reason: document.getElementById("reason").value || "from the console"};
  if (asked.challenger) body.challenger = asked.challenger;
  try {
    const r = await api("/api/v1/actions/" + encodeURIComponent(asked.action) + "/" + runPath(RUN), {method: "POST", headers: {"Content-Type": "application/json", "Accept": "application/json", "X-CSRF-Token": session.csrf},
      body: JSON.stringify(body)});
    out.textContent = r.message;
  } catch (e) { out.textContent = "refused: " + e.message; }
}
async function start() {
  try { session = await api("/api/v1/session"); } catch (e) { session = null; }
  draw(await api("/api/v1/runs/" + runPath(RUN)));
  const events = new EventSource("/api/v1/events/" + runPath(RUN));
  events.addEventListener("run", m => draw(JSON.parse(m.data)));
  events.onerror = () => { document.getElementById("live").textContent = "disconnected; retrying..."; };
}
start().catch(e => { document.getElementById("live").textContent = e.message; });
}

function page_compare() {
const COLORS = ["#2c7fb8", "#d73027", "#1a9850", "#6a3d9a", "#fd8d3c", "#b15928", "#e7298a"];
(async () => {
  const ids = new URLSearchParams(location.search).getAll("run");
  if (ids.length < 2) return;
  try {
    const c = await api("/api/v1/compare?" + ids.map(i => "run=" + encodeURIComponent(i)).join("&"));
    document.getElementById("out").innerHTML = "<section><h2>Equity (100 = start)</h2>" +
      chart(c.curves.map((k, i) => ({name: k.id, color: COLORS[i % 7], x: k.time, y: k.equity})), 320) +
      "<p>" + c.curves.map((k, i) => "<span style='color:" + COLORS[i % 7] + "'>&#9632; " + esc(k.id) + "</span>").join(" ") + "</p></section>" +
      "<section><h2>Settings that differ</h2>" + table(["key", ...c.runs], c.settings.map(s => [s.key, ...s.values])) + "</section>";
  } catch (e) { document.getElementById("out").innerHTML = "<p class='err'>" + esc(e.message) + "</p>"; }
})();
}

function page_docs() {
(async () => {
  const doc = await api("/api/v1/openapi.json");
  const rows = [];
  for (const [path, ops] of Object.entries(doc.paths))
    for (const [method, op] of Object.entries(ops))
      rows.push([method.toUpperCase(), cell("<td><code>" + esc(path) + "</code></td>"), op.summary || "",
        Object.keys(op.responses || {}).join(" ")]);
  document.getElementById("paths").innerHTML = table(["method", "path", "what", "answers"], rows) +
    "<h2>Schemas</h2>" + Object.entries(doc.components.schemas).map(([k, v]) => "<details><summary>" + esc(k) + "</summary><pre>" + esc(JSON.stringify(v, null, 2)) + "</pre></details>").join("");
})();
}

function page_agent() {
// The audit log, newest first, a page at a time: a broken chain is one line, no table.
let page = 1, pages = 1;
const show = (id, html) => { document.getElementById(id).innerHTML = html; };
async function loadAudit() {
  try {
    const a = await api("/api/v1/agent/audit?page=" + page);
    pages = a.pages;
    show("chain", "<span class='HEALTHY'>hash chain intact</span>: " + esc(a.total) + " calls in " + esc(a.log));
    document.getElementById("audit-page").textContent = "page " + a.page + " of " + a.pages;
    show("audit", table(["#", "time", "who", "tool", "arguments (SHA-256)", "", "result", "seconds"],
      a.calls.map(c => [c.seq, c.at, c.who, c.tool, cell("<td><code title='" + esc(c.arguments_sha256) + "'>" + esc(String(c.arguments_sha256).slice(0, 12)) + "</code></td>"),
        cell("<td class='" + (c.ok ? "HEALTHY'>ok" : "CRITICAL'>error") + "</td>"), c.result, numCell(c.seconds, 3)])));
  } catch (e) {
    show("chain", "<span class='err'>" + esc(e.message) + "</span>");
    show("audit", ""); document.getElementById("audit-page").textContent = "";
  }
  document.getElementById("newer").disabled = page <= 1;
  document.getElementById("older").disabled = page >= pages;
}
async function loadRequests() {
  try {
    const r = await api("/api/v1/agent/requests");
    document.getElementById("agent-workspace").textContent = "workspace " + r.workspace;
    show("requests", "<p>" + esc(r.pending) + " pending; approve one with <code>" + esc(r.approve) + "</code></p>" +
      table(["id", "action", "target", "reason", "asked by", "asked at", "state", "approved by", "done"],
        r.requests.map(q => [q.id, q.action, JSON.stringify(q.target), q.reason, q.asked_by, q.asked_at,
          cell("<td class='" + (q.status === "pending" ? "WARNING" : "HEALTHY") + "'>" + esc(q.status) + "</td>"), q.approved_by || "-", q.done || "-"])));
  } catch (e) { show("requests", "<p class='err'>" + esc(e.message) + "</p>"); }
}
document.getElementById("newer").addEventListener("click", () => { page -= 1; loadAudit(); });
document.getElementById("older").addEventListener("click", () => { page += 1; loadAudit(); });
const load = () => { loadAudit(); loadRequests(); };
load(); setInterval(load, 5000);
}

const PAGES = {runs: page_runs, run: page_run, compare: page_compare, docs: page_docs, agent: page_agent};
PAGES[document.body.dataset.page]();
