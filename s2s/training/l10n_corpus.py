"""Parallel corpora from Debian's localization packages (English -> de, fr, es, ...).

A corpus is built from a few named Debian packages, fetched with ``apt-get download`` (nothing is
installed) and read with ``dpkg-deb --fsys-tarfile`` (only the files needed are written):

- ``libreoffice-help``: the LibreOffice help pages of ``libreoffice-help-en-us`` and
  ``libreoffice-help-<lang>``, aligned by file and paragraph id; a module is a help section
  (a folder such as ``text/scalc/guide``).
- ``libreoffice-ui``: the gettext catalogs of ``libreoffice-l10n-<lang>`` (msgid -> msgstr);
  a module is a catalog.
- ``gettext-apps``: the catalogs of other localized programs (``APP_PACKAGES``: one package
  holds every language); a module is a package's catalog.
- ``gimp-help``: the GIMP manual (``gimp-help-en``, ``gimp-help-<lang>``), pages aligned block by
  block where both languages have the same block structure; a module is a page group.

Cleaning (``clean_units``, counted filter by filter): whitespace normalised, keyboard mnemonics
removed (placeholders kept), then pairs dropped that are empty or untranslated, have no letter,
are copied unchanged, are longer than ``max_chars``, or whose lengths differ too much. The split
is by module (``split_units``): whole modules are held out for validation and test, chosen with
the seed; exact duplicates are removed (a pair is kept in the first of train, val, test), and a
held-out pair whose letters-only source or target also occurs in an earlier split is removed,
so no test pair has a near-duplicate in training.

``build`` writes ``<out>/<corpus>/<lang>-en/{train,val,test}.{en,<lang>}`` with
``provenance.json`` (packages, versions, .deb checksums, licenses from each package's
``copyright`` file, counts before and after each filter, held-out modules, file checksums) and
the copyright files themselves. Library code: it returns values and raises ``L10nError``.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import os
import random
import re
import shutil
import subprocess
import tarfile
import time
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from s2s.training.l10n_text import (
    PLACEHOLDER,
    L10nFormatError,
    help_paragraphs,
    html_blocks,
    mo_pairs,
    normalize_ws,
    parse_mo,
    strip_mnemonics,
)

FORMAT_VERSION = 1
MAX_CHARS = 1000          # longest side kept, in characters
MAX_RATIO = 2.5           # (longer + 5) / (shorter + 5) characters
HELDOUT_FRACTION = 0.02   # of the pairs, for val and for test each (whole modules)
MIN_HELDOUT = 200         # pairs wanted in val and in test at least, where modules allow
FILTERS = ("translated", "has_letters", "not_copied", "max_chars", "length_ratio")
Pair = tuple[str, str]
Units = dict[str, list[Pair]]
Log = Callable[[str], None]


class L10nError(Exception):
    """A corpus that cannot be built: a tool or package missing, nothing aligned, bad input."""


class ToolMissing(L10nError):
    """apt-get or dpkg-deb is not on PATH."""


# ----------------------------------------------------------------------------- specs

# gettext catalogs of other programs; every package holds all languages. Mnemonic marks each
# program uses in its msgids (gcc, git and util-linux have none; VLC's Qt interface and the
# KDE programs use "&").
APP_PACKAGES: dict[str, str] = {
    "gimp-data": "_",
    "inkscape": "_",
    "vlc-l10n": "_&",
    "gramps": "_",
    "gcc-12-locales": "",
    "krita-l10n": "&",
    "wesnoth-1.16-data": "",
    "digikam-data": "&",
    "evolution-common": "_",
    "gnucash-common": "_",
    "git": "",
    "util-linux-locales": "",
}
HELP_LANG = {"en": "en-US"}
LO_HELP_ROOT = "usr/share/libreoffice/help"
LO_UI_ROOT = "usr/lib/libreoffice/program/resource"
GIMP_HELP_ROOT = "usr/share/gimp/2.0/help"


@dataclass(frozen=True)
class CorpusSpec:
    name: str
    description: str
    packages: Callable[[str], list[str]]                       # lang -> packages (en + lang)
    members: Callable[[str, list[str]], list[str]]              # (package, langs) -> globs
    extract: Callable[[dict[str, Path], str], Units]            # (roots, lang) -> raw units
    marks: Callable[[str], str] = lambda unit: ""              # unit -> mnemonic marks


def _read(path: Path) -> str:
    return path.read_text(encoding="utf-8", errors="replace")


def lo_help_units(roots: dict[str, Path], lang: str) -> Units:
    en_root = roots["libreoffice-help-en-us"] / LO_HELP_ROOT / HELP_LANG["en"]
    xx_root = roots[f"libreoffice-help-{lang}"] / LO_HELP_ROOT / HELP_LANG.get(lang, lang)
    if not en_root.is_dir() or not xx_root.is_dir():
        raise L10nError(f"no LibreOffice help pages found under {en_root} or {xx_root}")
    units: Units = {}
    for en_page in sorted(en_root.rglob("*.html")):
        rel = en_page.relative_to(en_root)
        xx_page = xx_root / rel
        if not xx_page.is_file():
            continue
        en_par, xx_par = help_paragraphs(_read(en_page)), help_paragraphs(_read(xx_page))
        pairs = [(text, xx_par[key]) for key, text in en_par.items() if key in xx_par]
        units.setdefault(str(rel.parent), []).extend(pairs)
    return units


def mo_units(root: Path, lang: str, prefix: str) -> Units:
    """Every ``<lang>/LC_MESSAGES/<domain>.mo`` under root, one unit per domain."""
    units: Units = {}
    for path in sorted(root.rglob(f"{lang}/LC_MESSAGES/*.mo")):
        try:
            entries = parse_mo(path.read_bytes())
        except L10nFormatError as exc:
            raise L10nError(f"{path}: {exc}") from exc
        units.setdefault(f"{prefix}/{path.stem}", []).extend(mo_pairs(entries))
    return units


def lo_ui_units(roots: dict[str, Path], lang: str) -> Units:
    return mo_units(roots[f"libreoffice-l10n-{lang}"] / LO_UI_ROOT, lang, "libreoffice")


def app_units(roots: dict[str, Path], lang: str) -> Units:
    units: Units = {}
    for package in APP_PACKAGES:
        units.update(mo_units(roots[package], lang, package))
    return units


def aligned_html_units(en_root: Path, xx_root: Path, unit_of: Callable[[str], str],
                       counts: dict[str, int] | None = None) -> Units:
    """Pages present in both folders whose block structure is the same, paired block by block
    (``counts`` gets pages_aligned / pages_skipped)."""
    units: Units = {}
    aligned = skipped = 0
    for en_page in sorted(en_root.rglob("*.html")):
        rel = en_page.relative_to(en_root)
        xx_page = xx_root / rel
        if not xx_page.is_file():
            skipped += 1
            continue
        en_blocks, xx_blocks = html_blocks(_read(en_page)), html_blocks(_read(xx_page))
        if [t for t, _ in en_blocks] != [t for t, _ in xx_blocks]:
            skipped += 1
            continue
        aligned += 1
        units.setdefault(unit_of(str(rel)), []).extend(
            (a, b) for (_, a), (_, b) in zip(en_blocks, xx_blocks))
    if counts is not None:
        counts.update(pages_aligned=aligned, pages_skipped=skipped)
    return units


def gimp_help_units(roots: dict[str, Path], lang: str) -> Units:
    def unit_of(rel: str) -> str:
        return "-".join(PurePosixPath(rel).stem.split("-")[:2])
    return aligned_html_units(roots["gimp-help-en"] / GIMP_HELP_ROOT / "en",
                              roots[f"gimp-help-{lang}"] / GIMP_HELP_ROOT / lang, unit_of)


def _doc(package: str) -> list[str]:
    return [f"usr/share/doc/{package}/copyright", f"usr/share/doc/{package}"]


SPECS: dict[str, CorpusSpec] = {
    "libreoffice-help": CorpusSpec(
        "libreoffice-help", "LibreOffice help pages, aligned by file and paragraph id",
        lambda lang: ["libreoffice-help-en-us", f"libreoffice-help-{lang}"],
        lambda package, langs: [f"{LO_HELP_ROOT}/*/text/*.html", *_doc(package)],
        lo_help_units),
    "libreoffice-ui": CorpusSpec(
        "libreoffice-ui", "LibreOffice user interface strings (gettext catalogs)",
        lambda lang: [f"libreoffice-l10n-{lang}"],
        lambda package, langs: [f"{LO_UI_ROOT}/*/LC_MESSAGES/*.mo", *_doc(package)],
        lo_ui_units, marks=lambda unit: "~_"),
    "gettext-apps": CorpusSpec(
        "gettext-apps", "user interface strings of " + ", ".join(APP_PACKAGES)
        + " (gettext catalogs)",
        lambda lang: list(APP_PACKAGES),
        lambda package, langs: [f"*/{lang}/LC_MESSAGES/*.mo" for lang in langs] + _doc(package),
        app_units, marks=lambda unit: APP_PACKAGES.get(unit.split("/")[0], "_")),
    "gimp-help": CorpusSpec(
        "gimp-help", "GIMP manual pages, aligned block by block",
        lambda lang: ["gimp-help-en", f"gimp-help-{lang}"],
        lambda package, langs: [f"{GIMP_HELP_ROOT}/*.html", *_doc(package)],
        gimp_help_units),
}


# ----------------------------------------------------------------------------- cleaning

_LETTER = re.compile(r"[^\W\d_]")


def near_key(text: str) -> str:
    """Letters only, case-folded: pairs that differ in numbers, punctuation, spacing or case
    share a key."""
    return "".join(ch for ch in unicodedata.normalize("NFKC", text).casefold() if ch.isalpha())


def clean_pair(en: str, xx: str, marks: str = "", max_chars: int = MAX_CHARS,
               max_ratio: float = MAX_RATIO) -> tuple[Pair | None, str | None]:
    """The normalised pair, or None and the name of the first filter it fails."""
    en = normalize_ws(strip_mnemonics(en, marks))
    xx = normalize_ws(strip_mnemonics(xx, marks))
    if not en or not xx:
        return None, "translated"
    if not all(_LETTER.search(PLACEHOLDER.sub("", side)) for side in (en, xx)):
        return None, "has_letters"
    if en.casefold() == xx.casefold():
        return None, "not_copied"
    if max(len(en), len(xx)) > max_chars:
        return None, "max_chars"
    if (max(len(en), len(xx)) + 5) / (min(len(en), len(xx)) + 5) > max_ratio:
        return None, "length_ratio"
    return (en, xx), None


def clean_units(units: Units, marks: Callable[[str], str] = lambda unit: "",
                max_chars: int = MAX_CHARS, max_ratio: float = MAX_RATIO
                ) -> tuple[Units, list[dict]]:
    """Apply the filters of ``FILTERS`` in order; returns the kept pairs per unit and one
    {filter, before, after} row per filter (the first row is the extracted count)."""
    dropped = dict.fromkeys(FILTERS, 0)
    total = 0
    kept: Units = {}
    for unit in sorted(units):
        unit_marks = marks(unit)
        out = []
        for en, xx in units[unit]:
            total += 1
            pair, failed = clean_pair(en, xx, unit_marks, max_chars, max_ratio)
            if pair is None:
                assert failed is not None, "clean_pair names the filter of every dropped pair"
                dropped[failed] += 1
            else:
                out.append(pair)
        kept[unit] = out
    rows, before = [], total
    for name in FILTERS:
        rows.append({"filter": name, "before": before, "after": before - dropped[name]})
        before -= dropped[name]
    return kept, rows


def clean_pairs(pairs: Iterable[Pair], marks: str = "", max_chars: int = MAX_CHARS,
                max_ratio: float = MAX_RATIO) -> tuple[list[Pair], list[dict]]:
    """The same filters on one list of pairs, plus removal of exact duplicates (for the
    corpora that come without modules, e.g. to count a shared corpus the same way)."""
    kept, rows = clean_units({"all": list(pairs)}, lambda unit: marks, max_chars, max_ratio)
    unique = list(dict.fromkeys(kept["all"]))
    rows.append({"filter": "unique", "before": len(kept["all"]), "after": len(unique)})
    return unique, rows


def _order(units: Iterable[str], seed: int) -> list[str]:
    return sorted(units, key=lambda u: hashlib.sha256(f"{seed}:{u}".encode()).hexdigest())


def choose_heldout(sizes: dict[str, int], seed: int = 1, fraction: float = HELDOUT_FRACTION,
                   min_pairs: int = MIN_HELDOUT) -> tuple[list[str], list[str]]:
    """(val modules, test modules): modules in a seeded order, each added to test, then val,
    while that split is under its target and stays under twice it. At least two modules stay
    in training; with fewer than three modules nothing is held out."""
    total = sum(sizes.values())
    target = max(min_pairs, round(total * fraction))
    target = min(target, total // 4) or 1
    val: list[str] = []
    test: list[str] = []
    filled = {"val": 0, "test": 0}
    nonempty = [u for u in _order(sizes, seed) if sizes[u] > 0]
    if len(nonempty) < 3:
        return [], []
    for unit in nonempty:
        if len(nonempty) - len(val) - len(test) <= 2:
            break
        for name, chosen in (("test", test), ("val", val)):
            if filled[name] < target and filled[name] + sizes[unit] <= 2 * target:
                chosen.append(unit)
                filled[name] += sizes[unit]
                break
    for chosen in (test, val):
        if not chosen:   # every module too big: take the smallest one left
            rest = [u for u in nonempty if u not in val and u not in test]
            if len(rest) > 2:
                smallest = min(rest, key=lambda u: (sizes[u], u))
                chosen.append(smallest)
    return sorted(val), sorted(test)


def split_units(units: Units, seed: int = 1, fraction: float = HELDOUT_FRACTION,
                min_pairs: int = MIN_HELDOUT) -> tuple[dict[str, list[Pair]], dict]:
    """{train, val, test} pairs and a report (held-out modules, duplicate and near-duplicate
    counts). Exact duplicates keep their first occurrence, train before val before test; a
    held-out pair whose source or target near-key occurs in an earlier split is dropped."""
    val_units, test_units = choose_heldout({u: len(p) for u, p in units.items()}, seed,
                                           fraction, min_pairs)
    held = set(val_units) | set(test_units)
    members = {"train": [u for u in sorted(units) if u not in held],
               "val": val_units, "test": test_units}
    seen: set[Pair] = set()
    keys: set[str] = set()
    splits: dict[str, list[Pair]] = {}
    duplicates = {"train": 0, "val": 0, "test": 0}
    near = {"val": 0, "test": 0}
    for name in ("train", "val", "test"):
        out = []
        for unit in members[name]:
            for pair in units[unit]:
                if pair in seen:
                    duplicates[name] += 1
                    continue
                seen.add(pair)
                if name != "train" and (near_key(pair[0]) in keys or near_key(pair[1]) in keys):
                    near[name] += 1
                    continue
                out.append(pair)
        splits[name] = out
        for en, xx in out:
            keys.add(near_key(en))
            keys.add(near_key(xx))
    report = {"modules": len(units), "heldout_modules": {"val": val_units, "test": test_units},
              "duplicates_removed": duplicates, "near_duplicates_removed": near}
    return splits, report


# ----------------------------------------------------------------------------- packages

@dataclass
class Package:
    name: str
    deb: Path
    root: Path                            # where the package was extracted
    version: str = ""
    architecture: str = ""
    sha256: str = ""
    size: int = 0
    copyright: str | None = None          # text of usr/share/doc/<name>/copyright
    copyright_from: str | None = None     # the package it was read from, when not this one
    license: dict = field(default_factory=dict)

    def record(self) -> dict:
        return {"name": self.name, "version": self.version, "architecture": self.architecture,
                "deb": self.deb.name, "deb_sha256": self.sha256, "deb_bytes": self.size,
                "copyright_file": f"usr/share/doc/{self.copyright_from or self.name}/copyright",
                "copyright_sha256": hashlib.sha256(self.copyright.encode()).hexdigest()
                if self.copyright is not None else None,
                "license": self.license}


def require_tools(packages: Iterable[str], need_apt: bool = True) -> None:
    """ToolMissing naming the tool and the .deb files needed when apt-get or dpkg-deb is absent."""
    debs = ", ".join(f"{p}_*.deb" for p in packages)
    if shutil.which("dpkg-deb") is None:
        raise ToolMissing(
            "dpkg-deb not found: reading the Debian packages needs it (Debian/Ubuntu package "
            f"'dpkg'); the files needed are {debs}")
    if need_apt and shutil.which("apt-get") is None:
        raise ToolMissing(
            "apt-get not found: fetching needs a Debian/Ubuntu machine; or download these "
            "files elsewhere ('apt-get download <name>') and pass their folder with --debs: "
            f"{debs}")


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def cached_deb(folder: Path, package: str) -> Path | None:
    found = sorted(folder.glob(f"{package}_*.deb"), key=lambda p: p.stat().st_mtime)
    return found[-1] if found else None


def fetch_debs(packages: list[str], folder: Path, log: Log | None = None) -> dict[str, Path]:
    """``<package>_*.deb`` for each package: from ``folder`` when already there, else fetched
    into it with ``apt-get download`` (no installation, no root needed)."""
    folder.mkdir(parents=True, exist_ok=True)
    missing = [p for p in dict.fromkeys(packages) if cached_deb(folder, p) is None]
    if missing:
        require_tools(missing)
        if log:
            log(f"apt-get download {' '.join(missing)}")
        proc = subprocess.run(["apt-get", "download", *missing], cwd=folder,
                              capture_output=True, text=True)
        if proc.returncode != 0:
            detail = " ".join(line for line in proc.stderr.splitlines()
                              if line.startswith("E:")) or proc.stderr.strip()[-500:]
            hint = ("; run 'apt-get update' once (as root) so apt knows the packages"
                    if "locate package" in detail or "no installation candidate" in detail else "")
            raise L10nError(f"apt-get download {' '.join(missing)} failed: {detail}{hint}")
    out = {}
    for package in dict.fromkeys(packages):
        deb = cached_deb(folder, package)
        if deb is None:
            raise L10nError(f"apt-get download left no {package}_*.deb in {folder}")
        out[package] = deb
    return out


def deb_fields(deb: Path) -> dict[str, str]:
    proc = subprocess.run(["dpkg-deb", "--field", str(deb), "Package", "Version", "Architecture"],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        raise L10nError(f"dpkg-deb cannot read {deb}: {proc.stderr.strip()}")
    fields = {}
    for line in proc.stdout.splitlines():
        key, _, value = line.partition(":")
        fields[key.strip()] = value.strip()
    return fields


def extract_deb(deb: Path, dest: Path, patterns: list[str]) -> dict[str, str]:
    """Write the files of ``deb`` matching ``patterns`` (globs on paths without the leading
    ``./``) under ``dest``; returns the symbolic links among the matches (path -> target)."""
    dest.mkdir(parents=True, exist_ok=True)
    links: dict[str, str] = {}
    proc = subprocess.Popen(["dpkg-deb", "--fsys-tarfile", str(deb)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    assert proc.stdout is not None and proc.stderr is not None, "both are pipes"
    try:
        with tarfile.open(fileobj=proc.stdout, mode="r|") as tar:
            for member in tar:
                name = member.name[2:] if member.name.startswith("./") else member.name
                if not any(fnmatch.fnmatchcase(name, p) for p in patterns):
                    continue
                if member.issym():
                    links[name] = member.linkname
                    continue
                if not member.isfile():
                    continue
                target = (dest / name).resolve()
                if not target.is_relative_to(dest.resolve()):
                    raise L10nError(f"{deb}: unsafe path {member.name}")
                target.parent.mkdir(parents=True, exist_ok=True)
                source = tar.extractfile(member)
                assert source is not None, "extractfile opens every regular file"
                with source as src, target.open("wb") as out:
                    shutil.copyfileobj(src, out)
    except tarfile.TarError as exc:
        raise L10nError(f"{deb}: cannot read its files ({exc})") from exc
    finally:
        proc.stdout.close()
        err = proc.stderr.read().decode(errors="replace")
        proc.stderr.close()
        if proc.wait() != 0:
            raise L10nError(f"dpkg-deb --fsys-tarfile {deb} failed: {err.strip()}")
    return links


_LICENSE_WORDS = re.compile(
    r"\b(?:(?:GNU )?(?:Lesser |Library )?General Public License(?:,? version [0-9.]+)?"
    r"|GNU Free Documentation License|L?GPL-?[0-9.]*\+?|MPL-?[0-9.]+|Mozilla Public License"
    r"|Apache(?: License)?-?[0-9.]*|BSD-[0-9]-clause|Expat|MIT|CC-BY(?:-SA)?-?[0-9.]*"
    r"|Creative Commons [A-Za-z -]+[0-9.]*|GFDL-?[0-9.]*\+?|public domain)", re.IGNORECASE)


def license_summary(text: str) -> dict:
    """The license of a Debian ``copyright`` file: for the machine-readable format (DEP-5)
    the License of ``Files: *`` and every License named; else the license names mentioned."""
    paragraphs = [p for p in re.split(r"\n\s*\n", text) if p.strip()]
    if text.startswith("Format:") or re.search(r"^Files:", text, re.MULTILINE):
        main = None
        names: list[str] = []
        for para in paragraphs:
            fields = dict(re.findall(r"^([A-Za-z-]+):[ \t]*(.*)$", para, re.MULTILINE))
            if "License" in fields and fields["License"]:
                names.append(fields["License"].strip())
                if fields.get("Files", "").split()[:1] == ["*"] and main is None:
                    main = fields["License"].strip()
        return {"format": "machine-readable (DEP-5)", "main": main or (names[0] if names else
                                                                        None),
                "all": sorted(set(names))}
    found = list(dict.fromkeys(m.group(0).strip() for m in _LICENSE_WORDS.finditer(text)))
    return {"format": "free-form", "main": found[0] if found else None, "all": found}


def prepare_packages(spec: CorpusSpec, langs: list[str], deb_dir: Path, work: Path,
                     log: Log | None = None) -> dict[str, Package]:
    names = list(dict.fromkeys(p for lang in langs for p in spec.packages(lang)))
    debs = fetch_debs(names, deb_dir, log)
    require_tools(names, need_apt=False)
    packages: dict[str, Package] = {}
    for name in names:
        deb = debs[name]
        fields = deb_fields(deb)
        pkg = Package(name, deb, work / "pkg" / name, fields.get("Version", ""),
                      fields.get("Architecture", ""), sha256_file(deb), deb.stat().st_size)
        if log:
            log(f"extract {deb.name}")
        links = extract_deb(deb, pkg.root, spec.members(name, langs))
        copyright_path = pkg.root / "usr/share/doc" / name / "copyright"
        doc_link = links.get(f"usr/share/doc/{name}")
        if not copyright_path.is_file() and doc_link and "/" not in doc_link:
            # the doc folder links to another package of the same source (gimp-help-de ->
            # gimp-help-common): read the copyright file from that package
            other = fetch_debs([doc_link], deb_dir, log)[doc_link]
            extract_deb(other, work / "pkg" / doc_link, _doc(doc_link))
            copyright_path = work / "pkg" / doc_link / "usr/share/doc" / doc_link / "copyright"
            pkg.copyright_from = doc_link
        if copyright_path.is_file():
            pkg.copyright = copyright_path.read_text(encoding="utf-8", errors="replace")
            pkg.license = license_summary(pkg.copyright)
        else:
            pkg.license = {"format": None, "main": None, "all": [],
                           "note": "no copyright file found in the package"}
        packages[name] = pkg
    return packages


# ----------------------------------------------------------------------------- writing

def write_lines(path: Path, lines: list[str]) -> dict:
    data = "".join(f"{line}\n" for line in lines).encode("utf-8")
    path.write_bytes(data)
    return {"lines": len(lines), "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}


def write_splits(folder: Path, splits: dict[str, list[Pair]], lang: str) -> tuple[Path, dict]:
    """A fresh temporary folder beside ``folder`` holding each split's ``.en`` and ``.<lang>``
    files; returns it and the files' line counts, sizes and sha256s (publish moves it in)."""
    tmp = folder.with_name(f".{folder.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    files = {}
    for split, pairs in splits.items():
        files[f"{split}.en"] = write_lines(tmp / f"{split}.en", [en for en, _ in pairs])
        files[f"{split}.{lang}"] = write_lines(tmp / f"{split}.{lang}", [xx for _, xx in pairs])
    return tmp, files


def publish(tmp: Path, folder: Path, provenance: dict) -> None:
    """Write ``provenance.json`` into ``tmp`` and put ``tmp`` in the place of ``folder``."""
    (tmp / "provenance.json").write_text(json.dumps(provenance, indent=2, ensure_ascii=False)
                                         + "\n", encoding="utf-8")
    if folder.exists():
        shutil.rmtree(folder)
    os.replace(tmp, folder)


@dataclass
class BuildResult:
    corpus: str
    lang: str
    folder: Path
    counts: dict
    provenance: dict


def build_pair(spec: CorpusSpec, packages: dict[str, Package], lang: str, out: Path,
               seed: int = 1, fraction: float = HELDOUT_FRACTION, command: str = "",
               max_chars: int = MAX_CHARS, max_ratio: float = MAX_RATIO) -> BuildResult:
    """Extract, clean, split and write one corpus folder ``<out>/<corpus>/<lang>-en``."""
    started = time.perf_counter()
    roots = {name: pkg.root for name, pkg in packages.items()}
    raw = spec.extract(roots, lang)
    if not any(raw.values()):
        raise L10nError(f"{spec.name} {lang}-en: no aligned pairs found in "
                        + ", ".join(spec.packages(lang)))
    units, rows = clean_units(raw, spec.marks, max_chars, max_ratio)
    splits, report = split_units(units, seed, fraction)
    after_filters = rows[-1]["after"]
    rows.append({"filter": "unique", "before": after_filters,
                 "after": after_filters - sum(report["duplicates_removed"].values())})
    rows.append({"filter": "heldout_not_near_duplicate", "before": rows[-1]["after"],
                 "after": rows[-1]["after"] - sum(report["near_duplicates_removed"].values())})
    folder = out / spec.name / f"{lang}-en"
    tmp, files = write_splits(folder, splits, lang)
    used = [packages[name] for name in spec.packages(lang)]
    for pkg in used:
        if pkg.copyright is not None:
            (tmp / f"copyright.{pkg.name}").write_text(pkg.copyright, encoding="utf-8")
    counts = {"extracted": rows[0]["before"], **{r["filter"]: r["after"] for r in rows},
              **{split: len(pairs) for split, pairs in splits.items()}}
    provenance = {
        "format_version": FORMAT_VERSION, "corpus": spec.name, "description": spec.description,
        "pair": f"{lang}-en", "langs": ["en", lang], "command": command,
        "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "seed": seed, "heldout_fraction": fraction, "max_chars": max_chars,
        "max_ratio": max_ratio, "packages": [pkg.record() for pkg in used],
        "filters": rows, "split": {split: len(pairs) for split, pairs in splits.items()},
        **report, "files": files,
        "build_seconds": round(time.perf_counter() - started, 2),
    }
    publish(tmp, folder, provenance)
    return BuildResult(spec.name, lang, folder, counts, provenance)


def build(corpus: str, langs: list[str], out: Path, work: Path, deb_dir: Path | None = None,
          seed: int = 1, fraction: float = HELDOUT_FRACTION, command: str = "",
          log: Log | None = None) -> list[BuildResult]:
    """Build ``corpus`` for every language of ``langs`` (paired with English) under ``out``.
    ``work`` holds the extracted files (the caller removes it); ``deb_dir`` keeps the .deb
    files between runs (default: inside ``work``)."""
    if corpus not in SPECS:
        raise L10nError(f"unknown corpus {corpus!r}; known: {', '.join(SPECS)}")
    bad = [lang for lang in langs if not re.fullmatch(r"[a-z]{2,3}(?:_[A-Z]{2})?", lang)]
    if bad or "en" in langs:
        raise L10nError(f"languages must be codes other than en such as de, fr, es: {bad or 'en'}")
    spec = SPECS[corpus]
    packages = prepare_packages(spec, langs, deb_dir or work / "debs", work, log)
    results = []
    for lang in langs:
        if log:
            log(f"align {corpus} {lang}-en")
        results.append(build_pair(spec, packages, lang, out, seed, fraction, command))
    return results


def sample_pairs(folder: Path, lang: str, k: int = 10, seed: int = 1,
                 split: str = "train") -> list[Pair]:
    """``k`` pairs of a built corpus folder drawn with ``seed`` (for corpus tables)."""
    en = (folder / f"{split}.en").read_text(encoding="utf-8").splitlines()
    xx = (folder / f"{split}.{lang}").read_text(encoding="utf-8").splitlines()
    if len(en) != len(xx):
        raise L10nError(f"{folder}: {split}.en and {split}.{lang} differ in length")
    picks = random.Random(seed).sample(range(len(en)), min(k, len(en)))
    return [(en[i], xx[i]) for i in sorted(picks)]
