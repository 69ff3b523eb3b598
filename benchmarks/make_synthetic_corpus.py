"""Write a synthetic Spanish pretraining corpus of a requested size from the embedded ELTeC novels.

The 36 novels of ``es_zoo/data/eltec-es-sample.jsonl.gz`` (about 7.8 M characters) are cut into their
paragraphs; every pass over the corpus shuffles all paragraphs (a fixed seed per pass) and regroups them
into documents whose target length is drawn from a log-normal distribution (median 2,000 characters,
mean about 3,300, clipped to 300-60,000; at least two paragraphs each, so documents of different passes
practically never coincide and exact deduplication keeps almost everything). Documents are written as
``{"id": ..., "text": ...}`` lines into several ``part-NNNNN.jsonl`` files of about equal size until the
requested number of bytes is reached. The output is a function of ``--size-mb``, ``--files`` and
``--seed`` only: the same command writes byte-identical files on any machine.

The text is real Spanish (19th- and early-20th-century prose), so tokenizers and tokens per character
behave as on real text; what a synthetic corpus cannot reproduce is the vocabulary growth of a large
diverse corpus (every pass repeats the same 7.8 M characters), which matters for the tokenizer's
vocabulary, not for the cost of reading, hashing, deduplicating and tokenizing that the preparation
benchmarks measure.

    python benchmarks/make_synthetic_corpus.py --output /tmp/corpus-1g                 # 1 GB (10^9 bytes)
    python benchmarks/make_synthetic_corpus.py --output /tmp/corpus-100m --size-mb 100
"""

from __future__ import annotations

import argparse
import gzip
import json
import math
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
EMBEDDED = REPO / "es_zoo" / "data" / "eltec-es-sample.jsonl.gz"
MB = 10**6


def paragraphs() -> list[str]:
    out = []
    with gzip.open(EMBEDDED, "rt", encoding="utf-8") as fh:
        for line in fh:
            out += [p.strip() for p in json.loads(line)["text"].split("\n") if p.strip()]
    return out


def documents(paras: list[str], seed: int):
    """Endless documents: each pass shuffles the paragraphs and regroups them (see the module doc)."""
    lengths = np.array([len(p) + 1 for p in paras])
    for pass_no in range(10**9):
        rng = np.random.default_rng([seed, pass_no])
        order = rng.permutation(len(paras))
        targets = np.clip(rng.lognormal(mean=math.log(2000), sigma=1.0, size=len(paras)), 300, 60_000)
        i, t = 0, 0
        while i < len(order):
            want, n, size = targets[t], 0, 0
            t += 1
            while i + n < len(order) and (n < 2 or size < want):
                size += lengths[order[i + n]]
                n += 1
            yield pass_no, "\n".join(paras[j] for j in order[i:i + n])
            i += n


def write_corpus(output: Path, size_mb: float, files: int | None = None, seed: int = 0) -> dict:
    total = int(size_mb * MB)
    files = files or max(4, math.ceil(size_mb / 256))
    output.mkdir(parents=True, exist_ok=True)
    for old in output.glob("part-*.jsonl"):
        old.unlink()
    per_file = math.ceil(total / files)
    paras = paragraphs()
    docs = documents(paras, seed)
    written, count, passes, text_chars, text_bytes = 0, 0, 0, 0, 0
    for f in range(files):
        limit = min(total, (f + 1) * per_file)
        with open(output / f"part-{f:05d}.jsonl", "w", encoding="utf-8") as fh:
            while written < limit:
                pass_no, text = next(docs)
                line = json.dumps({"id": f"synthetic-{count}", "text": text}, ensure_ascii=False) + "\n"
                fh.write(line)
                written += len(line.encode("utf-8"))
                text_chars += len(text)
                text_bytes += len(text.encode("utf-8"))
                count += 1
                passes = pass_no + 1
    return {"output": str(output), "bytes": written, "documents": count, "files": files,
            "passes_over_eltec": passes, "paragraphs": len(paras), "seed": seed,
            "text_chars": text_chars, "text_utf8_bytes": text_bytes}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--output", required=True, type=Path, help="folder for the part-NNNNN.jsonl files")
    ap.add_argument("--size-mb", type=float, default=1000.0, help="bytes to write, in 10^6 [1,000: 1 GB]")
    ap.add_argument("--files", type=int, default=None, help="number of .jsonl files [max(4, size / 256 MB)]")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    t0 = time.perf_counter()
    info = write_corpus(args.output, args.size_mb, args.files, args.seed)
    print(f"wrote {info['bytes'] / MB:,.1f} MB in {info['documents']:,} documents ({info['files']} files, "
          f"{info['passes_over_eltec']} passes over {info['paragraphs']:,} ELTeC paragraphs) to {args.output} "
          f"in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    print(json.dumps(info))


if __name__ == "__main__":
    main()
