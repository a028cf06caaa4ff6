// Hyperparameter sweeps: the list (GET /sweeps, its first 50: name, phase, trials done of the budget, running, best objective)
// and one sweep's view (GET /sweeps/{id}, deep link /ui#sweep=<id>): its progress and trials by state, the
// trials sorted by objective (best first, as the API sorts them) with a link to each trial's training detail,
// a scatter of the objective against each searched parameter (sweep_charts.js), the best trial's curves, and
// Cancel (DELETE /sweeps/{id}). Live by polling: the open sweep every 3 s until it is over, the list every 5 s
// while it is shown. A poll is one small JSON answer; the trials' own rows still arrive on the one event stream.
"use strict";

const SWEEP_BADGES = { pending: "", running: "progress", succeeded: "success", failed: "failure",
  earlyStopped: "stopped" };
const SWEEP_STATES = ["pending", "running", "succeeded", "failed", "earlyStopped"];

const Sweeps = {
  current: null,  // the sweep whose view is open
  detail: null,  // its last GET /sweeps/{id} data
  timer: null,
  listTimer: null,
  bestOf: null,  // "<task id> <epoch>" whose curves are drawn
  POLL_MS: 3000,
  LIST_MS: 5000,

  badge(state, text) {
    const span = make("span", `badge ${SWEEP_BADGES[state] === undefined ? state : SWEEP_BADGES[state]}`,
      text || state);
    span.dataset.state = state;
    return span;
  },

  objective(value) {
    return value === null || value === undefined ? "" : fmt(value, 4);
  },

  // -- the list ------------------------------------------------------------------------------------------

  async toggleList(show = $("sweeps").hidden) {
    $("sweeps").hidden = !show;
    $("sweeps-tab").setAttribute("aria-pressed", String(show));
    clearTimeout(this.listTimer);
    if (show) await this.loadList();
  },

  async loadList() {
    let body;
    try {
      body = await Api.get("/sweeps");
      $("sweeps-error").hidden = true;
    } catch (error) {
      $("sweeps-error").textContent = error.message;
      $("sweeps-error").hidden = false;
      return;
    } finally {
      clearTimeout(this.listTimer);
      if (!$("sweeps").hidden) this.listTimer = setTimeout(() => this.loadList(), this.LIST_MS);
    }
    const rows = $("sweeps-table").tBodies[0];
    rows.innerHTML = "";
    const sweeps = body.data.items || [];
    for (const sweep of sweeps) {
      const tr = rows.insertRow();
      tr.dataset.sweep = sweep.sweep_id;
      tr.dataset.testid = "sweep-row";
      tr.classList.toggle("selected", sweep.sweep_id === this.current);
      const open = make("button", "link", sweep.namespace ? `${sweep.namespace}/${sweep.name}` : sweep.name);
      open.type = "button";
      open.title = `open sweep ${sweep.sweep_id}`;
      open.addEventListener("click", (event) => {
        event.stopPropagation();
        this.open(sweep.sweep_id);
      });
      tr.addEventListener("click", () => this.open(sweep.sweep_id));
      tr.insertCell().appendChild(open);
      tr.insertCell().appendChild(this.badge(sweep.state, sweep.phase));
      tr.insertCell().textContent = sweep.done || `0/${sweep.max_trials || "?"}`;
      tr.insertCell().textContent = String((sweep.counts || {}).running || 0);
      const best = sweep.best ? this.objective(sweep.best.objective) : "";
      const metric = sweep.objective ? sweep.objective.metric : "";
      tr.insertCell().textContent = best ? `${best} ${metric}` : "";
      tr.cells[3].className = tr.cells[4].className = "number";
    }
    $("sweeps-empty").hidden = sweeps.length > 0;
  },

  // -- one sweep -----------------------------------------------------------------------------------------

  async open(sweepId) {
    if (this.current !== sweepId) {
      this.current = sweepId;
      this.detail = null;
      this.bestOf = null;
      SweepCharts.clear();
      $("sweep").dataset.state = "loading";
    }
    $("sweep").hidden = false;
    writeHash();
    document.querySelectorAll("#sweeps-table tbody tr").forEach((tr) =>
      tr.classList.toggle("selected", tr.dataset.sweep === sweepId));
    await this.refresh(sweepId);
    $("sweep").scrollIntoView({ block: "start" });
  },

  close() {
    clearTimeout(this.timer);
    this.current = null;
    this.detail = null;
    SweepCharts.clear();
    $("sweep").hidden = true;
    writeHash();
  },

  // One poll: fetch, show, and poll again while the sweep runs (and its view is open).
  async refresh(sweepId) {
    clearTimeout(this.timer);
    let body;
    try {
      body = await Api.get(`/sweeps/${encodeURIComponent(sweepId)}`);
    } catch (error) {
      if (this.current !== sweepId) return;
      $("sweep-error").textContent = error.message;
      $("sweep-error").hidden = false;
      $("sweep").dataset.state = "error";
      this.timer = setTimeout(() => this.refresh(sweepId), this.POLL_MS * 2);
      return;
    }
    if (this.current !== sweepId) return;
    this.show(body.data);
    if (!["succeeded", "failed"].includes(body.data.state)) {
      this.timer = setTimeout(() => this.refresh(sweepId), this.POLL_MS);
    }
  },

  show(sweep) {
    this.detail = sweep;
    $("sweep-error").hidden = true;
    $("sweep-title").textContent = `Sweep ${sweep.namespace ? `${sweep.namespace}/` : ""}${sweep.name}`;
    const badge = $("sweep-state");
    badge.className = `badge ${SWEEP_BADGES[sweep.state] || ""}`;
    badge.textContent = sweep.phase;
    badge.dataset.state = sweep.state;
    $("sweep-link").href = `#sweep=${encodeURIComponent(sweep.sweep_id)}`;
    const over = ["succeeded", "failed"].includes(sweep.state);
    $("sweep-cancel").hidden = !sweep.can_cancel || sweep.cancelled;  // the API says whether this caller may
    this.progress(sweep);
    const spec = sweep.spec || {};
    const objective = spec.objective || sweep.objective || { metric: "objective", goal: "maximize" };
    this.best(sweep, objective);
    this.trials(sweep, objective);
    SweepCharts.scatter(sweep.trials || [], spec.parameters || {}, objective);
    $("sweep").dataset.state = over ? "over" : "live";
  },

  progress(sweep) {
    const counts = sweep.counts || {};
    const [finished, budget] = (sweep.done || `0/${sweep.max_trials || 0}`).split("/").map(Number);
    $("sweep-bar").style.width = `${budget ? (100 * finished) / budget : 0}%`;
    $("sweep-bar").className = sweep.state === "succeeded" ? "success" : sweep.state === "failed" ? "failure" : "";
    $("sweep-progressbar").setAttribute("aria-valuemax", String(budget || 0));
    $("sweep-progressbar").setAttribute("aria-valuenow", String(finished || 0));
    const parts = SWEEP_STATES.filter((key) => counts[key]).map((key) =>
      `${counts[key]} ${key === "earlyStopped" ? "early-stopped" : key}`);
    $("sweep-text").textContent = `${finished} of ${budget} trials done` + (parts.length ? ` — ${parts.join(", ")}` : "") +
      ` · ${sweep.algorithm}, ${sweep.parallelism} at a time`;
    const message = [sweep.reason, sweep.message].filter(Boolean).join(": ");
    $("sweep-message").hidden = !message;
    $("sweep-message").textContent = message;
    $("sweep-message").className = sweep.state === "failed" ? "error" : "hint";
  },

  best(sweep, objective) {
    const best = sweep.best;
    $("sweep-best").hidden = !best;
    $("sweep-curves").hidden = !best || !best.taskId;
    if (!best) return;
    const link = $("sweep-best-link");
    link.textContent = best.name;
    link.href = this.trialHref(best.taskId);
    const params = Object.entries(best.parameters || {}).map(([k, v]) => `${k}=${v}`).join(", ");
    $("sweep-best-text").textContent = `${objective.metric} ${this.objective(best.objective)}` +
      (params ? ` with ${params}` : "") + (best.weights ? ` · weights ${best.weights}` : "");
    const row = (sweep.trials || []).find((trial) => trial.task_id === best.taskId);
    const key = `${best.taskId} ${row ? row.epoch : ""} ${row ? row.state : ""}`;
    if (best.taskId && key !== this.bestOf) {
      this.bestOf = key;
      SweepCharts.bestCurves(best.taskId, sweep.sweep_id).catch((error) => console.warn(error));
    }
  },

  trialHref(taskId) {
    return `#task=${encodeURIComponent(taskId)}&sweep=${encodeURIComponent(this.current)}`;
  },

  trials(sweep, objective) {
    const names = Object.keys((sweep.spec || {}).parameters || {}).sort();
    const head = $("sweep-trials").tHead;
    head.innerHTML = "";
    const top = head.insertRow();
    for (const text of ["#", "trial", "state", `${objective.metric} (${objective.goal || "maximize"})`, "epoch",
      ...names, "reason"]) {
      const th = make("th", "", text);
      th.scope = "col";
      top.appendChild(th);
    }
    const body = $("sweep-trials").tBodies[0];
    body.innerHTML = "";
    for (const trial of sweep.trials || []) {
      const tr = body.insertRow();
      tr.dataset.testid = "trial-row";
      tr.dataset.trial = String(trial.trial);
      tr.dataset.state = trial.state;
      if (sweep.best && trial.trial === sweep.best.trial) tr.classList.add("best");
      tr.insertCell().textContent = String(trial.trial);
      const name = tr.insertCell();
      if (trial.task_id) {
        const link = make("a", "", trial.name);
        link.href = this.trialHref(trial.task_id);
        link.dataset.testid = "trial-link";
        link.title = `open the training ${trial.task_id}`;
        name.appendChild(link);
      } else {
        name.textContent = trial.name;
      }
      tr.insertCell().appendChild(this.badge(trial.state, trial.state === "earlyStopped" ? "early-stopped" : ""));
      const value = tr.insertCell();
      value.textContent = this.objective(trial.objective);
      value.className = "number";
      value.dataset.testid = "trial-objective";
      tr.insertCell().textContent = trial.epoch === null || trial.epoch === undefined ? "" : String(trial.epoch);
      for (const key of names) tr.insertCell().textContent = SweepCharts.label((trial.parameters || {})[key]);
      tr.insertCell().textContent = trial.reason || "";
    }
    $("sweep-trials-empty").hidden = (sweep.trials || []).length > 0;
  },

  async cancel() {
    const sweepId = this.current;
    if (!sweepId || !confirm("Cancel this sweep? Its running trials are cancelled and no more start.")) return;
    $("sweep-cancel").disabled = true;
    try {
      await Api.request("DELETE", `/sweeps/${encodeURIComponent(sweepId)}`);
    } catch (error) {
      $("sweep-error").textContent = error.message;
      $("sweep-error").hidden = false;
    } finally {
      $("sweep-cancel").disabled = false;
    }
    await this.refresh(sweepId);
  },

  wire() {
    $("sweeps-tab").addEventListener("click", () => this.toggleList().catch((error) => console.warn(error)));
    $("sweeps-close").addEventListener("click", () => this.toggleList(false));
    $("sweep-close").addEventListener("click", () => this.close());
    $("sweep-cancel").addEventListener("click", () => this.cancel().catch((error) => console.warn(error)));
  },
};
