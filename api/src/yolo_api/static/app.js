// The training dashboard: a table of trainings and a detail view with per-epoch curves, kept live by the
// events endpoint (GET /task_status/{id}/events). Plain script, no build step; uPlot draws the curves.
"use strict";

const TERMINAL = new Set(["success", "failure"]);
const state = { token: null, rows: new Map(), streams: new Map(), selected: null, charts: {} };

// The token: from the URL fragment once (never sent to the server, never logged), then sessionStorage.
function loadToken() {
  const fragment = new URLSearchParams(location.hash.slice(1));
  if (fragment.get("token")) {
    sessionStorage.setItem("yolo-token", fragment.get("token"));
    history.replaceState(null, "", location.pathname);
  }
  return sessionStorage.getItem("yolo-token");
}

function headers() {
  return state.token ? { Authorization: `Bearer ${state.token}` } : {};
}

function setConnection(text) {
  document.getElementById("connection").textContent = text;
}

function askForToken(message) {
  const form = document.getElementById("login");
  form.hidden = false;
  setConnection(message);
}

async function api(path) {
  const response = await fetch(path, { headers: headers() });
  if (response.status === 401) {
    askForToken("a token is needed");
    throw new Error("unauthenticated");
  }
  return response.json();
}

// Server-Sent Events over fetch (EventSource cannot send an Authorization header).
async function follow(taskId, onEnvelope) {
  const controller = new AbortController();
  state.streams.set(taskId, controller);
  try {
    const response = await fetch(`/task_status/${encodeURIComponent(taskId)}/events`,
      { headers: { ...headers(), Accept: "text/event-stream" }, signal: controller.signal });
    if (!response.ok || !response.body) throw new Error(`events: HTTP ${response.status}`);
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += value.replace(/\r\n/g, "\n");
      let end;
      while ((end = buffer.indexOf("\n\n")) >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        let event = "message";
        const data = [];
        for (const line of block.split("\n")) {
          if (line.startsWith("event:")) event = line.slice(6).trim();
          else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
        }
        if (event === "status" && data.length) onEnvelope(JSON.parse(data.join("\n")));
      }
    }
  } catch (error) {
    if (error.name !== "AbortError") console.warn("stream of", taskId, "ended:", error);
  } finally {
    state.streams.delete(taskId);
  }
}

function fmt(value, digits = 3) {
  return value === null || value === undefined ? "" : Number(value).toFixed(digits);
}

function summaryFromEnvelope(row, envelope) {
  const data = envelope.data || {};
  row.status = data.status || row.status;
  if (data.status === "progress") {
    const result = data.result;
    row.progress = result.progress_value;
    row.current_epoch = result.current_epoch;
    row.total_epochs = result.total_epochs;
    if (result.metrics && result.metrics.mAP50 !== undefined) {
      row.mAP50 = result.metrics.mAP50;
      row["mAP50-95"] = result.metrics["mAP50-95"];
    }
  } else if (data.status === "success") {
    row.progress = 100;
    const final = data.result.final_metrics || {};
    row.mAP50 = final.mAP50;
    row["mAP50-95"] = final["mAP50-95"];
  }
  return row;
}

function renderRow(row) {
  const body = document.querySelector("#tasks tbody");
  let tr = body.querySelector(`tr[data-task="${CSS.escape(row.task_id)}"]`);
  if (!tr) {
    tr = document.createElement("tr");
    tr.dataset.task = row.task_id;
    tr.dataset.testid = "task-row";
    tr.innerHTML = "<td></td><td></td><td><div class='bar'><div data-testid='progress-bar'></div></div></td>" +
      "<td></td><td></td><td></td><td></td>";
    tr.addEventListener("click", () => select(row.task_id));
    body.appendChild(tr);
  }
  tr.className = `state-${row.status}` + (state.selected === row.task_id ? " selected" : "");
  const cells = tr.children;
  cells[0].textContent = row.namespace ? `${row.namespace}/${row.name}` : row.name;
  cells[1].textContent = row.status;
  const bar = cells[2].querySelector("div > div");
  bar.style.width = `${row.progress || 0}%`;
  bar.title = `${fmt(row.progress, 1)}%`;
  bar.setAttribute("aria-valuenow", String(row.progress || 0));
  cells[3].textContent = `${row.current_epoch || 0}/${row.total_epochs || "?"}`;
  cells[4].textContent = fmt(row.mAP50);
  cells[5].textContent = fmt(row["mAP50-95"]);
  cells[6].textContent = (row.created_at || "").replace("T", " ").replace("Z", "");
}

