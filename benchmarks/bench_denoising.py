"""BART denoising throughput: es-zoo's vectorized ``bart_denoise`` against the per-row reference.

Both sides get the same batches and BART-large's settings (mask 0.3, mask-random 0.1, Poisson
lambda 3.5, permute-sentences 1.0, insert 0). The anchor is ``bart_denoise_reference``: the same
algorithm one row at a time, in the shape of fairseq's ``DenoisingDataset`` (a Python loop over
rows and over the steps of the span walk, numpy inside). The batch is synthetic but shaped like
BART's pretraining data: ``--batch`` rows of ``--length`` tokens (``<s>`` + body + ``</s>``), ids
uniform over a 50,265-token vocabulary, a word start at each body token with probability 0.75
(byte-level BPE on Spanish text gives about that), and sentences of about 30 tokens (a sentence
starts at a word start).

Everything runs on one core: the thread variables below are set before numpy is imported (numpy's
element-wise code is single-threaded anyway), and ``--cpu N`` pins the process to core N.

Run from the repository root::

    python benchmarks/bench_denoising.py            # --batch 64 --length 1024 --repeats 20
    python benchmarks/bench_denoising.py --cpu 0 --length 512 --batch 128
"""

from __future__ import annotations

import argparse
import os

THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
               "NUMEXPR_NUM_THREADS", "VECLIB_MAXIMUM_THREADS")
for _var in THREAD_VARS:
    os.environ[_var] = "1"

import platform  # noqa: E402
import random  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

VOCAB_SIZE = 50_265  # BART's GPT-2 byte-level BPE, <mask> included
BOS, PAD, EOS, MASK = 0, 1, 2, VOCAB_SIZE - 1
FIRST_ORDINARY = 4  # <s> <pad> </s> <unk> come first in fairseq's dictionary


def make_batch(rng: np.random.Generator, batch: int, length: int, word_density: float,
               sentence_tokens: float):
    tokens = rng.integers(FIRST_ORDINARY, MASK, size=(batch, length))
    tokens[:, 0], tokens[:, -1] = BOS, EOS
    word_start = rng.random((batch, length)) < word_density
    word_start[:, [0, -1]] = True
    # A sentence starts at a word start with the chance that makes sentences sentence_tokens long.
    sentence_rate = 1 / (sentence_tokens * word_density)
    sentence_start = word_start & (rng.random((batch, length)) < sentence_rate)
    return tokens, word_start, sentence_start


def timed(fns: dict, repeats: int, warmup: int = 2, seed: int = 0) -> dict:
    """Best and median seconds per call of each function, repetitions interleaved.

    Interleaving (in a shuffled order each round) spreads background load on a shared machine over
    both implementations alike; the best of N is the least disturbed figure, the median the spread.
    """
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    shuffler = random.Random(seed)
    names = list(fns)
    times = {name: [] for name in fns}
    for _ in range(repeats):
        shuffler.shuffle(names)
        for name in names:
            t = time.perf_counter()
            fns[name]()
            times[name].append(time.perf_counter() - t)
    return {name: (min(ts), statistics.median(ts)) for name, ts in times.items()}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--length", type=int, default=1024)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--word-density", type=float, default=0.75)
    parser.add_argument("--sentence-tokens", type=float, default=30.0)
    parser.add_argument("--cpu", type=int, default=None, help="pin the process to this core")
    args = parser.parse_args(argv)

    from es_zoo.objectives.denoising import bart_denoise, bart_denoise_reference

    if args.cpu is not None:
        os.sched_setaffinity(0, {args.cpu})
    affinity = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else "n/a"
    data_rng = np.random.default_rng(args.seed)
    tokens, word_start, sentence_start = make_batch(data_rng, args.batch, args.length,
                                                    args.word_density, args.sentence_tokens)
    settings = dict(word_start=word_start, sentence_start=sentence_start, mask_token_id=MASK,
                    pad_token_id=PAD, random_token_ids=np.arange(FIRST_ORDINARY, MASK),
                    mask_ratio=0.3, random_ratio=0.1, poisson_lambda=3.5,
                    permute_sentence_ratio=1.0, insert_ratio=0.0)
    # Each side threads its own generator through its calls: fresh noise every call.
    rngs = {"vectorized": np.random.default_rng(args.seed + 1),
            "reference": np.random.default_rng(args.seed + 1)}
    impls = {
        "es-zoo bart_denoise (vectorized)":
            lambda: bart_denoise(tokens, rng=rngs["vectorized"], **settings),
        "bart_denoise_reference (per row, fairseq-shaped)":
            lambda: bart_denoise_reference(tokens, rng=rngs["reference"], **settings),
    }

    threads = " ".join(f"{v}={os.environ[v]}" for v in THREAD_VARS)
    print(f"numpy {np.__version__}, python {platform.python_version()}, "
          f"{os.cpu_count()} CPUs ({platform.processor() or platform.machine()}), "
          f"affinity {affinity}, {threads}")
    print(f"batch {args.batch} x {args.length} (word starts {args.word_density}, sentences of "
          f"~{args.sentence_tokens:g} tokens), BART-large settings, {args.repeats} interleaved "
          f"repeats; Mtok/s = input tokens / best time")
    results = timed(impls, args.repeats, seed=args.seed)

    # What each side produced, on fresh draws: the two should describe the same noise.
    check = {name: fn() for name, fn in impls.items()}
    header = (f"{'implementation':<50} {'best ms':>9} {'median ms':>9} {'Mtok/s':>7} "
              f"{'median Mtok/s':>13} {'out len':>8} {'<mask>/row':>10}")
    print(header)
    print("-" * len(header))
    n_tok = tokens.size
    for name, (best, median) in results.items():
        out = check[name]
        print(f"{name:<50} {best * 1e3:9.2f} {median * 1e3:9.2f} {n_tok / best / 1e6:7.2f} "
              f"{n_tok / median / 1e6:13.2f} {out.input_lengths.mean():8.1f} "
              f"{np.count_nonzero(out.input_ids == MASK, axis=1).mean():10.1f}")
    fast = results["es-zoo bart_denoise (vectorized)"]
    slow = results["bart_denoise_reference (per row, fairseq-shaped)"]
    print(f"vectorized / reference: {slow[0] / fast[0]:.1f}x (best), {slow[1] / fast[1]:.1f}x "
          f"(median); target >= 5 Mtok/s on one core: "
          f"{'met' if n_tok / fast[0] >= 5e6 else 'NOT met'} ({n_tok / fast[0] / 1e6:.1f} Mtok/s)")


if __name__ == "__main__":
    main()
