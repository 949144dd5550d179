// The review page: draws the run (quicklooks under footprints and detections), shows a detection's chip and
// saves corrections. Plain JavaScript, no library: nothing is fetched from outside the service.
"use strict";
const svg = document.getElementById("map");
const NS = "http://www.w3.org/2000/svg";
let run = null, selected = null, voyages = null;

function el(tag, attrs, parent) {
  const node = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (parent) parent.appendChild(node);
  return node;
}

function colourForScore(s) { return `hsl(${Math.round(120 * s)}, 85%, 50%)`; }
function colourForDate(t, t0, t1) { const f = t1 > t0 ? (t - t0) / (t1 - t0) : 0; return `hsl(${200 + 140 * f}, 70%, 60%)`; }

function visible(d) {
  const from = document.getElementById("from").value, to = document.getElementById("to").value;
  const day = (d.acquired || "").slice(0, 10);
  const area = document.getElementById("area").value;
  return d.score >= Number(document.getElementById("score").value) && (!from || day >= from) && (!to || day <= to) &&
    (!area || (d.areas || []).includes(area));
}

function draw() {
  svg.innerHTML = "";
  const withBounds = run.scenes.filter(s => s.bounds);
  const points = run.detections.filter(d => d.lon !== null && d.lat !== null);
  if (!withBounds.length && !points.length) { el("text", {x: 20, y: 30, fill: "#eee"}, svg).textContent = "nothing georeferenced to draw"; return; }
  const xs = withBounds.flatMap(s => [s.bounds[0], s.bounds[2]]).concat(points.map(d => d.lon));
  const ys = withBounds.flatMap(s => [s.bounds[1], s.bounds[3]]).concat(points.map(d => d.lat));
  const [x0, x1, y0, y1] = [Math.min(...xs), Math.max(...xs), Math.min(...ys), Math.max(...ys)];
  const k = Math.cos((y0 + y1) / 2 * Math.PI / 180);  // equirectangular, metres-true at the run's latitude
  svg.setAttribute("viewBox", `${x0 * k} ${-y1} ${Math.max((x1 - x0) * k, 1e-6)} ${Math.max(y1 - y0, 1e-6)}`);
  svg.setAttribute("preserveAspectRatio", "xMidYMid meet");
  const times = run.scenes.map(s => Date.parse(s.acquired)).filter(Number.isFinite);
  const [t0, t1] = [Math.min(...times), Math.max(...times)];
  for (const s of withBounds) {
    const [bx0, by0, bx1, by1] = s.bounds;
    el("image", {href: `/api/quicklooks/${encodeURIComponent(s.scene_id)}.jpg`, x: bx0 * k, y: -by1,
                 width: (bx1 - bx0) * k, height: by1 - by0, preserveAspectRatio: "none", opacity: 0.9}, svg);
  }
  for (const s of withBounds) {
    const poly = el("polygon", {class: "footprint", points: s.footprint.map(([x, y]) => `${x * k},${-y}`).join(" "),
                                stroke: colourForDate(Date.parse(s.acquired), t0, t1),
                                "stroke-dasharray": s.valid_fraction < 0.5 ? "4 3" : ""}, svg);
    el("title", {}, poly).textContent = `${s.scene_id} ${s.acquired || ""} (clear ${Math.round(100 * s.valid_fraction)} %)`;
  }
  for (const a of run.areas || []) {
    for (const ring of a.rings) {
      const outline = el("polygon", {class: "area", points: ring.map(([x, y]) => `${x * k},${-y}`).join(" ")}, svg);
      el("title", {}, outline).textContent = `counting area ${a.name}`;
    }
  }
  const r = Math.max((x1 - x0) * k, y1 - y0) / 250;
  let shown = 0;
  for (const d of points) {
    if (!visible(d)) continue;
    shown += 1;
    const dot = el("circle", {cx: d.lon * k, cy: -d.lat, r, fill: colourForScore(d.score),
                              class: "detection" + (d.review && d.review.action === "reject" ? " rejected" : "") +
                                     (selected && selected.scene_id === d.scene_id && selected.det_id === d.det_id ? " selected" : ""),
                              "data-scene": d.scene_id, "data-det": d.det_id}, svg);
    el("title", {}, dot).textContent = `${d.scene_id} #${d.det_id} score ${d.score}`;
    dot.addEventListener("click", () => show(d));
  }
  document.getElementById("count").textContent = `${shown} of ${run.detections.length} detections shown`;
}

