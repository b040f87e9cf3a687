"""Config loading: unknown keys and bad values are named, overrides are validated, env vars."""

from __future__ import annotations

from pathlib import Path

import pytest

from s2s.config import (
    Config,
    ConfigError,
    config_from_dict,
    expand_env,
    load_config,
    saved_config_from_dict,
)

CONFIG_DIR = Path(__file__).resolve().parents[1] / "configs"


def write_yaml(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_unknown_key_in_a_section_names_the_dotted_key(tmp_path):
    path = write_yaml(tmp_path, "model:\n  hiden_size: 128\n")
    with pytest.raises(ConfigError, match=r"'model\.hiden_size'"):
        load_config(path)


def test_unknown_top_level_key_is_refused():
    with pytest.raises(ConfigError, match=r"unknown config key 'trian'"):
        config_from_dict({"trian": {"lr": 0.01}})


def test_retired_key_in_a_config_file_is_refused_as_retired(tmp_path):
    path = write_yaml(tmp_path, "data:\n  test_split: test2016\n")
    with pytest.raises(ConfigError, match=r"'data\.test_split' was retired"):
        load_config(path)


def test_saved_config_with_a_retired_key_loads_without_it():
    saved = Config().model_dump(mode="json")
    saved["data"]["test_split"] = "test2016"
    assert saved_config_from_dict(saved) == Config()


def test_saved_config_with_an_unknown_key_is_still_refused():
    saved = Config().model_dump(mode="json")
    saved["model"]["hiden_size"] = 128
    with pytest.raises(ConfigError, match=r"'model\.hiden_size'"):
        saved_config_from_dict(saved)


def test_bad_value_type_names_the_key(tmp_path):
    path = write_yaml(tmp_path, "train:\n  lr: fast\n")
    with pytest.raises(ConfigError, match=r"'train\.lr'"):
        load_config(path)


def test_out_of_range_value_names_the_key():
    with pytest.raises(ConfigError, match=r"'model\.dropout'"):
        config_from_dict({"model": {"dropout": 1.5}})


def test_override_is_parsed_as_a_float_and_applied(tmp_path):
    path = write_yaml(tmp_path, "train:\n  lr: 0.5\n  seed: 4\n")
    config = load_config(path, ["train.lr=0.01"])
    assert isinstance(config.train.lr, float)
    assert config.train.lr == 0.01
    assert config.train.seed == 4  # the rest of the file is kept


def test_override_of_an_unknown_key_is_refused():
    with pytest.raises(ConfigError, match=r"'model\.hiden_size'"):
        load_config(None, ["model.hiden_size=3"])


def test_env_default_is_used_in_corpus_dir(monkeypatch):
    monkeypatch.delenv("S2S_TEST_CORPUS", raising=False)
    config = config_from_dict({"data": {"corpus_dir": "${S2S_TEST_CORPUS:-fallback}/c"}})
    assert config.data.path("train", "de") == Path("fallback/c/train.de")


def test_env_variable_is_expanded_in_corpus_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("S2S_TEST_CORPUS", str(tmp_path))
    config = config_from_dict({"data": {"corpus_dir": "${S2S_TEST_CORPUS:-fallback}/c"}})
    assert config.data.path("val", "en") == tmp_path / "c" / "val.en"


def test_unset_env_variable_without_default_is_a_config_error(monkeypatch):
    monkeypatch.delenv("S2S_TEST_UNSET", raising=False)
    config = config_from_dict({"data": {"corpus_dir": "${S2S_TEST_UNSET}/c"}})
    with pytest.raises(ConfigError, match="S2S_TEST_UNSET"):
        config.data.path("train", "de")
    with pytest.raises(ConfigError, match="S2S_TEST_UNSET"):
        expand_env("${S2S_TEST_UNSET}")


@pytest.mark.parametrize("path", sorted(CONFIG_DIR.glob("*.yaml")), ids=lambda p: p.name)
def test_shipped_config_loads(path):
    assert isinstance(load_config(path), Config)


def test_configs_folder_is_not_empty():
    assert sorted(CONFIG_DIR.glob("*.yaml"))


def test_a_validation_length_limit_without_room_for_eos_is_refused():
    with pytest.raises(ConfigError, match=r"'train\.valid_max_len_b'"):
        config_from_dict({"train": {"valid_max_len_b": 0}})


def test_the_smallest_valid_validation_limits_make_valid_search_options():
    from s2s.inference.search import SearchOptions, max_output_tokens

    train = config_from_dict({"train": {"valid_max_len_a": 0, "valid_max_len_b": 1}}).train
    options = SearchOptions(beam_size=1, max_len_a=train.valid_max_len_a,
                            max_len_b=train.valid_max_len_b)
    assert max_output_tokens(50, options) == 1          # EOS alone: the smallest output
