// The plots of a training (artifacts of kind "plot": ultralytics' curves, confusion matrices, label and batch
// images) as thumbnails with captions, in a sensible order. An image is fetched only once its tile scrolls
// into view (IntersectionObserver), with the bearer token like every call, and shown from a blob: URL, which
// is revoked when the gallery shows another training. A click (or Enter) enlarges it in a dialog: arrows
// step through the plots, Escape or the close button closes it.
"use strict";

// [pattern, caption]: the order plots are shown in, and what each one is.
const PLOTS = [
  [/^results\.png$/i, "results: losses and metrics per epoch"],
  [/^confusion_matrix\./i, "confusion matrix"],
  [/^confusion_matrix_normalized\./i, "confusion matrix (normalised)"],
  [/PR_curve\./i, "precision–recall curve"],
  [/F1_curve\./i, "F1–confidence curve"],
  [/(^|Box|Mask|Pose)P_curve\./i, "precision–confidence curve"],
  [/(^|Box|Mask|Pose)R_curve\./i, "recall–confidence curve"],
  [/^labels_correlogram\./i, "label correlogram"],
  [/^labels\./i, "labels: classes and box positions"],
  [/^train_batch(\d+)\./i, "training batch $1 (augmented)"],
  [/^val_batch(\d+)_labels\./i, "validation batch $1: ground truth"],
  [/^val_batch(\d+)_pred\./i, "validation batch $1: predictions"],
];

const Gallery = {
  items: [],  // [{name, caption, tile, url, loading}] in display order
  taskId: null,
  observer: null,
  current: -1,  // the plot shown enlarged

  describe(name) {
    const rank = PLOTS.findIndex(([pattern]) => pattern.test(name));
    const batch = Number((name.match(/batch(\d+)/) || [])[1] || 0);
    if (rank < 0) return { rank: PLOTS.length, batch, caption: name };
    const [pattern, text] = PLOTS[rank];
    return { rank, batch, caption: text.replace("$1", name.match(pattern)[1] || "") };
  },

  order(plots) {
    const described = plots.map((item) => ({ ...item, ...this.describe(item.name) }));
    // validation batches pair up (ground truth, then predictions, batch by batch)
    const group = (item) => (item.rank >= PLOTS.length - 2 && item.rank < PLOTS.length ? PLOTS.length - 2 : item.rank);
    return described.sort((a, b) => group(a) - group(b) || a.batch - b.batch || a.rank - b.rank ||
      a.name.localeCompare(b.name));
  },

  clear() {
    if (this.observer) this.observer.disconnect();
    this.observer = null;
    for (const item of this.items) if (item.url) URL.revokeObjectURL(item.url);
    this.items = [];
    this.taskId = null;
    if ($("lightbox").open) $("lightbox").close();
    $("gallery").hidden = true;
    $("gallery-grid").innerHTML = "";
  },

  show(taskId, plots) {
    this.clear();
    if (!plots.length) return;
    this.taskId = taskId;
    $("gallery-count").textContent = `(${plots.length})`;
    this.observer = new IntersectionObserver((entries) => {
      for (const entry of entries) {
        if (!entry.isIntersecting) continue;
        this.observer.unobserve(entry.target);
        this.load(Number(entry.target.dataset.index)).catch((error) => console.warn(error));
      }
    }, { rootMargin: "100px 0px" });
    this.items = this.order(plots).map((plot, index) => this.tile(plot, index));
    $("gallery").hidden = false;
  },

  tile(plot, index) {
    const figure = make("figure", "plot");
    figure.dataset.testid = "plot";
    figure.dataset.name = plot.name;
    figure.dataset.index = String(index);
    const button = make("button", "thumb");
    button.type = "button";
    button.setAttribute("aria-label", `enlarge ${plot.caption} (${plot.name})`);
    const img = make("img");
    img.alt = `${plot.caption} (${plot.name})`;
    img.dataset.testid = "plot-image";
    button.appendChild(img);
    button.addEventListener("click", () => this.open(index));
    const caption = make("figcaption", "", plot.caption);
    caption.append(make("br"), make("small", "", `${plot.name} · ${size(plot.size)}`));
    figure.append(button, caption);
    $("gallery-grid").appendChild(figure);
    this.observer.observe(figure);
    return { name: plot.name, caption: plot.caption, tile: figure, url: null, loading: null };
  },

  // The image's bytes, once: a blob: URL, typed by the file name when the server did not say it is an image.
  load(index) {
    const item = this.items[index];
    if (!item) return Promise.resolve(null);
    if (!item.loading) {
      const taskId = this.taskId;
      const path = `/tasks/${encodeURIComponent(taskId)}/artifacts/${encodeURIComponent(item.name)}`;
      item.tile.dataset.state = "loading";
      item.loading = Api.blob(path).then((blob) => {
        if (this.taskId !== taskId) return null;  // the gallery moved on meanwhile
        const type = blob.type.startsWith("image/") ? blob.type :
          (/\.png$/i.test(item.name) ? "image/png" : "image/jpeg");
        item.url = URL.createObjectURL(blob.type === type ? blob : new Blob([blob], { type }));
        const img = item.tile.querySelector("img");
        img.addEventListener("load", () => { item.tile.dataset.state = "loaded"; }, { once: true });
        img.addEventListener("error", () => {
          item.tile.dataset.state = "error";
          item.tile.querySelector("figcaption small").textContent = `${item.name}: not an image the browser can show`;
        }, { once: true });
        img.src = item.url;
        return item.url;
      }).catch((error) => {
        item.tile.dataset.state = "error";
        item.tile.querySelector("figcaption small").textContent = `${item.name}: ${error.message}`;
        throw error;
      });
    }
    return item.loading;
  },

  async open(index) {
    const count = this.items.length;
    if (!count) return;
    this.current = (index + count) % count;
    const item = this.items[this.current];
    const dialog = $("lightbox");
    $("lightbox-caption").textContent = `${item.caption} — ${item.name} (${this.current + 1} of ${count})`;
    $("lightbox-image").alt = `${item.caption} (${item.name})`;
    $("lightbox-image").removeAttribute("src");
    const download = $("lightbox-download");
    download.replaceWith(Object.assign(Delivery.downloadLink(this.taskId, item.name), { id: "lightbox-download" }));
    if (!dialog.open) dialog.showModal();
    const url = await this.load(this.current).catch(() => null);
    if (url && this.items[this.current] === item) $("lightbox-image").src = url;
  },

  wire() {
    const dialog = $("lightbox");
    $("lightbox-close").addEventListener("click", () => dialog.close());
    $("lightbox-prev").addEventListener("click", () => this.open(this.current - 1));
    $("lightbox-next").addEventListener("click", () => this.open(this.current + 1));
    dialog.addEventListener("click", (event) => {  // a click on the backdrop (outside the dialog's box) closes it
      if (event.target === dialog) dialog.close();
    });
    dialog.addEventListener("keydown", (event) => {
      if (event.key === "ArrowLeft") this.open(this.current - 1);
      else if (event.key === "ArrowRight") this.open(this.current + 1);
    });
  },
};
