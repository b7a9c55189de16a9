// KimiWoNosete's page: submit a link or a file, follow the job's event stream, then show the
// score (SVG pages from the server), the two players with the bar being heard marked, and the
// downloads. Untrusted text (titles, file names, errors) only ever goes in as textContent.
"use strict";

const $ = (id) => document.getElementById(id);
const FINAL = ["done", "failed", "cancelled"];
const STAGES = {
  queued: "Waiting for a free worker", downloading: "Downloading the recording", decoding: "Reading the audio",
  transcribing: "Listening for the notes", scoring: "Writing the score", engraving: "Engraving the pages",
  done: "Done", failed: "It failed", cancelled: "Cancelled",
};
const FORMATS = [
  ["pdf", "PDF, to print"], ["musicxml", "MusicXML, for MuseScore, Finale, Sibelius, Dorico"],
  ["mid", "Score MIDI, as written"], ["performance", "Performance MIDI, as played"], ["ly", "LilyPond source"],
];
const ZOOMS = [0.75, 1, 1.5, 2, 3];

// ---- small helpers ------------------------------------------------------------------------

function el(tag, text, attrs) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = String(text);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
  return node;
}

function sentence(text) {
  const s = String(text || "").trim();
  if (!s) return "";
  const start = /^[a-z][a-z0-9+.-]*:\/\//i.test(s) ? s : s[0].toUpperCase() + s.slice(1); // a link stays as it is
  return start + (/[.!?)]$/.test(s) ? "" : ".");
}

// Each error box and the field it speaks of ("form-error" speaks of the whole form).
const FIELDS = { "link-error": "link", "file-error": "file", "options-error": "start", "key-error": "api-key",
  "form-error": "" };

function setError(id, text) {
  const box = $(id);
  box.textContent = sentence(text);
  box.hidden = !text;
  const input = $(FIELDS[id] || "");
  if (input) input.setAttribute("aria-invalid", text ? "true" : "false");
}

function clearErrors() {
  for (const id of Object.keys(FIELDS)) setError(id, "");
}

// ---- the API key, for a server that asks for one ----------------------------------------------
// Kept in this browser (localStorage) and sent as the API's header on every fetch. What the browser
// fetches by itself (the players' audio, the event stream, downloads) cannot carry a header: for
// those it goes in a same-site cookie the server reads on GET requests only (see guard.py).

const KEY_STORE = "kimiwonosete.apiKey";
const KEY_COOKIE = "kimiwonosete-key";

function apiKey() {
  try { return localStorage.getItem(KEY_STORE) || ""; } catch (e) { return ""; }
}

function keepKey(key) {
  try { if (key) localStorage.setItem(KEY_STORE, key); else localStorage.removeItem(KEY_STORE); } catch (e) { /* private mode: this page only */ }
  document.cookie = key ? `${KEY_COOKIE}=${encodeURIComponent(key)}; Path=/; SameSite=Strict`
    : `${KEY_COOKIE}=; Path=/; SameSite=Strict; Max-Age=0`;
}

/** fetch() with the API key's header, if there is a key. */
function api(url, init) {
  const headers = new Headers((init && init.headers) || {});
  const key = apiKey();
  if (key) headers.set("Authorization", `Bearer ${key}`);
  return fetch(url, { ...init, headers });
}

/** A 401: the API key field opened, saying what is wrong. */
function needKey(text) {
  $("access").open = true;
  setError("key-error", text);
}

/** The API's answer in plain words. */
async function problem(response) {
  let detail = "";
  try {
    const body = await response.json();
    detail = Array.isArray(body.detail) ? body.detail.map((d) => d.msg).join("; ") : body.detail;
  } catch (e) { detail = ""; }
  if (response.status === 401) {
    const given = Boolean(apiKey());
    needKey(given ? "this server did not accept this API key: check it, then “Use this key”"
      : "this server needs an API key: enter it here, then “Use this key”");
    return given ? "this server did not accept the API key (see “API key”)" : "this server needs an API key (see “API key”)";
  }
  if (response.status === 413) return detail || "the file is larger than this server accepts";
  if (response.status === 429) return detail || "too many jobs at once: wait a minute and try again";
  return detail || `the server answered ${response.status} ${response.statusText}`;
}

