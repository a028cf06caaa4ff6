// The training dashboard: a page of trainings (filter by state, page through all of them) and, above it,
// the detail of the selected one (deep link: /ui#task=<id>): its paths, hyperparameters, why it stopped or
// failed, final metrics as a table, per-epoch curves and, once it ended, what it delivered (delivery.js:
// artifacts, exports, quality gate; gallery.js: its plots). Checkboxes pick trainings to compare side by side
// (compare.js). Everything stays live through one event stream.
"use strict";

const PAGE = 50;
const LABELS = { pending: "pending", progress: "running", success: "success", failure: "failed", cancelled: "cancelled" };
const state = { rows: new Map(), offset: 0, total: 0, filter: "", selected: null, curvesOf: null, refetch: null };

const label = (row) => LABELS[row.state || row.status] || row.status;
const writeHash = () => Hash.write({ task: state.selected, compare: Compare.selection, sweep: Sweeps.current });

function setConnection(text) {
  $("connection").textContent = text;
}

function renderRow(row, tr) {
  tr.className = `state-${row.state}` + (state.selected === row.task_id ? " selected" : "");
  const cells = tr.children;
  const name = row.namespace ? `${row.namespace}/${row.name}` : row.name;
  cells[0].querySelector(".name").textContent = name;
  cells[0].querySelector(".name").title = row.task_id;
  cells[0].querySelector("input").setAttribute("aria-label", `compare ${name}`);
  cells[1].innerHTML = "";
  const badge = document.createElement("span");
  badge.className = `badge ${row.state}`;
  badge.textContent = label(row);
  cells[1].appendChild(badge);
  const bar = cells[2].querySelector("div > div");
  bar.style.width = `${row.progress || 0}%`;
  bar.title = `${fmt(row.progress, 1)}%`;
  cells[3].textContent = `${row.current_epoch || 0}/${row.total_epochs || "?"}`;
  metricCell(cells[4], row, "mAP50");
  metricCell(cells[5], row, "mAP50-95");
  cells[6].textContent = localTime(row.created_at);
  cells[7].querySelector("button").hidden = !row.can_cancel;
}

// A training's mAP in the table says where it comes from: best.pt's final validation once it succeeded (what
// the detail's "final metrics" show), else the last epoch's (what GET /tasks and `yoloctl list` carry).
function metricCell(cell, row, key) {
  const final = row.final_metrics && row.final_metrics[key] !== undefined && row.final_metrics[key] !== null;
  const value = fmt(final ? row.final_metrics[key] : row[key]);
  cell.textContent = value;
  cell.dataset.source = value ? (final ? "best.pt" : "last epoch") : "";
  cell.title = value ? (final ? `${key} of best.pt (final validation)` : `${key} of the last epoch`) : "";
  if (value && key === "mAP50") {
    const source = document.createElement("small");
    source.className = "source";
    source.textContent = final ? "best.pt" : "last epoch";
    cell.append(" ", source);
  }
}

// "Cancelled", not "Cancelled: cancelled": the reason alone when the error only repeats it.
function failureText(row) {
  const reason = row.reason || "failed";
  const error = row.error || "";
  return !error || error.toLowerCase() === reason.toLowerCase() ? reason : `${reason}: ${error}`;
}

function renderTable() {
  const body = document.querySelector("#tasks tbody");
  body.innerHTML = "";
  for (const row of state.rows.values()) {
    const tr = document.createElement("tr");
    tr.dataset.task = row.task_id;
    tr.dataset.testid = "task-row";
    tr.innerHTML = "<td><input type='checkbox' class='pick' data-testid='pick'><span class='name'></span></td>" +
      "<td></td><td><div class='bar'><div data-testid='progress-bar'></div></div></td>" +
      "<td></td><td></td><td></td><td></td><td><button class='danger small' data-testid='cancel'>Cancel</button></td>";
    tr.addEventListener("click", () => select(row.task_id));
    tr.querySelector("button").addEventListener("click", (event) => {
      event.stopPropagation();
      cancel(row.task_id);
    });
    const pick = tr.querySelector("input");
    pick.dataset.task = row.task_id;
    pick.addEventListener("click", (event) => event.stopPropagation());  // picks, does not open the detail
    pick.addEventListener("change", () => {
      if (!Compare.toggle(row.task_id, row.name, pick.checked)) pick.checked = false;
    });
    renderRow(row, tr);
    body.appendChild(tr);
  }
  Compare.renderBar();
  const last = Math.min(state.offset + state.rows.size, state.total);
  $("page").textContent = state.total ? `${state.offset + 1}–${last} of ${state.total}` : "no trainings";
  $("prev").disabled = state.offset === 0;
  $("next").disabled = last >= state.total;
}

