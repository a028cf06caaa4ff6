// The charts of a sweep's view: for each searched parameter a scatter of the trials' objective against it
// (uPlot, points only; a log x axis for a parameter searched on a log scale; values that are not numbers,
// such as an optimizer's name, placed at evenly spaced ticks), and the best trial's mAP50-95 and losses per
// epoch from GET /tasks/{its task}/metrics. A trial without an objective yet has no point.
"use strict";

const SweepCharts = {
  drawn: "",  // what the scatters show, to redraw only when it changed

  label(value) {
    if (value === null || value === undefined) return "";
    if (typeof value === "number") return Number.isInteger(value) ? String(value) : String(+value.toPrecision(4));
    return String(value);
  },

  clear() {
    for (const key of Object.keys(Charts.plots)) {
      if (key.startsWith("sweep-")) {
        Charts.plots[key].destroy();
        delete Charts.plots[key];
      }
    }
    this.drawn = "";
    $("sweep-scatter").innerHTML = "";
    $("sweep-curves").hidden = true;
  },

  // trials: the detail's rows; parameters: spec.parameters ({values} or {min, max, scale}); objective: {metric, goal}.
  scatter(trials, parameters, objective) {
    const names = Object.keys(parameters).sort();
    const scored = trials.filter((trial) => trial.objective !== null && trial.objective !== undefined);
    const key = JSON.stringify([names, scored.map((t) => [t.trial, t.objective, t.parameters])]);
    if (key === this.drawn) return;
    for (const name of Object.keys(Charts.plots)) {
      if (name.startsWith("sweep-scatter-")) {
        Charts.plots[name].destroy();
        delete Charts.plots[name];
      }
    }
    this.drawn = key;
    const box = $("sweep-scatter");
    box.innerHTML = "";
    $("sweep-scatter-empty").hidden = scored.length > 0;
    if (!scored.length) return;
    for (const name of names) {
      const log = parameters[name] && parameters[name].scale === "log";
      const figure = make("figure", "scatter");
      const caption = make("figcaption", "", `${objective.metric} against ${name}${log ? " (log scale)" : ""}`);
      const chart = make("div");
      chart.dataset.testid = "sweep-scatter";
      chart.dataset.param = name;
      chart.setAttribute("role", "img");
      chart.setAttribute("aria-label", `${objective.metric} of ${scored.length} trial(s) against ${name}`);
      figure.append(caption, chart);
      box.appendChild(figure);
      this.drawScatter(`sweep-scatter-${name}`, chart, name, scored, log, objective.metric);
    }
  },

  drawScatter(key, element, name, trials, log, metric) {
    const raw = trials.map((trial) => (trial.parameters || {})[name]);
    const numeric = raw.every((value) => typeof value === "number");
    const categories = numeric ? [] : [...new Set(raw.map((value) => this.label(value)))].sort();
    const points = trials.map((trial, i) => [numeric ? raw[i] : categories.indexOf(this.label(raw[i])), trial.objective])
      .filter(([x]) => x !== undefined && x !== null && !(log && x <= 0))
      .sort((a, b) => a[0] - b[0]);  // uPlot wants x in order
    const xs = points.map(([x]) => x);
    const axis = numeric ? { label: name } : { label: name, incrs: [1], values: (u, splits) =>
      splits.map((v) => (Number.isInteger(v) && categories[v] !== undefined ? categories[v] : "")) };
    const x = numeric ? { time: false, ...(log ? { distr: 3 } : {}) } :
      { time: false, range: () => [-0.5, Math.max(categories.length - 0.5, 0.5)] };
    element.dataset.points = String(points.length);
    Charts.plots[key] = new uPlot({
      width: 420,
      height: 220,
      scales: { x, y: {} },
      legend: { show: false },
      cursor: { drag: { x: false, y: false } },
      series: [{ label: name, value: (u, v) => this.label(numeric ? v : categories[v]) },
        { label: metric, stroke: Charts.colors[0], fill: Charts.colors[0], paths: () => null,
          points: { show: true, space: 0, size: 8, fill: `${Charts.colors[0]}b0`, stroke: Charts.colors[0] } }],
      axes: [axis, { label: metric }],
    }, [xs, points.map(([, y]) => y)], element);
  },

  // The best trial's curves (its task's per-epoch history); sweepId: the view they are for.
  async bestCurves(taskId, sweepId) {
    const body = await Api.get(`/tasks/${encodeURIComponent(taskId)}/metrics`);
    if (Sweeps.current !== sweepId) return;
    const epochs = body.data.epochs || [];
    $("sweep-curves").hidden = !epochs.length;
    if (!epochs.length) return;
    const x = epochs.map((e) => e.epoch);
    const column = (name) => epochs.map((e) => (e[name] === null || e[name] === undefined ? null : e[name]));
    Charts.draw("sweep-map", $("sweep-map"), ["mAP50-95"], [x, column("mAP50-95")], [0, 1]);
    Charts.draw("sweep-loss", $("sweep-loss"), ["box", "cls", "dfl"],
      [x, column("train_box_loss"), column("train_cls_loss"), column("train_dfl_loss")]);
    $("sweep-curves").dataset.epochs = String(epochs.length);
  },
};
