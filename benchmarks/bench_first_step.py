"""Seconds from launching ``es-zoo reproduce beto --data DIR`` to its first optimizer step, for prepared
folders of different sizes: the start-up cost must not grow with the corpus.

For each prepared folder (``--data``, repeatable; or, by default, BETO paper-preset folders prepared here
from the 100 MB and 1 GB synthetic corpora of ``make_synthetic_corpus.py``, with the same bounded tokenizer
sample as ``bench_prepare.py``), the script launches, ``--repeats`` times::

    es-zoo reproduce beto --preset paper --data DIR --output-dir RUN --max-steps 1 --overwrite \\
        training.phases=[{max_steps: 1, seq_len: 128, global_batch_size: 8, ...}] training.log_every=1 ...

as a subprocess and waits until ``RUN/logs/train.jsonl`` holds the record of step 1; the time from launch
to that record's write (the file's modification time) is the figure. The JSONL record's ``elapsed_s``
(loop start to the end of step 1) splits it into start-up (imports, recipe, fingerprint check, opening
the memory-mapped shards, the sampler, building BERT-base) and the step itself. The process is then
stopped (its held-out evaluation and export are not part of the question). The model is the paper's
BERT-base; the batch is 8 x 128 so that one step takes seconds on a CPU (the start-up does not depend on
the batch); ``training.mixed_precision`` is ``no`` on a machine without CUDA.

One untimed launch comes first (``--no-warm-launch`` skips it): a Python start after a pause reads its
libraries from disk, which would be charged to the first folder. The folders' token files may be in the page cache (they were just written or read); the script does not
drop caches (a shared machine). Shards are memory-mapped and only the rows of the first batch are read, so
a cold cache adds a few random reads, not a pass over the corpus.

    python benchmarks/bench_first_step.py                                    # prepares 100 MB and 1 GB folders first
    python benchmarks/bench_first_step.py --data data/beto-a --data data/beto-b --repeats 5 --json first.json
    python benchmarks/bench_first_step.py --size-mb 20 --repeats 2           # smoke
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))


def es_zoo_command() -> list[str]:
    exe = shutil.which("es-zoo", path=os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]))
    return [exe] if exe else [sys.executable, "-m", "es_zoo"]


def prepare_folder(size_mb: float, root: Path, tokenizer_chars: int, workers: int) -> Path:
    from bench_prepare import corpus_for

    corpus, _ = corpus_for(size_mb, root)
    out = root / "prepared" / f"beto-{size_mb:g}mb-first-step"
    if (out / "manifest.json").is_file():
        return out
    chunk = max(1, round(size_mb / 8))
    cmd = es_zoo_command() + ["prepare", "beto", "--preset", "paper", "--corpus", str(corpus), "--output", str(out),
                              "--workers", str(workers), "--chunk-mb", str(chunk), "--overwrite",
                              f"tokenizer.max_training_chars={tokenizer_chars}"]
    print(f"preparing {out} ...", flush=True)
    subprocess.run(cmd, check=True, cwd=REPO)
    return out


def first_step(data: Path, run: Path, overrides: list[str], timeout: float) -> dict:
    log = run / "logs" / "train.jsonl"
    shutil.rmtree(run, ignore_errors=True)
    run.parent.mkdir(parents=True, exist_ok=True)
    cmd = es_zoo_command() + ["reproduce", "beto", "--preset", "paper", "--data", str(data), "--output-dir", str(run),
                              "--max-steps", "1", "--overwrite", *overrides]
    out = open(run.parent / f"{run.name}.out", "w")
    launched = time.time()
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    record = None
    try:
        while time.time() - launched < timeout:
            if log.is_file():
                lines = [json.loads(x) for x in log.read_text().splitlines() if x.strip()]
                if lines and lines[0].get("step", 0) >= 1:
                    record = lines[0]
                    written = log.stat().st_mtime_ns / 1e9
                    break
            if proc.poll() is not None:
                break
            time.sleep(0.02)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)  # our own process group (start_new_session)
        proc.wait()
        out.close()
    if record is None:
        tail = (run.parent / f"{run.name}.out").read_text()[-3000:]
        raise SystemExit(f"no step-1 record in {log} (exit {proc.returncode}); the command printed:\n{tail}")
    total = written - launched
    return {"seconds_to_first_step": total, "loop_elapsed_s": record["elapsed_s"],
            "startup_s": total - record["elapsed_s"], "loss": record["loss"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", action="append", type=Path, default=[], help="a prepared BETO folder (repeatable)")
    ap.add_argument("--size-mb", default="100,1000",
                    help="without --data: prepare BETO folders from synthetic corpora of these sizes [100,1000]")
    ap.add_argument("--root", type=Path, default=Path("/tmp/es-zoo-bench-prepare"))
    ap.add_argument("--tokenizer-chars", type=int, default=20_000_000)
    ap.add_argument("--workers", type=int, default=2, help="prepare --workers for folders made here")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--no-warm-launch", action="store_true", help="skip the untimed launch before the timed ones")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--timeout", type=float, default=900.0, help="seconds to wait for one first step")
    ap.add_argument("--set", action="append", default=[], help="another recipe override for the runs (repeatable)")
    ap.add_argument("--json", default=None)
    args = ap.parse_args()

    import torch

    folders = args.data or [prepare_folder(float(s), args.root, args.tokenizer_chars, args.workers)
                            for s in args.size_mb.split(",")]
    precision = "bf16" if torch.cuda.is_available() else repr("no")
    overrides = [f"training.phases=[{{max_steps: 1, seq_len: 128, global_batch_size: {args.batch}, "
                 f"micro_batch_size: {args.batch}, max_predictions: 20}}]",
                 f"training.micro_batch_size={args.batch}", "training.warmup_steps=0", "training.log_every=1",
                 f"training.mixed_precision={precision}", "glues.runs=[]", *args.set]
    rows = []
    if args.repeats > 0 and not args.no_warm_launch:
        # One untimed launch first: the first Python start after a while reads its libraries from disk, and
        # that would be charged to whichever folder came first.
        first = Path(folders[0])
        budget = json.loads((first / "manifest.json").read_text())["sample"]["budget_chars"]
        got = first_step(first, args.root / "first-step-runs" / "warm-launch",
                         overrides + [f"tokenizer.max_training_chars={'null' if budget is None else budget}"], args.timeout)
        print(f"(untimed warm-up launch: {got['seconds_to_first_step']:.2f} s)", flush=True)
    for data in folders:
        manifest = json.loads((Path(data) / "manifest.json").read_text())
        tokens = manifest["splits"]["train"]["tokens"]
        disk = sum(p.stat().st_size for p in Path(data).rglob("*.bin"))
        # the folder's tokenizer sample is part of its fingerprint: run with the budget it was prepared with
        budget = manifest["sample"]["budget_chars"]
        mine = overrides + [f"tokenizer.max_training_chars={'null' if budget is None else budget}"]
        runs = []
        for i in range(args.repeats):
            got = first_step(Path(data), args.root / "first-step-runs" / f"{Path(data).name}-{i}", mine, args.timeout)
            runs.append(got)
            print(f"{data}: launch -> step 1 in {got['seconds_to_first_step']:.2f} s "
                  f"(start-up {got['startup_s']:.2f} s, loop to the end of step 1 {got['loop_elapsed_s']:.2f} s)", flush=True)
        rows.append({"data": str(data), "train_tokens": tokens, "token_bytes": disk, "runs": runs,
                     "median_s": statistics.median(r["seconds_to_first_step"] for r in runs),
                     "median_startup_s": statistics.median(r["startup_s"] for r in runs)})
    print(f"\n{'prepared folder':48}{'train tokens':>15}{'token files':>13}{'to step 1 (median)':>20}{'start-up':>10}")
    for r in rows:
        print(f"{Path(r['data']).name:48}{r['train_tokens']:>15,}{r['token_bytes'] / 1e6:>10,.0f} MB"
              f"{r['median_s']:>18.2f} s{r['median_startup_s']:>8.2f} s")
    if len(rows) > 1:
        small, large = min(rows, key=lambda r: r["train_tokens"]), max(rows, key=lambda r: r["train_tokens"])
        print(f"largest / smallest folder: {large['train_tokens'] / small['train_tokens']:.1f}x the tokens, "
              f"{large['median_s'] / small['median_s']:.2f}x the time to the first step")
    if args.json:
        import platform

        Path(args.json).write_text(json.dumps({"benchmark": "bench_first_step", "python": platform.python_version(),
                                               "torch": torch.__version__, "cuda": torch.cuda.is_available(),
                                               "overrides": overrides, "folders": rows}, indent=2))
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