async function getJSON(url) {
  const response = await api(url, { headers: { Accept: "application/json" } });
  if (!response.ok) throw Object.assign(new Error(await problem(response)), { status: response.status });
  return response.json();
}

function seconds(s) {
  if (!isFinite(s) || s < 0) return "";
  // no-break spaces: "41 s" is never split over two lines
  if (s < 60) return `${Math.max(1, Math.round(s))}\u00a0s`;
  return `${Math.floor(s / 60)}\u00a0min ${Math.round(s % 60)}\u00a0s`;
}

function titleOf(job) {
  const summary = job.summary || {};
  return (job.options && job.options.title) || (summary.link && summary.link.title) ||
    (job.source === "upload" ? job.name || "An uploaded recording" : job.source || "A recording");
}

// ---- the views: one shown at a time, chosen by the address (?job=ID) --------------------------

function show(view) {
  $("submit").hidden = view !== "submit";
  $("progress").hidden = view !== "progress";
  $("result").hidden = view !== "result";
}

let following = null; // the job being shown: { id, events, stage }

function route() {
  if (following && following.events) following.events.close();
  following = null;
  const id = new URLSearchParams(location.search).get("job");
  if (id) follow(id); else { show("submit"); document.title = "KimiWoNosete: piano recordings to sheet music"; }
  loadJobs(0, true);
}

// ---- submitting -------------------------------------------------------------------------------

function options() {
  const asked = {};
  const title = $("title").value.trim();
  if (title) asked.title = title;
  asked.model = $("model").value;
  for (const name of ["start", "end"]) {
    const value = $(name).value.trim();
    if (value !== "") asked[name] = Number(value);
  }
  return asked;
}

function whereError(detail, viaFile) {
  if (/^(start|end|title|model)\b|end must come after start/i.test(detail)) {
    $("options").open = true;
    return "options-error";
  }
  return viaFile ? "file-error" : "link-error";
}

async function submit(event) {
  event.preventDefault();
  clearErrors();
  const file = $("file").files[0];
  const link = $("link").value.trim();
  if (!file && !link) { setError("form-error", "paste a link or choose a file first"); return; }
  const asked = options();
  let request;
  if (file) {
    const form = new FormData();
    form.append("file", file, file.name);
    for (const [k, v] of Object.entries(asked)) form.append(k, String(v));
    request = { method: "POST", body: form };
  } else {
    request = { method: "POST", headers: { "Content-Type": "application/json" },
                body: JSON.stringify({ url: link, ...asked }) };
  }
  $("go").disabled = true;
  $("go").textContent = file ? "Uploading…" : "Sending…";
  try {
    let response;
    try {
      response = await api("/jobs", request);
    } catch (e) {
      setError(file ? "file-error" : "link-error", file
        ? "the upload was cut off: the file may be larger than this server accepts, or the server stopped"
        : "the server could not be reached");
      return;
    }
    if (!response.ok) {
      const detail = await problem(response); // a 401 is told by the API key field
      if (response.status !== 401) setError(whereError(detail, Boolean(file)), detail);
      return;
    }
    const job = await response.json();
    history.pushState(null, "", `/?job=${encodeURIComponent(job.id)}`);
    route();
  } finally {
    $("go").disabled = false;
    $("go").textContent = "Make the score";
  }
}

function chooseFile(files) {
  if (!files || !files.length) return;
  if (files !== $("file").files) {
    const moved = new DataTransfer();
    moved.items.add(files[0]);
    $("file").files = moved.files;
  }
  const f = $("file").files[0];
  $("file-chosen").textContent = f ? `Chosen: ${f.name} (${(f.size / 1e6).toFixed(1)} MB)` : "";
  setError("file-error", "");
}

// ---- following a job --------------------------------------------------------------------------

