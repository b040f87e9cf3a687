#!/usr/bin/env python3
"""Protected spans on Mastodon-shaped statuses: do the spans come back exactly once and
intact, and does the rest of the translation keep its quality?

bench/protected/protected_bench.py --model /work/runs/ref_de_en/best.pt
    [--metrics RUN/metrics.jsonl] [--data /work/shared/data/multi30k] [--limit 1000]
    [--before 200] [--seed 2016] [--batch 50] [--out bench/protected]

Statuses: each test2016 German sentence with spans added (seeded): a leading @handle (or
@user@host), sometimes a handle mid-sentence, a link, one to three #hashtags and an emoji
(ZWJ sequences, skin tones, flags). Each status is sent twice through the service
in-process (create_app with a models folder holding a copy of the model as de-en.pt, httpx's
ASGI client): as plain text and as HTML in Mastodon's own markup (h-card mentions,
``invisible`` URL parts, hashtag links). The plain sentences are translated too.

Checks: every span's text occurs exactly once in the translation's text (HTML: tags removed,
entities decoded) and, for HTML, every span's markup (the mention's ``<span class="h-card">``
..., the link's ``<a>`` ..., the hashtag's ``<a>`` ...) occurs exactly once, byte for byte.
Quality: sacreBLEU (13a, cased) of the rest (the translation with the spans taken out, spaces
collapsed) against the English reference, next to the plain sentences' translations. Before:
the first ``--before`` statuses with the server's protect_spans off (the model sees the spans).
Writes results.json, results.md and outputs.jsonl (the first --outputs statuses with their
translations, the plain sentence's translation and the reference) into --out.
"""

from __future__ import annotations

import argparse
import asyncio
import html as html_entities
import json
import random
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path

import httpx
import sacrebleu

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from service.app import create_app  # noqa: E402
from service.settings import Settings  # noqa: E402

NAMES = ["anna", "bob", "lena_k", "jonas", "mia", "tom", "sarah92", "felix"]
HOSTS = ["mastodon.social", "chaos.social", "norden.social", "fosstodon.org"]
TAGS = ["winter", "Hunde", "Berlin", "photography", "FediKunst", "Sommer2024", "Natur",
        "schöneTage", "Fotografie", "Sport"]
EMOJI = ["🐕", "😂", "❤️", "👍🏽", "👩🏽\u200d💻", "🏳️\u200d🌈", "🇩🇪", "🎉", "👨\u200d👩\u200d👧",
         "🙋🏿\u200d♀️"]
STATUS = ('<p>Hallo <a href="https://example.org/@anna">@anna</a>, wie geht\'s? Zwei Hunde '
          "spielen im Schnee.</p>")


def mention_html(handle: str) -> str:
    user, _, host = handle[1:].partition("@")
    host = host or "mastodon.social"
    return (f'<span class="h-card"><a href="https://{host}/@{user}" class="u-url mention">'
            f'@<span>{handle[1:]}</span></a></span>')


def link_html(url: str) -> str:
    scheme, rest = url.split("//", 1)
    return (f'<a href="{url}" rel="nofollow noopener" target="_blank"><span class="invisible">'
            f'{scheme}//</span><span class="">{rest}</span><span class="invisible"></span></a>')


def hashtag_html(tag: str) -> str:
    return (f'<a href="https://mastodon.social/tags/{tag[1:]}" class="mention hashtag" '
            f'rel="tag">#<span>{tag[1:]}</span></a>')


def make_status(sentence: str, rng: random.Random, number: int) -> dict:
    """A status: its words and spans as (kind, text) items, plain text and Mastodon HTML."""
    words: list[tuple[str, str]] = [("word", word) for word in sentence.split()]
    name = rng.choice(NAMES)
    handle = f"@{name}" if rng.random() < 0.6 else f"@{name}@{rng.choice(HOSTS)}"
    items = [("handle", handle)] + words
    if rng.random() < 0.25:
        other = "@" + rng.choice([n for n in NAMES if n != name])
        items.insert(rng.randint(2, len(items)), ("handle", other))
    if rng.random() < 0.6:
        url = f"https://example.org/{rng.choice(['p', 'fotos', 'blog'])}/{number}"
        items.insert(len(items) if rng.random() < 0.7 else rng.randint(2, len(items)),
                     ("url", url))
    for tag in rng.sample(TAGS, rng.randint(1, 3)):
        items.append(("hashtag", "#" + tag))
    if rng.random() < 0.7:
        emoji = rng.choice(EMOJI)
        items.insert(len(items) if rng.random() < 0.5 else rng.randint(1, len(items)),
                     ("emoji", emoji))
    plain = " ".join(text for _, text in items)
    markup = {"handle": mention_html, "url": link_html, "hashtag": hashtag_html}
    html_parts = [markup[kind](text) if kind in markup else html_entities.escape(text, False)
                  for kind, text in items]
    spans = [{"kind": kind, "text": text,
              "html": markup[kind](text) if kind in markup else text}
             for kind, text in items if kind != "word"]
    return {"plain": plain, "html": "<p>" + " ".join(html_parts) + "</p>", "spans": spans}


