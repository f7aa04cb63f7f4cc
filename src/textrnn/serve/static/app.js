// The textrnn page: no build step, no framework. It reads /v1/models, posts the text to
// /v1/models/NAME/predict (with explain=true when the model can explain) and draws the answer.
"use strict";

// the colours of textrnn.evaluation.highlight: white blended towards green (towards the label) or red
const POSITIVE = [22, 163, 74], NEGATIVE = [220, 38, 38], PAPER = [255, 255, 255];
const $ = (id) => document.getElementById(id);
let models = [];

function colour(score, scale) {
  const strength = Math.min(1, Math.abs(score) / scale);
  const ink = score >= 0 ? POSITIVE : NEGATIVE;
  return `rgb(${PAPER.map((p, i) => Math.round(p + (ink[i] - p) * strength)).join(",")})`;
}

function current() {
  return models.find((m) => m.name === $("model").value) || models[0];
}

function showModel() {
  const m = current();
  const metrics = m.test_metrics && m.test_metrics.accuracy !== undefined
    ? `, test accuracy ${(100 * m.test_metrics.accuracy).toFixed(1)} %` : "";
  const arch = m.architecture || {};
  const shape = arch.cell ? `${arch.bidirectional ? "bidirectional " : ""}${arch.cell.toUpperCase()}` : "";
  $("model-line").textContent = `Model ${m.name} (${shape}${metrics}): ${m.labels.join(", ")}`;
  $("explain").disabled = !m.explain;
  $("explain").checked = m.explain;
  const list = $("examples");
  list.replaceChildren();
  for (const text of m.examples || []) {
    const item = document.createElement("li");
    const button = document.createElement("button");
    button.type = "button";
    button.className = "example";
    button.textContent = text;
    button.addEventListener("click", () => { $("text").value = text; classify(); });
    item.append(button);
    list.append(item);
  }
  $("examples-box").hidden = !(m.examples || []).length;
}

function showError(message) {
  $("error").textContent = message;
  $("error").hidden = !message;
}

function drawBars(probabilities, label) {
  const bars = $("bars");
  bars.replaceChildren();
  const ranked = Object.entries(probabilities).sort((a, b) => b[1] - a[1]);
  for (const [name, p] of ranked) {
    const row = document.createElement("div");
    row.className = "bar" + (name === label ? " top" : "");
    row.setAttribute("role", "listitem");
    const percent = (100 * p).toFixed(1);
    row.innerHTML = `<span class="name"></span>
      <div class="track" role="progressbar" aria-valuemin="0" aria-valuemax="100" aria-valuenow="${percent}">
        <div class="fill" style="width:${percent}%"></div></div>
      <span class="value">${percent} %</span>`;
    row.querySelector(".name").textContent = name;
    row.querySelector(".track").setAttribute("aria-label", `${name}: ${percent} percent`);
    bars.append(row);
  }
}

function drawWords(text, attributions, label) {
  const words = $("words");
  words.replaceChildren();
  const scored = attributions.tokens.filter((t) => t.score !== null && t.score !== undefined);
  const scale = Math.max(...scored.map((t) => Math.abs(t.score)), 0) || 1;
  let at = 0;
  for (const t of attributions.tokens) {
    if (t.start < at) continue; // subword pieces sharing one span
    if (t.start > at) words.append(document.createTextNode(text.slice(at, t.start)));
    const span = document.createElement("span");
    span.className = "tok";
    span.textContent = text.slice(t.start, t.end);
    if (t.score !== null && t.score !== undefined) {
      span.style.background = colour(t.score, scale);
      span.dataset.score = t.score.toFixed(4);
      span.title = `${t.score >= 0 ? "+" : ""}${t.score.toFixed(3)}`;
    } else {
      span.title = "not read (beyond the model's length limit)";
    }
    words.append(span);
    at = t.end;
  }
  if (at < text.length) words.append(document.createTextNode(text.slice(at)));
  const show = (list) => list.slice(0, 5).map((t) => text.slice(t.start, t.end)).join(", ") || "none";
  const ups = scored.filter((t) => t.score > 0).sort((a, b) => b.score - a.score);
  const downs = scored.filter((t) => t.score < 0).sort((a, b) => a.score - b.score);
  $("words-summary").textContent = `Strongest towards ${label}: ${show(ups)}. Strongest away from it: ${show(downs)}.`;
}

async function classify(event) {
  if (event) event.preventDefault();
  const text = $("text").value;
  if (!text.trim()) { showError("Type a text first."); $("text").focus(); return; }
  const m = current();
  const explain = $("explain").checked && m.explain;
  $("submit").disabled = true;
  $("submit").textContent = "Classifying…";
  showError("");
  try {
    const response = await fetch(`/v1/models/${encodeURIComponent(m.name)}/predict?explain=${explain}`, {
      method: "POST", headers: {"Content-Type": "application/json"}, body: JSON.stringify({text}),
    });
    const answer = await response.json().catch(() => ({}));
    if (!response.ok) {
      const detail = Array.isArray(answer.detail) ? answer.detail.map((d) => d.msg).join("; ") : answer.detail;
      throw new Error(detail || `the server answered ${response.status}`);
    }
    const prediction = answer.predictions[0];
    $("label").textContent = prediction.label;
    for (const el of document.querySelectorAll(".label-name")) el.textContent = prediction.label;
    drawBars(prediction.probabilities, prediction.label);
    const why = !!prediction.attributions;
    $("words-title").hidden = $("legend").hidden = $("words").hidden = $("words-summary").hidden = !why;
    if (why) drawWords(text, prediction.attributions, prediction.label);
    $("result").hidden = false;
  } catch (error) {
    showError(`Could not classify the text: ${error.message}`);
  } finally {
    $("submit").disabled = false;
    $("submit").textContent = "Classify";
  }
}

async function start() {
  $("classify").addEventListener("submit", classify);
  $("text").addEventListener("keydown", (e) => { if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) classify(e); });
  $("model").addEventListener("change", showModel);
  try {
    const response = await fetch("/v1/models");
    const answer = await response.json();
    models = answer.models;
    for (const m of models) {
      const option = document.createElement("option");
      option.value = option.textContent = m.name;
      $("model").append(option);
    }
    $("model").value = answer.default;
    $("model-row").hidden = models.length < 2;
    showModel();
    document.body.dataset.ready = "true";
  } catch (error) {
    showError(`Could not reach the server: ${error.message}`);
  }
}

start();
