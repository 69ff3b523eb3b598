"""Pretraining text: the embedded ELTeC-spa sample, local files and folders, and Hub datasets.

A :class:`Corpus` turns ``corpus.source`` into two streams of cleaned documents, ``train`` and
``heldout``. Sources:

- ``embedded``: the ELTeC-spa sample shipped in ``es_zoo/data`` (36 public-domain novels); whole
  novels are held out, as its ``split`` field says.
- a ``.txt`` / ``.txt.gz`` file: documents separated by one or more blank lines.
- a ``.jsonl`` / ``.jsonl.gz`` file: one JSON object per line, the text in ``corpus.text_field``.
- a ``.parquet`` file, an ``.arrow`` file, or a folder written by ``datasets.Dataset.save_to_disk``.
- a folder: every file above inside it (sub-folders included, hidden names skipped), in sorted order.
- a Hub dataset id ``org/name``: ``datasets.load_dataset(id, split=corpus.split)``, streamed unless
  ``corpus.streaming`` is false.

Outside the embedded sample, a document is held out when ``crc32(cleaned text) / 2**32`` is below
``corpus.heldout_fraction``: the choice depends on the text alone, so it is the same on every run,
in every process, and while streaming.

Example:
    >>> from es_zoo.recipes import CorpusConfig
    >>> corpus = open_corpus(CorpusConfig(source="embedded"))
    >>> corpus.source_description
    'embedded ELTeC-spa sample (36 novels: 34 train, 2 held out)'
    >>> first = next(iter(corpus.documents("heldout")))
    >>> first[:20]
    'Querido tío y venera'
"""

from __future__ import annotations

import gzip
import hashlib
import json
import re
import unicodedata
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator, Optional

from es_zoo.errors import CorpusError
from es_zoo.resources import DATA_DIR

if TYPE_CHECKING:
    from es_zoo.recipes import CorpusConfig

EMBEDDED = "embedded"
EMBEDDED_FILE = DATA_DIR / "eltec-es-sample.jsonl.gz"
SPLITS = ("train", "heldout")

# Longest suffixes first, so "x.jsonl.gz" is not taken for a ".gz" of unknown kind.
_FORMATS = {
    ".jsonl.gz": "jsonl", ".jsonl": "jsonl", ".txt.gz": "txt", ".txt": "txt",
    ".parquet": "parquet", ".arrow": "arrow",
}
_SUPPORTED = ", ".join(_FORMATS)
_HUB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*$")
_HOW_TO_LOCAL = (
    f"To use local data instead, set corpus.source to an existing file ({_SUPPORTED}) or a folder "
    "of such files, or to a folder written by datasets' save_to_disk."
)

# --------------------------------------------------------------------------------------------------
# Cleaning
# --------------------------------------------------------------------------------------------------

# Every line-break convention becomes "\n" before lines are stripped.
_BREAK_CHARS = re.compile("[\r\x0b\x0c\x85\u2028\u2029]")
# Control characters (C0/C1 except tab and newline) and invisible format characters that only
# split words for a tokenizer: soft hyphen, zero-width space, word joiner, byte-order mark.
# Zero-width (non-)joiners stay: they change how some scripts and emoji render.
_DROP = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\xad\u200b\u2060\ufeff]")
_ODD_SPACE = re.compile(r"[^\S \n]")  # whitespace other than " " and "\n": tab, no-break space, ...
_SPACES = re.compile(r"[^\S\n]{2,}|[^\S \n]")
_BREAK_RUNS = re.compile(r" \n[ \n]*|\n[ \n]+")  # a newline with a space or blank lines around it


