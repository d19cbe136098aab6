// ZeroTransfer desk: live pages (server-sent events), countdowns on the desk clock, alerts for
// new priority-1 tasks (a sound, a browser notification, the count in the tab title, an
// announcement for screen readers). Text comes from the server's catalogs (#words); page parts
// are swapped as the server rendered them, never built from task fields with innerHTML.
"use strict";

const W = JSON.parse(document.getElementById("words").textContent);
const body = document.body;
const loadedAt = Date.now();
let clockLead = Number(body.dataset.now) - loadedAt;   // desk clock minus this browser's clock
const wallLead = Number(body.dataset.since) - loadedAt; // server's wall clock minus ours
const baseTitle = document.title;

function fill(pattern, values) {
  return pattern.replace(/%\((\w+)\)s/g, (_, k) => values[k]);
}

const UNITS = [["day", 86400000], ["hour", 3600000], ["minute", 60000], ["second", 1000]];
const unitFormats = Object.fromEntries(UNITS.map(([u]) => [u,
  new Intl.NumberFormat(W.lang, {style: "unit", unit: u, unitDisplay: "short"})]));
const listFormat = new Intl.ListFormat(W.lang, {type: "unit",
                                                style: W.lang === "zh-CN" ? "narrow" : "short"});

function duration(ms) {   // the two largest units, as the server's Words.duration
  ms = Math.abs(ms);
  const parts = [];
  for (const [unit, size] of UNITS) {
    const n = Math.floor(ms / size);
    ms -= n * size;
    if (n || parts.length) parts.push([unit, n]);
    if (parts.length === 2) break;
  }
  const shown = parts.filter(([, n]) => n);
  if (!shown.length) shown.push(["second", 0]);
  return listFormat.format(shown.map(([u, n]) => unitFormats[u].format(n)));
}

function tick() {
  const now = Date.now() + clockLead;
  for (const el of document.querySelectorAll(".countdown[data-due-ms]")) {
    const left = Number(el.dataset.dueMs) - now;
    el.textContent = left >= 0 ? fill(W["%(at)s (due in %(left)s)"], {at: el.dataset.at, left: duration(left)})
                               : fill(W["%(at)s (overdue by %(late)s)"], {at: el.dataset.at, late: duration(left)});
    el.classList.toggle("overdue", left < 0);
  }
  for (const el of document.querySelectorAll(".until[data-until-ms]")) {
    const base = el.dataset.wall ? Date.now() + wallLead : now;
    const left = Number(el.dataset.untilMs) - base;
    el.textContent = el.dataset.at + " (" + (left >= 0 ? fill(W["in %(left)s"], {left: duration(left)})
                                                       : fill(W["%(late)s ago"], {late: duration(left)})) + ")";
  }
}

// -- alerts -----------------------------------------------------------------------------------
let audio = null;
function beep() {
  body.dataset.beeps = String(Number(body.dataset.beeps || 0) + 1);
  try {
    audio = audio || new AudioContext();
    const osc = audio.createOscillator(), gain = audio.createGain();
    osc.frequency.value = 880;
    gain.gain.value = 0.2;
    osc.connect(gain).connect(audio.destination);
    osc.start();
    osc.stop(audio.currentTime + 0.4);
  } catch (e) { /* no audio device: the notification and the title still tell */ }
}

function notify(task) {
  const title = W["New priority-1 task"];
  const text = task.label;
  announce(title + ": " + text);
  beep();
  if ("Notification" in window && Notification.permission === "granted") {
    body.dataset.notified = String(Number(body.dataset.notified || 0) + 1);
    const n = new Notification(title, {body: text, tag: task.task_id, requireInteraction: true});
    n.onclick = () => { window.focus(); window.location.href = task.href; };
  }
}

function announce(text) {
  const el = document.getElementById("announce");
  el.textContent = "";
  setTimeout(() => { el.textContent = text; }, 50);
}

function setupAlertButton() {
  const button = document.getElementById("alerts");
  if (!button || !("Notification" in window) || Notification.permission !== "default") return;
  button.hidden = false;
  button.addEventListener("click", async () => {
    audio = audio || new AudioContext();   // a click unlocks sound for the page
    const answer = await Notification.requestPermission();
    button.textContent = answer === "granted" ? W["Alerts on"] : W["Enable alerts"];
    button.hidden = answer === "granted";
  });
}

// -- live parts of the page ------------------------------------------------------------------
function dirty(region) {
  return region.contains(document.activeElement) && document.activeElement !== body
    || [...region.querySelectorAll("form[data-keep]")].some(f => f.dataset.dirty);
}

async function refresh(freshIds) {
  let resp;
  try {
    resp = await fetch(window.location.href, {credentials: "same-origin", headers: {"X-Live": "1"}});
  } catch (e) { return; }
  if (resp.redirected && resp.url.includes("/login")) { window.location.reload(); return; }
  if (!resp.ok) return;
  const doc = new DOMParser().parseFromString(await resp.text(), "text/html");
  for (const region of document.querySelectorAll("[data-live-region]")) {
    const next = doc.getElementById(region.id);
    if (!next) continue;
    if (dirty(region)) {
      const notice = document.getElementById("changed");
      notice.querySelector("span").textContent = W["This task has changed: reload to see it"];
      notice.querySelector("button").textContent = W["Reload"];
      notice.hidden = false;
      continue;
    }
    region.replaceWith(document.adoptNode(next));
  }
  for (const id of freshIds) {
    const tr = document.querySelector(`tr[data-task-id="${CSS.escape(id)}"]`);
    if (tr) tr.classList.add("fresh");
  }
  watchForms();
  tick();
}

function watchForms() {
  for (const form of document.querySelectorAll("form[data-keep]")) {
    const mark = () => { form.dataset.dirty = "1"; };
    form.addEventListener("input", mark);
    form.addEventListener("change", mark);
  }
}

function setCounts(open, mine) {
  for (const [id, n] of [["count-open", open], ["count-mine", mine]]) {
    const el = document.getElementById(id);
    if (el) el.textContent = String(n);
  }
  document.title = open ? `(${open}) ${baseTitle}` : baseTitle;
}

function listen() {
  const url = body.dataset.live + "?since=" + encodeURIComponent(body.dataset.since);
  const source = new EventSource(url);
  const notified = new Set();
  source.addEventListener("change", (ev) => {
    const data = JSON.parse(ev.data);
    clockLead = data.now - Date.now();
    setCounts(data.open, data.mine);
    for (const t of data.tasks) {
      if (t.new && t.priority === 1 && t.status !== "done" && !notified.has(t.task_id)) {
        notified.add(t.task_id);
        const link = document.querySelector(`tr[data-task-id="${CSS.escape(t.task_id)}"] a`);
        notify({task_id: t.task_id, label: t.label + " · " + t.task_id,
                href: link ? link.href : window.location.href});
      }
    }
    // A task page follows its own task; a list follows any change since it was rendered.
    const page = body.dataset.task;
    const relevant = page ? data.tasks.some(t => t.task_id === page) : data.changed;
    if (relevant) refresh(data.tasks.filter(t => t.new).map(t => t.task_id));
  });
  // The browser reconnects by itself after an error or the end of a stream.
}

document.addEventListener("DOMContentLoaded", () => {
  tick();
  setInterval(tick, 1000);
  watchForms();
  const open = document.getElementById("count-open");
  if (open) setCounts(Number(open.textContent), Number((document.getElementById("count-mine") || {}).textContent || 0));
  document.getElementById("reload").addEventListener("click", () => window.location.reload());
  setupAlertButton();
  if (body.dataset.live) listen();
});
