/* alluse dashboard: progressive enhancement only. The pages are complete without this file;
   it draws the report charts (Chart.js, vendored) and makes the fork tree follow a lineage. */
"use strict";

/* ---- money and numbers, from the exact decimal strings the server sends ---- */
function groupThousands(digits) {
  return digits.replace(/\B(?=(\d{3})+(?!\d))/g, ",");
}
function usdText(text) {
  // "-1234.5" -> "−$1,234.50": formatted from the string, never through a float
  let s = String(text);
  const neg = s.startsWith("-");
  if (neg) s = s.slice(1);
  let [whole, frac = ""] = s.split(".");
  frac = (frac + "00").slice(0, 2);
  return (neg ? "\u2212$" : "$") + groupThousands(whole) + "." + frac;
}
function axisUsd(v) {
  const abs = Math.abs(v);
  const text = abs >= 1e6 ? (abs / 1e6).toFixed(abs >= 1e7 ? 0 : 1) + "M" : abs >= 1e4 ? Math.round(abs / 1e3) + "k" : groupThousands(String(Math.round(abs)));
  return (v < 0 ? "\u2212$" : "$") + text;
}
function formatter(unit) {
  if (unit === "usd") return { axis: axisUsd, exact: usdText };
  if (unit === "pct") return { axis: (v) => v.toFixed(2) + " %", exact: (t) => Number(t).toFixed(2) + " %" };
  return { axis: (v) => v.toFixed(3), exact: (t) => Number(t).toFixed(4) };
}
function shortLabel(label) {
  return /^\d{4}-\d{2}-\d{2}$/.test(label) ? label.slice(5) : label;
}

/* ---- report charts ---- */
function drawChart(canvas) {
  const source = document.getElementById(canvas.dataset.chart);
  if (!source || typeof Chart === "undefined") return;
  const spec = JSON.parse(source.textContent);
  const fmt = formatter(spec.unit);
  const stacked = spec.series.some((s) => s.stack);
  const horizontal = Boolean(spec.extra && spec.extra.horizontal);
  const many = spec.labels.length > 40;
  const datasets = spec.series.map((s, i) => {
    const values = s.values.map((v) => (v === null ? null : Number(v)));
    const base = { label: s.name, data: values, raw: s.values, notes: s.bar_notes, order: s.kind === "line" ? 0 : 1 };
    if (s.kind === "bar") {
      return Object.assign(base, {
        type: "bar",
        backgroundColor: s.bar_colours.length ? s.bar_colours : s.colour,
        borderColor: "#33333355",
        borderWidth: 0.5,
        stack: s.stack || "bar" + i,
        maxBarThickness: 44,
      });
    }
    return Object.assign(base, {
      type: "line",
      borderColor: s.colour,
      backgroundColor: s.colour,
      borderDash: s.dash,
      borderWidth: s.width,
      pointRadius: many ? 0 : 2.5,
      pointHoverRadius: 4,
      spanGaps: false,
      tension: 0,
      stack: "line" + i,
    });
  });
  const valueAxis = {
    stacked: stacked,
    grace: "8%",
    ticks: { callback: (v) => fmt.axis(Number(v)), maxTicksLimit: 7 },
    grid: { color: "#e7eaee" },
    beginAtZero: spec.unit !== "index",
  };
  const labelAxis = {
    stacked: stacked,
    ticks: { autoSkip: true, maxRotation: 0, autoSkipPadding: 14, callback: function (v) { return shortLabel(this.getLabelForValue(v)); } },
    grid: { display: false },
  };
  // eslint-disable-next-line no-new
  new Chart(canvas, {
    data: { labels: spec.labels, datasets: datasets },
    options: {
      indexAxis: horizontal ? "y" : "x",
      maintainAspectRatio: false,
      animation: false,
      interaction: { mode: "index", intersect: false },
      scales: horizontal ? { x: valueAxis, y: labelAxis } : { x: labelAxis, y: valueAxis },
      plugins: {
        legend: { display: spec.series.length > 1, position: "bottom", labels: { boxWidth: 14, usePointStyle: true, font: { size: 11 } } },
        tooltip: {
          callbacks: {
            label: (item) => {
              const ds = item.dataset;
              const raw = ds.raw[item.dataIndex];
              if (raw === null) return null;
              const note = ds.notes && ds.notes[item.dataIndex] ? " (" + ds.notes[item.dataIndex] + ")" : "";
              return ds.label + ": " + fmt.exact(raw) + note;
            },
          },
        },
      },
    },
  });
}

function drawCharts() {
  if (typeof Chart === "undefined") return;
  Chart.defaults.font.family = "Inter, system-ui, sans-serif";
  Chart.defaults.color = "#39424d";
  document.querySelectorAll("canvas[data-chart]").forEach(drawChart);
}

/* ---- fork tree: follow a lineage, zoom ---- */
function treeLineage(svg) {
  const parent = {};
  svg.querySelectorAll("g.node").forEach((g) => { parent[g.dataset.gid] = g.dataset.parent; });
  function line(gid) {
    const keep = new Set([gid]);
    for (let p = parent[gid]; p; p = parent[p]) keep.add(p);
    let grew = true;
    while (grew) {
      grew = false;
      for (const [child, p] of Object.entries(parent)) {
        if (p && keep.has(p) && !keep.has(child) && isBelow(child, gid)) { keep.add(child); grew = true; }
      }
    }
    return keep;
  }
  function isBelow(child, gid) {
    for (let p = child; p; p = parent[p]) if (p === gid) return true;
    return false;
  }
  function show(gid) {
    const keep = line(gid);
    svg.querySelectorAll("g.node").forEach((g) => {
      g.classList.toggle("dim", !keep.has(g.dataset.gid));
      g.classList.toggle("lit", g.dataset.gid === gid);
    });
    svg.querySelectorAll(".edge, .edge-label").forEach((e) => e.classList.toggle("dim", !keep.has(e.dataset.gid)));
  }
  function clear() {
    svg.querySelectorAll(".dim, .lit").forEach((e) => e.classList.remove("dim", "lit"));
  }
  svg.querySelectorAll("g.node").forEach((g) => {
    g.addEventListener("mouseenter", () => show(g.dataset.gid));
    g.addEventListener("focusin", () => show(g.dataset.gid));
    g.addEventListener("mouseleave", clear);
    g.addEventListener("focusout", clear);
  });
}

function treeZoom(svg) {
  const natural = Number(svg.dataset.width);
  let scale = 1;
  function apply() {
    svg.setAttribute("width", String(Math.round(natural * scale)));
    svg.removeAttribute("height");
  }
  document.querySelectorAll("[data-zoom]").forEach((b) => {
    b.addEventListener("click", () => {
      const how = b.dataset.zoom;
      if (how === "in") scale = Math.min(2.5, scale * 1.25);
      else if (how === "out") scale = Math.max(0.3, scale / 1.25);
      else scale = Math.min(1, svg.parentElement.clientWidth / natural);
      apply();
    });
  });
}

document.addEventListener("DOMContentLoaded", () => {
  drawCharts();
  const svg = document.getElementById("tree");
  if (svg) { treeLineage(svg); treeZoom(svg); }
});