TAG = re.compile(r"<[^>]*>")


def html_text(html: str) -> str:
    return html_entities.unescape(TAG.sub("", html))


def rest_of(text: str, spans: list[dict]) -> str:
    """The translation without its spans (each taken out with the space before it, or after
    it at the start), spaces collapsed."""
    for span in spans:
        text = text.replace(span["text"], "\x00", 1)
    text = re.sub(r"^\s*\x00\s*|\s*\x00", "", text)
    return " ".join(text.split())


def check(output: str, spans: list[dict], is_html: bool) -> list[dict]:
    text = html_text(output) if is_html else output
    out = []
    for span in spans:
        ok = text.count(span["text"]) == 1
        if is_html:
            ok = ok and output.count(span["html"]) == 1
        out.append({"kind": span["kind"], "ok": ok})
    return out


async def translate_all(client: httpx.AsyncClient, texts: list[str], fmt: str,
                        batch: int) -> list[str]:
    out: list[str] = []
    for start in range(0, len(texts), batch):
        chunk = texts[start:start + batch]
        response = await client.post("/translate", json={
            "q": chunk, "source": "de", "target": "en", "format": fmt}, timeout=600)
        response.raise_for_status()
        out += response.json()["translatedText"]
    return out


async def serve_and(models: Path, protect: bool, jobs: list[tuple[list[str], str]],
                    batch: int) -> list[list[str]]:
    settings = Settings(models_dir=models, device="cpu", reload_on_sighup=False,
                        protect_spans=protect, request_timeout_s=600, max_batch_seconds=600,
                        max_wait_ms=1, warmup_text="Hallo.")
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
            while not app.state.service.registry.startup_done:
                await asyncio.sleep(0.1)
            return [await translate_all(client, texts, fmt, batch) for texts, fmt in jobs]


def model_step(metrics: Path) -> dict:
    """The last validation record that improved (best.pt's step while training)."""
    best: dict = {}
    if metrics.exists():
        for line in metrics.read_text().splitlines():
            record = json.loads(line)
            if record.get("kind") == "valid" and record.get("improved"):
                best = record
    return {key: best.get(key) for key in ("step", "bleu", "valid_loss")}


def summarize(checks: list[list[dict]]) -> dict:
    flat = [c for status in checks for c in status]
    kinds: dict[str, list[bool]] = {}
    for c in flat:
        kinds.setdefault(c["kind"], []).append(c["ok"])
    return {"spans": len(flat), "intact_once": sum(c["ok"] for c in flat),
            "intact_once_pct": round(100 * sum(c["ok"] for c in flat) / max(1, len(flat)), 2),
            "statuses_all_intact_pct": round(100 * sum(all(c["ok"] for c in s) for s in checks)
                                             / max(1, len(checks)), 2),
            "by_kind": {k: f"{sum(v)}/{len(v)}" for k, v in sorted(kinds.items())}}


