"""Service settings: environment variables, settings files, validation."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from service.settings import Settings, SettingsError, load_settings


def test_environment_variables_are_read(monkeypatch):
    monkeypatch.setenv("S2S_PORT", "9001")
    monkeypatch.setenv("S2S_API_KEYS", "one, two")
    monkeypatch.setenv("S2S_CORS_ORIGINS", '["https://a.example"]')
    monkeypatch.setenv("S2S_MAX_BATCH_SENTENCES", "1")
    monkeypatch.setenv("S2S_SOMETHING_ELSE", "ignored")   # other tools' variables
    settings = Settings()
    assert settings.port == 9001 and settings.max_batch_sentences == 1
    assert settings.api_keys == ["one", "two"]
    assert settings.cors_origins == ["https://a.example"]


def test_settings_file_overrides_environment_and_flags_override_file(tmp_path, monkeypatch):
    monkeypatch.setenv("S2S_PORT", "9001")
    monkeypatch.setenv("S2S_DEVICE", "cpu")
    path = tmp_path / "settings.yaml"
    path.write_text("port: 9002\nmax_wait_ms: 2.5\n")
    settings = load_settings(path, port=9003, models_dir=None)
    assert settings.port == 9003 and settings.max_wait_ms == 2.5 and settings.device == "cpu"


def test_unknown_keys_in_a_settings_file_are_rejected(tmp_path):
    path = tmp_path / "settings.yaml"
    path.write_text("max_batch_sentence: 8\n")
    with pytest.raises(SettingsError, match="max_batch_sentence: Extra inputs are not permitted"):
        load_settings(path)


@pytest.mark.parametrize("values", [{"device": "tpu"}, {"dtype": "int4"}, {"port": 0},
                                    {"max_batch_sentences": 0}, {"default_beam_size": 20},
                                    {"max_wait_ms": 80, "max_delay_ms": 50},
                                    {"cpu_dtype": "fp16"}])
def test_bad_values_are_rejected(values):
    with pytest.raises(ValidationError):
        Settings(**values)


def test_unreadable_settings_file(tmp_path):
    with pytest.raises(SettingsError):
        load_settings(tmp_path / "missing.yaml")
    (tmp_path / "list.yaml").write_text("- 1\n")
    with pytest.raises(SettingsError):
        load_settings(tmp_path / "list.yaml")
