"""The built-in demo task: seeded generation of (date in words, DD.MM.YYYY) pairs."""

from __future__ import annotations

import datetime
import random
import re

from s2s.training.demo_task import cardinal, demo_splits, generate_pairs, ordinal, year_words


def test_generation_is_reproducible_from_the_seed():
    assert generate_pairs(50, seed=7) == generate_pairs(50, seed=7)
    assert generate_pairs(50, seed=7) != generate_pairs(50, seed=8)


def test_targets_are_valid_calendar_dates():
    _, targets = generate_pairs(500, seed=3)
    for target in targets:
        assert re.fullmatch(r"\d\d\.\d\d\.\d{4}", target), target
        day, month, year = (int(part) for part in target.split("."))
        datetime.date(year, month, day)  # raises ValueError for an impossible date
        assert 1900 <= year <= 2099


def test_sources_name_the_target_month():
    months = ["january", "february", "march", "april", "may", "june", "july", "august",
              "september", "october", "november", "december"]
    for source, target in zip(*generate_pairs(200, seed=5)):
        assert months[int(target.split(".")[1]) - 1] in source.split(), (source, target)


def test_valid_and_test_sources_do_not_occur_in_train():
    splits = demo_splits(train=300, valid=40, test=40, seed=2)
    train = set(splits["train"][0])
    for name in ("valid", "test"):
        sources, targets = splits[name]
        assert len(sources) == len(targets) == 40
        assert not train & set(sources), name


def test_hand_checked_number_words():
    assert ordinal(1) == "first"
    assert ordinal(12) == "twelfth"
    assert ordinal(20) == "twentieth"
    assert ordinal(21) == "twenty-first"
    assert ordinal(30) == "thirtieth"
    assert ordinal(31) == "thirty-first"
    assert cardinal(45) == "forty-five"


def test_hand_checked_years():
    rng = random.Random(0)
    assert "oh five" in year_words(1905, rng)
    assert year_words(1905, rng) == "nineteen oh five"
    assert year_words(1994, rng) == "nineteen ninety-four"
    assert year_words(1900, rng) == "nineteen hundred"
    assert year_words(2000, rng) == "two thousand"
    assert year_words(2007, rng) == "two thousand seven"
    assert {year_words(2015, random.Random(s)) for s in range(20)} == {
        "two thousand fifteen", "twenty fifteen"}