async function follow(id) {
  following = { id, events: null, stage: null };
  const mine = following;
  let job;
  try {
    job = await getJSON(`/jobs/${encodeURIComponent(id)}`);
  } catch (e) {
    show("submit");
    setError("form-error", e.status === 404 ? `there is no job ${id} on this server`
      : `the job ${id} could not be shown: ${e.message}`);
    return;
  }
  if (mine !== following) return;
  update(job);
  if (FINAL.includes(job.state)) return;
  const events = new EventSource(`/jobs/${encodeURIComponent(id)}/events`);
  mine.events = events;
  events.addEventListener("state", (e) => { if (mine === following) update(JSON.parse(e.data)); });
  events.addEventListener("deleted", () => {
    events.close();
    show("submit");
    setError("form-error", "this job was deleted");
  });
  // The stream ends with the job; the browser reconnects on its own after a dropped connection.
}

function update(job) {
  const mine = following;
  if (!mine || job.id !== mine.id) return;
  if (FINAL.includes(job.state) && mine.events) {
    mine.events.close();
    loadJobs(0, true); // the list shows this job's end too
  }
  if (job.state === "done") { if (mine.stage !== "done") finished(job); mine.stage = "done"; return; }
  if (job.state === "failed" || job.state === "cancelled") {
    failed(job);
    mine.stage = job.state;
    return;
  }
  show("progress");
  document.title = `${STAGES[job.state] || job.state}: KimiWoNosete`;
  if (mine.stage !== job.state) {
    $("log").append(el("li", `${new Date().toLocaleTimeString()}: ${STAGES[job.state] || job.state}`));
    mine.stage = job.state;
    listed(job); // the list below says the same
  }
  $("stage").textContent = STAGES[job.state] || job.state;
  $("progress-what").textContent = job.source === "upload" ? `The uploaded recording “${job.name || "recording"}”`
    : `The recording at ${job.source}`;
  if (job.options && job.options.title) $("progress-what").textContent += `, as “${job.options.title}”`;
  const chunks = job.chunks;
  $("chunks-box").hidden = !chunks || !chunks.total;
  if (chunks && chunks.total) {
    $("chunks").max = chunks.total;
    $("chunks").value = chunks.done;
    let text = `${chunks.done} of ${chunks.total} parts of the recording done`;
    const left = timeLeft(job);
    if (chunks.done < chunks.total) text += left === null ? ": estimating the time left…" : `: about ${seconds(left)} left`;
    $("chunks-text").textContent = text;
  }
}

/** Seconds of transcription left, at the pace of the parts done so far: the job says when it
 * started and how long the download and decoding took, so a page opened mid-job knows too. */
function timeLeft(job) {
  const { done, total } = job.chunks;
  if (!done || !job.started_at) return null;
  const t = job.timings_s || {};
  const since = Date.parse(job.started_at) / 1000 + (t.download || 0) + (t.decode || 0);
  const spent = Date.now() / 1000 - since;
  return spent > 0 ? (spent / done) * (total - done) : null;
}

function failed(job) {
  show("submit");
  const reason = job.state === "cancelled" ? "the job was cancelled" : (job.reason || "the job failed");
  setError(job.source === "upload" ? "file-error" : "link-error", reason);
  if (job.source && job.source !== "upload") $("link").value = job.source;
  document.title = "It failed: KimiWoNosete";
}

// ---- the finished job: facts, players, score, downloads ----------------------------------------

function finished(job) {
  show("result");
  const summary = job.summary || {};
  const title = titleOf(job);
  document.title = `${title}: KimiWoNosete`;
  $("result-title").textContent = title;
  const facts = [];
  if (summary.bars) facts.push(`${summary.bars} bars`);
  if (summary.time_signature) facts.push(`${summary.time_signature} time`);
  if (summary.key) facts.push(summary.key);
  if (summary.notes !== undefined) facts.push(`${summary.notes} notes`);
  if (summary.duration_s) facts.push(seconds(summary.duration_s));
  $("facts").textContent = facts.join(" · ");
  $("warnings").replaceChildren(...(job.warnings || []).map((w) => el("li", sentence(w))));
  const downloads = FORMATS.filter(([fmt]) => job.artifacts && job.artifacts[fmt]).map(([fmt, label]) => {
    const item = el("li");
    item.append(el("a", label, { href: job.artifacts[fmt], download: "", "data-format": fmt }));
    return item;
  });
  $("downloads").replaceChildren(...downloads);
  const base = `/jobs/${encodeURIComponent(job.id)}`;
  $("rec-audio").src = `${base}/audio/recording`;
  $("score-audio").src = `${base}/audio/score`;
  if (job.artifacts && job.artifacts.musicxml) loadSheet(base);
  else $("sheet-status").textContent = "This job made no MusicXML, so the score cannot be shown here.";
}