async function refreshList() {
  const body = await api("/tasks?limit=100");
  setConnection(`${body.data.total} trainings`);
  for (const item of body.data.items) {
    const row = Object.assign(state.rows.get(item.task_id) || {}, item);
    state.rows.set(item.task_id, row);
    renderRow(row);
    if (!TERMINAL.has(row.status) && !state.streams.has(row.task_id)) {
      follow(row.task_id, (envelope) => {
        renderRow(summaryFromEnvelope(row, envelope));
        if (state.selected === row.task_id) showDetail(row.task_id, envelope);
      });
    }
  }
}

function chart(key, element, series, data, yRange) {
  const width = Math.min(560, Math.max(320, element.parentElement.clientWidth || 480));
  if (state.charts[key]) state.charts[key].destroy();
  const colors = ["#3b6fe0", "#2f9e5a", "#d68a1f", "#9b4dca"];
  state.charts[key] = new uPlot({
    width, height: 240, scales: { x: { time: false }, y: yRange ? { range: yRange } : {} },
    series: [{ label: "epoch" }, ...series.map((label, i) => ({ label, stroke: colors[i], width: 2 }))],
    axes: [{ label: "epoch" }, {}],
  }, data, element);
}

async function drawCurves(taskId) {
  const body = await api(`/tasks/${encodeURIComponent(taskId)}/metrics`);
  const epochs = body.data.epochs || [];
  const column = (name) => epochs.map((e) => (e[name] === null || e[name] === undefined ? null : e[name]));
  const x = epochs.map((e) => e.epoch);
  chart("map", document.getElementById("map-chart"), ["mAP50", "mAP50-95"], [x, column("mAP50"), column("mAP50-95")],
    [0, 1]);
  chart("loss", document.getElementById("loss-chart"), ["box", "cls", "dfl"],
    [x, column("train_box_loss"), column("train_cls_loss"), column("train_dfl_loss")]);
  document.getElementById("detail").dataset.epochs = String(epochs.length);
  if (body.data.final_metrics) {
    document.getElementById("final").textContent = JSON.stringify(body.data.final_metrics, null, 2);
  }
}

function showDetail(taskId, envelope) {
  const data = envelope.data || {};
  const bar = document.getElementById("detail-bar");
  const row = state.rows.get(taskId) || {};
  bar.className = data.status;
  bar.style.width = `${data.status === "success" ? 100 : (data.result && data.result.progress_value) || row.progress || 0}%`;
  const text = data.status === "progress"
    ? `${data.result.stage}: epoch ${data.result.current_epoch}/${data.result.total_epochs} (${data.result.progress})`
    : data.status === "failure" ? `failed: ${data.error}` : data.status;
  document.getElementById("detail-text").textContent = text;
  drawCurves(taskId).catch((error) => console.warn(error));
}

async function select(taskId) {
  state.selected = taskId;
  const row = state.rows.get(taskId);
  document.querySelectorAll("#tasks tbody tr").forEach((tr) =>
    tr.classList.toggle("selected", tr.dataset.task === taskId));
  document.getElementById("detail").hidden = false;
  document.getElementById("detail-title").textContent = row ? row.name : taskId;
  document.getElementById("final").textContent = "";
  showDetail(taskId, await api(`/task_status/${encodeURIComponent(taskId)}`));
}

async function start() {
  state.token = loadToken();
  document.getElementById("login").addEventListener("submit", (event) => {
    event.preventDefault();
    sessionStorage.setItem("yolo-token", document.getElementById("token").value.trim());
    state.token = sessionStorage.getItem("yolo-token");
    document.getElementById("login").hidden = true;
    refreshList().catch(() => {});
  });
  try {
    await refreshList();
  } catch (error) {
    console.warn(error);
  }
  setInterval(() => refreshList().catch(() => {}), 5000);  // new trainings; running rows are pushed
}

start();
