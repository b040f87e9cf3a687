"""The commands' options: one spelling across commands, defaults in --help, long input lines,
s2s-serve's --config/--set and flags, s2s-keys' --db."""

from __future__ import annotations

import argparse

import pytest

from s2s.inference.translator import Translator
from scripts import (
    average_checkpoints,
    build_shortlist,
    curves,
    demo,
    evaluate,
    keys,
    prepare,
    serve,
    train,
    translate,
)
from service.settings import load_settings

PARSERS = {"s2s-train": train.build_parser, "s2s-translate": translate.build_parser,
           "s2s-evaluate": evaluate.build_parser, "s2s-serve": serve.build_parser,
           "s2s-prepare": prepare.build_parser, "s2s-keys": keys.build_parser,
           "s2s-average": average_checkpoints.build_parser,
           "s2s-build-shortlist": build_shortlist.build_parser,
           "s2s-plot-curves": curves.build_parser, "s2s-demo": demo.build_parser}
SOURCES = ["march twenty-first, nineteen ninety-four",
           "the third of june two thousand seven. december the thirty-first twenty ninety-nine. "
           "the first of may nineteen oh five",
           "the first of may nineteen oh five"]
LIMIT = 30   # subword pieces: the second source (68) is over it, the others (17, 22) not


def options(parser: argparse.ArgumentParser) -> dict[str, argparse.Action]:
    found = {}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                found.update(options(sub))
        for flag in action.option_strings:
            found[flag] = action
    return found


@pytest.mark.parametrize("command", sorted(PARSERS))
def test_every_option_has_help(command):
    missing = [flag for flag, action in options(PARSERS[command]()).items()
               if not action.help and flag not in ("-h", "--help")]
    assert missing == []


def test_help_shows_defaults(capsys):
    with pytest.raises(SystemExit):
        translate.main(["--help"])
    text = capsys.readouterr().out
    assert "beam size (1 = greedy) (default: 5)" in " ".join(text.split())
    assert "(default: auto)" in text


def test_prepare_help_explains_the_corpus_folder(capsys):
    with pytest.raises(SystemExit):
        prepare.main(["--help"])
    text = capsys.readouterr().out
    assert "corpus folder layout" in text and "<split>.<lang>" in text


@pytest.mark.parametrize("command", ["s2s-translate", "s2s-evaluate", "s2s-serve"])
def test_device_and_dtype_options_are_spelled_alike(command):
    found = options(PARSERS[command]())
    assert {"--device", "--dtype", "--cpu-dtype"} <= found.keys()
    assert "int8" in found["--cpu-dtype"].choices
    if command != "s2s-serve":   # the service's default comes from its settings
        assert found["--device"].default == "auto"


@pytest.mark.parametrize("command", ["s2s-translate", "s2s-evaluate"])
def test_file_options_are_spelled_alike(command):
    assert {"--src", "--output"} <= options(PARSERS[command]()).keys()


@pytest.mark.parametrize("command", ["s2s-train", "s2s-prepare", "s2s-serve", "s2s-demo"])
def test_config_and_set_everywhere(command):
    assert {"--config", "--set"} <= options(PARSERS[command]()).keys()


@pytest.fixture
def short_limit(monkeypatch):
    """Translator.from_files with a model limit of LIMIT pieces."""
    original = Translator.from_files.__func__

    def from_files(cls, paths, device="cpu", dtype="fp32"):
        translator = original(cls, paths, device, dtype)
        translator.max_src_len = LIMIT
        return translator

    monkeypatch.setattr(Translator, "from_files", classmethod(from_files))


def run_translate(tmp_path, trained_demo_run, *extra) -> tuple[int, list[str]]:
    src = tmp_path / "src.txt"
    src.write_text("\n".join(SOURCES) + "\n", encoding="utf-8")
    out = tmp_path / "out.txt"
    code = translate.main(["--model", str(trained_demo_run / "best.pt"), "--src", str(src),
                           "--output", str(out), "--beam", "1", "--device", "cpu", *extra])
    return code, out.read_text(encoding="utf-8").splitlines() if out.exists() else []


def test_long_line_is_split_by_default(tmp_path, trained_demo_run, short_limit, capsys):
    code, lines = run_translate(tmp_path, trained_demo_run)
    assert code == 0 and len(lines) == 3 and all(lines)
    assert "line 2 has" in capsys.readouterr().err


def test_long_line_skip_leaves_its_line_empty(tmp_path, trained_demo_run, short_limit):
    code, lines = run_translate(tmp_path, trained_demo_run, "--long-lines", "skip")
    assert code == 0 and len(lines) == 3 and lines[1] == "" and lines[0] and lines[2]


def test_long_line_error_counts_lines_from_one(tmp_path, trained_demo_run, short_limit, capsys):
    code, _ = run_translate(tmp_path, trained_demo_run, "--long-lines", "error")
    assert code == 2
    assert "error: line 2 has" in capsys.readouterr().err


def test_split_within_limit_keeps_every_word():
    from scripts.long_lines import split_within_limit

    text = "one two three four five six seven. eight nine"
    pieces = split_within_limit(text, lambda t: len(t.split()), 3)
    assert all(len(p.split()) <= 3 for p in pieces)
    assert " ".join(pieces).replace(".", "").split() == text.replace(".", "").split()


def test_serve_settings_from_flags_set_and_config(tmp_path):
    settings_file = tmp_path / "service.yaml"
    settings_file.write_text("max_batch_sentences: 16\nport: 9000\n")
    files = tmp_path / "files"
    args = serve.build_parser().parse_args([
        "--config", str(settings_file), "--set", "max_batch_sentences=8", "--set", "port=9100",
        "--port", "9200", "--files-dir", str(files), "--cpu-dtype", "int8"])
    settings = load_settings(args.config, **serve.settings_overrides(args))
    assert (settings.max_batch_sentences, settings.port) == (8, 9200)
    assert settings.files_dir == files and settings.cpu_dtype == "int8"


def test_serve_refuses_a_duplicate_key_and_an_unknown_set(tmp_path, capsys):
    settings_file = tmp_path / "service.yaml"
    settings_file.write_text("port: 9000\nport: 9001\n")
    assert serve.main(["--config", str(settings_file)]) == 2
    assert "duplicate key 'port' at line 2" in capsys.readouterr().err
    assert serve.main(["--set", "no_such_setting=1"]) == 2
    assert "unknown setting" in capsys.readouterr().err


def test_keys_db_after_the_subcommand(tmp_path, capsys):
    db = tmp_path / "keys.sqlite"
    assert keys.main(["add", "--db", str(db), "--key", "abcdefgh12"]) == 0
    assert keys.main(["list", "--db", str(db)]) == 0
    assert "abcdefgh12" in capsys.readouterr().out


def test_keys_list_does_not_create_a_missing_database(tmp_path, capsys):
    db = tmp_path / "typo.db"
    assert keys.main(["--db", str(db), "list"]) == 2
    assert "no key database" in capsys.readouterr().err
    assert not db.exists()

