// Per-epoch curves with uPlot: as wide as the page, whole-number epoch ticks, redrawn on resize.
"use strict";

const Charts = {
  plots: {},
  colors: ["#3b6fe0", "#2f9e5a", "#d68a1f", "#9b4dca"],

  width(element) {
    return Math.max(280, element.clientWidth || element.parentElement.clientWidth || 600);
  },

  draw(key, element, labels, data, yRange) {
    if (this.plots[key]) this.plots[key].destroy();
    const epochs = data[0];
    const last = epochs.length ? epochs[epochs.length - 1] : 1;
    this.plots[key] = new uPlot({
      width: this.width(element),
      height: 220,
      scales: {
        x: { time: false, range: () => [epochs.length ? epochs[0] : 0, Math.max(last, (epochs[0] || 0) + 1)] },
        y: yRange ? { range: yRange } : {},
      },
      series: [{ label: "epoch" }, ...labels.map((label, i) => ({ label, stroke: this.colors[i], width: 2,
        points: { show: epochs.length < 60 } }))],
      axes: [
        { label: "epoch", incrs: [1, 2, 5, 10, 20, 25, 50, 100, 200, 250, 500, 1000],
          values: (u, splits) => splits.map((v) => (Number.isInteger(v) ? String(v) : "")) },
        {},
      ],
    }, data, element);
  },

  resize() {
    for (const plot of Object.values(this.plots)) {
      plot.setSize({ width: this.width(plot.root.parentElement), height: 220 });
    }
  },

  // The two figures of the detail view from GET /tasks/{id}/metrics.
  show(epochs) {
    const x = epochs.map((e) => e.epoch);
    const column = (name) => epochs.map((e) => (e[name] === null || e[name] === undefined ? null : e[name]));
    this.draw("map", document.getElementById("map-chart"), ["mAP50", "mAP50-95"],
      [x, column("mAP50"), column("mAP50-95")], [0, 1]);
    this.draw("loss", document.getElementById("loss-chart"), ["box", "cls", "dfl"],
      [x, column("train_box_loss"), column("train_cls_loss"), column("train_dfl_loss")]);
  },
};

window.addEventListener("resize", () => Charts.resize());
