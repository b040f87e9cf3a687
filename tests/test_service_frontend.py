"""LibreTranslate's web-UI contract: /frontend/settings, and /suggest (403 unless enabled; when
enabled, stored durably in SQLite)."""

from __future__ import annotations

import asyncio

from service.stores.suggestions import SuggestionStore
from tests.service_fixtures import fake_file_factory, serve, settings_for


def served(tmp_path, **values):
    folder = tmp_path / "models"
    folder.mkdir()
    (folder / "de-en.pt").write_text("fake-de")
    return settings_for(folder, **values), fake_file_factory()


def call(settings, factory, requests):
    async def main():
        async with serve(settings, factory) as client:
            return [await client.request(method, path, **kwargs)
                    for method, path, kwargs in requests]

    return asyncio.run(main())


def test_frontend_settings_describe_this_server(tmp_path):
    settings, factory = served(tmp_path, api_keys=["k"], max_item_chars=777)
    (response,) = call(settings, factory, [("GET", "/frontend/settings", {})])
    body = response.json()
    assert body["charLimit"] == 777 and body["keyRequired"] is True
    assert body["suggestions"] is False and body["filesTranslation"] is False
    assert body["language"]["source"]["code"] == "auto"
    assert body["language"]["target"] == {"code": "en", "name": "English"}


def test_suggestions_are_refused_unless_enabled(tmp_path):
    settings, factory = served(tmp_path)
    (response,) = call(settings, factory, [("POST", "/suggest", {"json": {
        "q": "Hallo", "s": "Hello", "source": "de", "target": "en"}})])
    assert response.status_code == 403 and response.json()["kind"] == "suggestions_disabled"


def test_an_enabled_suggestion_is_stored_durably(tmp_path):
    database = tmp_path / "suggestions.sqlite"
    settings, factory = served(tmp_path, suggestions_db=database)
    ok, form = call(settings, factory, [
        ("POST", "/suggest", {"json": {"q": "Hallo", "s": "Hello", "source": "de",
                                       "target": "EN"}}),
        ("POST", "/suggest", {"data": {"q": "Welt", "s": "world", "source": "de",
                                       "target": "en"}})])
    assert ok.json() == {"success": True} and form.status_code == 200
    reopened = SuggestionStore(database)          # what a later fine-tuning run reads
    assert reopened.all() == [("Hallo", "Hello", "de", "en"), ("Welt", "world", "de", "en")]


def test_a_suggestion_needs_its_fields_and_the_key(tmp_path):
    settings, factory = served(tmp_path, suggestions_db=tmp_path / "s.sqlite", api_keys=["k"])
    missing_key, missing_field = call(settings, factory, [
        ("POST", "/suggest", {"json": {"q": "a", "s": "b", "source": "de", "target": "en"}}),
        ("POST", "/suggest", {"json": {"q": "a", "source": "de", "target": "en",
                                       "api_key": "k"}})])
    assert missing_key.status_code == 401 and missing_field.status_code == 422