def clean_text(text: str) -> str:
    """Normalise one document the way every source is normalised before training.

    - Unicode NFC, so a decomposed "canción" (``o`` + combining acute) equals the composed one;
    - every line break (``\\r\\n``, ``\\r``, U+2028, ...) becomes ``\\n``;
    - control characters, soft hyphens, zero-width spaces and byte-order marks are dropped;
    - every run of other whitespace (tabs, no-break spaces, ...) becomes one space;
    - lines are stripped, and blank lines are removed: ``\\n`` is the one paragraph boundary (the
      embedded ELTeC sample joins paragraphs with a single ``\\n``; blank lines in a ``.txt`` file
      separate documents, so they cannot occur inside one);
    - the text is stripped.

    Example:
        >>> clean_text("  Canci\\u006f\\u0301n\\t de  cuna\\r\\n\\r\\n\\r\\nOtra   línea ")
        'Canción de cuna\\nOtra línea'
    """
    # Each substitution runs only when needed: most text is clean already, and a regex pass that
    # matches every space costs more than the rest of the pipeline together.
    if _BREAK_CHARS.search(text):
        text = _BREAK_CHARS.sub("\n", text.replace("\r\n", "\n"))
    text = _DROP.sub("", text)
    text = unicodedata.normalize("NFC", text)
    if "  " in text or _ODD_SPACE.search(text):
        text = _SPACES.sub(" ", text)
    if " \n" in text or "\n " in text or "\n\n" in text:
        text = _BREAK_RUNS.sub("\n", text)
    return text.strip()


# --------------------------------------------------------------------------------------------------
# Readers. Each yields (text, split), ``split`` None unless the source decides it (the embedded
# sample); a reader raises CorpusError naming the file and line (or row) of whatever is wrong.
# --------------------------------------------------------------------------------------------------


def _format_of(path: Path) -> Optional[str]:
    name = path.name.lower()
    for suffix, kind in _FORMATS.items():
        if name.endswith(suffix):
            return kind
    return None


def _open_binary(path: Path):
    gz = path.name.lower().endswith(".gz")
    try:
        f = gzip.open(path, "rb") if gz else open(path, "rb")
    except OSError as exc:
        raise CorpusError(f"{path}: cannot read: {exc.strerror or exc}") from None
    if gz:
        try:
            f.peek(1)  # reads the gzip header now, so a file that is not gzip fails here
        except (OSError, EOFError, zlib.error) as exc:
            f.close()
            raise CorpusError(f"{path}: not a valid gzip file ({exc})") from None
    return f


def _line_at(path: Path, start: int, relative: int) -> int:
    """The 1-based line number of line ``relative`` (1-based) of a byte range starting at ``start``.

    Only called to word an error: it counts the newlines before ``start`` (uncompressed files only).
    """
    if start <= 0:
        return relative
    before = 0
    with open(path, "rb") as f:
        left = start
        while left > 0:
            chunk = f.read(min(left, 1 << 24))
            if not chunk:
                break
            before += chunk.count(b"\n")
            left -= len(chunk)
    return before + relative


def split_long(text: str, limit: int | None) -> list[str]:
    """``text`` cut into pieces of at most ``limit`` characters, each cut at the last line break before
    the limit (else the last space, else at the limit); ``[text]`` when it is short enough.

    Example:
        >>> split_long("uno dos\ntres cuatro", 12)
        ['uno dos', 'tres cuatro']
    """
    if limit is None or len(text) <= limit:
        return [text]
    pieces, start = [], 0
    while len(text) - start > limit:
        cut = text.rfind("\n", start + 1, start + limit + 1)
        if cut <= start:
            cut = text.rfind(" ", start + 1, start + limit + 1)
        if cut <= start:
            cut = start + limit
        piece = text[start:cut].strip()
        if piece:
            pieces.append(piece)
        start = cut
    piece = text[start:].strip()
    if piece:
        pieces.append(piece)
    return pieces


# A record (a JSON line, a line of a .txt file) longer than this is not text a person wrote: it is refused
# with its line number instead of being read into memory whole.
MAX_LINE_BYTES = 64 << 20


