// hpcflow's dashboard: plain JavaScript, no framework, nothing loaded from outside.
// Views: #/ (workflows), #/wf/ID (a workflow: its graph or its steps by group),
// #/wf/ID/step/SID (the same, with the step panel open).
"use strict";

const CSRF = document.querySelector('meta[name="csrf-token"]').content;
const PHASES = ["Pending", "Running", "Succeeded", "Failed", "Error", "Skipped", "Omitted",
                "Terminated"];
const LIST_EVERY = 2000;   // ms between looks at the workflow list
const PHASES_EVERY = 1000; // ms between looks at what moved in a workflow
const LOG_EVERY = 1000;    // ms between reads of a followed log
const FOLDS = [30, 100, 300, 1000]; // a group shows this many steps, then "N more"

let timers = [];          // what the current view polls, stopped when it changes
let view = null;          // the current workflow view's state

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "class") node.className = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined) continue;
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
}

// replaceChildren, skipping nulls and flattening lists as el() does
function fill(node, ...children) {
  node.replaceChildren(...children.flat(2).filter(c => c !== null && c !== undefined && c !== false));
  return node;
}

function notice(text, bad) {
  const n = document.getElementById("notice");
  n.textContent = text || "";
  n.className = bad ? "bad" : "";
}

async function api(path) {
  const r = await fetch(path, {credentials: "same-origin", headers: {Accept: "application/json"}});
  if (r.status === 401) throw new Error("not signed in: open the URL with the token that 'hpcflow ui' printed");
  const data = await r.json().catch(() => ({}));
  if (!r.ok) { const e = new Error(data.error || r.statusText); e.status = r.status; throw e; }
  return data;
}

async function post(path) {
  const r = await fetch(path, {method: "POST", credentials: "same-origin",
                               headers: {"X-CSRF-Token": CSRF}});
  const data = await r.json().catch(() => ({}));
  if (!r.ok) throw new Error(data.error || r.statusText);
  return data;
}

function every(ms, fn) {
  let stopped = false;
  const loop = async () => {
    if (stopped) return;
    try { await fn(); } catch (e) { notice(e.message, true); }
    if (!stopped) handle.id = setTimeout(loop, ms);
  };
  const handle = {id: null, stop() { stopped = true; clearTimeout(this.id); }};
  timers.push(handle);
  loop();
  return handle;
}

function stopAll() { timers.forEach(t => t.stop()); timers = []; }

function when(t) { return t ? new Date(t * 1000).toLocaleString() : ""; }
function seconds(s) {
  if (s === null || s === undefined) return "";
  if (s < 60) return `${s.toFixed(1)} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${Math.round(s % 60)} s`;
  return `${Math.floor(s / 3600)} h ${Math.round((s % 3600) / 60)} min`;
}
function bytes(n) {
  if (n === null || n === undefined) return "";
  const u = ["B", "KiB", "MiB", "GiB", "TiB"]; let i = 0;
  while (n >= 1024 && i < u.length - 1) { n /= 1024; i++; }
  return `${i ? n.toFixed(1) : n} ${u[i]}`;
}
function badge(phase, suspended) {
  return el("span", {class: `badge phase-${phase}`}, phase + (suspended ? " (suspended)" : ""));
}
function counts(c) {
  const total = Object.values(c || {}).reduce((a, b) => a + b, 0);
  const bar = el("span", {class: "bar", title: Object.entries(c || {}).map(([k, v]) => `${k}: ${v}`).join(", ")});
  for (const p of PHASES) if (c && c[p]) bar.append(el("span", {class: `phase-${p}`, style: `flex:${c[p]}`}));
  return el("span", {class: "counts"}, bar, ` ${total ? PHASES.filter(p => c[p]).map(p => `${c[p]} ${p}`).join(", ") : "no steps yet"}`);
}

