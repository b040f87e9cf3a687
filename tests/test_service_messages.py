"""Messages in the user's words: a JSON body sent as a form is told its content type, validation
errors name the field as the client sent it (no schema internals), LibreTranslate clients hear
about ``alternatives`` (never ``n_best``), a misnamed model file is named with the name it needs,
a missing models folder stops the server, /docs works offline, and /frontend/settings tells the
truth about keys."""

from __future__ import annotations

import asyncio
import re

import pytest
import torch

from s2s.checkpoint import FORMAT_VERSION, MODEL_FORMAT
from service.app import create_app
from service.errors import StartupError
from service.http.server import serve as serve_forever
from tests.service_fixtures import serve, settings_for
from tests.test_service_api import fake_setup, libre

INTERNAL = re.compile(r"function-after|valid_unicode|list\[|n_best|body\.")


def requests(settings, factory, calls: list[tuple[str, str, dict]]):
    async def main():
        async with serve(settings, factory) as client:
            return [await client.request(method, path, **kwargs)
                    for method, path, kwargs in calls]

    return asyncio.run(main())


def test_a_json_body_sent_as_a_form_or_without_a_type_is_told_the_content_type(tmp_path):
    settings, factory, _ = fake_setup(tmp_path)
    body = b'{"q": "Hallo", "source": "de", "target": "en"}'
    as_form, untyped = requests(settings, factory, [
        ("POST", "/translate", {"content": body, "headers": {
            "content-type": "application/x-www-form-urlencoded"}}),   # curl -d
        ("POST", "/translate", {"content": body})])
    for response in (as_form, untyped):
        assert response.status_code == 415
        assert "send Content-Type: application/json" in response.json()["error"]
        assert "Field required" not in response.json()["error"]


def test_validation_errors_name_the_field_in_plain_words(tmp_path):
    settings, factory, _ = fake_setup(tmp_path)
    number, item, missing, native, beam = requests(settings, factory, [
        ("POST", "/translate", {"json": libre(5)}),
        ("POST", "/translate", {"json": libre(["a", 7])}),
        ("POST", "/translate", {"json": {"source": "de", "target": "en"}}),
        ("POST", "/v1/translate", {"json": {"texts": "a", "source": "de", "target": "en"}}),
        ("POST", "/v1/translate", {"json": {"texts": ["a"], "source": "de", "target": "en",
                                            "beam_size": 0}})])
    assert number.status_code == 422
    assert number.json()["error"] == "invalid request: q must be a string or a list of strings"
    assert "q[1] must be a string" in item.json()["error"]
    assert missing.json()["error"] == "invalid request: q is required"
    assert "texts must be a list of strings" in native.json()["error"]
    assert "beam_size must be at least 1" in beam.json()["error"]    # SearchOptions' own words
    for response in (number, item, missing, native, beam):
        assert not INTERNAL.search(response.text), response.text


def test_libretranslate_clients_hear_about_alternatives_not_n_best(tmp_path):
    settings, factory, _ = fake_setup(tmp_path)
    (response,) = requests(settings, factory, [
        ("POST", "/translate", {"json": libre("a", alternatives=20)})])
    assert response.status_code == 422
    assert "alternatives may be at most 15" in response.json()["error"]
    assert "n_best" not in response.text


def test_a_misnamed_model_file_is_named_with_the_name_it_needs(tmp_path, caplog):
    settings, factory, _ = fake_setup(tmp_path)
    torch.save({"format": MODEL_FORMAT, "version": FORMAT_VERSION,
                "meta": {"src_lang": "de", "tgt_lang": "en"}}, settings.models_dir / "best.pt")
    (settings.models_dir / "last.pt").write_text("not a model")
    with caplog.at_level("WARNING", logger="service.serving.registry"):
        (ready,) = requests(settings, factory, [("GET", "/ready", {})])
    misnamed = ready.json()["misnamed_files"]
    assert "rename it to de-en.pt" in misnamed["best.pt"]
    assert "<src>-<tgt>.pt" in misnamed["last.pt"]
    assert "best.pt" in caplog.text and "de-en.pt" in caplog.text


def test_a_missing_models_folder_stops_the_server(tmp_path):
    settings = settings_for(tmp_path / "no-such-folder")
    app = create_app(settings)

    async def start():
        async with app.router.lifespan_context(app):
            pass

    with pytest.raises(StartupError, match="no-such-folder does not exist"):
        asyncio.run(start())
    with pytest.raises(SystemExit) as exited:         # what s2s-serve runs
        serve_forever(app, settings)
    assert exited.value.code != 0 and "no-such-folder" in str(exited.value.code)


def test_the_docs_page_loads_its_scripts_from_this_server(tmp_path):
    pytest.importorskip("fastapi_offline")   # a dependency (pyproject.toml): Swagger UI's files
    settings, factory, _ = fake_setup(tmp_path)
    page, script, style, init, schema = requests(settings, factory, [
        ("GET", "/docs", {}), ("GET", "/static/swagger/swagger-ui-bundle.js", {}),
        ("GET", "/static/swagger/swagger-ui.css", {}), ("GET", "/docs/init.js", {}),
        ("GET", "/openapi.json", {})])
    assert page.status_code == 200 and "http" not in page.text.replace("http-equiv", "")
    sources = re.findall(r'<(?:script|link)[^>]*(?:src|href)="([^"]+)"', page.text)
    assert "static/swagger/swagger-ui-bundle.js" in sources and "docs/init.js" in sources
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", page.text)   # no inline script
    assert script.status_code == 200 and "SwaggerUIBundle" in script.text
    assert style.status_code == 200 and init.status_code == 200 and schema.status_code == 200


def test_frontend_settings_tell_the_truth_about_keys(tmp_path):
    settings, factory, _ = fake_setup(tmp_path, keys_db=tmp_path / "keys.sqlite",
                                      require_api_key=True)
    plain_settings, _, _ = fake_setup(tmp_path)
    (with_keys,) = requests(settings, factory, [("GET", "/frontend/settings", {})])
    (without,) = requests(plain_settings, factory, [("GET", "/frontend/settings", {})])
    assert with_keys.json()["apiKeys"] is True and with_keys.json()["keyRequired"] is True
    assert without.json()["apiKeys"] is False and without.json()["keyRequired"] is False