def _lines(path: Path, start: int = 0, end: int | None = None) -> Iterator[tuple[int, str]]:
    """(1-based line number, decoded line) with read and decode errors turned into CorpusError.

    With ``start``/``end`` (uncompressed files, both at line starts) only the lines beginning in
    ``[start, end)`` are read; line numbers stay those of the whole file. Lines over
    ``MAX_LINE_BYTES`` are refused (memory stays bounded whatever the file holds).
    """
    number = 0
    with _open_binary(path) as f:
        if start:
            f.seek(start)
        pos = start
        try:
            while True:
                raw = f.readline(MAX_LINE_BYTES + 1)
                if not raw:
                    return
                number += 1
                if end is not None and pos >= end:
                    return
                pos += len(raw)
                if len(raw) > MAX_LINE_BYTES:
                    raise CorpusError(f"{path}:{_line_at(path, start, number)}: a line longer than "
                                      f"{MAX_LINE_BYTES >> 20} MB; expected text with line breaks (JSON lines: "
                                      "one document per line)")
                try:
                    # A byte-order mark (common in files saved on Windows) would break json.loads.
                    yield number, raw.decode("utf-8-sig" if number == 1 and start == 0 else "utf-8")
                except UnicodeDecodeError as exc:
                    raise CorpusError(
                        f"{path}:{_line_at(path, start, number)}: not UTF-8 text (byte {raw[exc.start]:#04x} at "
                        f"column {exc.start + 1}); convert the file to UTF-8"
                    ) from None
        except (OSError, EOFError, zlib.error) as exc:
            # A truncated or corrupt gzip stream fails part-way: say where reading stopped.
            what = "not a valid gzip file" if path.name.lower().endswith(".gz") else "cannot read"
            raise CorpusError(f"{path}: {what} (reading stopped after line {number}: {exc})") from None


def _read_txt(path: Path, start: int = 0, end: int | None = None) -> Iterator[tuple[str, None]]:
    block: list[str] = []
    for _, line in _lines(path, start, end):
        if line.strip():
            block.append(line)
        elif block:
            yield "".join(block), None
            block = []
    if block:
        yield "".join(block), None


def _read_jsonl(path: Path, field: str, split_field: Optional[str] = None, start: int = 0,
                end: int | None = None):
    expected = f"expected a JSON object with a string field '{field}'"
    for number, line in _lines(path, start, end):
        if not line.strip():
            continue  # blank lines (a trailing newline, an empty last line) are harmless
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise CorpusError(f"{path}:{_line_at(path, start, number)}: {expected}; not valid JSON ({exc.msg})") from None
        if not isinstance(record, dict):
            raise CorpusError(f"{path}:{_line_at(path, start, number)}: {expected}; got {type(record).__name__}")
        text = record.get(field)
        if not isinstance(text, str):
            keys = ", ".join(map(repr, list(record)[:10])) or "none"
            got = "it is missing" if field not in record else f"it is {type(text).__name__}"
            raise CorpusError(
                f"{path}:{_line_at(path, start, number)}: {expected}; {got} (keys: {keys}). "
                "Set corpus.text_field to the field that holds the text."
            )
        split = None
        if split_field is not None:
            split = record.get(split_field)
            if split not in SPLITS:
                raise CorpusError(f"{path}:{_line_at(path, start, number)}: expected '{split_field}' to be one of {SPLITS}")
        yield text, split


def _check_column(names: list[str], field: str, where: str) -> None:
    if field not in names:
        raise CorpusError(
            f"{where}: no column '{field}'; its columns are: {', '.join(names) or 'none'}. "
            "Set corpus.text_field to the column that holds the text."
        )


def _open_parquet(path: Path, field: str):
    # pyarrow (a dependency of datasets) streams row groups straight from the file;
    # datasets.Dataset.from_parquet would first copy the whole file into the datasets cache.
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(path)
    except Exception as exc:  # pyarrow raises ArrowInvalid, OSError, ... for a bad file
        raise CorpusError(f"{path}: not a readable parquet file ({exc})") from None
    _check_column(pf.schema_arrow.names, field, str(path))
    return pf


