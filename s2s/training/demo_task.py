"""The built-in demo task: English dates written in words -> numeric dates (DD.MM.YYYY).

"march twenty-first, nineteen ninety-four" -> "21.03.1994". Day and month swap places in some
phrasings, so the model has to learn to reorder (attention matters), and years are read from
words. Everything is generated from a seed: no download.
"""

from __future__ import annotations

import calendar
import random

MONTHS = [name.lower() for name in calendar.month_name[1:]]
UNITS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
         "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen",
         "eighteen", "nineteen"]
TENS = ["", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]
ORDINAL_UNITS = ["", "first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth",
                 "ninth", "tenth", "eleventh", "twelfth", "thirteenth", "fourteenth", "fifteenth",
                 "sixteenth", "seventeenth", "eighteenth", "nineteenth"]
ORDINAL_TENS = {20: "twentieth", 30: "thirtieth"}
TEMPLATES = ["{month} {day}, {year}", "the {day} of {month} {year}", "{day} {month} {year}",
             "{month} the {day} {year}"]


def cardinal(number: int) -> str:
    """0..99 in words."""
    if number < 20:
        return UNITS[number]
    tens, units = divmod(number, 10)
    return TENS[tens] if units == 0 else f"{TENS[tens]}-{UNITS[units]}"


def ordinal(number: int) -> str:
    """1..31 as an ordinal in words."""
    if number < 20:
        return ORDINAL_UNITS[number]
    if number in ORDINAL_TENS:
        return ORDINAL_TENS[number]
    tens, units = divmod(number, 10)
    return f"{TENS[tens]}-{ORDINAL_UNITS[units]}"


def year_words(year: int, rng: random.Random) -> str:
    """1900..2099 as spoken, with the usual variants for the 2000s."""
    century, rest = divmod(year, 100)
    if century == 20 and (rest < 10 or rng.random() < 0.5):
        return "two thousand" if rest == 0 else f"two thousand {cardinal(rest)}"
    if rest == 0:
        return f"{cardinal(century)} hundred"
    if rest < 10:
        return f"{cardinal(century)} oh {UNITS[rest]}"
    return f"{cardinal(century)} {cardinal(rest)}"


def random_pair(rng: random.Random) -> tuple[str, str]:
    year = rng.randint(1900, 2099)
    month = rng.randint(1, 12)
    day = rng.randint(1, calendar.monthrange(year, month)[1])
    template = rng.choice(TEMPLATES)
    source = template.format(month=MONTHS[month - 1], day=ordinal(day),
                             year=year_words(year, rng))
    return source, f"{day:02d}.{month:02d}.{year}"


def generate_pairs(count: int, seed: int) -> tuple[list[str], list[str]]:
    """``count`` (source, target) pairs as two line lists, reproducible from ``seed``."""
    rng = random.Random(seed)
    pairs = [random_pair(rng) for _ in range(count)]
    return [s for s, _ in pairs], [t for _, t in pairs]


def demo_splits(train: int, valid: int, test: int, seed: int) -> dict[str, tuple[list[str],
                                                                                  list[str]]]:
    """Train/valid/test splits from disjoint seeds (valid and test sources absent from train)."""
    train_src, train_tgt = generate_pairs(train, seed)
    seen = set(train_src)
    splits = {"train": (train_src, train_tgt)}
    for offset, (name, size) in enumerate([("valid", valid), ("test", test)], start=1):
        src, tgt = generate_pairs(size * 3, seed + 7919 * offset)
        kept = [(s, t) for s, t in zip(src, tgt) if s not in seen][:size]
        splits[name] = ([s for s, _ in kept], [t for _, t in kept])
    return splits
