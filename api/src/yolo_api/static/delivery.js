// What a finished training delivers, in its detail view: the files to download (GET /tasks/{id}/artifacts;
// its plots go to the gallery), the verified exports with their validation figures, the quality gate's
// outcome, and while the exports are made, which format and step the trainer is at. Exports, gate and export
// progress come from the training's envelope (GET /task_status/{id}): `data.result` on success, `data` itself
// on failure (a training that missed its gate keeps its weights and exports).
"use strict";

const Delivery = {
  listed: null,  // the task id whose artifacts are shown (a finished training's list never changes)
  envelope: null,  // "<task id> <version>" of the envelope shown

  // The kind of an artifact; statuses of older trainers have none, so the file name decides.
  kind(item) {
    if (item.kind) return item.kind;
    if (/\.(png|jpe?g)$/i.test(item.name)) return "plot";
    if (/\.(onnx|torchscript)$/i.test(item.name)) return "export";
    return "";
  },

  // Whether the envelope has something to add: a success (its gate, its exports), the exporting stage, and
  // of the failures (answered 500) only those that judged a gate or made exports.
  told(row) {
    if (row.status === "success" || row.stage === "exporting") return true;
    return row.status === "failure" && (["QualityGateNotMet", "ExportMismatch"].includes(row.reason) ||
      (row.artifacts || []).some((item) => this.kind(item) === "export"));
  },

  show(row) {
    // a success always shows its section ("no artifacts" when there are none); a failure only what it kept
    const kept = row.status === "success" || (row.status === "failure" && (row.artifacts || []).length > 0);
    if (!kept) {
      this.listed = null;
      $("artifacts").hidden = true;
      Gallery.clear();
    } else if (this.listed !== row.task_id) {
      this.listed = row.task_id;
      $("artifacts").hidden = true;  // until this training's list has come
      Gallery.clear();
      this.list(row.task_id).catch((error) => console.warn(error));
    }
    if (!this.told(row)) {
      this.envelope = null;
      this.render(null);
    } else if (this.envelope !== `${row.task_id} ${row.version}`) {
      this.envelope = `${row.task_id} ${row.version}`;
      this.fetchEnvelope(row.task_id, this.envelope).catch((error) => console.warn(error));
    }
  },

  reset() {
    this.listed = null;
    this.envelope = null;
    this.render(null);
    Gallery.clear();
  },

  async list(taskId) {
    const body = await Api.get(`/tasks/${encodeURIComponent(taskId)}/artifacts`);
    if (this.listed !== taskId) return;
    const items = body.data.artifacts || [];
    const rows = $("artifacts").querySelector("tbody");
    rows.innerHTML = "";
    $("artifacts-error").hidden = true;
    for (const item of items.filter((artifact) => this.kind(artifact) !== "plot")) {
      const tr = rows.insertRow();
      tr.dataset.testid = "artifact";
      tr.dataset.name = item.name;
      tr.insertCell().textContent = item.name;
      const bytes = tr.insertCell();
      bytes.textContent = size(item.size);
      bytes.title = `${item.size} bytes`;
      const sha = make("code", "sha256", item.sha256);  // the whole value, cut short by CSS: selecting copies it all
      sha.title = `sha256 ${item.sha256}`;
      tr.insertCell().appendChild(sha);
      tr.insertCell().appendChild(this.downloadLink(taskId, item.name));
    }
    if (!rows.rows.length) rows.insertRow().insertCell().textContent = "no artifacts";
    $("artifacts").hidden = false;
    Gallery.show(taskId, items.filter((artifact) => this.kind(artifact) === "plot"));
  },

  // A link that saves the artifact with the token (see Api.download); failures show under the table.
  downloadLink(taskId, name, text = "download") {
    const path = `/tasks/${encodeURIComponent(taskId)}/artifacts/${encodeURIComponent(name)}`;
    const link = make("a", "", text);
    link.href = path;
    link.download = name;
    link.dataset.testid = "artifact-download";
    link.addEventListener("click", (event) => {
      event.preventDefault();
      $("artifacts-error").hidden = true;
      Api.download(path, name).catch((error) => {
        $("artifacts-error").textContent = `${name}: ${error.message}`;
        $("artifacts-error").hidden = false;
      });
    });
    return link;
  },

  async fetchEnvelope(taskId, key) {
    const body = await Api.get(`/task_status/${encodeURIComponent(taskId)}`);  // a failure answers 500: a body
    if (this.envelope !== key) return;
    this.render(body.data || null);
  },

  render(data) {
    const result = (data && data.result) || {};
    const gate = data && data.quality_gate;
    $("detail-gate").hidden = !gate;
    $("detail-gate-message").hidden = !gate;
    if (gate) {
      $("detail-gate").textContent = gate.passed ? "quality gate met" : "quality gate not met";
      $("detail-gate").className = `badge ${gate.passed ? "success" : "failure"}`;
      $("detail-gate").dataset.passed = String(gate.passed);
      $("detail-gate-message").textContent = gate.message;
      $("detail-gate-message").className = gate.passed ? "gate-met" : "error";
      // a training the gate failed says so in its error already: once is enough
      $("detail-gate-message").hidden = !gate.passed && $("detail-error").textContent.includes(gate.message);
    }
    const progress = data && data.status === "progress" ? result.export : null;
    $("detail-export").hidden = !progress;
    if (progress) {
      const step = progress.step ? `: ${progress.step}` : "";
      $("detail-export").textContent = `exporting ${progress.format || "best.pt"}${step} ` +
        `(${progress.done || 0} of ${progress.total || "?"} format(s) done)`;
    }
    this.exports(result.exports || (data && data.exports) || []);
  },

  exports(items) {
    const rows = $("exports").querySelector("tbody");
    rows.innerHTML = "";
    $("exports").hidden = !items.length;
    for (const item of items) {
      const tr = rows.insertRow();
      tr.dataset.testid = "export";
      tr.dataset.format = item.format;
      const delta = item["delta_mAP50-95"];
      for (const value of [item.format, item.artifact, size(item.size), fmt(item.mAP50, 4), fmt(item["mAP50-95"], 4),
        fmt(item["reference_mAP50-95"], 4), delta === null || delta === undefined ? "" :
          `${delta >= 0 ? "+" : ""}${fmt(delta, 4)}`]) tr.insertCell().textContent = value;
    }
  },
};
