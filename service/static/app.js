// The translator page: pairs from /languages, translation and attention from /v1/translate.
"use strict";

const $ = (id) => document.getElementById(id);

function headers() {
  const h = { "Content-Type": "application/json" };
  const key = $("api-key").value.trim();
  if (key) h["X-API-Key"] = key;
  return h;
}

function showStatus(text, isError) {
  $("status").textContent = text;
  $("status").className = isError ? "error" : "";
}

async function loadPairs() {
  try {
    const response = await fetch("/languages");
    const languages = await response.json();
    const select = $("pair");
    select.innerHTML = "";
    for (const lang of languages) {
      for (const target of lang.targets) {
        const option = document.createElement("option");
        option.value = `${lang.code}-${target}`;
        option.textContent = `${lang.name} (${lang.code}) \u2192 ${target}`;
        select.appendChild(option);
      }
    }
    if (!select.options.length) showStatus("No models are loaded yet; reload the page soon.", true);
  } catch (error) {
    showStatus(`Could not load the language pairs: ${error}`, true);
  }
}

function piece(token) {
  return token.replace(/\u2581/g, "\u2423");
}

function heatmap(sentence) {
  const table = document.createElement("table");
  table.className = "heatmap";
  const head = table.createTHead().insertRow();
  head.appendChild(document.createElement("th"));
  for (const token of sentence.source_tokens) {
    const th = document.createElement("th");
    th.textContent = piece(token);
    head.appendChild(th);
  }
  const body = table.createTBody();
  const rows = [...sentence.tokens, "</s>"];
  sentence.attention.forEach((weights, i) => {
    const row = body.insertRow();
    const th = document.createElement("th");
    th.textContent = piece(rows[i] ?? "");
    row.appendChild(th);
    for (const weight of weights) {
      const cell = row.insertCell();
      cell.style.background = `rgba(30, 80, 200, ${Math.min(1, Math.max(0, weight))})`;
      cell.title = weight.toFixed(3);
    }
  });
  return table;
}

async function translate(event) {
  event.preventDefault();
  const text = $("source").value;
  const [source, target] = $("pair").value.split("-");
  if (!source || !target) return showStatus("Choose a language pair.", true);
  showStatus("Translating\u2026", false);
  $("translate").disabled = true;
  try {
    const response = await fetch("/v1/translate", {
      method: "POST",
      headers: headers(),
      body: JSON.stringify({ texts: [text], source, target, return_attention: true,
                             beam_size: Number($("beam").value) || undefined }),
    });
    const answer = await response.json();
    if (!response.ok) return showStatus(`Error ${response.status}: ${answer.error}`, true);
    const result = answer.translations[0];
    $("translation").textContent = result.translation;
    const attention = $("attention");
    attention.innerHTML = "";
    for (const sentence of result.sentences) {
      if (sentence.attention) attention.appendChild(heatmap(sentence));
    }
    showStatus("", false);
  } catch (error) {
    showStatus(`Request failed: ${error}`, true);
  } finally {
    $("translate").disabled = false;
  }
}

$("form").addEventListener("submit", translate);
loadPairs();
