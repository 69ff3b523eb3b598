"""BART denoising throughput: es-zoo's vectorized ``bart_denoise`` against a fairseq-shaped anchor.

Every side gets the same batches and BART-large's settings (mask 0.3, mask-random 0.1, Poisson
lambda 3.5, replace-length 1, permute-sentences 1.0, insert 0). Two anchors:

- ``fairseq-shaped`` (the anchor a user of fairseq runs): fairseq's ``DenoisingDataset`` algorithm
  written here from its published description, torch per example as fairseq's ``__getitem__`` is:
  sentence permutation by a ``randperm`` of the sentences and a Python loop copying each sentence,
  then ``add_whole_word_mask`` (``ceil(words * 0.3)`` words to mask, span lengths drawn from a
  truncated Poisson(3.5) until they cover that count, span starts drawn by ``randperm`` of the word
  starts, the first token of a span replaced, the rest deleted by a walk that advances all spans one
  token per step, zero-length spans inserted as new tokens), then the collater's right-padding of
  the noised rows. Two simplifications, both in the anchor's favour: word starts and sentence ends
  come as per-token flags (fairseq gathers them from a vocabulary table and a full-stop id, one more
  pass per row), and nothing else of fairseq's dataset stack (indexed dataset reads, token blocks)
  is timed.
- ``bart_denoise_reference``: es-zoo's own per-row reference of the same algorithm (numpy per row;
  the tests check ``bart_denoise`` against it).

The batch is synthetic but shaped like BART's pretraining data: ``--batch`` rows of ``--length``
tokens (``<s>`` + body + ``</s>``), ids uniform over a 50,265-token vocabulary, a word start at each
body token with probability 0.75 (byte-level BPE on Spanish text gives about that), and sentences of
about 30 tokens (a sentence starts at a word start).

Everything runs on one core: the thread variables below are set before numpy is imported (numpy's
element-wise code is single-threaded anyway), torch runs one thread, and ``--cpu N`` pins the
process to core N.

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

import math  # noqa: E402
import platform  # noqa: E402
import random  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

import torch  # noqa: E402

VOCAB_SIZE = 50_265  # BART's GPT-2 byte-level BPE, <mask> included
BOS, PAD, EOS, MASK = 0, 1, 2, VOCAB_SIZE - 1
FIRST_ORDINARY = 4  # <s> <pad> </s> <unk> come first in fairseq's dictionary
VEC = "es-zoo bart_denoise (vectorized)"
FAIRSEQ = "fairseq-shaped DenoisingDataset (torch per example)"
REF = "es-zoo bart_denoise_reference (per row)"


class Out:
    def __init__(self, input_ids, input_lengths):
        self.input_ids, self.input_lengths = input_ids, input_lengths


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


# ------------------------------------------------------------------------------------------------
# The fairseq-shaped anchor, written from the algorithm of fairseq's DenoisingDataset (torch, per example)
# ------------------------------------------------------------------------------------------------


def truncated_poisson(lam: float, max_terms: int = 128, tail: float = 1e-7) -> torch.Tensor:
    """P(k) for k = 0, 1, ... of Poisson(lam), stopped after the first term below ``tail``."""
    probs, term = [], math.exp(-lam)
    for k in range(max_terms):
        probs.append(term)
        term *= lam / (k + 1)
        if term < tail:
            break
    return torch.tensor(probs)


def fairseq_permute_sentences(source, word_start, sentence_end, ratio, gen):
    """Shuffle ceil(n * ratio) of the n sentences of the body (between <s> and </s>)."""
    ends = sentence_end.clone()
    ends[-2] = True  # the body's last token always ends a sentence
    sentence_ends = (ends[1:] & ~ends[:-1]).nonzero().squeeze(1) + 2
    n = sentence_ends.numel()
    n_permute = math.ceil(n * ratio)
    chosen = torch.randperm(n, generator=gen)[:n_permute]
    order = torch.arange(n)
    order[chosen] = chosen[torch.randperm(n_permute, generator=gen)]
    out, out_ws = source.clone(), word_start.clone()
    at = 1
    for i in order.tolist():
        lo = int(sentence_ends[i - 1]) if i > 0 else 1
        hi = int(sentence_ends[i])
        out[at: at + hi - lo] = source[lo:hi]
        out_ws[at: at + hi - lo] = word_start[lo:hi]
        at += hi - lo
    return out, out_ws


def fairseq_whole_word_mask(source, word_start, ratio, random_ratio, span_probs, mask_id, random_ids, gen):
    """Text infilling with replace-length 1: one token in place of each span of Poisson words."""
    is_start = word_start.clone().to(torch.long)
    is_start[0] = 0
    is_start[-1] = 0
    to_mask = math.ceil(int(is_start.sum()) * ratio)
    if to_mask == 0:
        return source
    lengths = torch.multinomial(span_probs, to_mask, replacement=True, generator=gen)
    total = torch.cumsum(lengths, 0)
    while total[-1] < to_mask:  # draw more spans until they cover the budget
        lengths = torch.cat([lengths, torch.multinomial(span_probs, to_mask, replacement=True, generator=gen)])
        total = torch.cumsum(lengths, 0)
    last = int(torch.searchsorted(total, to_mask))  # first span reaching the budget: cut it to fit
    lengths[last] = to_mask - (0 if last == 0 else int(total[last - 1]))
    lengths = lengths[: last + 1]
    lengths = lengths[lengths > 0]
    n_inserts = last + 1 - lengths.numel()  # zero-length spans become inserted tokens
    n_spans = lengths.numel()
    if n_spans == 0:
        return fairseq_insert(source, n_inserts, random_ratio, mask_id, random_ids, gen)
    starts = is_start.nonzero().squeeze(1)
    at = starts[torch.randperm(starts.numel(), generator=gen)[:n_spans]]
    randomized = torch.rand(n_spans, generator=gen) < random_ratio
    keep = torch.ones(source.numel(), dtype=torch.bool)
    is_start[-1] = 255  # a span never walks into </s>
    source = source.clone()
    source[at] = mask_id
    n_random = int(randomized.sum())
    if n_random:
        source[at[randomized]] = random_ids[torch.randint(0, random_ids.numel(), (n_random,), generator=gen)]
    lengths = lengths - 1
    while at.numel() > 0:  # advance every open span by one token; a word start uses up one word
        lengths = lengths - is_start[at + 1]
        going = lengths >= 0
        at = at[going] + 1
        lengths = lengths[going]
        keep[at] = False
    return fairseq_insert(source[keep], n_inserts, random_ratio, mask_id, random_ids, gen)


def fairseq_insert(source, n, random_ratio, mask_id, random_ids, gen):
    """n new tokens at distinct random positions strictly inside the row; ceil(n * r) random, the rest <mask>."""
    if n == 0:
        return source
    length = source.numel()
    where = torch.randperm(length + n - 2, generator=gen)[:n] + 1
    new = torch.zeros(length + n, dtype=torch.bool)
    new[where] = True
    out = torch.full((length + n,), -1, dtype=torch.long)
    n_random = math.ceil(n * random_ratio)
    out[where[n_random:]] = mask_id
    out[where[:n_random]] = random_ids[torch.randint(0, random_ids.numel(), (n_random,), generator=gen)]
    out[~new] = source
    return out


def fairseq_shaped_denoise(rows, word_starts, sentence_ends, gen, span_probs, random_ids):
    """__getitem__ per example, then the collater's right-padding: (B, M) sources, lengths, targets."""
    sources = []
    for tokens, ws, se in zip(rows, word_starts, sentence_ends):
        src, ws = fairseq_permute_sentences(tokens, ws, se, 1.0, gen)
        sources.append(fairseq_whole_word_mask(src, ws, 0.3, 0.1, span_probs, MASK, random_ids, gen))
    lengths = torch.tensor([s.numel() for s in sources])
    batch = torch.full((len(sources), int(lengths.max())), PAD, dtype=torch.long)
    for i, s in enumerate(sources):
        batch[i, : s.numel()] = s
    return batch, lengths, torch.stack(rows)


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

    from es_zoo.objectives.denoising import bart_denoise
    from es_zoo.objectives.reference import bart_denoise_reference

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
    # The fairseq-shaped anchor holds its examples as torch tensors, as a fairseq dataset does.
    torch.set_num_threads(1)
    gen = torch.Generator().manual_seed(args.seed + 1)
    rows_t = list(torch.from_numpy(tokens))
    ws_t = list(torch.from_numpy(word_start))
    # a sentence ends where the next token starts one (fairseq marks the end: a full stop)
    ends = np.zeros_like(sentence_start)
    ends[:, :-1] = sentence_start[:, 1:]
    ends_t = list(torch.from_numpy(ends))
    span_probs = truncated_poisson(3.5)
    random_ids_t = torch.arange(FIRST_ORDINARY, MASK)

    def fairseq_shaped():
        batch, lengths, _ = fairseq_shaped_denoise(rows_t, ws_t, ends_t, gen, span_probs, random_ids_t)
        return Out(batch.numpy(), lengths.numpy())

    impls = {
        VEC: lambda: bart_denoise(tokens, rng=rngs["vectorized"], **settings),
        FAIRSEQ: fairseq_shaped,
        REF: lambda: bart_denoise_reference(tokens, rng=rngs["reference"], **settings),
    }

    threads = " ".join(f"{v}={os.environ[v]}" for v in THREAD_VARS)
    print(f"numpy {np.__version__}, torch {torch.__version__} (threads {torch.get_num_threads()}), "
          f"python {platform.python_version()}, "
          f"{os.cpu_count()} CPUs ({platform.processor() or platform.machine()}), "
          f"affinity {affinity}, {threads}")
    print(f"batch {args.batch} x {args.length} (word starts {args.word_density}, sentences of "
          f"~{args.sentence_tokens:g} tokens), BART-large settings, {args.repeats} interleaved "
          f"repeats; Mtok/s = input tokens / best time")
    results = timed(impls, args.repeats, seed=args.seed)

    # What each side produced, on fresh draws: the two should describe the same noise.
    check = {name: fn() for name, fn in impls.items()}
    header = (f"{'implementation':<52} {'best ms':>9} {'median ms':>9} {'Mtok/s':>7} "
              f"{'median Mtok/s':>13} {'out len':>8} {'<mask>/row':>10}")
    print(header)
    print("-" * len(header))
    n_tok = tokens.size
    for name, (best, median) in results.items():
        out = check[name]
        print(f"{name:<52} {best * 1e3:9.2f} {median * 1e3:9.2f} {n_tok / best / 1e6:7.2f} "
              f"{n_tok / median / 1e6:13.2f} {out.input_lengths.mean():8.1f} "
              f"{np.count_nonzero(out.input_ids == MASK, axis=1).mean():10.1f}")
    fast = results[VEC]
    anchor = results[FAIRSEQ]
    slow = results[REF]
    print(f"ratio es-zoo / fairseq-shaped anchor: {anchor[0] / fast[0]:.1f}x (best), "
          f"{anchor[1] / fast[1]:.1f}x (median)")
    print(f"ratio es-zoo / es-zoo per-row reference: {slow[0] / fast[0]:.1f}x (best), {slow[1] / fast[1]:.1f}x "
          f"(median); target >= 5 Mtok/s on one core: "
          f"{'met' if n_tok / fast[0] >= 5e6 else 'NOT met'} ({n_tok / fast[0] / 1e6:.1f} Mtok/s)")


if __name__ == "__main__":
    main()
