"""Model reload: new files swap in after warm-up, failed loads keep the old model serving."""

from __future__ import annotations

import asyncio
import os
import signal
import threading

from tests.service_fixtures import (  # noqa: F401 (fixtures)
    ADMIN,
    ADMIN_KEY,
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
            report = await client.post("/admin/reload", headers=ADMIN)
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
            report = await client.post("/admin/reload", headers=ADMIN)
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


def test_reload_needs_the_admin_key_and_no_translation_key_will_do(tmp_path):
    folder = tmp_path / "models"
    folder.mkdir()
    (folder / "de-en.pt").write_text("fake-v1")
    settings = settings_for(folder, api_keys=["k"])

    async def main():
        async with serve(settings, fake_file_factory()) as client:
            post = client.post
            return (await post("/admin/reload"),
                    await post("/admin/reload", headers={"X-API-Key": "k"}),
                    await post("/admin/reload", headers={"X-Admin-Key": "bad"}),
                    await post(f"/admin/reload?api_key={ADMIN_KEY}"),
                    await post("/admin/reload?force=true", headers=ADMIN))

    missing, translation_key, wrong, in_query, right = asyncio.run(main())
    assert (missing.status_code, translation_key.status_code, wrong.status_code,
            in_query.status_code, right.status_code) == (401, 401, 403, 401, 200)
    assert right.json()["loaded"] == ["de-en"]


def test_admin_endpoints_are_disabled_without_an_admin_key(tmp_path):
    folder = tmp_path / "models"
    folder.mkdir()
    (folder / "de-en.pt").write_text("fake-v1")

    async def main():
        async with serve(settings_for(folder, admin_api_key=None), fake_file_factory()) as client:
            return await client.post("/admin/reload", headers=ADMIN)

    refused = asyncio.run(main())
    assert refused.status_code == 403 and refused.json()["kind"] == "admin_disabled"


def test_a_pair_that_fails_to_load_leaves_the_others_ready(tmp_path):
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
            await client.post("/admin/reload", headers=ADMIN)
            return ready, works, broken, await client.get("/ready")

    ready, works, broken, fixed = asyncio.run(main())
    assert ready.status_code == 200
    state = ready.json()["models"]
    assert state["de-en"] == {"state": "ready"} and state["de-fr"]["state"] == "failed"
    assert str(folder) not in ready.text and "Error" not in state["de-fr"]["reason"]
    assert works.status_code == 200 and broken.status_code == 503
    assert "failed to load" in broken.json()["error"] and str(folder) not in broken.text
    assert fixed.json()["models"]["de-fr"] == {"state": "ready"}


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
            await client.post("/admin/reload", headers=ADMIN)
            await client.post("/translate", json=libre("Hallo"))

    asyncio.run(main())
    assert len(threads) == 9   # 3 loads, 3 warm-ups, 3 batches
    assert len(set(threads)) == 1
    assert threads[0] != threading.get_ident()