// ---------------------------------------------------------------- the workflow list
function listView() {
  view = null;
  document.getElementById("crumb").textContent = "";
  const main = document.getElementById("main");
  const params = new URLSearchParams(location.hash.split("?")[1] || "");
  const phase = el("select", {id: "f-phase", name: "phase"}, el("option", {value: ""}, "any phase"),
                   PHASES.map(p => el("option", {value: p, selected: params.get("phase") === p}, p)));
  const label = el("input", {id: "f-label", name: "label", placeholder: "label KEY=VALUE", value: params.get("label") || ""});
  const age = el("input", {id: "f-age", name: "age", placeholder: "newer than (12h, 7d)", value: params.get("age") || ""});
  const form = el("form", {class: "filters", onsubmit: e => {
    e.preventDefault();
    const q = new URLSearchParams();
    for (const f of [phase, label, age]) if (f.value) q.set(f.name, f.value);
    location.hash = "#/" + (q.toString() ? "?" + q : "");
  }}, phase, label, age, el("button", {type: "submit"}, "Filter"));
  const body = el("tbody", {id: "workflows"});
  main.replaceChildren(el("h1", {}, "Workflows"), form,
    el("table", {class: "list"}, el("thead", {}, el("tr", {}, ["Workflow", "Name", "Phase", "Steps", "Created", "Finished"].map(h => el("th", {}, h)))), body));
  const q = new URLSearchParams();
  for (const k of ["phase", "label", "age"]) if (params.get(k)) q.set(k, params.get(k));
  every(LIST_EVERY, async () => {
    const data = await api("/api/workflows?" + q);
    notice("");
    body.replaceChildren(...data.workflows.map(w => el("tr", {"data-wf-id": w.id},
      el("td", {}, el("a", {href: `#/wf/${encodeURIComponent(w.id)}`}, w.id)),
      el("td", {}, w.name, Object.entries(w.labels).map(([k, v]) => el("span", {class: "label"}, `${k}=${v}`))),
      el("td", {}, badge(w.phase, w.suspended && ["Pending", "Running"].includes(w.phase))),
      el("td", {}, counts(w.steps)), el("td", {}, when(w.created_at)), el("td", {}, when(w.finished_at)))));
    if (!data.workflows.length) body.append(el("tr", {}, el("td", {colspan: 6, class: "muted"}, "no workflow matches")));
  });
}

// ---------------------------------------------------------------- a workflow
function workflowView(wfId, stepId) {
  if (view && view.wf === wfId) { openPanel(stepId); return; }
  view = {wf: wfId, event: 0, step: 0, refetchAt: 0, fold: FOLDS[0], collapsed: new Set()};
  document.getElementById("crumb").textContent = ` / ${wfId}`;
  const main = document.getElementById("main");
  const head = el("div", {id: "wf-head"});
  const fold = el("select", {id: "fold", title: "steps shown per group before 'N more'",
                             onchange: () => { view.fold = +fold.value; drawGraph(wfId); }},
                  FOLDS.map(n => el("option", {value: n}, `${n} per group`)));
  const canvas = el("div", {id: "graph", class: "graph"}, el("p", {class: "muted"}, "Loading the graph…"));
  main.replaceChildren(head, el("div", {class: "graph-tools"}, "Show ", fold), canvas);
  canvas.addEventListener("click", e => {
    const folded = e.target.closest(".more[data-more-of]");
    if (folded) {  // a folded group: show more of every group (as far as the menu goes)
      const next = FOLDS.find(n => n > view.fold);
      if (next) { view.fold = next; fold.value = String(next); drawGraph(wfId); }
      return;
    }
    const node = e.target.closest("[data-step-id], [data-group-id]");
    if (node) {  // a step, or a group's box (its counts, phase and reason)
      const id = node.getAttribute("data-step-id") || node.getAttribute("data-group-id");
      location.hash = `#/wf/${encodeURIComponent(wfId)}/step/${id}`;
      return;
    }
    const more = e.target.closest(".more-button");
    if (more) { more.parentElement.querySelectorAll(".folded").forEach(n => n.classList.remove("folded")); more.remove(); }
  });
  drawGraph(wfId).then(() => {
    every(PHASES_EVERY, () => livePhases(wfId));
  });
  openPanel(stepId);
}

