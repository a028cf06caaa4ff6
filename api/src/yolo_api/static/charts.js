// Per-epoch curves with uPlot: as wide as the page, whole-number epoch ticks, redrawn on resize. The detail
// view draws one training's metrics; the compare view overlays one metric of several trainings, one colour
// each (Charts.colors, which the compare table uses too).
"use strict";

const Charts = {
  plots: {},
  colors: ["#3b6fe0", "#2f9e5a", "#d68a1f", "#9b4dca", "#d64545", "#1b9aaa"],

  width(element) {
    return Math.max(280, element.clientWidth || element.parentElement.clientWidth || 600);
  },

  // data: [epochs, ...one array per label]; a null value is a missing epoch (spanned over, not a zero).
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
      series: [{ label: "epoch" }, ...labels.map((label, i) => ({ label, stroke: this.colors[i % this.colors.length],
        width: 2, spanGaps: true, points: { show: epochs.length < 60 } }))],
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

  // One metric of several trainings on one chart: histories are [{epoch, <metric>...}] per training, their
  // epochs joined on one x axis (a training that has no value at an epoch has a gap there).
  overlay(key, element, labels, histories, metric, yRange) {
    const epochs = [...new Set(histories.flatMap((history) => history.map((e) => e.epoch)))].sort((a, b) => a - b);
    const columns = histories.map((history) => {
      const byEpoch = new Map(history.map((e) => [e.epoch, e[metric]]));
      return epochs.map((epoch) => (byEpoch.get(epoch) === undefined ? null : byEpoch.get(epoch)));
    });
    this.draw(key, element, labels, [epochs, ...columns], yRange);
  },
};

window.addEventListener("resize", () => Charts.resize());