def _read_parquet(path: Path, field: str, groups: range | None = None):
    pf = _open_parquet(path, field)
    groups = range(pf.num_row_groups) if groups is None else groups
    row = sum(pf.metadata.row_group(g).num_rows for g in range(groups.start)) if len(groups) else 0
    if not len(groups):
        return
    for batch in pf.iter_batches(columns=[field], batch_size=1024, row_groups=list(groups)):
        for text in batch.column(0).to_pylist():
            row += 1
            if not isinstance(text, str):
                raise CorpusError(f"{path}: row {row}: expected a string in column '{field}', got {text!r:.80}")
            yield text, None


def _rows(dataset: Any, field: str, where: str, first_row: int = 0):
    """Rows of a datasets Dataset / IterableDataset; ``where`` names it in messages."""
    if dataset.column_names is None:  # a stream that does not declare its columns: check each row
        texts = (example.get(field) for example in dataset)
    else:
        texts = (t for batch in dataset.select_columns([field]).iter(batch_size=1024) for t in batch[field])
    for row, text in enumerate(texts, first_row + 1):
        if not isinstance(text, str):
            raise CorpusError(
                f"{where}: row {row}: expected a string in column '{field}', got {text!r:.80}. "
                "Set corpus.text_field to the column that holds the text."
            )
        yield text, None


def _load_arrow(path: Path, field: str):
    import datasets

    try:
        ds = datasets.Dataset.from_file(str(path))  # memory-mapped, nothing is copied
    except Exception as exc:
        raise CorpusError(f"{path}: not a readable Arrow file ({exc})") from None
    _check_column(ds.column_names, field, str(path))
    return ds


def _load_saved(folder: Path, field: str, split: str):
    import datasets

    try:
        ds = datasets.load_from_disk(str(folder))
    except Exception as exc:
        raise CorpusError(f"{folder}: not a readable save_to_disk folder ({exc})") from None
    where = str(folder)
    if isinstance(ds, datasets.DatasetDict):
        if split not in ds:
            raise CorpusError(
                f"{folder}: no split '{split}'; its splits are: {', '.join(ds)}. Set corpus.split."
            )
        ds, where = ds[split], f"{folder} (split '{split}')"
    _check_column(ds.column_names, field, where)
    return ds, where


def _is_saved_dataset(folder: Path) -> bool:
    return (folder / "dataset_dict.json").is_file() or (
        (folder / "state.json").is_file() and (folder / "dataset_info.json").is_file()
    )


def _load_hub(name: str, cfg: "CorpusConfig"):
    import datasets

    streaming = True if cfg.streaming is None else cfg.streaming
    try:
        ds = datasets.load_dataset(name, cfg.config_name, split=cfg.split, streaming=streaming)
    except Exception as exc:  # offline, unreachable, no such repo, gated, no such split: all reported
        reason = f"{type(exc).__name__}: {exc}".strip()
        raise CorpusError(
            f"corpus.source '{name}' is not a local path, and it could not be loaded as a Hugging Face "
            f"Hub dataset (split '{cfg.split}'): {reason}. Check the id, the network and "
            f"HF_HUB_OFFLINE / HF_DATASETS_OFFLINE. {_HOW_TO_LOCAL}"
        ) from None
    config = f", config '{cfg.config_name}'" if cfg.config_name else ""
    where = f"Hub dataset {name} (split '{cfg.split}'{config})"
    columns = getattr(ds, "column_names", None)  # None when a stream does not declare its features
    if columns is not None:
        _check_column(list(columns), cfg.text_field, where)
    return ds, where


# --------------------------------------------------------------------------------------------------
# The corpus
# --------------------------------------------------------------------------------------------------


@dataclass
class CorpusStats:
    """What one pass over a split saw: documents kept, their characters, and documents dropped."""

    documents: int = 0
    characters: int = 0
    duplicates: int = 0
    too_short: int = 0


