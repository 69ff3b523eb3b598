"""Data preparation: ``es_zoo.prepare.prepare`` on 1 and 2 workers against datasets' load + map, with honest CPU and memory.

For each corpus size (a synthetic Spanish corpus, ``make_synthetic_corpus.py``: ELTeC paragraphs
regrouped into documents, several ``.jsonl`` files) and each family (``beto``, ``barto``, ``t5s``: their
paper presets, so their paper tokenizers and vocabulary sizes, 31,002 WordPiece / 50,264 byte-level BPE /
32,128 SentencePiece unigram, with dedup and the paper's cleaning), this script runs, one after another:

1. ``es_zoo.prepare.prepare(cfg, out, workers=W)`` for each ``--workers`` W (default 1 and 2), the whole
   pipeline (scan, dedup, tokenizer, tokenize, manifest). Two changes to the paper presets, both printed:
   the tokenizer trains on a bounded sample (``tokenizer.max_training_chars`` = ``--tokenizer-chars``,
   20 M characters by default, instead of the paper's 1 GB / 500 MB, so a run finishes in minutes; the
   extrapolation scales that stage back up), and BARTO and T5S tokenize the whole corpus
   (``corpus.max_epochs=null``: the paper schedules need far more tokens than a test corpus holds).
   ``--chunk-mb`` (default: size / 8) cuts the corpus into tasks so that two workers have work to share.
2. The anchor a user would pick: ``datasets.load_dataset("json", data_files=...)`` +
   ``Dataset.map(tokenize, batched=True, num_proc=2)`` with the tokenizer the es-zoo run just trained
   (``tokenizer(batch["text"], add_special_tokens=False)``, ids only), into a fresh cache folder.
3. At the largest size only, a *selection* run (``--selection-share``, 0.1 by default; BARTO and T5S):
   ``corpus.max_epochs=1`` with a schedule that needs about that share of the corpus's tokens, so the
   pipeline reads everything and tokenizes only the selected documents. With the full run it separates
   the cost of reading a byte from the cost of tokenizing a token (``extrapolate_prepare.py``).

Each run is a fresh process started under ``_proctree.measure``: exact CPU time of the whole process tree
(``getrusage(RUSAGE_CHILDREN)`` after every descendant, forkserver and pool workers included, has been
reaped: the measuring process is a child subreaper), the peak of the summed PSS and RSS of the live tree
(sampled from /proc every 0.2 s), the largest single process (``ru_maxrss``), and per-stage CPU from the
sampled series. ``TOKENIZERS_PARALLELISM`` is left as the user has it unless ``--tokenizers-parallelism``
says otherwise (HF tokenizers then encode a batch on every core, also inside one worker).

Prints, per family and size, a table of wall-clock, CPU seconds, tokens, tokens per CPU-second, tokens per
wall-second, peak memory, the 1 -> 2 worker speed-up (target >= 1.7x on 2 cores), the ratio of peak
memory between the smallest and the largest size (target: within 20%), and es-zoo against the anchor.

    python benchmarks/bench_prepare.py --size-mb 20 --json /tmp/prepare-smoke.json     # smoke: ~10 min on 2 cores
    python benchmarks/bench_prepare.py --size-mb 100,1000 --json prepare.json          # the measurement: hours
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

FAMILIES = ("beto", "barto", "t5s")
STAGE_LINE = re.compile(r"^\s+(scan|dedup|tokenizer|tokenize|manifest)\s+\d+ task\(s\) done in")


# ------------------------------------------------------------------------------------------ the work
def work_prepare(spec: dict) -> dict:
    """In the measured process: one ``prepare`` run; stage ends are time-stamped."""
    from es_zoo.prepare import prepare
    from es_zoo.recipes import load_recipe

    cfg = load_recipe(spec["family"], "paper", overrides=spec["overrides"])
    lines = []

    def echo(line: str) -> None:
        lines.append((time.time(), line))
        print(line, flush=True)

    started = time.time()
    manifest = prepare(cfg, spec["out"], workers=spec["workers"], chunk_bytes=spec["chunk_bytes"], overwrite=True,
                       echo=echo, command="bench_prepare")
    sel = manifest["selection"]
    return {"started": started, "ended": time.time(), "lines": lines,
            "train_tokens": manifest["splits"]["train"]["tokens"],
            "heldout_tokens": manifest["splits"]["heldout"]["tokens"],
            "train_documents": manifest["splits"]["train"]["documents"],
            "corpus_chars": sel["corpus"]["train"]["characters"] + sel["corpus"]["heldout"]["characters"],
            "corpus_documents": sel["corpus"]["train"]["documents"] + sel["corpus"]["heldout"]["documents"],
            "duplicates": sel["dropped"]["duplicates"], "tokens_per_char": sel["tokens_per_char"],
            "fraction_selected": sel["fraction_of_corpus"], "needed_tokens": sel["needed_tokens"],
            "sample_chars": manifest["sample"]["characters"], "dtype": manifest["dtype"],
            "vocab_size": manifest["tokenizer"]["vocab_size"], "tasks": manifest["tasks"],
            "disk_bytes": sum(p.stat().st_size for p in Path(spec["out"]).rglob("*.bin*") if p.is_file())}


def work_anchor(spec: dict) -> dict:
    """In the measured process: datasets' JSON loader + batched map on ``num_proc`` processes."""
    import pyarrow.compute as pc
    from datasets import load_dataset
    from transformers import AutoTokenizer

    started = time.time()
    ds = load_dataset("json", data_files=spec["files"], split="train", cache_dir=spec["cache"])
    loaded = time.time()
    tok = AutoTokenizer.from_pretrained(spec["tokenizer"])

    def tokenize(batch):
        return tok(batch["text"], add_special_tokens=False, return_attention_mask=False, return_token_type_ids=False)

    out = ds.map(tokenize, batched=True, num_proc=spec["num_proc"], remove_columns=ds.column_names)
    mapped = time.time()
    lengths = pc.list_value_length(out.data.column("input_ids"))
    tokens = int(pc.sum(lengths).as_py())
    return {"started": started, "loaded": loaded, "mapped": mapped, "ended": time.time(), "tokens": tokens,
            "documents": len(out), "load_s": loaded - started, "map_s": mapped - loaded,
            "disk_bytes": sum(p.stat().st_size for p in Path(spec["cache"]).rglob("*.arrow"))}