def write_markdown(results: dict, out: Path) -> None:
    """results.md from results.json."""
    bleu = results["bleu"]
    step = results["model_step"]
    lines = [
        "# Protected spans on Mastodon-shaped statuses",
        "",
        f"Model: `{results['model']}` (reference de-en run, best at step {step['step']}, "
        f"val BLEU {step['bleu']:.1f}), beam {results['beam']}, CPU, through the service "
        f"in-process; {results['sentences']} test2016 sentences, seed {results['seed']}. "
        "Command: `bench/protected/protected_bench.py` (its docstring has the method).",
        "",
        "| | spans | back exactly once, intact | statuses with all spans intact |",
        "|---|---:|---:|---:|",
    ]
    for key, label in (("spans_text", "statuses as plain text"),
                       ("spans_html", "statuses as Mastodon HTML"),
                       ("before_spans_text", "before (protect_spans off), plain text"),
                       ("before_spans_html", "before (protect_spans off), HTML")):
        part = results[key]
        lines.append(f"| {label} | {part['spans']} | {part['intact_once']} "
                     f"({part['intact_once_pct']:g}%) | {part['statuses_all_intact_pct']:g}% |")
    lines += ["", "By kind (protected): " + ", ".join(
        f"{kind} {count}" for kind, count in results["spans_html"]["by_kind"].items()), "",
        f"| BLEU against the English reference | all {results['sentences']} | first "
        f"{results.get('before_statuses', '')} (before-set) |",
        "|---|---:|---:|",
        f"| plain sentences' translations | {bleu['plain_sentences']} | "
        f"{bleu['plain_sentences_first']} |",
        f"| statuses as plain text, spans removed from the output | {bleu['status_text_rest']} "
        f"| |",
        f"| statuses as HTML, tags and spans removed | {bleu['status_html_rest']} | |",
        f"| before: plain text statuses, spans removed | | "
        f"{bleu['before_status_text_rest_first']} |",
        f"| before: HTML statuses, spans removed | | {bleu['before_status_html_rest_first']} |",
        "",
        f"Drop against the plain sentences: {bleu['drop_text']} (text), {bleu['drop_html']} "
        "(HTML); the bound is 0.5.", "",
        "## The Mastodon status", "", "```html",
        "input:  " + results["mastodon_example"]["input"],
        "before: " + results["mastodon_example"]["before"],
        "after:  " + results["mastodon_example"]["after"], "```", ""]
    (out / "results.md").write_text("\n".join(lines), encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", type=Path, default=Path("/work/runs/ref_de_en/best.pt"))
    parser.add_argument("--metrics", type=Path, default=None,
                        help="the run's metrics.jsonl (default: next to --model)")
    parser.add_argument("--data", type=Path, default=Path("/work/shared/data/multi30k"))
    parser.add_argument("--limit", type=int, default=1000)
    parser.add_argument("--before", type=int, default=200)
    parser.add_argument("--seed", type=int, default=2016)
    parser.add_argument("--batch", type=int, default=50)
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent)
    parser.add_argument("--outputs", type=int, default=200,
                        help="statuses written to outputs.jsonl (the first ones)")
    parser.add_argument("--report", action="store_true",
                        help="only write results.md from --out's results.json")
    args = parser.parse_args()
    if args.report:
        write_markdown(json.loads((args.out / "results.json").read_text(encoding="utf-8")),
                       args.out)
        return

    german = (args.data / "test2016.de").read_text(encoding="utf-8").splitlines()[:args.limit]
    english = (args.data / "test2016.en").read_text(encoding="utf-8").splitlines()[:args.limit]
    rng = random.Random(args.seed)
    statuses = [make_status(s, rng, n) for n, s in enumerate(german)]
    step = model_step(args.metrics or args.model.parent / "metrics.jsonl")
    with tempfile.TemporaryDirectory() as folder:
        models = Path(folder)
        shutil.copy(args.model, models / "de-en.pt")
        started = time.perf_counter()
        plain_out, status_plain, status_html, example_after = asyncio.run(serve_and(
            models, True, [(german, "text"), ([s["plain"] for s in statuses], "text"),
                           ([s["html"] for s in statuses], "html"), ([STATUS], "html")],
            args.batch))
        protected_s = time.perf_counter() - started
        few = statuses[:args.before]
        before_plain, before_html, example_before = asyncio.run(serve_and(
            models, False, [([s["plain"] for s in few], "text"),
                            ([s["html"] for s in few], "html"), ([STATUS], "html")],
            args.batch))

    def bleu(hypotheses: list[str], references: list[str]) -> float:
        return round(sacrebleu.corpus_bleu(hypotheses, [references]).score, 2)

    checks_plain = [check(o, s["spans"], False) for o, s in zip(status_plain, statuses)]
    checks_html = [check(o, s["spans"], True) for o, s in zip(status_html, statuses)]
    rest_plain = [rest_of(o, s["spans"]) for o, s in zip(status_plain, statuses)]
    rest_html = [rest_of(html_text(o), s["spans"]) for o, s in zip(status_html, statuses)]
    refs_few = english[:args.before]
    results = {
        "model": str(args.model), "model_step": step, "sentences": len(german),
        "before_statuses": len(few),
        "seed": args.seed, "beam": Settings().default_beam_size,
        "protected_run_s": round(protected_s, 1),
        "bleu": {
            "plain_sentences": bleu(plain_out, english),
            "status_text_rest": bleu(rest_plain, english),
            "status_html_rest": bleu(rest_html, english),
            "before_status_text_rest_first": bleu(
                [rest_of(o, s["spans"]) for o, s in zip(before_plain, few)], refs_few),
            "before_status_html_rest_first": bleu(
                [rest_of(html_text(o), s["spans"]) for o, s in zip(before_html, few)],
                refs_few),
            "plain_sentences_first": bleu(plain_out[:args.before], refs_few),
        },
        "spans_text": summarize(checks_plain),
        "spans_html": summarize(checks_html),
        "before_spans_text": summarize([check(o, s["spans"], False)
                                        for o, s in zip(before_plain, few)]),
        "before_spans_html": summarize([check(o, s["spans"], True)
                                        for o, s in zip(before_html, few)]),
        "mastodon_example": {"input": STATUS, "before": example_before[0],
                             "after": example_after[0]},
    }
    results["bleu"]["drop_text"] = round(results["bleu"]["plain_sentences"]
                                         - results["bleu"]["status_text_rest"], 2)
    results["bleu"]["drop_html"] = round(results["bleu"]["plain_sentences"]
                                         - results["bleu"]["status_html_rest"], 2)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps(results, indent=2, ensure_ascii=False)
                                           + "\n", encoding="utf-8")
    write_markdown(results, args.out)
    with (args.out / "outputs.jsonl").open("w", encoding="utf-8") as handle:
        for number, status in enumerate(statuses[:args.outputs]):
            handle.write(json.dumps({
                "status_text": status["plain"], "out_text": status_plain[number],
                "status_html": status["html"], "out_html": status_html[number],
                "plain": plain_out[number], "reference": english[number]},
                ensure_ascii=False) + "\n")
    print(json.dumps(results, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
