"""Model reload: new files swap in after warm-up, failed loads keep the old model serving."""

from __future__ import annotations

import asyncio
import os
import signal
import threading

from tests.service_fixtures import (  # noqa: F401 (fixtures)
    fake_file_factory,
    models_dir,
    serve,
    settings_for,
    tiny_model_file,
    wait_until,
)

DATE = "the third of june two thousand seven"


def libre(q, source="de", target="en"):
    return {"q": q, "source": source, "target": target}


def test_reload_swaps_changed_models_and_adds_new_pairs(tmp_path):
    folder = tmp_path / "models"
    folder.mkdir()
    (folder / "de-en.pt").write_text("fake-v1")
    (folder / "de-fr.pt").write_text("fake-fr")

    async def main():
        async with serve(settings_for(folder), fake_file_factory()) as client:
            before = await client.post("/translate", json=libre("Hallo"))
            (folder / "de-en.pt").write_text("fake-v2-new")
            (folder / "en-de.pt").write_text("fake-ende")
            (folder / "de-fr.pt").unlink()
            report = await client.post("/admin/reload")
            after = await client.post("/translate", json=libre("Hallo"))
            added = await client.post("/translate", json=libre("Hi", "en", "de"))
            languages = await client.get("/languages")
            return before, report, after, added, languages

    before, report, after, added, languages = asyncio.run(main())
    assert before.json()["translatedText"] == "fake-v1(Hallo)"
    assert report.status_code == 200
    assert report.json() == {"loaded": ["de-en", "en-de"], "unchanged": [],
                             "removed": ["de-fr"], "failed": {}}
    assert after.json()["translatedText"] == "fake-v2-new(Hallo)"
    assert added.json()["translatedText"] == "fake-ende(Hi)"
    assert [lang["code"] for lang in languages.json()] == ["de", "en"]


def test_failed_reload_keeps_the_old_model_serving(models_dir):  # noqa: F811
    async def main():
        async with serve(settings_for(models_dir)) as client:
            ask = {"q": DATE, "source": "en", "target": "date"}
            before = await client.post("/translate", json=ask)
            data = (models_dir / "en-date.pt").read_bytes()
            (models_dir / "en-date.pt").write_bytes(data[: len(data) // 2])   # truncated
            report = await client.post("/admin/reload")
            after = await client.post("/translate", json=ask)
            ready = await client.get("/ready")
            return before, report, after, ready

    before, report, after, ready = asyncio.run(main())
    assert report.status_code == 500
    body = report.json()
    assert body["kind"] == "reload_failed" and "en-date" in body["error"]
    assert "en-date" in body["report"]["failed"]
    assert after.status_code == 200 and after.json() == before.json()
    assert ready.status_code == 200


def test_reload_needs_an_api_key_when_keys_are_set(tmp_path):
    folder = tmp_path / "models"
    folder.mkdir()
    (folder / "de-en.pt").write_text("fake-v1")
    settings = settings_for(folder, api_keys=["k"])

    async def main():
        async with serve(settings, fake_file_factory()) as client:
            return (await client.post("/admin/reload"),
                    await client.post("/admin/reload", headers={"X-API-Key": "bad"}),
                    await client.post("/admin/reload?force=true", headers={"X-API-Key": "k"}))

    missing, wrong, right = asyncio.run(main())
    assert (missing.status_code, wrong.status_code, right.status_code) == (401, 403, 200)
    assert right.json()["loaded"] == ["de-en"]


def test_startup_with_a_corrupt_file_is_not_ready(tmp_path):
    folder = tmp_path / "models"
    folder.mkdir()
    (folder / "de-en.pt").write_text("fake-ok")
    (folder / "de-fr.pt").write_bytes(b"garbage")

    async def main():
        async with serve(settings_for(folder), fake_file_factory()) as client:
            ready = await client.get("/ready")
            works = await client.post("/translate", json=libre("a"))
            broken = await client.post("/translate", json=libre("a", "de", "fr"))
            (folder / "de-fr.pt").write_text("fake-fixed")
            await client.post("/admin/reload")
            return ready, works, broken, await client.get("/ready")

    ready, works, broken, fixed = asyncio.run(main())
    assert ready.status_code == 503 and "de-fr" in ready.json()["models"]
    assert works.status_code == 200 and broken.status_code == 503
    assert fixed.status_code == 200


def test_sighup_reloads(tmp_path):
    folder = tmp_path / "models"
    folder.mkdir()
    (folder / "de-en.pt").write_text("fake-v1")

    async def main():
        async with serve(settings_for(folder, reload_on_sighup=True),
                         fake_file_factory()) as client:
            handler = signal.getsignal(signal.SIGHUP)
            assert handler not in (signal.SIG_DFL, signal.SIG_IGN, None)  # never kill pytest
            (folder / "de-en.pt").write_text("fake-v2")
            os.kill(os.getpid(), signal.SIGHUP)
            slots = client.app.state.service.registry.slots
            await wait_until(lambda: slots["de-en"].translator.name == "fake-v2")
            return await client.post("/translate", json=libre("a"))

    assert asyncio.run(main()).json()["translatedText"] == "fake-v2(a)"


def test_loading_and_every_models_batches_run_in_one_thread(tmp_path):
    """OpenMP gives each thread that runs torch its own team of workers; two teams outnumber
    the cores and make every parallel region slow, so all torch work shares one thread."""
    folder = tmp_path / "models"
    folder.mkdir()
    (folder / "de-en.pt").write_text("fake-a")
    (folder / "en-de.pt").write_text("fake-b")
    threads = []
    load = fake_file_factory()

    def recording_load(path):
        threads.append(threading.get_ident())
        translator = load(path)
        translate = translator.translation_steps

        def recording_translate(*args):
            threads.append(threading.get_ident())     # the generator runs where it is driven
            return (yield from translate(*args))

        translator.translation_steps = recording_translate
        return translator

    async def main():
        async with serve(settings_for(folder), recording_load) as client:
            await client.post("/translate", json=libre("Hallo"))
            await client.post("/translate", json=libre("Hi", "en", "de"))
            (folder / "de-en.pt").write_text("fake-a2")
            await client.post("/admin/reload")
            await client.post("/translate", json=libre("Hallo"))

    asyncio.run(main())
    assert len(threads) == 9   # 3 loads, 3 warm-ups, 3 batches
    assert len(set(threads)) == 1
    assert threads[0] != threading.get_ident()