function header(wfId, w) {
  const head = document.getElementById("wf-head");
  const key = JSON.stringify(w);
  if (!head || head.dataset.drawn === key) return;  // buttons stay put between clicks
  head.dataset.drawn = key;
  const live = ["Pending", "Running"].includes(w.phase);
  const act = (kind, label, enabled) => el("button", {class: `action act-${kind}`, disabled: !enabled,
    onclick: async () => {
      if (kind === "terminate" && !confirm(`Terminate ${wfId}?`)) return;
      try { notice((await post(`/api/workflows/${encodeURIComponent(wfId)}/actions/${kind}`)).message); }
      catch (e) { notice(e.message, true); }
    }}, label);
  fill(head, 
    el("h1", {}, wfId, " ", badge(w.phase, w.suspended && live)),
    w.message ? el("p", {class: "message"}, w.message) : null,
    ...(w.tips || []).map(t => el("p", {class: "tip"}, "tip: ", t)),
    el("p", {}, counts(w.steps)),
    el("div", {class: "actions"},
       act("terminate", "Terminate", live), act("suspend", "Suspend", live && !w.suspended),
       act("resume", "Resume", live && w.suspended),
       act("retry", "Retry", ["Failed", "Error", "Terminated"].includes(w.phase))));
}

async function drawGraph(wfId) {
  const canvas = document.getElementById("graph");
  view.refetchAt = Date.now();
  let svg = null;
  try {
    const closed = view.collapsed.size ? `&collapse=${[...view.collapsed].join(",")}` : "";
    const r = await fetch(`/api/workflows/${encodeURIComponent(wfId)}/graph.svg?fold=${view.fold}${closed}`, {credentials: "same-origin"});
    if (r.ok) svg = await r.text();
    else throw new Error((await r.json().catch(() => ({}))).error || r.statusText);
  } catch (e) { notice(`the graph could not be drawn (${e.message}): the steps by group instead`, true); }
  if (view === null || view.wf !== wfId) return;
  if (svg !== null) {
    canvas.innerHTML = svg;  // our own server's SVG, made from names the store checked
    canvas.classList.add("svg");
  } else {
    canvas.replaceChildren(await stepTree(wfId));
  }
  if (view.selected) {  // the open step stays marked in the new picture
    canvas.querySelectorAll(`[data-step-id="${view.selected}"], [data-group-id="${view.selected}"]`)
      .forEach(n => n.classList.add("selected"));
  }
  // benchmarks/ui_first_paint.py reads these marks: when the graph was first in the page,
  // and the frame after (it has been laid out and painted by then)
  if (!performance.getEntriesByName("graph-shown").length) {
    performance.mark("graph-shown");
    requestAnimationFrame(() => setTimeout(() => performance.mark("graph-painted"), 0));
  }
}

// When the graph cannot be drawn: the steps as nested boxes by parent, each group folded
// after FOLD steps, coloured by phase like the graph.
async function stepTree(wfId) {
  const rows = [];
  let after = 0;
  for (;;) {
    const page = await api(`/api/workflows/${encodeURIComponent(wfId)}/steps?after=${after}`);
    rows.push(...page.steps);
    if (page.next === null) break;
    after = page.next;
  }
  const kids = new Map();
  for (const r of rows) { if (!kids.has(r.parent_id)) kids.set(r.parent_id, []); kids.get(r.parent_id).push(r); }
  const box = (r) => {
    if (r.type === "Pod") {
      return el("div", {class: `node phase-${r.phase}`, "data-step-id": r.id, title: r.reason || r.phase}, r.name);
    }
    const children = kids.get(r.id) || [];
    const inner = el("div", {class: "children"});
    children.forEach((c, i) => { const b = box(c); if (i >= view.fold) b.classList.add("folded"); inner.append(b); });
    if (children.length > view.fold) inner.append(el("button", {class: "more-button"}, `${children.length - view.fold} more`));
    return el("div", {class: `group phase-${r.phase}`, "data-group-id": r.id},
              el("div", {class: "group-name"}, `${r.name} `, el("span", {class: "muted"}, `${r.type} · ${children.length}`)), inner);
  };
  const roots = kids.get(0) || [];
  return roots.length ? el("div", {class: "tree"}, roots.map(box)) : el("p", {class: "muted"}, "no steps yet");
}

