"""Whole-word masking throughput: es-zoo's ``whole_word_mask`` against transformers' collator.

Both sides get the same BETO tokenizer and the same packed batches of real Spanish text (ELTeC
novels), tokenized once up front. transformers 5.25 has no ``DataCollatorForWholeWordMask`` (the
script prints whether the installed version has one):
whole-word masking is ``DataCollatorForLanguageModeling(tokenizer, mlm=True, mlm_probability=0.15,
whole_word_mask=True)``, and its masking step alone is that collator's ``torch_mask_tokens``. Two
transformers rows are timed:

- ``collator.torch_mask_tokens(tensors)``: the masking step alone, on an already-batched tensor with
  its special-token mask and offsets. This is the FAIR ANCHOR for the masking itself, and the ratio
  printed first.
- ``collator(features)``: what ``Trainer`` and a ``DataLoader`` call, on a list of per-row dicts of
  Python lists. It INCLUDES padding and the conversion of the lists (ids, special mask, offsets) to
  tensors, work es-zoo's row does not do (its ids are already an array), so that ratio is not a
  masking ratio.

The collator's whole-word grouping needs ``offset_mapping`` and ``special_tokens_mask`` per feature,
which are supplied. es-zoo needs only the ids and two vocabulary tables, built once outside the timing.

Run from the repository root::

    python benchmarks/bench_wwm.py            # --repeats 20 --seed 0 by default

Figures and the machine they came from are recorded in docs/performance.md.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import platform
import random
import statistics
import time
import warnings
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")

VOCAB = Path("/work/shared/data/beto/cased_2M/vocab.txt")
CORPUS = Path("/work/shared/data/corpus/eltec-spa.jsonl.gz")
# batch, length, max_predictions (Google's values for 128 and 512 tokens)
CONFIGS = [(256, 128, 20), (64, 512, 80)]
CORE = "transformers collator.torch_mask_tokens(tensors) [fair anchor]"
CALL = "transformers collator(features) [incl. padding + list conversion]"


def load_tokenizer(vocab: Path):
    from transformers import BertTokenizerFast

    # transformers 5 ignores vocab_file= in this constructor (it builds a 5-token vocabulary).
    tok = BertTokenizerFast(vocab=str(vocab), do_lower_case=False)
    if len(tok) < 1000:
        raise SystemExit(f"{vocab} did not load: the tokenizer has {len(tok)} tokens")
    return tok


def token_stream(tok, corpus: Path, n_tokens: int):
    """Ids and document-global character offsets of the first n_tokens of the corpus."""
    ids, offsets, base = [], [], 0
    with gzip.open(corpus, "rt", encoding="utf-8") as f:
        for line in f:
            paragraphs = json.loads(line)["paragraphs"]
            enc = tok(paragraphs, add_special_tokens=False, return_offsets_mapping=True)
            for text, p_ids, p_offsets in zip(paragraphs, enc["input_ids"], enc["offset_mapping"]):
                ids.extend(p_ids)
                # A one-character gap between paragraphs keeps the collator from gluing the last
                # word of one paragraph to the first of the next.
                offsets.extend((s + base, e + base) for s, e in p_offsets)
                base += len(text) + 1
            if len(ids) >= n_tokens:
                break
    if len(ids) < n_tokens:
        raise SystemExit(f"{corpus} holds only {len(ids)} tokens, {n_tokens} needed")
    return np.array(ids[:n_tokens], dtype=np.int64), np.array(offsets[:n_tokens], dtype=np.int64)


def pack(tok, ids, offsets, batch: int, length: int):
    """[CLS] + length-2 tokens + [SEP] rows, with the offsets and special mask for the collator."""
    body = length - 2
    rows = np.empty((batch, length), dtype=np.int64)
    rows[:, 0], rows[:, -1] = tok.cls_token_id, tok.sep_token_id
    rows[:, 1:-1] = ids[: batch * body].reshape(batch, body)
    offs = np.zeros((batch, length, 2), dtype=np.int64)
    offs[:, 1:-1] = offsets[: batch * body].reshape(batch, body, 2)
    special = np.zeros((batch, length), dtype=np.int64)
    special[:, [0, -1]] = 1
    return rows, offs, special


def vocab_tables(tok):
    tokens = tok.convert_ids_to_tokens(list(range(len(tok))))
    is_special = np.zeros(len(tokens), dtype=bool)
    is_special[tok.all_special_ids] = True
    is_continuation = np.array([t.startswith("##") for t in tokens])
    return is_special, is_continuation


def timed(fns: dict, repeats: int, warmup: int = 2, seed: int = 0) -> dict:
    """Best and median seconds per call of each function, repetitions interleaved.

    Interleaving spreads any background load over all implementations alike, and shuffling the
    order each round spreads the cost of caches the previous call left cold; the best of N is the
    least disturbed figure (as timeit reports), the median shows the spread.
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
            fn = fns[name]
            t = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t)
    return {name: (min(ts), statistics.median(ts)) for name, ts in times.items()}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    import torch
    import transformers
    from transformers import DataCollatorForLanguageModeling

    from es_zoo.objectives.masking import whole_word_mask

    tok = load_tokenizer(VOCAB)
    need = max(b * (l - 2) for b, l, _ in CONFIGS)
    ids, offsets = token_stream(tok, CORPUS, need)
    is_special, is_continuation = vocab_tables(tok)
    with warnings.catch_warnings():
        # It warns that it turns random replacement off under whole-word masking; that is the point.
        warnings.simplefilter("ignore")
        collator = DataCollatorForLanguageModeling(
            tok, mlm=True, mlm_probability=0.15, whole_word_mask=True, seed=args.seed
        )

    print(f"python {platform.python_version()}, transformers {transformers.__version__}, "
          f"torch {torch.__version__}, numpy {np.__version__}, "
          f"{os.cpu_count()} CPUs ({platform.processor() or platform.machine()}), "
          f"torch threads {torch.get_num_threads()}, {args.repeats} interleaved repeats; "
          f"Mtok/s from the best")
    print(f"transformers has DataCollatorForWholeWordMask: {hasattr(transformers, 'DataCollatorForWholeWordMask')}; "
          f"masking step timed: DataCollatorForLanguageModeling(whole_word_mask=True).torch_mask_tokens")
    header = (f"{'batch':>9} {'implementation':<66} {'best ms':>9} {'median ms':>9} {'Mtok/s':>7} "
              f"{'masked/row':>10}")
    print(header)
    print("-" * len(header))
    for batch, length, max_predictions in CONFIGS:
        rows, offs, special = pack(tok, ids, offsets, batch, length)
        n_tok = rows.size
        features = [
            {"input_ids": r.tolist(), "special_tokens_mask": s.tolist(),
             "offset_mapping": o.tolist()}
            for r, s, o in zip(rows, special, offs)
        ]
        rows_t, special_t = torch.from_numpy(rows), torch.from_numpy(special)
        rng = np.random.default_rng(args.seed)

        def hf_call():
            return collator(features)

        def hf_mask_only():
            return collator.torch_mask_tokens(rows_t.clone(), special_tokens_mask=special_t,
                                              offset_mapping=offs)

        def es_zoo():
            return whole_word_mask(rows, rng=rng, is_special=is_special,
                                   is_continuation=is_continuation,
                                   mask_token_id=tok.mask_token_id, vocab_size=len(tok),
                                   pad_token_id=tok.pad_token_id, max_predictions=max_predictions)

        def es_zoo_dense():
            out = es_zoo()
            return torch.from_numpy(out.input_ids), torch.from_numpy(out.dense_labels())

        impls = {
            CALL: hf_call,
            CORE: hf_mask_only,
            "es-zoo whole_word_mask(ids)": es_zoo,
            "es-zoo whole_word_mask + dense torch labels": es_zoo_dense,
        }
        results = timed(impls, args.repeats, seed=args.seed)
        hf_masked = (hf_call()["labels"] != -100).sum(dim=1).float().mean().item()
        es_masked = float(es_zoo().num_masked.mean())

        label = f"{batch}x{length}"
        for name, (best, median) in results.items():
            masked = es_masked if name.startswith("es-zoo") else hf_masked
            print(f"{label:>9} {name:<66} {best * 1e3:9.2f} {median * 1e3:9.2f} "
                  f"{n_tok / best / 1e6:7.2f} {masked:10.1f}")
        ours = results["es-zoo whole_word_mask(ids)"][0]
        call = results[CALL][0]
        core = results[CORE][0]
        print(f"{label:>9} ratio es-zoo whole_word_mask / collator.torch_mask_tokens (fair anchor, masking "
              f"alone): {core / ours:.1f}x; / collator(features) (incl. padding + list conversion): "
              f"{call / ours:.1f}x")

if __name__ == "__main__":
    main()
