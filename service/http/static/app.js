// The translator page: pairs from /languages (plus "auto" source detection), translation and
// attention from /v1/translate, file translation through /translate_file when the server
// offers it (/frontend/settings).
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
    const targets = [...new Set(languages.flatMap((lang) => lang.targets))].sort();
    for (const target of targets) {
      const option = document.createElement("option");
      option.value = `auto-${target}`;
      option.textContent = `Detect language \u2192 ${target}`;
      select.appendChild(option);
    }
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
    const found = result.detected_language;
    $("detected").textContent = found && found.language
      ? `Detected language: ${found.language} (confidence ${found.confidence.toFixed(0)}%)` : "";
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

async function loadFileSettings() {
  try {
    const settings = await (await fetch("/frontend/settings")).json();
    if (!settings.filesTranslation) return;
    $("files").hidden = false;
    $("file").accept = settings.supportedFilesFormat.join(",");
    $("file-formats").textContent = `Formats: ${settings.supportedFilesFormat.join(", ")}`;
  } catch (error) {
    showStatus(`Could not load the server settings: ${error}`, true);
  }
}

async function translateFile(event) {
  event.preventDefault();
  const file = $("file").files[0];
  const [source, target] = $("pair").value.split("-");
  if (!file) return showStatus("Choose a file.", true);
  const form = new FormData();
  form.append("file", file);
  form.append("source", source);
  form.append("target", target);
  const key = $("api-key").value.trim();
  if (key) form.append("api_key", key);
  showStatus("Translating the file\u2026", false);
  $("translate-file").disabled = true;
  try {
    const response = await fetch("/translate_file", { method: "POST", body: form });
    const answer = await response.json();
    if (!response.ok) return showStatus(`Error ${response.status}: ${answer.error}`, true);
    const link = document.createElement("a");
    link.href = answer.translatedFileUrl;
    link.textContent = `Download the translation of ${file.name}`;
    $("file-result").replaceChildren(link);
    showStatus("", false);
  } catch (error) {
    showStatus(`Request failed: ${error}`, true);
  } finally {
    $("translate-file").disabled = false;
  }
}

$("form").addEventListener("submit", translate);
$("file-form").addEventListener("submit", translateFile);
loadPairs();
loadFileSettings();
