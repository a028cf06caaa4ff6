// Small helpers every part of the dashboard uses: element lookup, number and size formatting, local times,
// and the URL fragment (#task=<id>&compare=<id>,<id>&sweep=<id>), which holds what the page shows so a link
// reopens it.
"use strict";

const $ = (id) => document.getElementById(id);
const fmt = (value, digits = 3) => (value === null || value === undefined ? "" : Number(value).toFixed(digits));
const localTime = (iso) => (iso ? new Date(iso).toLocaleString() : "");
const UNITS = ["B", "KiB", "MiB", "GiB", "TiB"];

function size(bytes) {  // 6.2 MiB, 812 B
  let value = Number(bytes) || 0;
  let unit = 0;
  while (value >= 1024 && unit < UNITS.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return unit ? `${value.toFixed(1)} ${UNITS[unit]}` : `${value} B`;
}

// One element with a class and text: make("td", "differs", "0.01").
function make(tag, className = "", text = "") {
  const element = document.createElement(tag);
  if (className) element.className = className;
  if (text !== "") element.textContent = text;
  return element;
}

const Hash = {
  // {task: "<id>" | null, compare: ["<id>", ...], sweep: "<id>" | null} from the fragment (the token is taken
  // out by Api.loadToken).
  read() {
    const fragment = new URLSearchParams(location.hash.slice(1));
    const ids = (fragment.get("compare") || "").split(",").map((id) => id.trim()).filter(Boolean);
    return { task: fragment.get("task"), compare: ids, sweep: fragment.get("sweep") };
  },

  // Written with replaceState (no history entry per click); commas stay readable in the link.
  write({ task, compare, sweep }) {
    const parts = [];
    if (task) parts.push(`task=${encodeURIComponent(task)}`);
    if (compare && compare.length) parts.push(`compare=${compare.map(encodeURIComponent).join(",")}`);
    if (sweep) parts.push(`sweep=${encodeURIComponent(sweep)}`);
    history.replaceState(null, "", parts.length ? `#${parts.join("&")}` : location.pathname);
  },
};