let sheet = null; // { bars: [...], boxes: Map(barId → measure element), now: element }

/** An SVG page from the server as DOM nodes: parsed as XML (never as HTML), no scripts or handlers. */
function svgNodes(text) {
  const doc = new DOMParser().parseFromString(text, "image/svg+xml");
  if (doc.querySelector("parsererror")) throw new Error("a page of the score could not be read");
  for (const bad of doc.querySelectorAll("script, foreignObject")) bad.remove();
  for (const node of doc.querySelectorAll("*")) {
    for (const attr of [...node.attributes]) {
      if (/^on/i.test(attr.name) || /^\s*javascript:/i.test(attr.value)) node.removeAttribute(attr.name);
    }
  }
  return document.importNode(doc.documentElement, true);
}

async function loadSheet(base) {
  const mine = following;
  $("sheet").replaceChildren();
  $("sheet-status").textContent = "Engraving the score for the page…";
  try {
    // A phone gets the narrow layout (fewer bars a line, larger notes) rather than a shrunken page.
    const layout = $("sheet").clientWidth < 640 ? "narrow" : "wide";
    $("sheet").dataset.layout = layout;
    const index = await getJSON(`${base}/sheet?layout=${layout}`);
    const texts = await Promise.all(Array.from({ length: index.pages }, (_, i) =>
      api(`${base}/sheet/${i + 1}.svg?layout=${layout}`).then((r) => { if (!r.ok) throw new Error(`page ${i + 1}: ${r.status}`); return r.text(); })));
    if (mine !== following) return;
    const pages = texts.map((text, i) => {
      const page = el("div", null, { class: "page", role: "img", "aria-label": `Page ${i + 1} of ${index.pages}` });
      page.append(svgNodes(text));
      return page;
    });
    $("sheet").replaceChildren(...pages);
    const boxes = new Map();
    for (const bar of index.bars) {
      const node = $("sheet").querySelector(`[id="${CSS.escape(bar.id)}"]`);
      if (node) boxes.set(bar.id, node);
    }
    sheet = { bars: index.bars, boxes, now: null };
    $("sheet").dataset.bars = String(boxes.size);
    $("sheet-status").textContent = `${index.pages} ${index.pages === 1 ? "page" : "pages"}, ${boxes.size} bars.`;
  } catch (e) {
    $("sheet-status").textContent = sentence(`the score could not be shown: ${e.message}`);
  }
}

/** The bar being heard at ``t`` seconds of the score audio (``score_s``) or the recording (``played_s``). */
function barAt(t, field) {
  if (!sheet) return -1;
  let found = -1;
  for (let i = 0; i < sheet.bars.length; i++) {
    const start = sheet.bars[i][field];
    if (start === null || start === undefined) return -1;
    if (start <= t + 1e-3) found = i; else break;
  }
  return found;
}

function mark(index, scroll) {
  if (!sheet) return;
  if (sheet.now) { sheet.now.remove(); sheet.now = null; }
  $("sheet").dataset.now = String(index);
  if (index < 0) return;
  const measure = sheet.boxes.get(sheet.bars[index].id);
  if (!measure) return;
  const box = measure.getBBox();
  const rect = document.createElementNS("http://www.w3.org/2000/svg", "rect");
  for (const [k, v] of Object.entries({ x: box.x, y: box.y, width: box.width, height: box.height, class: "now-box" })) {
    rect.setAttribute(k, String(v));
  }
  measure.parentNode.insertBefore(rect, measure); // behind the notes
  sheet.now = rect;
  if (scroll) {
    const r = rect.getBoundingClientRect();
    if (r.top < 0 || r.bottom > window.innerHeight) rect.scrollIntoView({ block: "center", behavior: "smooth" });
  }
}