class Corpus:
    """Cleaned documents from one source, split into ``train`` and ``heldout``.

    The source is checked when the corpus is made (a missing path, an empty file or folder, an
    unsupported extension, a missing column or an unreachable Hub id raise
    :class:`~es_zoo.errors.CorpusError` at once); the text is read lazily by :meth:`documents`.
    A Corpus holds no open files, so it can be iterated many times and pickled into data-loader
    workers.

    Example:
        >>> from es_zoo.recipes import CorpusConfig
        >>> corpus = Corpus(CorpusConfig(source="embedded", max_documents=2))
        >>> len(list(corpus.documents("train"))), corpus.stats["train"].documents
        (2, 2)
    """

    def __init__(self, cfg: "CorpusConfig") -> None:
        self.cfg = cfg
        self.stats: dict[str, CorpusStats] = {s: CorpusStats() for s in SPLITS}
        # ("jsonl" | "txt" | "parquet", path) or ("dataset", (dataset, where)); plain data, so picklable.
        self._parts: list[tuple[str, Any]] = []
        self._embedded = cfg.source == EMBEDDED
        if cfg.max_documents is not None and cfg.max_documents < 1:
            raise CorpusError(
                f"corpus.max_documents must be at least 1 (or null for all), got {cfg.max_documents}"
            )
        if self._embedded:
            self._open_embedded()
            return
        path = Path(cfg.source).expanduser()
        if path.is_dir():
            self._open_folder(path)
        elif path.exists():
            self._open_file(path)
        elif _HUB_ID.match(cfg.source) and _format_of(path) is None and not cfg.source.startswith("."):
            ds, where = _load_hub(cfg.source, cfg)
            self._parts.append(("dataset", (ds, where)))
            self.source_description = where
        else:
            raise CorpusError(
                f"corpus.source '{cfg.source}': no such file or folder"
                f" (relative paths start from {Path.cwd()}). Use 'embedded', an existing path, or a "
                "Hub dataset id such as 'org/name'."
            )

    def _open_embedded(self) -> None:
        if not EMBEDDED_FILE.is_file():
            raise CorpusError(
                f"{EMBEDDED_FILE}: the embedded corpus is missing from this installation; "
                "reinstall es-zoo or rebuild it with scripts/make_embedded_corpus.py"
            )
        counts = dict.fromkeys(SPLITS, 0)
        for _, split in _read_jsonl(EMBEDDED_FILE, "text", split_field="split"):
            counts[split] += 1
        self._parts.append(("embedded", EMBEDDED_FILE))
        self.source_description = (
            f"embedded ELTeC-spa sample ({sum(counts.values())} novels: {counts['train']} train, "
            f"{counts['heldout']} held out)"
        )

    def _open_file(self, path: Path) -> None:
        kind = _format_of(path)
        if kind is None:
            raise CorpusError(
                f"{path}: unsupported file type; expected one of {_SUPPORTED}, or a folder of such files"
            )
        self._add_file(path, kind)
        self.source_description = str(path)

    def _open_folder(self, folder: Path) -> None:
        self.source_description = str(folder)
        if _is_saved_dataset(folder):
            ds, where = _load_saved(folder, self.cfg.text_field, self.cfg.split)
            self._parts.append(("dataset", (ds, where)))
            self.source_description = where
            return
        files = sorted(
            p for p in folder.rglob("*")
            if p.is_file() and _format_of(p)
            and not any(part.startswith(".") for part in p.relative_to(folder).parts)
        )
        if not files:
            raise CorpusError(f"{folder}: empty corpus folder; it holds no {_SUPPORTED} files")
        for p in files:
            self._add_file(p, _format_of(p))
        self.source_description = f"{folder} ({len(files)} files)"

    def _add_file(self, path: Path, kind: str) -> None:
        try:
            size = path.stat().st_size
        except OSError as exc:
            raise CorpusError(f"{path}: cannot read: {exc.strerror or exc}") from None
        if size == 0:
            raise CorpusError(f"{path}: empty file; a corpus file must hold at least one document")
        if kind in ("txt", "jsonl"):
            _open_binary(path).close()  # fail now on permissions or a bad gzip header, not mid-run
            self._parts.append((kind, path))
        elif kind == "parquet":
            _open_parquet(path, self.cfg.text_field)  # reads only the footer: the schema and row groups
            self._parts.append((kind, path))
        else:
            self._parts.append(("dataset", (_load_arrow(path, self.cfg.text_field), str(path))))

    def _raw(self) -> Iterator[tuple[str, Optional[str]]]:
        for i in range(len(self._parts)):
            yield from self.read_unit(Unit(i))

    # ----------------------------------------------------------------------------------------------
    # Units: how `es-zoo prepare` splits the corpus into pieces that tasks read independently
    # ----------------------------------------------------------------------------------------------

    def parts(self) -> list[dict]:
        """What the corpus is made of, in reading order: one record per file (kind, path, bytes,
        modification time) or dataset (kind, where). It identifies the corpus in a prepared folder's
        fingerprint and lets a preparation task check that it reads what was planned."""
        out = []
        for kind, what in self._parts:
            if kind == "dataset":
                out.append({"kind": "dataset", "where": what[1], "rows": _dataset_rows(what[0])})
                continue
            st = Path(what).stat()
            out.append({"kind": kind, "path": str(what), "bytes": st.st_size, "mtime_ns": st.st_mtime_ns})
        return out

    def units(self, chunk_bytes: int = 256 << 20) -> list["Unit"]:
        """Split the corpus into units of about ``chunk_bytes`` of text, in reading order.

        Uncompressed ``.txt`` and ``.jsonl`` files are cut at document (``.txt``: after a blank line)
        and line (``.jsonl``) starts; parquet files at row groups; datasets at rows; a streamed Hub
        dataset at its own shards (its data files). Compressed files are one unit each (gzip cannot
        seek). Reading every unit in order gives exactly the documents of the whole corpus, in order.

        Example:
            >>> from es_zoo.recipes import CorpusConfig
            >>> [u.part for u in Corpus(CorpusConfig(source="embedded")).units()]
            [0]
        """
        if chunk_bytes < 1:
            raise CorpusError(f"chunk_bytes must be >= 1, got {chunk_bytes}")
        units: list[Unit] = []
        for i, (kind, what) in enumerate(self._parts):
            if kind in ("txt", "jsonl") and not str(what).lower().endswith(".gz"):
                size = Path(what).stat().st_size
                cuts = [0]
                while cuts[-1] + chunk_bytes < size:
                    nxt = _next_record_start(Path(what), cuts[-1] + chunk_bytes, by_document=kind == "txt")
                    if nxt is None or nxt >= size:
                        break
                    cuts.append(nxt)
                cuts.append(size)
                units += [Unit(i, a, b, b - a) for a, b in zip(cuts, cuts[1:])]
            elif kind in ("txt", "jsonl", "embedded"):
                units.append(Unit(i, size=_gzip_text_bytes(Path(what))))
            elif kind == "parquet":
                meta = _open_parquet(Path(what), self.cfg.text_field).metadata
                start = acc = 0
                for g in range(meta.num_row_groups):
                    acc += meta.row_group(g).total_byte_size
                    if acc >= chunk_bytes or g == meta.num_row_groups - 1:
                        units.append(Unit(i, start, g + 1, acc))
                        start, acc = g + 1, 0
            else:
                ds = what[0]
                rows = _dataset_rows(ds)
                if rows is None:  # a stream: its own shards (data files) are the units
                    shards = int(getattr(ds, "num_shards", None) or getattr(ds, "n_shards", 1) or 1)
                    units += [Unit(i, k, k + 1, 0) for k in range(shards)]
                    continue
                nbytes = int(getattr(getattr(ds, "data", None), "nbytes", 0) or 0)
                per_row = max(1, nbytes // max(1, rows))
                step = max(1, chunk_bytes // per_row)
                units += [Unit(i, a, min(rows, a + step), (min(rows, a + step) - a) * per_row)
                          for a in range(0, rows, step)]
        return units

    def read_unit(self, unit: "Unit") -> Iterator[tuple[str, Optional[str]]]:
        """The raw documents of one unit, ``(text, split)`` (split None unless the source fixes it)."""
        kind, what = self._parts[unit.part]
        field = self.cfg.text_field
        end = None if unit.end < 0 else unit.end
        if kind == "embedded":
            yield from _read_jsonl(what, "text", split_field="split")
        elif kind == "jsonl":
            yield from _read_jsonl(what, field, start=unit.start, end=end)
        elif kind == "txt":
            yield from _read_txt(what, start=unit.start, end=end)
        elif kind == "parquet":
            groups = None if end is None else range(unit.start, end)
            yield from _read_parquet(what, field, groups)
        else:
            ds, where = what
            if _dataset_rows(ds) is None:
                if end is not None:
                    shards = int(getattr(ds, "num_shards", None) or getattr(ds, "n_shards", 1) or 1)
                    ds = ds.shard(num_shards=shards, index=unit.start) if shards > 1 else ds
                    where = f"{where}, shard {unit.start}"
                yield from _rows(ds, field, where)
            else:
                if end is not None or unit.start:
                    ds = ds.select(range(unit.start, _dataset_rows(ds) if end is None else end))
                yield from _rows(ds, field, where, first_row=unit.start)

    def cleaned(self, unit: "Unit", stats: Optional[dict] = None) -> Iterator[tuple[str, str]]:
        """``(cleaned text, split)`` of the documents of ``unit`` that are at least ``min_chars`` long,
        longer ones cut at ``max_document_chars`` (``stats`` counts ``read``, ``too_short`` and ``cut``:
        the documents cut into pieces); what `es-zoo prepare` reads."""
        limit = self.cfg.max_document_chars
        for raw, fixed in self.read_unit(unit):
            text = clean_text(raw)
            if stats is not None:
                stats["read"] = stats.get("read", 0) + 1
            if len(text) < self.cfg.min_chars:
                if stats is not None:
                    stats["too_short"] = stats.get("too_short", 0) + 1
                continue
            pieces = split_long(text, limit)
            if len(pieces) > 1 and stats is not None:
                stats["cut"] = stats.get("cut", 0) + 1
            for piece in pieces:
                yield piece, fixed if self._embedded else self._split_of(piece)

    def _split_of(self, text: str) -> str:
        held = zlib.crc32(text.encode("utf-8")) / 2**32 < self.cfg.heldout_fraction
        return "heldout" if held else "train"

    def documents(self, split: str) -> Iterator[str]:
        """Yield the cleaned documents of ``split`` ("train" or "heldout"), in source order.

        Documents shorter than ``min_chars`` after cleaning are dropped, and with ``dedup`` so are
        repeats of an earlier document; :attr:`stats` counts both. At most ``max_documents``
        documents are yielded. A split that yields nothing raises CorpusError saying why.

        Example:
            >>> from es_zoo.recipes import CorpusConfig
            >>> corpus = open_corpus(CorpusConfig(source="embedded"))
            >>> sum(1 for _ in corpus.documents("heldout"))
            2
        """
        if split not in SPLITS:  # checked here, not on the first next(), so a typo fails at the call
            raise CorpusError(f"unknown corpus split '{split}'; expected one of {', '.join(SPLITS)}")
        return self._documents(split)

    def _documents(self, split: str) -> Iterator[str]:
        cfg = self.cfg
        stats = self.stats[split] = CorpusStats()
        seen: set[bytes] = set()
        read = other = 0
        pieces = ((piece, fixed) for raw, fixed in self._raw() for piece in split_long(clean_text(raw),
                                                                                     cfg.max_document_chars))
        for text, fixed_split in pieces:
            read += 1
            doc_split = fixed_split if self._embedded else self._split_of(text)
            if doc_split != split:
                other += 1
                continue
            if len(text) < cfg.min_chars:
                stats.too_short += 1
                continue
            if cfg.dedup:
                digest = hashlib.blake2b(text.encode("utf-8"), digest_size=16).digest()
                if digest in seen:
                    stats.duplicates += 1
                    continue
                seen.add(digest)
            stats.documents += 1
            stats.characters += len(text)
            yield text
            if cfg.max_documents is not None and stats.documents >= cfg.max_documents:
                return
        if stats.documents == 0:
            raise CorpusError(self._why_empty(split, read, other, stats))

    def _why_empty(self, split: str, read: int, other: int, stats: CorpusStats) -> str:
        head = f"corpus {self.source_description}: the '{split}' split has no documents"
        if read == 0:
            return f"{head}: the source holds no documents"
        if other == read:
            if split == "heldout" and not self._embedded:
                return (
                    f"{head}: none of its {read} documents was held out (corpus.heldout_fraction is "
                    f"{self.cfg.heldout_fraction}); raise heldout_fraction or add documents"
                )
            return f"{head}: all {read} documents fell in the other split"
        reasons = []
        if stats.too_short:
            reasons.append(
                f"{stats.too_short} shorter than corpus.min_chars={self.cfg.min_chars} after cleaning"
            )
        if stats.duplicates:
            reasons.append(f"{stats.duplicates} duplicates")
        return f"{head}: of its {read - other} documents, " + " and ".join(reasons) + " were dropped"



# --------------------------------------------------------------------------------------------------
# Units (see Corpus.units)
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Unit:
    """A piece of the corpus that one preparation task reads.

    ``part`` is the index of a file (or dataset) among the corpus's parts; ``start``/``end`` a byte
    range (``.txt``, ``.jsonl``), a row-group range (parquet), a row range (datasets) or a shard index
    (streamed datasets); ``end`` -1 means "to the end". ``size`` estimates its bytes of text (0: unknown).
    """

    part: int
    start: int = 0
    end: int = -1
    size: int = 0

    def to_dict(self) -> dict:
        return {"part": self.part, "start": self.start, "end": self.end, "size": self.size}

    @classmethod
    def from_dict(cls, d: dict) -> "Unit":
        return cls(int(d["part"]), int(d["start"]), int(d["end"]), int(d["size"]))


def _next_record_start(path: Path, position: int, by_document: bool) -> Optional[int]:
    """The first record start at or after ``position``: a line start (``.jsonl``), or the start of a
    document (``.txt``: a non-blank line after a blank one). None if there is none."""
    with open(path, "rb") as f:
        f.seek(max(0, position - 1))
        if position > 0 and f.read(1) != b"\n":
            f.readline()  # the rest of the line that ``position`` falls in
        pos = f.tell()
        if not by_document:
            return pos
        # Not knowing whether the line before ``pos`` was blank, do not cut there: cut at the next
        # line that follows a blank one (a document boundary for certain).
        previous_blank = False
        for raw in f:
            blank = not raw.decode("utf-8", errors="replace").strip()
            if previous_blank and not blank:
                return pos
            previous_blank = blank
            pos += len(raw)
    return None


def _gzip_text_bytes(path: Path) -> int:
    """Estimated uncompressed size of a gzip file (its compression ratio over the first 4 MB)."""
    size = path.stat().st_size
    if not path.name.lower().endswith(".gz"):
        return size
    try:
        with gzip.open(path, "rb") as f:
            head = f.read(4 << 20)
            consumed = f.fileobj.tell() if hasattr(f, "fileobj") and f.fileobj else size  # type: ignore[attr-defined]
    except (OSError, EOFError, zlib.error):
        return size
    return int(size * len(head) / max(1, consumed)) if consumed else size


def _dataset_rows(ds: Any) -> Optional[int]:
    """Rows of a datasets ``Dataset`` (None for a stream, whose length is unknown)."""
    try:
        return len(ds)
    except TypeError:
        return None


def open_corpus(cfg: "CorpusConfig") -> Corpus:
    """Open the corpus a recipe names; fails at once if the source cannot be used.

    Example:
        >>> from es_zoo.recipes import CorpusConfig
        >>> open_corpus(CorpusConfig(source="embedded")).source_description
        'embedded ELTeC-spa sample (36 novels: 34 train, 2 held out)'
    """
    return Corpus(cfg)