async function livePhases(wfId) {
  if (!view || view.wf !== wfId) return;
  const d = await api(`/api/workflows/${encodeURIComponent(wfId)}/phases?event=${view.event}&step=${view.step}`);
  const first = view.event === 0 && view.step === 0;
  view.event = d.cursor; view.step = d.newest_step;
  header(wfId, {phase: d.phase, suspended: d.suspended, message: d.message, tips: d.tips,
                steps: d.steps});
  const canvas = document.getElementById("graph");
  let unseen = false;
  for (const [id, phase] of d.changed) {
    const nodes = canvas.querySelectorAll(`[data-step-id="${id}"], [data-group-id="${id}"]`);
    if (!nodes.length && !first) unseen = true;
    nodes.forEach(n => {
      for (const c of [...n.classList]) if (c.startsWith("phase-")) n.classList.remove(c);
      n.classList.add(`phase-${phase}`);
      n.querySelectorAll(":scope > .phase-label").forEach(t => { t.textContent = phase; });
    });
  }
  // steps the page does not show yet: draw again, at most every few seconds
  if (d.new_steps && !first) unseen = true;
  // the boxes' colours are swapped above at once; a group's counts and the "N more" box
  // are the server's text: the picture is fetched again, at most every few seconds
  if (unseen) view.unseen = true;
  if (d.changed.length && !first) view.dirty = true;
  const since = Date.now() - view.refetchAt;
  if ((view.unseen && since > 3000) || (view.dirty && since > 5000)) {
    view.unseen = view.dirty = false;
    await drawGraph(wfId);
  }
  if (view && view.stepPanel) view.stepPanel.refresh();
}

// ---------------------------------------------------------------- the step panel
function openPanel(stepId) {
  const panel = document.getElementById("panel");
  if (view && view.stepPanel) { view.stepPanel.close(); view.stepPanel = null; }
  if (!stepId || !view) {
    panel.hidden = true;
    if (view) view.selected = null;
    document.querySelectorAll(".selected").forEach(n => n.classList.remove("selected"));
    return;
  }
  view.stepPanel = stepPanel(view.wf, stepId, panel);
}

// A group's panel opens or closes its box in the graph (closed: its counts, no members).
function collapseButton(wfId, groupId) {
  const closed = view.collapsed.has(groupId);
  return el("button", {class: `action act-collapse`, onclick: (e) => {
    if (view.collapsed.has(groupId)) view.collapsed.delete(groupId); else view.collapsed.add(groupId);
    e.target.textContent = view.collapsed.has(groupId) ? "Expand this group" : "Collapse this group";
    drawGraph(wfId);
  }}, closed ? "Expand this group" : "Collapse this group");
}