function listen(audio, field) {
  const follow = () => mark(barAt(audio.currentTime, field), !audio.paused);
  audio.addEventListener("timeupdate", follow);
  audio.addEventListener("seeked", follow);
  audio.addEventListener("play", () => {
    for (const other of [$("rec-audio"), $("score-audio")]) if (other !== audio) other.pause();
  });
}

function zoom(step) {
  const now = Number(getComputedStyle($("sheet")).getPropertyValue("--zoom")) || 1;
  const i = Math.max(0, Math.min(ZOOMS.length - 1, ZOOMS.indexOf(now) + step));
  $("sheet").style.setProperty("--zoom", String(ZOOMS[i]));
  $("zoom-level").textContent = `${Math.round(ZOOMS[i] * 100)}%`;
  if (sheet && sheet.now) mark(Number($("sheet").dataset.now), false); // the box is redrawn at the new size
}

// ---- past jobs --------------------------------------------------------------------------------

/** The job's state in the list of past jobs, if it is listed. */
function listed(job) {
  const state = document.querySelector(`[data-state-of="${CSS.escape(job.id)}"]`);
  if (!state) return;
  state.textContent = STAGES[job.state] || job.state;
  state.className = `state ${job.state}`;
}

async function loadJobs(offset, fresh) {
  let listing;
  try {
    listing = await getJSON(`/jobs?limit=10&offset=${offset}`);
  } catch (e) {
    $("jobs").replaceChildren(el("li", sentence(`the list of jobs could not be loaded: ${e.message}`)));
    return;
  }
  const items = listing.jobs.map((job) => {
    const item = el("li");
    item.append(el("a", titleOf(job), { href: `/?job=${encodeURIComponent(job.id)}` }));
    item.append(el("span", STAGES[job.state] || job.state, { class: `state ${job.state}`, "data-state-of": job.id }));
    if (job.created_at) item.append(el("span", new Date(job.created_at).toLocaleString(), { class: "state" }));
    return item;
  });
  if (fresh) $("jobs").replaceChildren(...items); else $("jobs").append(...items);
  if (fresh && !items.length) $("jobs").append(el("li", "None yet."));
  $("more").hidden = !listing.next;
  $("more").dataset.offset = String(offset + listing.jobs.length);
}

// ---- wiring -----------------------------------------------------------------------------------

function useKey(event) {
  event.preventDefault();
  keepKey($("api-key").value.trim());
  clearErrors();
  route(); // what failed without the key, again with it
}

document.addEventListener("DOMContentLoaded", () => {
  $("api-key").value = apiKey();
  keepKey(apiKey()); // the cookie lasts as long as the browser's session; the key as long as this browser keeps it
  $("key-form").addEventListener("submit", useKey);
  // Typed, then "Make the score" clicked: the key is kept as the field is left, before the click.
  $("api-key").addEventListener("change", () => keepKey($("api-key").value.trim()));
  $("job-form").addEventListener("submit", submit);
  $("file").addEventListener("change", () => chooseFile($("file").files));
  $("link").addEventListener("input", () => setError("link-error", ""));
  const drop = $("drop");
  for (const name of ["dragenter", "dragover"]) {
    drop.addEventListener(name, (e) => { e.preventDefault(); drop.classList.add("over"); });
  }
  for (const name of ["dragleave", "drop"]) drop.addEventListener(name, () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => { e.preventDefault(); chooseFile(e.dataTransfer.files); });
  $("zoom-in").addEventListener("click", () => zoom(1));
  $("zoom-out").addEventListener("click", () => zoom(-1));
  $("more").addEventListener("click", () => loadJobs(Number($("more").dataset.offset), false));
  listen($("rec-audio"), "played_s");
  listen($("score-audio"), "score_s");
  document.addEventListener("click", (e) => {
    const a = e.target.closest("a[href^='/?job=']");
    if (!a || e.ctrlKey || e.metaKey || e.shiftKey) return;
    e.preventDefault();
    history.pushState(null, "", a.getAttribute("href"));
    route();
  });
  window.addEventListener("popstate", route);
  route();
});
