"""scripts/recipe_distill.sh and recipe_diversify.sh end to end on a tiny generated
Multi30k-shaped corpus: teachers, the ensemble's translation of the training sources, students,
the best on val as model.pt; both directions' students on each other's translations, and a
second round distilled from the first round's students."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

from s2s.model.model_file import load_model_file

ROOT = Path(__file__).resolve().parents[1]
WORDS = {"eins": "one", "zwei": "two", "drei": "three", "vier": "four", "fünf": "five",
         "Hund": "dog", "Katze": "cat", "rot": "red", "blau": "blue", "läuft": "runs"}
TINY = ("--set tokenizer.vocab_size=40 --set model.emb_dim=16 --set model.enc_hidden=16 "
        "--set model.dec_hidden=16 --set train.valid_every=2 --set train.log_every=1 "
        "--set data.max_len_ratio=100")   # untrained teachers write long outputs


def write_corpus(folder: Path, pairs: int, seed: int) -> None:
    """``pairs`` lines of word-for-word German -> English as train and val of multi30k/."""
    rng = random.Random(seed)
    data = folder / "multi30k"
    data.mkdir(parents=True)
    for split, count in (("train", pairs), ("val", 12)):
        lines = [rng.choices(list(WORDS), k=rng.randint(2, 6)) for _ in range(count)]
        (data / f"{split}.de").write_text("".join(" ".join(s) + "\n" for s in lines), "utf-8")
        (data / f"{split}.en").write_text(
            "".join(" ".join(WORDS[w] for w in s) + "\n" for s in lines), "utf-8")


def run_recipe(script: str, *args: str, data: Path, **env: str) -> None:
    """Runs ``scripts/<script>`` on the tiny corpus in ``data``: tiny models, CPU, one thread."""
    env = {**os.environ, "S2S_DATA_DIR": str(data), "PY": sys.executable, "THREADS": "1",
           "DEVICE": "cpu", "EXTRA": TINY, **env}
    subprocess.run(["bash", f"scripts/{script}", *args], cwd=ROOT, env=env, check=True,
                   capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def recipe_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("recipe")
    write_corpus(base / "data", pairs=120, seed=3)
    out = base / "out"
    only = (f"only:--set 'data.corpora=[{{name: distilled, src: {base}/data/multi30k/train.de, "
            f"tgt: {out}/kd/train.hyp.en}}]'")
    run_recipe("recipe_distill.sh", "de", "en", str(out), data=base / "data", SEEDS="2",
               TEACHER_STEPS="2", STUDENT_STEPS="2", VARIANTS=f"{only};mix:")
    return out


def test_the_ensemble_translates_every_training_source(recipe_run: Path) -> None:
    sources = (recipe_run.parent / "data" / "multi30k" / "train.de").read_text("utf-8")
    hyps = (recipe_run / "kd" / "train.hyp.en").read_text("utf-8")
    assert len(hyps.splitlines()) == len(sources.splitlines()) == 120


def test_the_student_state_best_on_val_becomes_the_model_file(recipe_run: Path) -> None:
    chosen = json.loads((recipe_run / "val.json").read_text("utf-8"))
    students = chosen["students"]
    assert set(students) == {f"student_{name}/{state}.pt" for name in ("only", "mix")
                             for state in ("averaged", "best")}
    assert chosen["chosen"] == max(students, key=lambda name: students[name]["bleu"])
    loaded = load_model_file(recipe_run / "model.pt")
    assert loaded.meta["src_lang"] == "de" and loaded.meta["tgt_lang"] == "en"
    assert (recipe_run / chosen["chosen"]).read_bytes() == (recipe_run / "model.pt").read_bytes()


def test_the_kd_only_student_learns_from_the_teachers_translations(recipe_run: Path) -> None:
    config = (recipe_run / "student_only" / "config.yaml").read_text("utf-8")
    assert "kd/train.hyp.en" in config and "multi30k/train.en" not in config


@pytest.fixture(scope="module")
def diversify_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("diversify")
    write_corpus(base / "data", pairs=60, seed=4)
    out = base / "out"
    run_recipe("recipe_diversify.sh", str(out), data=base / "data", SEEDS="1",
               DE_EN_TEACHER_STEPS="2", EN_DE_TEACHER_STEPS="2", STUDENT_STEPS="2")
    return out


@pytest.mark.parametrize("src,tgt", [("de", "en"), ("en", "de")])
def test_the_best_student_on_val_of_both_rounds_is_served(diversify_run: Path, src: str,
                                                         tgt: str) -> None:
    scored = {}
    for folder in (diversify_run / f"{src}_{tgt}", diversify_run / f"{src}_{tgt}_r2"):
        students = json.loads((folder / "val.json").read_text("utf-8"))["students"]
        scored.update({folder / name: student["bleu"] for name, student in students.items()})
    served = diversify_run / "models" / f"{src}-{tgt}.pt"
    assert served.read_bytes() == max(scored, key=scored.get).read_bytes()
    loaded = load_model_file(served)
    assert (loaded.meta["src_lang"], loaded.meta["tgt_lang"]) == (src, tgt)


@pytest.mark.parametrize("src,tgt", [("de", "en"), ("en", "de")])
def test_the_student_learns_from_both_directions_translations(diversify_run: Path, src: str,
                                                               tgt: str) -> None:
    student = diversify_run / f"{src}_{tgt}" / "student_diverse_s1"
    config = (student / "config.yaml").read_text("utf-8")
    assert f"multi30k/train.{tgt}" in config                  # the references
    assert f"{src}_{tgt}/kd/train.hyp.{tgt}" in config        # distillation
    assert f"{tgt}_{src}/kd/train.hyp.{src}" in config        # back-translation


def test_de_en_trains_a_second_student_seed(diversify_run: Path) -> None:
    config = (diversify_run / "de_en" / "student_diverse_s2" / "config.yaml").read_text("utf-8")
    assert "seed: 2" in config and not (diversify_run / "en_de" / "student_diverse_s2").exists()


def test_the_second_round_distils_from_the_first_rounds_students(diversify_run: Path) -> None:
    second = diversify_run / "de_en_r2"
    assert not list(second.glob("teacher_s*"))
    assert len((second / "kd" / "train.hyp.en").read_text("utf-8").splitlines()) == 60


def test_second_round_students_learn_from_both_rounds_translations(diversify_run: Path) -> None:
    config = (diversify_run / "en_de_r2" / "student_diverse_s1" / "config.yaml").read_text("utf-8")
    for corpus in ("en_de/kd/train.hyp.de", "de_en/kd/train.hyp.en", "en_de_r2/kd/train.hyp.de",
                   "de_en_r2/kd/train.hyp.en", "multi30k/train.de"):
        assert corpus in config