function show(d) {
  selected = d;
  const panel = document.getElementById("detail");
  const review = d.review ? `${d.review.action}${d.review.label ? " as " + d.review.label : ""} by ${d.review.who}` : "not reviewed";
  panel.innerHTML = `<h2>${d.scene_id} #${d.det_id}</h2>
    <img id="chip" alt="chip of detection ${d.det_id}" src="/api/chips/${encodeURIComponent(d.scene_id)}/${d.det_id}.png">
    <table><tr><td>score</td><td>${d.score}</td></tr><tr><td>length</td><td>${d.length_m ?? "?"} m</td></tr>
    <tr><td>heading</td><td>${d.heading_deg ?? "?"}&deg;</td></tr><tr><td>time</td><td>${d.acquired}</td></tr>
    <tr><td>position</td><td>${d.lat?.toFixed(5)}, ${d.lon?.toFixed(5)}</td></tr>
    <tr><td>review</td><td id="review-state">${review}</td></tr></table>
    <div class="actions"><button id="confirm">Confirm</button><button id="reject">Reject (not a ship)</button>
    <select id="label">${run.classes.map(c => `<option>${c}</option>`).join("")}</select><button id="relabel">Relabel</button></div>
    <p id="message"></p>`;
  document.getElementById("chip").addEventListener("error", () => {
    document.getElementById("message").innerHTML = '<span class="error">no chip: the scene\'s imagery is not at hand</span>';
  });
  for (const action of ["confirm", "reject", "relabel"]) {
    document.getElementById(action).addEventListener("click", () => correct(d, action));
  }
  draw();
}

async function correct(d, action) {
  const body = {action, scene_id: d.scene_id, det_id: d.det_id, who: localStorage.getItem("reviewer") || "reviewer"};
  if (action === "relabel") body.label = document.getElementById("label").value;
  const r = await fetch("/api/corrections", {method: "POST", headers: {"content-type": "application/json"}, body: JSON.stringify(body)});
  const answer = await r.json();
  if (!r.ok) { document.getElementById("message").innerHTML = `<span class="error">${answer.error.message}</span>`; return; }
  d.review = {action: answer.action, label: answer.label, who: answer.who, at: answer.at};
  document.getElementById("review-state").textContent = `${answer.action}${answer.label ? " as " + answer.label : ""} by ${answer.who}`;
  document.getElementById("message").textContent = "saved";
  draw();
}

function visitEdits(corrections) {
  // The reviewers' splits and merges, shown against the visits they were made on.
  const edits = {};
  for (const c of corrections.filter(c => c.action === "split" || c.action === "merge")) {
    for (const id of [c.visit_id, c.with_visit].filter(Boolean)) (edits[id] = edits[id] || []).push(`${c.action} by ${c.who}`);
  }
  return edits;
}

async function showVoyages() {
  const v = await (await fetch("/api/voyages")).json();
  voyages = v;
  const edits = visitEdits(await (await fetch("/api/corrections")).json());
  const box = document.getElementById("voyages");
  if (!v.summary) { box.innerHTML = '<p class="hint">No voyage report given (shipdet review RUN --voyages REPORT).</p>'; return; }
  box.innerHTML = v.summary.areas.map(a => `<h2>${a.area}</h2><table>
    <tr><th></th><th>seen</th><th>estimate</th><th>90 % interval</th><th>hard bounds</th></tr>
    ${["arrivals", "dark_arrivals"].map(k => `<tr><td>${k.replace("_", " ")}</td><td>${a[k].observed}</td><td>${a[k].estimate ?? "not observed"}</td>
      <td>${a[k].interval_90.join("-")}</td><td>${a[k].hard_bounds.join("-")}</td></tr>`).join("")}</table>
    <img alt="timeline of ${a.area}" src="/api/voyages/timeline/${encodeURIComponent(a.area)}.png" style="width:100%">`).join("") +
    `<h2>Visits</h2><p class="hint">Click a visit to see all its sightings.</p>
    <table><tr><th>visit</th><th>first seen</th><th>sightings</th><th>dark</th><th>AIS</th><th>review</th></tr>
    ${v.visits.map((x, i) => `<tr class="visit" data-index="${i}" data-visit="${x.visit_id}"><td>${x.visit_id}</td><td>${(x.first_seen || "").slice(0, 10)}</td><td>${x.sightings}</td>
      <td>${x.dark ? "dark" : ""}</td><td>${x.vessel_id || ""}</td><td class="visit-review">${(edits[x.visit_id] || []).join(", ")}</td></tr>`).join("")}</table>`;
  for (const row of box.querySelectorAll("tr.visit")) row.addEventListener("click", () => showVisit(v.visits[Number(row.dataset.index)]));
}

