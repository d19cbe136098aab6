// ZeroTransfer desk: countdowns to due time, and a queue that refreshes itself.
// Rows are built with textContent only: task fields never become HTML.
"use strict";

const ACTIONS = {call: "Dissuasion call", visit: "Face-to-face visit",
                 hold: "Hold the transfer", stop_payment: "Emergency stop-payment"};

function clock(ms) {
  const s = Math.floor(Math.abs(ms) / 1000);
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), r = s % 60;
  const mm = String(m).padStart(h ? 2 : 1, "0"), ss = String(r).padStart(2, "0");
  return (h ? h + ":" : "") + mm + ":" + ss;
}

function tick() {
  const now = Date.now();
  for (const el of document.querySelectorAll(".countdown[data-due-ms]")) {
    const left = Number(el.dataset.dueMs) - now;
    el.textContent = left >= 0 ? clock(left) + " left" : "overdue " + clock(left);
    el.classList.toggle("overdue", left < 0);
  }
}

function yuan(fen) {
  const whole = Math.floor(fen / 100).toLocaleString("en-US");
  return whole + "." + String(fen % 100).padStart(2, "0") + " CNY";
}

function cell(tr, text) {
  const td = document.createElement("td");
  td.textContent = text == null ? "" : String(text);
  tr.appendChild(td);
  return td;
}

function row(kind, t) {
  const tr = document.createElement("tr");
  tr.dataset.taskId = t.task_id;
  tr.className = "p" + t.priority;
  cell(tr, t.priority);
  const link = document.createElement("a");
  link.href = (kind === "desk" ? "/desk/tasks/" : "/bank/requests/") + encodeURIComponent(t.task_id);
  link.textContent = t.task_id;
  cell(tr, "").appendChild(link);
  cell(tr, ACTIONS[t.action] || t.action);
  if (kind === "desk") {
    cell(tr, t.contact_msisdn);
    cell(tr, t.headline);
  } else {
    cell(tr, t.txn_id);
    cell(tr, t.account);
    cell(tr, yuan(t.amount_fen));
  }
  const due = document.createElement("span");
  due.className = "countdown";
  due.dataset.dueMs = t.due_ms;
  cell(tr, "").appendChild(due);
  cell(tr, t.status + (t.claimed_by ? " (" + t.claimed_by + ")" : ""));
  return tr;
}

async function refresh(table) {
  let resp;
  try {
    resp = await fetch(table.dataset.poll, {credentials: "same-origin",
                                            headers: {Accept: "application/json"}});
  } catch (e) {
    return;  // network blip: the next poll tries again
  }
  if (resp.status === 401) { window.location.reload(); return; }
  if (!resp.ok) return;
  const tasks = await resp.json();
  const tbody = table.querySelector("tbody");
  const seen = new Set([...tbody.querySelectorAll("tr")].map(tr => tr.dataset.taskId));
  tbody.replaceChildren(...tasks.map(t => {
    const tr = row(table.dataset.kind, t);
    if (!seen.has(t.task_id)) tr.classList.add("fresh");
    return tr;
  }));
  const empty = document.getElementById("empty");
  if (empty) empty.hidden = tasks.length > 0;
  tick();
}

document.addEventListener("DOMContentLoaded", () => {
  tick();
  setInterval(tick, 1000);
  const table = document.querySelector("table[data-poll]");
  if (table) setInterval(() => refresh(table), Number(table.dataset.pollMs) || 2000);
});