function stepPanel(wfId, stepId, panel) {
  const base = `/api/workflows/${encodeURIComponent(wfId)}/steps/${stepId}`;
  const info = el("div", {id: "step-info"});
  const logBox = el("pre", {id: "log", class: "log"});
  const follow = el("input", {type: "checkbox", id: "follow", checked: true});
  const state = {offset: -1, closed: false, final: false, job: null, busy: false, leaf: true};
  const logPart = el("div", {id: "log-part"}, el("h3", {}, "Log ", el("label", {}, follow, " follow")), logBox);
  panel.hidden = false;
  fill(panel,
    el("button", {class: "close", title: "close", onclick: () => { location.hash = `#/wf/${encodeURIComponent(wfId)}`; }}, "×"),
    info, logPart);
  document.querySelectorAll(".selected").forEach(n => n.classList.remove("selected"));
  document.querySelectorAll(`[data-step-id="${stepId}"], [data-group-id="${stepId}"]`)
    .forEach(n => n.classList.add("selected"));
  if (view) view.selected = stepId;

  const draw = (s) => {
    const rows = [["Phase", badge(s.phase)], ["Reason", s.reason || ""], ["Type", s.type],
      ["Key", s.key || ""], ["Attempt", s.attempt], ["Machine", s.machine || ""],
      ["Scheduler job", s.job_id ? `${s.job_id} (${s.job_state || ""})` : ""],
      ["Started", when(s.started_at)], ["Finished", when(s.finished_at)],
      ["Ran for", seconds(s.run_seconds)], ["Step directory", s.step_dir || ""],
      ["Progress", s.progress ? `${s.progress.current}/${s.progress.total}` : ""]];
    const params = (title, list) => list.length ? [el("h3", {}, title), el("table", {class: "kv params"},
      list.map(p => el("tr", {}, el("th", {}, p.name), el("td", {class: "size"}, bytes(p.bytes)),
        el("td", {}, p.preview === null ? el("span", {class: "muted"}, `(${p.type}, stored by digest)`)
                                       : el("code", {}, p.preview + (p.cut ? "…" : ""))))))] : [];
    const arts = (title, list, download) => list.length ? [el("h3", {}, title), el("table", {class: "kv artifacts"},
      list.map(a => el("tr", {}, el("th", {}, a.name), el("td", {}, a.keys.map(k => el("code", {class: "key"}, k))),
        el("td", {}, download ? el("a", {href: `${base}/artifacts/${encodeURIComponent(a.name)}`, download: ""}, "download") : ""))))] : [];
    fill(info, 
      el("h2", {}, s.name),
      s.retryable ? el("button", {class: "action act-retry-step", onclick: async () => {
        try { notice((await post(`${base}/retry`)).message); } catch (e) { notice(e.message, true); }
      }}, "Retry this step") : null,
      s.type !== "Pod" && view && view.wf === wfId ? collapseButton(wfId, s.id) : null,
      el("table", {class: "kv"}, rows.filter(r => r[1] !== "").map(([k, v]) => el("tr", {}, el("th", {}, k), el("td", {}, v)))),
      params("Inputs", s.inputs), arts("Input artifacts", s.input_artifacts, false),
      params("Outputs", s.outputs), arts("Output artifacts", s.artifacts, true),
      s.attempts.length ? [el("h3", {}, "Attempts"), el("table", {class: "list attempts"},
        el("tr", {}, ["#", "Machine", "Job id", "State", "Exit", "Submitted", "Detail"].map(h => el("th", {}, h))),
        s.attempts.map((j, i) => el("tr", {}, el("td", {}, i + 1), el("td", {}, j.machine), el("td", {}, j.job_id || ""),
          el("td", {}, j.state), el("td", {}, j.exit_code ?? ""), el("td", {}, when(j.submitted_at)), el("td", {}, j.detail || ""))))] : []);
  };
  const refresh = async () => {
    if (state.closed || state.busy) return;
    state.busy = true;
    try {
      const s = await api(base);
      if (state.closed) return;
      draw(s);
      state.leaf = s.type === "Pod";  // a group has no log of its own
      logPart.hidden = !state.leaf;
      const job = s.attempts.length ? s.attempts[s.attempts.length - 1].id : null;
      if (job !== state.job || (state.ended && !["Succeeded", "Failed", "Error", "Skipped", "Omitted", "Terminated"].includes(s.phase))) {
        state.job = job; state.offset = -1; state.ended = false; logBox.textContent = "";
      }
    } catch (e) { notice(e.message, true); }
    finally { state.busy = false; }
  };
  const readLog = async () => {
    if (state.closed || !state.leaf || (!follow.checked && state.offset >= 0)) return;
    if (state.ended) return;  // the step ended and its log was read to the end
    const d = await api(`${base}/log?offset=${state.offset}`);
    if (state.closed) return;
    if (state.offset < 0) logBox.textContent = d.note && !d.text ? d.note : "";
    if (d.text) {
      const atEnd = logBox.scrollTop + logBox.clientHeight >= logBox.scrollHeight - 4;
      logBox.append(d.text);
      if (atEnd) logBox.scrollTop = logBox.scrollHeight;
    }
    // an ended step's log read to its end: nothing more will come (a retry starts a new
    // attempt, which refresh() notices and reads from its start)
    state.ended = d.final && !d.text && state.offset >= 0 && d.where !== null;
    state.offset = d.offset;
  };
  refresh();
  const logTimer = every(LOG_EVERY, readLog);
  return {refresh, close() { state.closed = true; logTimer.stop(); }};
}

// ---------------------------------------------------------------- routing
function route() {
  const hash = location.hash || "#/";
  const m = hash.match(/^#\/wf\/([^/?]+)(?:\/step\/(\d+))?/);
  if (m) {
    const wf = decodeURIComponent(m[1]);
    if (!view || view.wf !== wf) stopAll();
    workflowView(wf, m[2] || null);
    return;
  }
  stopAll();
  openPanel(null);
  listView();
}
window.addEventListener("hashchange", route);
route();