function showVisit(visit) {
  // A visit's sightings side by side, so that a reader sees why they were counted as one call.
  const scenes = String(visit.scene_ids ?? "").split(","), dets = String(visit.det_ids ?? "").split(",");  // 0 is an id
  const chips = scenes.map((s, i) => dets[i] === undefined || dets[i] === "" ? "" :
    `<figure><img class="sighting" alt="sighting ${i + 1}" src="/api/chips/${encodeURIComponent(s)}/${dets[i]}.png"><figcaption>${s}</figcaption></figure>`).join("");
  document.getElementById("detail").innerHTML = `<h2>${visit.visit_id}</h2>
    <p>${visit.sightings} sightings, ${(visit.first_seen || "").slice(0, 10)} to ${(visit.last_seen || "").slice(0, 10)};
    ${visit.dark ? "dark (no AIS matched)" : "AIS " + (visit.vessel_id || "matched")}; linked by ${visit.linked_by || "?"};
    length ${Number(visit.length_m).toFixed(0)} m</p><div class="sightings">${chips || '<p class="hint">no detection ids in this report</p>'}</div>
    ${visitActions(visit, scenes, dets)}<p id="message"></p>`;
  const split = document.getElementById("split"), merge = document.getElementById("merge");
  if (split) split.addEventListener("click", () => {
    const k = Number(document.getElementById("split-at").value);
    editVisit(visit, {action: "split", split_at: sightingTime(scenes[k], dets[k]), detections: pairs(scenes, dets).slice(k)});
  });
  if (merge) merge.addEventListener("click", () => {
    const other = voyages.visits.find(x => x.visit_id === document.getElementById("merge-with").value);
    const theirs = pairs(String(other.scene_ids ?? "").split(","), String(other.det_ids ?? "").split(","));
    editVisit(visit, {action: "merge", with_visit: other.visit_id, detections: pairs(scenes, dets).concat(theirs)});
  });
}

function pairs(scenes, dets) { return scenes.map((s, i) => [s, Number(dets[i])]).filter(([, d]) => Number.isInteger(d)); }

function sightingTime(scene, det) {
  const d = run.detections.find(x => x.scene_id === scene && String(x.det_id) === String(det));
  return d ? d.acquired : null;
}

function visitActions(visit, scenes, dets) {
  // Split: the sightings from the chosen one on are another call. Merge: this visit and another of its area are one.
  if (!pairs(scenes, dets).length) return "";
  const area = visit.area, others = voyages.visits.filter(x => x.visit_id !== visit.visit_id && x.area === area);
  const splitAt = scenes.slice(1).map((s, i) => `<option value="${i + 1}">before sighting ${i + 2} (${s})</option>`).join("");
  return `<div class="actions">${splitAt ? `<select id="split-at">${splitAt}</select><button id="split">Split</button>` : ""}
    ${others.length ? `<select id="merge-with">${others.map(x => `<option>${x.visit_id}</option>`).join("")}</select><button id="merge">Merge</button>` : ""}</div>`;
}

async function editVisit(visit, body) {
  body = {visit_id: visit.visit_id, who: localStorage.getItem("reviewer") || "reviewer", ...body};
  const r = await fetch("/api/corrections", {method: "POST", headers: {"content-type": "application/json"}, body: JSON.stringify(body)});
  const answer = await r.json();
  if (!r.ok) { document.getElementById("message").innerHTML = `<span class="error">${answer.error.message}</span>`; return; }
  document.getElementById("message").textContent = `saved: ${answer.action}; \`shipdet voyages\` applies it on the next count`;
  showVoyages();
}

async function main() {
  run = await (await fetch("/api/run")).json();
  document.getElementById("run").textContent = run.run;
  const areaSelect = document.getElementById("area");
  for (const a of run.areas || []) areaSelect.appendChild(new Option(a.name, a.name));
  const redraw = () => { document.getElementById("score-out").textContent = document.getElementById("score").value; draw(); };
  for (const id of ["from", "to", "score"]) document.getElementById(id).addEventListener("input", redraw);
  areaSelect.addEventListener("change", redraw);
  draw();
  showVoyages();
}
main();
