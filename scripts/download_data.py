#!/usr/bin/env python3
"""Fetch the Multi30k task-1 corpus (en/de/fr; train, val, test2016) into a folder, or build
corpora from Debian's localization packages (--corpus).

Multi30k: GitHub multi30k/dataset at a pinned commit, files data/task1/raw/<split>.<lang>.gz,
or a local copy given with --from DIR (plain files, or <name>.gz). Every file is checked
(UTF-8, expected line count, no empty lines, languages of a split line-aligned, known sha256)
before it is moved into place atomically. Standard library only.

    s2s-download-data                    # download into data/multi30k
    s2s-download-data --from /path/to/copy --out data/multi30k

Localization corpora (s2s.training.l10n_corpus): Debian packages fetched with `apt-get download`
(nothing installed), aligned, cleaned and split by module into
<out>/<corpus>/<lang>-en/{train,val,test}.{en,<lang>} with provenance.json; --out defaults to
${S2S_CORPORA_DIR:-data/corpora}.

    s2s-download-data --corpus libreoffice-help --langs de,fr,es
    s2s-download-data --corpus all --langs de,fr,es --out /work/corpora --debs /work/debs

Tatoeba split (s2s.training.tatoeba_split): the shared Tatoeba files of each pair (--shared,
default ${S2S_DATA_DIR:-data}) cleaned and split into train/val/test by English sentence
(no English sentence of val/test occurs in train) into <out>/tatoeba/<lang>-en/. --corpus all
builds it too; its shared files are located before anything is downloaded.

    s2s-download-data --corpus tatoeba --langs de,fr,es --shared /work/shared/data
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import http.client
import os
import shutil
import sys
import tempfile
import urllib.error
import urllib.request
import zlib
from pathlib import Path
from typing import NamedTuple

from .cli_parsing import make_parser

COMMIT = "a3d2e0d26b56f3846f66a952536ffed4e401d05a"
BASE_URL = f"https://raw.githubusercontent.com/multi30k/dataset/{COMMIT}/data/task1/raw"
DEFAULT_OUT = "data/multi30k"
LANGS = ("en", "de", "fr")
UPSTREAM_SPLITS = {"train": "train", "val": "val", "test2016": "test_2016_flickr"}

# Module-level so tests can replace them; a split/file missing here is not checked for it.
EXPECTED_LINES = {"train": 29000, "val": 1014, "test2016": 1000}
SHA256 = {
    "test2016.de": "4be6b5b3236b79c25475c6bb829800a7ce559e9ba7a1f6c2394fe4d40be46d16",
    "test2016.en": "399a4382932c1aadd3ceb9bef1008d388a64c76d4ae4e9d4728c6f4301cac182",
    "test2016.fr": "cb3160d69b002bb638e66cc7612fcd56cb0af82eadc9c142dedc438afb885ef6",
    "train.de": "2c2b73fd2b548fbcde3a875e0a78d6ee94d498bfdee6bd3eae3945779e9ddf72",
    "train.en": "460a15fbd157e34a7a9957ee388c1ca247fe47af3ef25fb50442af6c274e0fc6",
    "train.fr": "5925a3c18f1587b6b54b87743106e6e8ab93618edb6f65d19eac0621f853a10d",
    "val.de": "660e09eb7e1da2f856ea13ee5ad3cf6d36b3d5b0b733c857e94c5747a3dfc660",
    "val.en": "1f2a23d992769b5b3d209b0a10dd0b77c08cceb1f20dfb97ed0aafa49d107227",
    "val.fr": "5304e444d842e962b2dda4d816b70b22a1765b15401642b7ca37a67477e708dc",
}
TIMEOUT_S = 60.0


class DataError(Exception):
    """A problem with the fetched data or its source; reported as one line, exit status 1."""


class FileInfo(NamedTuple):
    lines: int
    size: int
    sha256: str


class Staged(NamedTuple):
    name: str
    dest: Path
    info: FileInfo
    tmp: Path | None  # None: the file already present was kept


def warn(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr)


def file_url(split: str, lang: str) -> str:
    return f"{BASE_URL}/{UPSTREAM_SPLITS[split]}.{lang}.gz"


def open_url(url: str, timeout: float):
    """The one place that opens URLs (tests replace urllib.request.urlopen)."""
    return urllib.request.urlopen(url, timeout=timeout)


def download(url: str, timeout: float) -> bytes:
    """Return the gunzipped body of `url`; network trouble becomes a DataError."""
    try:
        with open_url(url, timeout) as response:
            body = response.read()
    except (urllib.error.URLError, http.client.HTTPException, OSError) as exc:
        reason = getattr(exc, "reason", None) or exc
        raise DataError(
            f"download failed for {url}: {reason}; if you have a local copy, use --from DIR"
        ) from exc
    try:
        return gzip.decompress(body)
    except (gzip.BadGzipFile, EOFError, zlib.error) as exc:
        raise DataError(f"{url}: not a valid gzip file ({exc})") from exc


def find_local(src: Path, name: str) -> Path:
    for candidate in (src / name, src / f"{name}.gz"):
        if candidate.is_file():
            return candidate
    raise DataError(f"{src / name} not found (nor {name}.gz) in the --from folder")


def copy_local(path: Path, out_file) -> None:
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as f:
                shutil.copyfileobj(f, out_file)
        else:
            with path.open("rb") as f:
                shutil.copyfileobj(f, out_file)
    except (gzip.BadGzipFile, EOFError, zlib.error) as exc:
        raise DataError(f"{path}: not a valid gzip file ({exc})") from exc


def check_file(path: Path, label: str, split: str) -> FileInfo:
    """UTF-8, no empty lines, expected line count; returns lines, bytes and sha256."""
    digest, size, lines = hashlib.sha256(), 0, 0
    with path.open("rb") as f:
        for raw in f:
            lines += 1
            digest.update(raw)
            size += len(raw)
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise DataError(f"{label}: line {lines} is not valid UTF-8 ({exc.reason})") from exc
            if not text.strip():
                raise DataError(f"{label}: line {lines} is empty")
    expected = EXPECTED_LINES.get(split)
    if expected is not None and lines != expected:
        raise DataError(f"{label}: expected {expected} lines, found {lines}")
    return FileInfo(lines, size, digest.hexdigest())


def check_sha(name: str, label: str, info: FileInfo, strict: bool) -> None:
    """Compare with the known upstream sha256; an error if strict, else a warning."""
    known = SHA256.get(name)
    if known is None or known == info.sha256:
        return
    message = f"{label}: sha256 {info.sha256} differs from upstream {known}"
    if strict:
        raise DataError(message)
    warn(message + " (kept: local source)")


def check_aligned(split: str, staged: list[Staged]) -> None:
    counts = {s.name: s.info.lines for s in staged}
    if len(set(counts.values())) > 1:
        detail = ", ".join(f"{name} has {n} lines" for name, n in counts.items())
        raise DataError(f"{split}: languages are not line-aligned: {detail}")


def existing_ok(dest: Path, split: str, strict: bool) -> FileInfo | None:
    """The info of a present file that passes the checks, else None (it will be re-fetched)."""
    if not dest.is_file():
        return None
    try:
        info = check_file(dest, str(dest), split)
        check_sha(dest.name, str(dest), info, strict)
    except DataError as exc:
        warn(f"re-fetching: {exc}")
        return None
    return info


def stage(name: str, split: str, lang: str, out: Path, src: Path | None, timeout: float) -> Staged:
    """Fetch one file into a temp file inside `out` and check it; the caller moves it."""
    fd, tmp_name = tempfile.mkstemp(prefix=f".{name}.", suffix=".part", dir=out)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out_file:
            if src is None:
                label = file_url(split, lang)
                out_file.write(download(label, timeout))
            else:
                path = find_local(src, name)
                label = str(path)
                copy_local(path, out_file)
        info = check_file(tmp, label, split)
        check_sha(name, label, info, strict=src is None)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return Staged(name, out / name, info, tmp)


def fetch_split(split: str, langs, out: Path, src: Path | None, force: bool, timeout: float):
    """Fetch and check all languages of a split; files are moved into place only if all pass."""
    staged: list[Staged] = []
    try:
        for lang in langs:
            name = f"{split}.{lang}"
            info = None if force else existing_ok(out / name, split, strict=src is None)
            if info is not None:
                staged.append(Staged(name, out / name, info, None))
            else:
                staged.append(stage(name, split, lang, out, src, timeout))
        check_aligned(split, staged)
        for s in staged:
            if s.tmp is not None:
                os.replace(s.tmp, s.dest)
    finally:
        for s in staged:
            if s.tmp is not None:
                s.tmp.unlink(missing_ok=True)
    return staged


def summary_line(s: Staged) -> str:
    status = "kept" if s.tmp is None else "written"
    return f"{s.name:<12} {s.info.lines:>6} lines {s.info.size:>9} bytes  {s.info.sha256}  {status}"


L10N_CORPORA = ("libreoffice-help", "libreoffice-ui", "gettext-apps", "gimp-help")
SPLIT_CORPORA = ("tatoeba",)                  # splits of the shared corpora, no packages
CORPORA = SPLIT_CORPORA + L10N_CORPORA        # what --corpus all builds, in this order
L10N_LANGS = ("de", "fr", "es")
CORPORA_ENV = "S2S_CORPORA_DIR"
DATA_ENV = "S2S_DATA_DIR"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = make_parser(__doc__.splitlines()[0])
    parser.add_argument(
        "--corpus",
        default="multi30k",
        help="multi30k (default), or localization corpora built from Debian packages and "
        f"the held-out Tatoeba split, comma-separated: {', '.join(CORPORA)}, or all of them: all",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help=f"output folder (default {DEFAULT_OUT}; for --corpus other than multi30k "
        f"${{{CORPORA_ENV}:-data/corpora}})",
    )
    parser.add_argument(
        "--from",
        dest="src",
        type=Path,
        metavar="DIR",
        help="copy <split>.<lang> (or .gz) from a local folder instead of downloading",
    )
    parser.add_argument(
        "--langs",
        nargs="+",
        default=None,
        help=f"multi30k: some of {' '.join(LANGS)}; other corpora: languages paired with "
        f"English, comma- or space-separated (default for them: {','.join(L10N_LANGS)})",
    )
    parser.add_argument(
        "--splits", nargs="+", choices=list(UPSTREAM_SPLITS), default=list(UPSTREAM_SPLITS),
        help="Multi30k splits to fetch")
    parser.add_argument("--force", action="store_true", help="re-fetch files already present")
    parser.add_argument("--timeout", type=float, default=TIMEOUT_S, help="seconds per download")
    l10n = parser.add_argument_group("localization corpora")
    l10n.add_argument("--debs", type=Path, default=None, metavar="DIR",
                      help="keep the .deb files here and reuse them (default: a temp folder)")
    l10n.add_argument("--work", type=Path, default=None, metavar="DIR",
                      help="folder for extracted files (default: a temp folder, removed)")
    l10n.add_argument("--seed", type=int, default=1,
                      help="seed of the held-out modules and Tatoeba sentences")
    split = parser.add_argument_group("Tatoeba split")
    split.add_argument("--shared", type=Path, default=None, metavar="DIR",
                       help=f"the shared corpora (default ${{{DATA_ENV}:-data}})")
    split.add_argument("--val-size", type=int, default=1000, help="Tatoeba val pairs per language")
    split.add_argument("--test-size", type=int, default=2000,
                       help="Tatoeba test pairs per language")
    args = parser.parse_args(argv)
    langs = [x for item in (args.langs or []) for x in item.split(",") if x]
    if args.corpus == "multi30k":
        bad = [x for x in langs if x not in LANGS]
        if bad:
            parser.error(f"argument --langs: invalid choice: {bad[0]!r} (choose from "
                         f"{', '.join(map(repr, LANGS))})")
        args.langs = langs or list(LANGS)
        args.out = args.out or Path(DEFAULT_OUT)
        return args
    corpora = [x for x in args.corpus.split(",") if x]
    if corpora == ["all"]:
        corpora = list(CORPORA)
    unknown = [x for x in corpora if x not in CORPORA]
    if unknown or not corpora:
        parser.error(f"argument --corpus: unknown {unknown[0] if unknown else ''!r} (choose "
                     f"multi30k, all, or from {', '.join(CORPORA)})")
    if args.val_size < 0 or args.test_size < 0:
        parser.error("--val-size and --test-size must not be negative")
    if args.src is not None:
        parser.error("--from is for multi30k only")
    args.corpora = corpora
    args.langs = list(dict.fromkeys(langs or L10N_LANGS))
    args.out = args.out or Path(os.environ.get(CORPORA_ENV) or "data/corpora")
    args.shared = args.shared or Path(os.environ.get(DATA_ENV) or "data")
    return args


def run(args: argparse.Namespace) -> list[Staged]:
    if args.src is not None and not args.src.is_dir():
        raise DataError(f"--from folder not found: {args.src}")
    args.out.mkdir(parents=True, exist_ok=True)
    done: list[Staged] = []
    for split in dict.fromkeys(args.splits):
        langs = list(dict.fromkeys(args.langs))
        for s in fetch_split(split, langs, args.out, args.src, args.force, args.timeout):
            print(summary_line(s), flush=True)
            done.append(s)
    return done


def run_l10n(args: argparse.Namespace) -> int:
    """Build the localization corpora and the Tatoeba split; one summary line per folder."""
    import time

    from s2s.training import l10n_corpus, tatoeba_split

    words = ["--corpus", ",".join(args.corpora), "--langs", ",".join(args.langs),
             "--out", str(args.out), "--seed", str(args.seed)]
    if "tatoeba" in args.corpora:
        words += ["--shared", str(args.shared), "--val-size", str(args.val_size),
                  "--test-size", str(args.test_size)]
    command = "s2s-download-data " + " ".join(words)
    started = time.perf_counter()

    def log(message: str) -> None:
        print(f"[{time.perf_counter() - started:6.1f}s] {message}", flush=True)

    with tempfile.TemporaryDirectory(prefix="s2s-l10n-", dir=args.work) as work:
        work = Path(work)
        try:
            if "tatoeba" in args.corpora:     # a missing shared folder fails before downloads
                for lang in args.langs:
                    tatoeba_split.source_folder(args.shared, lang)
            for corpus in args.corpora:
                if corpus == "tatoeba":
                    log(f"split tatoeba from {args.shared}")
                    for s in tatoeba_split.build(args.shared, args.langs, args.out, args.seed,
                                                 args.val_size, args.test_size, command):
                        c = s.counts
                        log(f"{s.folder}: pairs {c['extracted']}, clean {c['length_ratio']}, "
                            f"unique {c['unique']}; train {c['train']} val {c['val']} "
                            f"test {c['test']}")
                    continue
                results = l10n_corpus.build(corpus, args.langs, args.out, work / corpus,
                                            deb_dir=args.debs or work / "debs", seed=args.seed,
                                            command=command, log=log)
                for r in results:
                    c = r.counts
                    log(f"{r.folder}: extracted {c['extracted']}, clean {c['length_ratio']}, "
                        f"unique {c['unique']}; train {c['train']} val {c['val']} "
                        f"test {c['test']}")
                shutil.rmtree(work / corpus, ignore_errors=True)
        except l10n_corpus.L10nError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        except KeyboardInterrupt:
            print("error: interrupted", file=sys.stderr)
            return 130
    print(f"ok: {len(args.corpora)} corpora x {len(args.langs)} languages in {args.out} "
          f"({time.perf_counter() - started:.1f}s)")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.corpus != "multi30k":
        return run_l10n(args)
    source = args.src if args.src is not None else f"{BASE_URL} (commit {COMMIT[:12]})"
    print(f"multi30k: {source} -> {args.out}", flush=True)
    try:
        done = run(args)
    except (DataError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("error: interrupted (no partial file left under a final name)", file=sys.stderr)
        return 130
    written = sum(s.tmp is not None for s in done)
    print(f"ok: {len(done)} files in {args.out} ({written} written, {len(done) - written} kept)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