async function loadPage() {
  const filter = state.filter ? `&status=${state.filter}` : "";
  const body = await Api.get(`/tasks?offset=${state.offset}&limit=${PAGE}${filter}`);
  state.total = body.data.total;
  state.rows = new Map(body.data.items.map((item) => [item.task_id, item]));
  renderTable();
}

function schedulePageLoad() {  // new trainings arrive in bursts: at most one reload every 300 ms
  if (state.refetch) return;
  state.refetch = setTimeout(() => {
    state.refetch = null;
    loadPage().catch((error) => console.warn(error));
  }, 300);
}

function belongsOnThisPage(row) {  // a training this view does not show yet, but should
  if (state.offset !== 0 || !matchesFilter(row)) return false;
  const shown = [...state.rows.values()];
  return shown.length < PAGE || shown.some((other) => other.created_at <= row.created_at);
}

function matchesFilter(row) {
  if (!state.filter) return true;
  return state.filter === "failure" ? row.status === "failure" : row.state === state.filter;
}

function onRow(row) {
  const tr = document.querySelector(`#tasks tr[data-task="${CSS.escape(row.task_id)}"]`);
  if (tr && matchesFilter(row)) {
    state.rows.set(row.task_id, row);
    renderRow(row, tr);
  } else if (tr || belongsOnThisPage(row)) {
    schedulePageLoad();  // it left this view, or a new one belongs on the first page
  }
  if (state.selected === row.task_id) showDetail(row);
  Compare.onRow(row);
}

function fact(table, name, value) {
  if (value === null || value === undefined || value === "") return;
  const tr = table.insertRow();
  tr.insertCell().textContent = name;
  tr.insertCell().textContent = String(value);
}

function showDetail(row) {
  $("detail").hidden = false;
  $("detail-title").textContent = row.namespace ? `${row.namespace}/${row.name}` : row.name;
  $("detail-state").textContent = label(row);
  $("detail-state").className = `badge ${row.state}`;
  $("detail-link").href = `#task=${row.task_id}`;
  $("detail-cancel").hidden = !row.can_cancel;
  $("detail-bar").className = row.state;
  $("detail-bar").style.width = `${row.progress || 0}%`;
  const stage = row.stage ? `${row.stage}: ` : "";
  const stop = row.stop_reason ? ` — stopped by ${row.stop_reason.replace("_", " ")}` : "";
  const lastMap = !row.final_metrics && row.mAP50 !== null && row.mAP50 !== undefined ?
    ` — last epoch's mAP50 ${fmt(row.mAP50)}` : "";
  $("detail-text").textContent = `${stage}epoch ${row.current_epoch || 0}/${row.total_epochs || "?"} ` +
    `(${fmt(row.progress, 1)}%)${stop}${lastMap}`;
  $("detail-error").hidden = row.status !== "failure";
  $("detail-error").textContent = row.status === "failure" ? failureText(row) : "";
  const skipped = row.dataset_skipped;
  $("detail-warning").hidden = !skipped;
  $("detail-warning").textContent = skipped ? `dataset: ${skipped.images} image(s) and ${skipped.labels} label ` +
    `file(s) skipped (${skipped.reasons.join("; ")})` : "";
  const info = $("detail-info").tBodies[0];
  info.innerHTML = "";
  for (const [name, value] of [["task id", row.task_id], ["model", row.model], ["data", row.data],
    ["weights", row.weights_path], ["project", row.project_path], ["epochs", row.epochs], ["imgsz", row.imgsz],
    ["batch", row.batch], ["device", row.device || (row.gpus ? `${row.gpus} GPU(s)` : "cpu")],
    ["created", localTime(row.created_at)], ["started", localTime(row.started_at)],
    ["finished", localTime(row.finished_at)]]) fact(info, name, value);
  const hyper = $("hyperparameters").tBodies[0];
  hyper.innerHTML = "";
  for (const [name, value] of Object.entries(row.hyperparameters || {})) fact(hyper, name, value);
  if (!hyper.rows.length) fact(hyper, "(defaults)", "ultralytics' own");
  const final = $("final").tBodies[0];
  final.innerHTML = "";
  $("final").hidden = !row.final_metrics;
  for (const [name, value] of Object.entries(row.final_metrics || {})) fact(final, name, fmt(value, 4));
  const curves = `${row.task_id} ${row.current_epoch} ${row.status}`;  // redrawn per epoch, and once at the end
  if (curves !== state.curvesOf) {
    state.curvesOf = curves;
    drawCurves(row.task_id, row.status === "success" || row.status === "failure").catch((error) => console.warn(error));
  }
  Delivery.show(row);
}

