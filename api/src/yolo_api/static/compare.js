// Runs side by side: 2 to 6 trainings picked with the table's checkboxes (kept across pages and filters, and
// in the link: #compare=<id>,<id>) are compared in one view from GET /tasks/compare: their mAP50-95 and a
// loss of your choice overlaid per epoch, one colour per training, and a table of final metrics and
// parameters where the parameters that differ (the API's `differing`) are highlighted.
"use strict";

const Compare = {
  MIN: 2,
  MAX: 6,
  selection: [],  // task ids, in the order picked
  names: new Map(),  // task id -> name, for the selection's chips
  tasks: null,  // the last answer's trainings, for redrawing the loss chart
  shown: "",  // the ids the view shows, joined
  seen: new Map(),  // task id -> "<epoch> <status>" of its last row event, to redraw when one moves on
  refresh: null,

  LOSSES: { val_box_loss: "validation box loss", train_box_loss: "training box loss",
    val_cls_loss: "validation class loss", train_cls_loss: "training class loss",
    val_dfl_loss: "validation DFL loss", train_dfl_loss: "training DFL loss" },
  METRICS: ["mAP50", "mAP50-95", "precision", "recall", "f1_score"],

  isSelected(taskId) {
    return this.selection.includes(taskId);
  },

  // A checkbox changed: past six the pick is refused (the box unticked again) with a message.
  toggle(taskId, name, on) {
    if (on && !this.isSelected(taskId)) {
      if (this.selection.length >= this.MAX) {
        this.renderBar(`At most ${this.MAX} trainings can be compared: unselect one first.`);
        return false;
      }
      this.selection.push(taskId);
      if (name) this.names.set(taskId, name);
    } else if (!on) {
      this.selection = this.selection.filter((id) => id !== taskId);
    }
    this.changed();
    return true;
  },

  set(ids) {
    this.selection = [...new Set(ids)];
    this.changed();
  },

  changed() {
    this.renderBar();
    writeHash();
    if (!$("compare").hidden) {
      if (this.valid()) this.show();
      else this.close();
    }
  },

  valid() {
    return this.selection.length >= this.MIN && this.selection.length <= this.MAX;
  },

  // The bar above the table: how many are picked, a chip per pick (× unselects it), Compare and Clear.
  renderBar(refusal = "") {
    const count = this.selection.length;
    const chips = $("compare-chips");
    chips.innerHTML = "";
    for (const id of this.selection) {
      const chip = make("button", "chip", `${this.names.get(id) || id.slice(0, 8)} ×`);
      chip.type = "button";
      chip.title = id;
      chip.setAttribute("aria-label", `unselect ${this.names.get(id) || id}`);
      chip.addEventListener("click", () => this.toggle(id, null, false));
      chips.appendChild(chip);
    }
    $("compare-open").disabled = !this.valid();
    $("compare-clear").hidden = !count;
    const hint = count > this.MAX ? `${count} selected: at most ${this.MAX} trainings can be compared.` :
      count === this.MAX ? `${count} selected, the most that can be compared.` :
        count ? `${count} selected${count < this.MIN ? `: select ${this.MIN} to ${this.MAX} to compare them.` : "."}` :
          `Select ${this.MIN} to ${this.MAX} trainings (the boxes in the table) to compare them.`;
    $("compare-hint").textContent = refusal || hint;
    $("compare-hint").classList.toggle("refused", Boolean(refusal) || count > this.MAX);
    for (const box of document.querySelectorAll("#tasks input.pick")) {
      box.checked = this.isSelected(box.dataset.task);
      box.disabled = !box.checked && count >= this.MAX;
      box.title = box.disabled ? `at most ${this.MAX} trainings can be compared` : "select to compare";
    }
  },

  close() {
    $("compare").hidden = true;
    this.shown = "";
  },

  // A row event: a compared training that finished an epoch or ended is redrawn (at most once a second).
  onRow(row) {
    if ($("compare").hidden || !this.isSelected(row.task_id)) return;
    const key = `${row.current_epoch} ${row.status}`;
    const before = this.seen.get(row.task_id);
    this.seen.set(row.task_id, key);
    if (before === undefined || before === key || this.refresh) return;
    this.refresh = setTimeout(() => {
      this.refresh = null;
      if (!$("compare").hidden && this.valid()) this.show().catch((error) => console.warn(error));
    }, 1000);
  },

  // Open (or refresh) the view for the selection; the API's refusal (fewer than 2, more than 6, unknown ids)
  // is shown as it says it.
  async show() {
    const ids = this.selection.join(",");
    const opening = $("compare").hidden;
    this.shown = ids;
    $("compare").hidden = false;
    $("compare-error").hidden = true;
    $("compare").dataset.state = "loading";
    let body;
    try {
      body = await Api.get(`/tasks/compare?ids=${encodeURIComponent(ids)}`);
    } catch (error) {
      if (this.shown !== ids) return;
      $("compare-error").textContent = error.message;
      $("compare-error").hidden = false;
      $("compare-body").hidden = true;
      $("compare").dataset.state = "error";
      return;
    }
    if (this.shown !== ids) return;
    this.tasks = body.data.tasks;
    for (const task of this.tasks) this.names.set(task.task_id, task.name);
    this.renderBar();
    $("compare-body").hidden = false;
    $("compare-title").textContent = `Comparing ${this.tasks.length} trainings`;
    $("compare-link").href = `#compare=${ids}`;
    this.charts();
    this.table(body.data.differing || []);
    const sampled = this.tasks.filter((task) => !task.complete).map((task) => task.name);
    $("compare-sampled").hidden = !sampled.length;
    $("compare-sampled").textContent = `Curves of ${sampled.join(", ")} show a sample of their epochs.`;
    $("compare").dataset.state = "shown";
    if (opening) $("compare").scrollIntoView({ block: "start" });
  },

  label(task) {
    return `${task.name} (${task.task_id})`;
  },

  charts() {
    const labels = this.tasks.map((task) => this.label(task));
    const histories = this.tasks.map((task) => task.history || []);
    Charts.overlay("compare-map", $("compare-map"), labels, histories, "mAP50-95", [0, 1]);
    const has = (key) => histories.some((history) => history.some((e) => e[key] !== null && e[key] !== undefined));
    const select = $("compare-loss-key");
    if (!has(select.value) && has("train_box_loss")) select.value = "train_box_loss";
    $("compare-loss-title").textContent = `${this.LOSSES[select.value]} (${select.value}) per epoch`;
    Charts.overlay("compare-loss", $("compare-loss"), labels, histories, select.value);
  },

  table(differing) {
    const head = $("compare-table").tHead;
    head.innerHTML = "";
    const top = head.insertRow();
    top.appendChild(make("th", "", ""));
    this.tasks.forEach((task, i) => {
      const th = make("th");
      th.scope = "col";
      const swatch = make("span", "swatch");
      swatch.style.background = Charts.colors[i % Charts.colors.length];
      th.append(swatch, make("span", "", task.name), make("br"), make("code", "", task.task_id.slice(0, 8)));
      th.title = task.task_id;
      th.dataset.task = task.task_id;
      top.appendChild(th);
    });
    const body = $("compare-table").tBodies[0];
    body.innerHTML = "";
    const section = (text) => {
      const th = make("th", "section", text);
      th.colSpan = this.tasks.length + 1;
      body.insertRow().appendChild(th);
    };
    const row = (name, values, className = "") => {
      const tr = body.insertRow();
      tr.className = className;
      tr.dataset.name = name;
      const th = make("th", "", name);
      th.scope = "row";
      if (className === "differs") th.append(" ", make("span", "differs-tag", "differs"));
      tr.appendChild(th);
      for (const value of values) tr.appendChild(make("td", "", value));
      return tr;
    };
    section("final metrics (best.pt)");
    for (const metric of this.METRICS) {
      const values = this.tasks.map((task) => (task.final_metrics ? task.final_metrics[metric] : null));
      const tr = row(metric, values.map((value) => fmt(value, 4)));
      const numbers = values.filter((value) => value !== null && value !== undefined);
      const best = Math.max(...numbers);  // in bold where they differ
      if (new Set(numbers).size > 1) values.forEach((value, i) => tr.cells[i + 1].classList.toggle("best", value === best));
    }
    row("state", this.tasks.map((task) => `${task.state}${task.stage ? ` (${task.stage})` : ""}`));
    row("best epoch", this.tasks.map((task) => (task.best_epoch === null || task.best_epoch === undefined ? "" :
      String(task.best_epoch))));
    if (this.tasks.some((task) => task.quality_gate)) {
      row("quality gate", this.tasks.map((task) => (task.quality_gate ? task.quality_gate.message : "")));
    }
    section("parameters");
    const first = ["model", "data", "epochs", "imgsz", "batch"];
    const last = ["export", "successCriteria"];
    const keys = new Set(this.tasks.flatMap((task) => Object.keys(task.params || {})));
    const middle = [...keys].filter((key) => !first.includes(key) && !last.includes(key)).sort();
    for (const key of [...first, ...middle, ...last].filter((name) => keys.has(name) || differing.includes(name))) {
      const tr = row(key, this.tasks.map((task) => this.param((task.params || {})[key])),
        differing.includes(key) ? "differs" : "same");
      tr.dataset.testid = "compare-param";
    }
    $("compare-table").classList.toggle("only-differing", $("compare-only-differing").checked);
  },

  param(value) {
    if (value === null || value === undefined) return "—";
    if (Array.isArray(value)) return value.join(", ");
    if (typeof value === "object") return Object.entries(value).map(([k, v]) => `${k} ≥ ${v}`).join(", ");
    return String(value);
  },

  wire() {
    $("compare-open").addEventListener("click", () => this.show().catch((error) => console.warn(error)));
    $("compare-clear").addEventListener("click", () => this.set([]));
    $("compare-close").addEventListener("click", () => this.close());
    $("compare-loss-key").addEventListener("change", () => this.tasks && this.charts());
    $("compare-only-differing").addEventListener("change", (event) =>
      $("compare-table").classList.toggle("only-differing", event.target.checked));
  },
};
