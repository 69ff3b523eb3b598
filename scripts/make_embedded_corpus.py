"""Build es-zoo's embedded pretraining corpus from the ELTeC-spa novels.

Reads ``eltec-spa.jsonl.gz`` (one JSON per novel: ``id, title, author, year, paragraphs[]``, the
paragraph text of ELTeC-spa level1) and writes ``es_zoo/data/eltec-es-sample.jsonl.gz`` (one JSON per
novel: ``id, title, author, year, split, text``) and ``es_zoo/data/NOTICE.md``.

The selection rule (deterministic; the input order does not matter):

1. A novel's text is its paragraphs joined with ``"\\n"``. Novels longer than 400,000 characters are
   skipped, so no single long novel dominates the sample and more authors fit in it.
2. ELTeC-spa numbers its novels by time slot: SPA1xxx 1840-1859, SPA2xxx 1860-1879,
   SPA3xxx 1880-1899, SPA4xxx 1900-1920. From each slot, novels are taken in id order until the
   slot holds at least 1,900,000 characters. The four slots together give ~7.8 M characters
   (~3 MB gzipped), balanced over the 80 years the collection covers.
3. The held-out novels are the last novel taken in slot 2 and the last taken in slot 4: one realist
   and one modernist novel, ~6% of the characters. Holding out whole novels means evaluation never
   sees a paragraph of a training novel.

The output is byte-for-byte reproducible: records in id order, gzip without a timestamp or name.

Example:
    python scripts/make_embedded_corpus.py ../shared/data/corpus/eltec-spa.jsonl.gz
"""

from __future__ import annotations

import argparse
import gzip
import io
import json
import re
from pathlib import Path

MAX_NOVEL_CHARS = 400_000
SLOT_QUOTA_CHARS = 1_900_000
SLOTS = {"1": "1840-1859", "2": "1860-1879", "3": "1880-1899", "4": "1900-1920"}
HELDOUT_SLOTS = ("2", "4")

REPO = Path(__file__).resolve().parent.parent
DEFAULT_INPUT = REPO.parent / "shared" / "data" / "corpus" / "eltec-spa.jsonl.gz"
DEFAULT_OUTPUT_DIR = REPO / "es_zoo" / "data"
SAMPLE_NAME = "eltec-es-sample.jsonl.gz"

# ELTeC titles end with an edition statement ("El Escándalo : Edición ELTeC"); the NOTICE drops it.
_EDITION = re.compile(r"\s*:\s*(edici[oó]n\s+(de\s+)?eltec|eltec edition).*$", re.IGNORECASE)


def read_novels(path: Path) -> list[dict]:
    novels = []
    with gzip.open(path, "rt", encoding="utf-8") as f:
        for line in f:
            if line.strip():
                d = json.loads(line)
                novels.append({
                    "id": d["id"], "title": d["title"], "author": d["author"], "year": d["year"],
                    "text": "\n".join(d["paragraphs"]),
                })
    return sorted(novels, key=lambda n: n["id"])


def select(novels: list[dict]) -> list[dict]:
    """The sample, in id order, each novel with its ``split``."""
    chosen = []
    for slot in SLOTS:
        total, taken = 0, []
        for novel in novels:
            if novel["id"][3] != slot or len(novel["text"]) > MAX_NOVEL_CHARS:
                continue
            if total >= SLOT_QUOTA_CHARS:
                break
            taken.append(dict(novel, split="train"))
            total += len(novel["text"])
        if slot in HELDOUT_SLOTS and taken:
            taken[-1]["split"] = "heldout"
        chosen.extend(taken)
    return chosen


def write_sample(novels: list[dict], path: Path) -> None:
    keys = ("id", "title", "author", "year", "split", "text")
    buf = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buf, compresslevel=9, mtime=0) as gz:
        for n in novels:
            gz.write((json.dumps({k: n[k] for k in keys}, ensure_ascii=False) + "\n").encode("utf-8"))
    path.write_bytes(buf.getvalue())


def notice(novels: list[dict]) -> str:
    chars = {s: sum(len(n["text"]) for n in novels if n["split"] == s) for s in ("train", "heldout")}
    total = chars["train"] + chars["heldout"]
    lines = [
        "# The embedded corpus: a sample of ELTeC-spa",
        "",
        f"`{SAMPLE_NAME}` holds {len(novels)} Spanish novels ({total:,} characters) from",
        "**ELTeC-spa** (level1), the Spanish collection of the *European Literary Text Collection*",
        "made by COST Action CA16204 *Distant Reading for European Literary History*:",
        "<https://github.com/COST-ELTeC/ELTeC-spa>.",
        "",
        "- The novels (first published 1840-1920) are in the **public domain**.",
        "- The ELTeC encoding (TEI markup, metadata) is licensed **CC BY 4.0**",
        "  (<https://creativecommons.org/licenses/by/4.0/>). Credit: the ELTeC-spa editors and",
        "  COST Action CA16204 (Distant Reading for European Literary History).",
        "",
        "Changes: only the paragraph text of each TEI `<body>` (`<p>` and verse `<l>`) is kept, whitespace",
        "folded, paragraphs joined by a newline; the markup, front and back matter are dropped. `title`,",
        "`author` and `year` are copied from the ELTeC header (`year` is sometimes the date of the digital",
        "source edition, not of the first edition).",
        "",
        "Selection (see `scripts/make_embedded_corpus.py`, which rebuilds this file byte for byte):",
        f"novels of at most {MAX_NOVEL_CHARS:,} characters, in id order, until each ELTeC time slot",
        f"holds {SLOT_QUOTA_CHARS:,} characters; the last novel of slots "
        f"{' and '.join(SLOTS[s] for s in HELDOUT_SLOTS)} is held out for evaluation",
        f"({chars['heldout']:,} characters, {chars['heldout'] / total:.1%}).",
        "",
        "| id | author | title | characters | split |",
        "|---|---|---|---:|---|",
    ]
    for n in novels:
        title = _EDITION.sub("", n["title"]).strip()
        lines.append(f"| {n['id']} | {n['author']} | {title} | {len(n['text']):,} | {n['split']} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("input", nargs="?", type=Path, default=DEFAULT_INPUT, help="eltec-spa.jsonl.gz")
    parser.add_argument("--output-dir", type=Path, default=DEFAULT_OUTPUT_DIR)
    args = parser.parse_args()
    sample = select(read_novels(args.input))
    args.output_dir.mkdir(parents=True, exist_ok=True)
    write_sample(sample, args.output_dir / SAMPLE_NAME)
    (args.output_dir / "NOTICE.md").write_text(notice(sample), encoding="utf-8")
    held = [n["id"] for n in sample if n["split"] == "heldout"]
    size = (args.output_dir / SAMPLE_NAME).stat().st_size
    print(f"{len(sample)} novels, {sum(len(n['text']) for n in sample):,} characters, "
          f"{size:,} bytes gzipped; held out: {', '.join(held)}")


if __name__ == "__main__":
    main()