def _work_main(spec_path: str) -> None:
    spec = json.loads(Path(spec_path).read_text())
    result = (work_prepare if spec["kind"] in ("es-zoo", "selection") else work_anchor)(spec)
    Path(spec["result"]).write_text(json.dumps(result))


def _measure_main(spec_path: str) -> None:
    """The measuring process: runs the work in a child and reports the whole tree (see _proctree)."""
    from _proctree import measure

    spec = json.loads(Path(spec_path).read_text())
    env = dict(os.environ)
    if spec["tokenizers_parallelism"] != "default":
        env["TOKENIZERS_PARALLELISM"] = spec["tokenizers_parallelism"]
    env["PYTHONPATH"] = os.pathsep.join([str(HERE), str(REPO), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    with open(spec["log"], "w") as log:
        got = measure([sys.executable, str(Path(__file__).resolve()), "_work", spec_path], env=env,
                      stdout=log, stderr=subprocess.STDOUT)
    print(json.dumps(got))


# ------------------------------------------------------------------------------------------ the driver
def run_measured(spec: dict, root: Path) -> dict:
    name = spec["name"]
    spec_path = root / "specs" / f"{name}.json"
    spec_path.parent.mkdir(parents=True, exist_ok=True)
    spec["result"] = str(root / "specs" / f"{name}.result.json")
    spec["log"] = str(root / "logs" / f"{name}.log")
    Path(spec["log"]).parent.mkdir(parents=True, exist_ok=True)
    Path(spec["result"]).unlink(missing_ok=True)
    spec_path.write_text(json.dumps(spec))
    print(f"-- {name} ...", end="", flush=True)
    proc = subprocess.run([sys.executable, str(Path(__file__).resolve()), "_measure", str(spec_path)],
                          capture_output=True, text=True)
    if proc.returncode != 0 or not proc.stdout.strip():
        raise SystemExit(f"\n{name}: the measuring process failed:\n{proc.stderr[-3000:]}")
    measured = json.loads(proc.stdout.strip().splitlines()[-1])
    if measured["returncode"] != 0 or not Path(spec["result"]).is_file():
        tail = Path(spec["log"]).read_text()[-3000:]
        raise SystemExit(f"\n{name} failed (exit {measured['returncode']}); end of {spec['log']}:\n{tail}")
    result = json.loads(Path(spec["result"]).read_text())
    from _proctree import cpu_at

    series = measured.pop("series")
    stages = {}
    if "lines" in result:
        t_prev = next((t for t, line in result["lines"] if line.startswith("preparing")), result["started"])
        for t, line in result["lines"]:
            m = STAGE_LINE.match(line)
            if m:
                stages[m.group(1)] = {"wall_s": t - t_prev, "cpu_s": cpu_at(series, t) - cpu_at(series, t_prev)}
                t_prev = t
        result.pop("lines")
    else:
        for stage, (a, b) in {"load": ("started", "loaded"), "map": ("loaded", "mapped")}.items():
            stages[stage] = {"wall_s": result[b] - result[a],
                             "cpu_s": cpu_at(series, result[b]) - cpu_at(series, result[a])}
    tokens = result.get("tokens") or (result["train_tokens"] + result["heldout_tokens"])
    row = {**{k: spec[k] for k in ("name", "kind", "family", "size_mb", "workers")}, **measured, **result,
           "tokens": tokens, "stages": stages,
           "tokens_per_cpu_s": tokens / measured["cpu_s"], "tokens_per_wall_s": tokens / measured["wall_s"]}
    print(f" {measured['wall_s']:,.1f} s wall, {measured['cpu_s']:,.1f} s CPU, {tokens:,} tokens, "
          f"peak tree PSS {measured['peak_tree_pss_mb']:,.0f} MB", flush=True)
    return row


def corpus_for(size_mb: float, root: Path) -> tuple[Path, dict]:
    from make_synthetic_corpus import write_corpus

    folder = root / "corpora" / f"synthetic-{size_mb:g}mb"
    marker = folder / ".synthetic.json"  # dot files are not part of a corpus folder
    if marker.is_file():
        info = json.loads(marker.read_text())
        if all((folder / f"part-{i:05d}.jsonl").is_file() for i in range(info["files"])):
            return folder, info
    t0 = time.perf_counter()
    info = write_corpus(folder, size_mb)
    marker.write_text(json.dumps(info))
    print(f"wrote the {size_mb:g} MB synthetic corpus ({info['documents']:,} documents, {info['files']} files) "
          f"in {time.perf_counter() - t0:.0f} s", flush=True)
    return folder, info


def selection_phase(family: str, tokens: int, share: float) -> tuple[list[str], int]:
    """Overrides for a schedule that needs about ``share`` of ``tokens`` (corpus.max_epochs=1), and its steps."""
    from es_zoo.prepare import stream_tokens_per_sequence
    from es_zoo.recipes import load_recipe

    cfg = load_recipe(family, "paper")
    ph = cfg.training.phases[0]
    per_step = ph.global_batch_size * stream_tokens_per_sequence(cfg, ph.seq_len)
    steps = max(1, math.ceil(share * tokens / per_step))
    return ([f"training.phases=[{{max_steps: {steps}, seq_len: {ph.seq_len}, global_batch_size: {ph.global_batch_size}}}]",
             "training.warmup_steps=0", "corpus.max_epochs=1"], steps)


def environment() -> dict:
    import datasets
    import datatrove
    import tokenizers
    import transformers

    cpu = platform.processor()
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                   if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    from importlib.metadata import version

    return {"cpu": cpu, "cores": len(os.sched_getaffinity(0)), "python": platform.python_version(),
            "es-zoo": version("es-zoo"), "datatrove": getattr(datatrove, "__version__", version("datatrove")),
            "datasets": datasets.__version__, "tokenizers": tokenizers.__version__,
            "transformers": transformers.__version__, "load_average_at_start": os.getloadavg()}


def fmt_stages(stages: dict) -> str:
    return ", ".join(f"{k} {v['wall_s']:.0f}s/{v['cpu_s']:.0f}cpu" for k, v in stages.items())


def print_report(rows: list[dict], sizes: list[float], families: list[str], workers: list[int]) -> dict:
    summary: dict = {"speedup": {}, "memory_ratio": {}, "vs_anchor": {}}
    print("\nes-zoo prepare (whole pipeline) and datasets load_dataset + map, per family and corpus size")
    head = (f"{'family':7}{'size':>7} {'run':24}{'wall s':>9}{'CPU s':>9}{'tokens':>13}{'tok/CPU-s':>11}"
            f"{'tok/s':>10}{'tree PSS MB':>12}{'max proc MB':>12}")
    print(head)
    for fam in families:
        for size in sizes:
            for r in [r for r in rows if r["family"] == fam and r["size_mb"] == size]:
                if r["kind"] == "es-zoo":
                    label = f"es-zoo, {r['workers']} worker(s)"
                elif r["kind"] == "anchor":
                    label = f"datasets map, num_proc={r['workers']}"
                else:
                    label = f"es-zoo select {100 * r['fraction_selected']:.0f}%, {r['workers']}w"
                print(f"{fam:7}{size:>6g}M {label:24}{r['wall_s']:>9,.1f}{r['cpu_s']:>9,.1f}{r['tokens']:>13,}"
                      f"{r['tokens_per_cpu_s']:>11,.0f}{r['tokens_per_wall_s']:>10,.0f}{r['peak_tree_pss_mb']:>12,.0f}"
                      f"{r['max_process_rss_mb']:>12,.0f}")
                print(f"{'':15}stages: {fmt_stages(r['stages'])}")
    print()
    lo, hi = min(workers), max(workers)
    for fam in families:
        for size in sizes:
            by = {(r["kind"], r["workers"]): r for r in rows if r["family"] == fam and r["size_mb"] == size}
            if ("es-zoo", lo) in by and ("es-zoo", hi) in by and lo != hi:
                s = by[("es-zoo", lo)]["wall_s"] / by[("es-zoo", hi)]["wall_s"]
                tok_stage = [by[("es-zoo", w)]["stages"].get("tokenize", {}).get("wall_s") for w in (lo, hi)]
                st = tok_stage[0] / tok_stage[1] if all(tok_stage) else float("nan")
                summary["speedup"][f"{fam}/{size:g}"] = {"pipeline": s, "tokenize_stage": st}
                print(f"speed-up {lo} -> {hi} workers, {fam} {size:g} MB: {s:.2f}x whole pipeline, "
                      f"{st:.2f}x tokenize stage (target >= 1.7x on 2 cores)")
            anchor = by.get(("anchor", 2)) or next((v for k, v in by.items() if k[0] == "anchor"), None)
            mine = by.get(("es-zoo", hi))
            if anchor and mine:
                no_tok = mine["wall_s"] - mine["stages"].get("tokenizer", {}).get("wall_s", 0.0)
                ratio = (mine["tokens"] / no_tok) / anchor["tokens_per_wall_s"]
                summary["vs_anchor"][f"{fam}/{size:g}"] = {
                    "tokens_per_wall_s_ratio_excluding_tokenizer_training": ratio,
                    "tokens_per_cpu_s_ratio": mine["tokens_per_cpu_s"] / anchor["tokens_per_cpu_s"],
                    "peak_pss_ratio": mine["peak_tree_pss_mb"] / anchor["peak_tree_pss_mb"]}
                print(f"ratio es-zoo ({hi} workers, tokenizer training left out) / datasets map tokens/s, {fam} "
                      f"{size:g} MB: {ratio:.2f}x; per CPU-second {mine['tokens_per_cpu_s'] / anchor['tokens_per_cpu_s']:.2f}x; "
                      f"peak tree PSS {mine['peak_tree_pss_mb']:,.0f} vs {anchor['peak_tree_pss_mb']:,.0f} MB")
        if len(sizes) > 1:
            for w in workers:
                a = next((r for r in rows if r["family"] == fam and r["kind"] == "es-zoo" and r["workers"] == w
                          and r["size_mb"] == min(sizes)), None)
                b = next((r for r in rows if r["family"] == fam and r["kind"] == "es-zoo" and r["workers"] == w
                          and r["size_mb"] == max(sizes)), None)
                if a and b:
                    ratio = b["peak_tree_pss_mb"] / a["peak_tree_pss_mb"]
                    summary["memory_ratio"][f"{fam}/{w}"] = ratio
                    print(f"peak tree PSS {max(sizes):g} MB / {min(sizes):g} MB, {fam}, {w} worker(s): "
                          f"{b['peak_tree_pss_mb']:,.0f} / {a['peak_tree_pss_mb']:,.0f} MB = {ratio:.2f} (target <= 1.2)")
    return summary


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] in ("_work", "_measure"):
        sys.path.insert(0, str(HERE))
        (_work_main if sys.argv[1] == "_work" else _measure_main)(sys.argv[2])
        return
    sys.path.insert(0, str(HERE))
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size-mb", default="100,1000", help="corpus sizes in 10^6 bytes, comma-separated [100,1000]")
    ap.add_argument("--families", default=",".join(FAMILIES))
    ap.add_argument("--workers", default="1,2", help="es-zoo worker counts, comma-separated [1,2]")
    ap.add_argument("--tokenizer-chars", type=int, default=20_000_000,
                    help="tokenizer.max_training_chars for every family [20 M characters; paper: 1 G / 500 M]")
    ap.add_argument("--chunk-mb", type=float, default=None, help="--chunk-mb of es-zoo prepare [size / 8]")
    ap.add_argument("--selection-share", type=float, default=0.1,
                    help="BARTO/T5S at the largest size: also a corpus.max_epochs=1 run selecting about this "
                         "share of the tokens (0: none)")
    ap.add_argument("--anchor-num-proc", type=int, default=2, help="num_proc of the datasets map [2]")
    ap.add_argument("--no-anchor", action="store_true", help="skip the datasets runs")
    ap.add_argument("--tokenizers-parallelism", choices=["default", "true", "false"], default="default",
                    help="TOKENIZERS_PARALLELISM for the measured runs [default: as in this shell]")
    ap.add_argument("--root", type=Path, default=Path("/tmp/es-zoo-bench-prepare"),
                    help="corpora, prepared folders, logs [/tmp/es-zoo-bench-prepare]")
    ap.add_argument("--keep", action="store_true", help="keep the prepared folders (default: removed after use)")
    ap.add_argument("--json", default=None, help="write every measurement here (extrapolate_prepare.py reads it)")
    args = ap.parse_args()

    sizes = [float(s) for s in args.size_mb.split(",")]
    families = [f.strip() for f in args.families.split(",") if f.strip()]
    workers = [int(w) for w in args.workers.split(",")]
    for f in families:
        if f not in FAMILIES:
            raise SystemExit(f"--families: unknown family {f!r} (known: {', '.join(FAMILIES)})")
    args.root.mkdir(parents=True, exist_ok=True)
    env = environment()
    env["TOKENIZERS_PARALLELISM"] = (os.environ.get("TOKENIZERS_PARALLELISM", "unset (tokenizers' default: on)")
                                     if args.tokenizers_parallelism == "default" else args.tokenizers_parallelism)
    print(f"{env['cpu']}, {env['cores']} cores; Python {env['python']}, es-zoo {env['es-zoo']}, datatrove "
          f"{env['datatrove']}, datasets {env['datasets']}, tokenizers {env['tokenizers']}, transformers "
          f"{env['transformers']}; TOKENIZERS_PARALLELISM {env['TOKENIZERS_PARALLELISM']}; load average "
          f"{env['load_average_at_start'][0]:.2f}")
    print(f"paper presets with tokenizer.max_training_chars={args.tokenizer_chars:,} (bounded sample); BARTO and T5S "
          "with corpus.max_epochs=null (the whole corpus tokenized)")
    rows, corpora = [], {}
    for size in sizes:
        folder, info = corpus_for(size, args.root)
        corpora[f"{size:g}"] = info
        chunk = int((args.chunk_mb or max(1.0, size / 8)) * 1e6)
        files = sorted(str(p) for p in folder.glob("part-*.jsonl"))
        for fam in families:
            base = [f"corpus.source={json.dumps(str(folder))}", f"tokenizer.max_training_chars={args.tokenizer_chars}"]
            full = base + (["corpus.max_epochs=null"] if fam != "beto" else [])
            outs = {}
            for w in workers:
                out = args.root / "prepared" / f"{fam}-{size:g}mb-w{w}"
                outs[w] = out
                rows.append(run_measured({"name": f"{fam}-{size:g}mb-es-zoo-w{w}", "kind": "es-zoo", "family": fam,
                                          "size_mb": size, "workers": w, "overrides": full, "out": str(out),
                                          "chunk_bytes": chunk, "tokenizers_parallelism": args.tokenizers_parallelism},
                                         args.root))
            if not args.no_anchor:
                cache = args.root / "hf-cache" / f"{fam}-{size:g}"
                shutil.rmtree(cache, ignore_errors=True)
                rows.append(run_measured({"name": f"{fam}-{size:g}mb-anchor", "kind": "anchor", "family": fam,
                                          "size_mb": size, "workers": args.anchor_num_proc, "files": files,
                                          "cache": str(cache), "tokenizer": str(outs[max(workers)] / "tokenizer"),
                                          "num_proc": args.anchor_num_proc,
                                          "tokenizers_parallelism": args.tokenizers_parallelism}, args.root))
                shutil.rmtree(cache, ignore_errors=True)
            if fam != "beto" and args.selection_share > 0 and size == max(sizes):
                ref = next(r for r in rows if r["name"] == f"{fam}-{size:g}mb-es-zoo-w{max(workers)}")
                extra, steps = selection_phase(fam, ref["train_tokens"], args.selection_share)
                out = args.root / "prepared" / f"{fam}-{size:g}mb-select"
                rows.append(run_measured({"name": f"{fam}-{size:g}mb-select", "kind": "selection", "family": fam,
                                          "size_mb": size, "workers": max(workers), "overrides": base + extra,
                                          "out": str(out), "chunk_bytes": chunk, "selection_steps": steps,
                                          "tokenizers_parallelism": args.tokenizers_parallelism}, args.root))
                if not args.keep:
                    shutil.rmtree(out, ignore_errors=True)
            if not args.keep:
                for out in outs.values():
                    shutil.rmtree(out, ignore_errors=True)
    summary = print_report(rows, sizes, families, workers)
    if args.json:
        Path(args.json).write_text(json.dumps({"benchmark": "bench_prepare", "environment": env, "args": {
            **{k: v for k, v in vars(args).items() if k != "root"}, "root": str(args.root)}, "corpora": corpora,
            "runs": rows, "summary": summary}, indent=2))
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