// The curves, or one line instead of two empty charts when no epoch was recorded (yet).
async function drawCurves(taskId, ended) {
  const body = await Api.get(`/tasks/${encodeURIComponent(taskId)}/metrics`);
  if (state.selected !== taskId) return;
  const epochs = body.data.epochs || [];
  $("curves").hidden = !epochs.length;
  $("no-epochs").hidden = Boolean(epochs.length);
  $("no-epochs").textContent = ended ? "No epochs were recorded: the training ended before its first epoch." :
    "No epochs yet: the curves appear after the first one.";
  if (epochs.length) Charts.show(epochs);
  $("detail").dataset.epochs = String(epochs.length);
}

async function select(taskId) {
  state.selected = taskId;
  state.curvesOf = null;
  Delivery.reset();
  writeHash();
  document.querySelectorAll("#tasks tbody tr").forEach((tr) => tr.classList.toggle("selected", tr.dataset.task === taskId));
  const row = state.rows.get(taskId) || (await Api.get(`/tasks/${encodeURIComponent(taskId)}`)).data;
  showDetail(row);
  $("detail").scrollIntoView({ block: "start" });
}

async function cancel(taskId) {
  if (!confirm("Cancel this training? Its trainer is stopped.")) return;
  await Api.request("DELETE", `/tasks/${encodeURIComponent(taskId)}`);
}

function wire() {
  for (const button of document.querySelectorAll("#filters button")) {
    button.addEventListener("click", () => {
      document.querySelectorAll("#filters button").forEach((b) => b.classList.toggle("active", b === button));
      state.filter = button.dataset.state;
      state.offset = 0;
      loadPage().catch((error) => console.warn(error));
    });
  }
  $("prev").addEventListener("click", () => { state.offset = Math.max(0, state.offset - PAGE); loadPage(); });
  $("next").addEventListener("click", () => { state.offset += PAGE; loadPage(); });
  $("detail-close").addEventListener("click", () => {
    state.selected = null;
    Delivery.reset();
    $("detail").hidden = true;
    writeHash();
  });
  $("detail-cancel").addEventListener("click", () => state.selected && cancel(state.selected));
  $("login").addEventListener("submit", (event) => {
    event.preventDefault();
    Api.setToken($("token").value.trim());
    location.reload();
  });
  Api.onUnauthenticated = () => {
    $("login").hidden = false;
    setConnection("a token is needed");
  };
  Gallery.wire();
  Compare.wire();
  Sweeps.wire();
  window.addEventListener("hashchange", () => openLink());
}

// What the fragment names: a training's detail (#task=<id>), a comparison (#compare=<id>,<id>), a sweep
// (#sweep=<id>, sweeps.js), or several of them.
function openLink() {
  const link = Hash.read();
  if (link.sweep && link.sweep !== Sweeps.current) Sweeps.open(link.sweep).catch((error) => console.warn(error));
  if (link.task && link.task !== state.selected) select(link.task).catch((error) => console.warn(error));
  if (link.compare.length && link.compare.join(",") !== Compare.shown) {
    Compare.selection = [...new Set(link.compare)];
    Compare.renderBar();
    Compare.show().catch((error) => console.warn(error));
  }
}

async function start() {
  Api.loadToken();
  wire();
  Api.stream((event, data) => {
    if (event === "ready") loadPage().catch((error) => console.warn(error));  // after the stream: no gap
    else if (event === "task") onRow(data);
  }, (status) => setConnection(status === "live" ? "live" : "reconnecting…"));
  Compare.renderBar();
  openLink();
}

start();
