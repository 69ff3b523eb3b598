"""Pretraining throughput on CPU: the es-zoo loop against transformers' Trainer, side by side.

Two anchors, both printed as ratios: the Trainer as `run_mlm.py` sets it up (dense MLM head, logits at
every position), and the same Trainer with a ~10-line `compute_loss` override that gathers the masked
positions before the LM head (what es-zoo's `SparseMLM` does). The second is what a user who knows
the trick would run; es-zoo's loop is compared with both.

Both sides train the same tiny BETO (the `beto` recipe's `tiny` preset, read once at the start;
`--set KEY=VALUE` changes it for both, e.g. `--set model.hidden_size=192`), with an 8k WordPiece
vocabulary trained here on the embedded ELTeC corpus, from the same initial weights (same seed, same
`build_bert_mlm`), on 128-token `[CLS] ... [SEP]` sequences packed from the same token stream, with
the same batch (the preset's unless `--batch-size`), learning-rate schedule, AdamW settings, gradient
clipping and fp32 on the CPU. Rows:

- es-zoo: `es_zoo.training.pretrain` itself (a one-phase recipe override), tokens/s read back from
  the run's `logs/train.jsonl` (logged every step, so the warm-up steps are left out exactly);
- Trainer: `transformers.Trainer` + `BertForMaskedLM` + `DataCollatorForLanguageModeling(tokenizer,
  mlm=True, mlm_probability=0.15)` over a `datasets.Dataset` of the same packed sequences (with their
  `special_tokens_mask`, as run_mlm.py prepares them), timed by a callback at each step end;
- Trainer, whole-word: the same with `whole_word_mask=True` (the dataset then carries an
  `offset_mapping` built from the `##` marks, so a word is what es-zoo calls a word);
- Trainer, sparse head (anchor 2): Trainer with the MLM head only at the masked positions (a
  `compute_loss` override);
- cross-over rows: the es-zoo loop with the dense head (full-vocabulary logits at every position, the
  loss `BertForMaskedLM(labels=...)` computes), and the es-zoo loop with torch's fused AdamW
  (`training.optimizer_impl=fused`, not the CPU default) to see what the optimizer kernel is worth.

Rounds run the rows in a rotating order (the machine is shared, so interleaving spreads the load
over all rows); the table shows the median tokens/s over rounds and the range. A breakdown then
times the pieces of one step on one batch, and `--profile` lists where an es-zoo step spends its time.

Run from the repository root (offline; 5-10 minutes on a 2-core CPU with the defaults)::

    python benchmarks/bench_pretrain.py                  # --steps 50 --warmup 5 --rounds 3
    python benchmarks/bench_pretrain.py --batch-size 32 --rows es-zoo,trainer --rounds 5 --profile
    python benchmarks/bench_pretrain.py --threads 1 --steps 30 --rows es-zoo,trainer,trainer-sparse,es-zoo-fused

Figures and the machine they came from are recorded in docs/performance.md.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import platform
import statistics
import tempfile
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")  # no fork warnings; tokenizing is done before timing

import numpy as np
import torch

SEQ_LEN = 128
ROWS = {
    "es-zoo": "es-zoo pretrain() (sparse MLM head)",
    "trainer": "Trainer + BertForMaskedLM + collator [anchor 1]",
    "trainer-wwm": "Trainer + BertForMaskedLM + collator (whole_word_mask)",
    "trainer-sparse": "Trainer + collator, head at masked positions [anchor 2]",
    "es-zoo-dense": "es-zoo pretrain(), dense head (BertForMaskedLM loss)",
    "es-zoo-fused": "es-zoo pretrain(), fused AdamW (optimizer_impl=fused)",
}
DEFAULT_ROWS = "es-zoo,trainer,trainer-wwm,trainer-sparse,es-zoo-dense"


# ------------------------------------------------------------------------------------------------
# The data, prepared once for every row
# ------------------------------------------------------------------------------------------------


@dataclass
class Prepared:
    cfg: object  # the resolved recipe every row uses (read once: an edit of the file mid-run changes nothing)
    tokenizer: object
    data: object  # es_zoo.training.MLMData
    workdir: Path
    prep_s: float


def _capped(texts, max_chars):
    seen = 0
    for t in texts:
        if seen >= max_chars:
            return
        seen += len(t)
        yield t


def prepare(args, workdir: Path) -> Prepared:
    from es_zoo.corpus import open_corpus
    from es_zoo.packing import read_token_file, write_token_file
    from es_zoo.recipes import load_recipe
    from es_zoo.tokenization import tokenize_documents, train_wordpiece, wordpiece_tables
    from es_zoo.training import MLMData

    t0 = time.perf_counter()
    cfg = load_recipe("beto", "tiny", overrides=args.set)
    if args.batch_size is None:
        args.batch_size = cfg.training.phases[0].global_batch_size
    corpus = open_corpus(cfg.corpus)
    tc = cfg.tokenizer
    tok = train_wordpiece(
        _capped(corpus.documents("train"), args.tokenizer_chars), vocab_size=tc.vocab_size,
        lowercase=tc.lowercase, strip_accents=tc.strip_accents, min_frequency=tc.min_frequency,
        model_max_length=cfg.model.max_position_embeddings,
    )
    path = workdir / "train.bin"
    write_token_file(tokenize_documents(tok, corpus.documents("train")), path, tok.sep_token_id)
    stream = read_token_file(path)
    is_special, is_continuation = wordpiece_tables(tok)
    data = MLMData(
        stream=stream, is_special=is_special, is_continuation=is_continuation, vocab_size=len(tok),
        mask_id=tok.mask_token_id, pad_id=tok.pad_token_id, cls_id=tok.cls_token_id, sep_id=tok.sep_token_id,
    )
    total = args.warmup + args.steps
    b = args.batch_size
    overrides = [
        f"training.phases=[{{max_steps: {total}, seq_len: {SEQ_LEN}, global_batch_size: {b}, "
        f"micro_batch_size: {b}}}]",
        f"training.micro_batch_size={b}",
        f"training.warmup_steps={args.warmup}",
        "training.log_every=1",
        f"training.save_every={total}",  # the one checkpoint comes after the last timed step
        "training.keep_checkpoints=1",
    ]
    cfg = load_recipe("beto", "tiny", overrides=list(args.set) + overrides)
    return Prepared(cfg, tok, data, workdir, time.perf_counter() - t0)


def recipe(prep: Prepared):
    return prep.cfg


def fresh_model(prep: Prepared):
    """The tiny BETO with the recipe's numbers, initialised from the recipe's seed (same for every row)."""

    from es_zoo.modeling import build_bert_mlm

    cfg = recipe(prep)
    torch.manual_seed(cfg.training.seed)
    return build_bert_mlm(cfg.model, vocab_size=len(prep.tokenizer), pad_token_id=prep.tokenizer.pad_token_id)


# ------------------------------------------------------------------------------------------------
# es-zoo rows: the real loop
# ------------------------------------------------------------------------------------------------


class DenseHeadMLM(torch.nn.Module):
    """Stand-in for ``SparseMLM`` with ``BertForMaskedLM``'s own loss: logits over the whole
    vocabulary at every position, cross-entropy over the dense label tensor (-100 elsewhere)."""

    def __init__(self, model) -> None:
        super().__init__()
        self.model = model

    def forward(self, input_ids, flat_positions, labels, attention_mask=None):
        dense = torch.full((input_ids.numel(),), -100, dtype=torch.long, device=input_ids.device)
        dense[flat_positions] = labels
        out = self.model(input_ids=input_ids, attention_mask=attention_mask, labels=dense.view_as(input_ids))
        picked = out.logits.reshape(-1, out.logits.shape[-1]).index_select(0, flat_positions)
        # pretrain() wants the summed loss; BertForMaskedLM returns the mean over the masked tokens.
        return out.loss * labels.numel(), (picked.argmax(-1) == labels).sum()


def run_es_zoo(prep: Prepared, args, dense_head: bool = False, optimizer_impl: str | None = None) -> dict:
    import copy

    import es_zoo.training as training
    from accelerate import Accelerator

    cfg = recipe(prep)
    if optimizer_impl is not None:
        cfg = copy.deepcopy(cfg)
        cfg.training.optimizer_impl = optimizer_impl
    model = fresh_model(prep)
    accelerator = Accelerator(cpu=True)
    run_dir = Path(tempfile.mkdtemp(prefix="es-zoo-run-", dir=prep.workdir))
    # pretrain() builds its loss module from the name es_zoo.training.SparseMLM; swapping that name
    # for this one call gives the very same loop with the dense head.
    original = training.SparseMLM
    if dense_head:
        training.SparseMLM = DenseHeadMLM
    try:
        with contextlib.redirect_stderr(io.StringIO()):  # pretrain()'s progress bar would bury the table
            training.pretrain(cfg, model, prep.data, run_dir, accelerator)
    finally:
        training.SparseMLM = original
        accelerator.free_memory()
    log = training.read_log(run_dir / "logs" / "train.jsonl")
    by_step = {r["step"]: r for r in log}
    end, start = by_step[args.warmup + args.steps], by_step[args.warmup]
    step_s = [by_step[s]["elapsed_s"] - by_step[s - 1]["elapsed_s"]
              for s in range(args.warmup + 1, args.warmup + args.steps + 1)]
    return {
        "tokens_per_s": (end["tokens_seen"] - start["tokens_seen"]) / (end["elapsed_s"] - start["elapsed_s"]),
        "step_s": step_s, "mean_loss": statistics.fmean(r["loss"] for r in log),
    }


# ------------------------------------------------------------------------------------------------
# Trainer rows
# ------------------------------------------------------------------------------------------------


def trainer_dataset(prep: Prepared, args, whole_word: bool):
    """The packed sequences as a datasets.Dataset of Python lists, the form run_mlm.py hands Trainer."""
    import datasets

    from es_zoo.packing import PackedSequences

    d = prep.data
    packed = PackedSequences(d.stream, SEQ_LEN, d.cls_id, d.sep_id)
    n = min(len(packed), (args.warmup + args.steps) * args.batch_size)
    rows = packed[np.random.default_rng(0).permutation(len(packed))[:n]]
    special = np.zeros_like(rows)
    special[:, [0, -1]] = 1
    columns = {"input_ids": rows.tolist(), "special_tokens_mask": special.tolist()}
    if whole_word:
        # The collator groups tokens into words by character offsets (a gap starts a new word).
        # Offsets with a gap before every token except a ## piece give WordPiece words, es-zoo's
        # definition, without re-tokenizing the text.
        tokens = prep.tokenizer.convert_ids_to_tokens(list(range(d.vocab_size)))
        pieces = np.array([len(t) for t in tokens])
        gap = np.where(d.is_continuation[rows], 0, 1)
        length = np.where(d.is_continuation[rows], pieces[rows] - 2, pieces[rows])
        end = np.cumsum(gap + length, axis=1)
        offsets = np.stack([end - length, end], axis=-1)
        offsets[special.astype(bool)] = 0
        columns["offset_mapping"] = offsets.tolist()
    return datasets.Dataset.from_dict(columns)


def run_trainer(prep: Prepared, args, whole_word: bool = False, sparse_head: bool = False) -> dict:
    import torch.nn.functional as F
    from transformers import (DataCollatorForLanguageModeling, PrinterCallback, Trainer, TrainerCallback,
                              TrainingArguments)

    cfg = recipe(prep)
    t = cfg.training
    model = fresh_model(prep)
    dataset = trainer_dataset(prep, args, whole_word)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # whole-word masking warns that it turns random replacement off
        collator = DataCollatorForLanguageModeling(
            prep.tokenizer, mlm=True, mlm_probability=cfg.objective.mlm_probability,
            whole_word_mask=whole_word,
        )
    targs = TrainingArguments(
        output_dir=tempfile.mkdtemp(prefix="trainer-", dir=prep.workdir),
        per_device_train_batch_size=args.batch_size, max_steps=args.warmup + args.steps,
        learning_rate=t.learning_rate, warmup_steps=args.warmup, lr_scheduler_type="linear",
        weight_decay=t.weight_decay, adam_beta1=t.adam_beta1, adam_beta2=t.adam_beta2,
        adam_epsilon=t.adam_epsilon, max_grad_norm=t.max_grad_norm, seed=t.seed,
        use_cpu=True, dataloader_num_workers=0, report_to="none", logging_strategy="no",
        save_strategy="no", eval_strategy="no", disable_tqdm=True,
        remove_unused_columns=False,  # keep special_tokens_mask / offset_mapping for the collator
    )

    class StepClock(TrainerCallback):
        def __init__(self):
            self.times = []

        def on_train_begin(self, *a, **k):
            self.times = [time.perf_counter()]

        def on_step_end(self, *a, **k):
            self.times.append(time.perf_counter())

    class SparseHeadTrainer(Trainer):
        # The same loss as es-zoo's SparseMLM: the head at the masked positions only.
        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            labels = inputs["labels"].reshape(-1)
            hidden = model.bert(input_ids=inputs["input_ids"],
                                attention_mask=inputs.get("attention_mask")).last_hidden_state
            keep = (labels != -100).nonzero().squeeze(1)
            logits = model.cls(hidden.reshape(-1, hidden.shape[-1]).index_select(0, keep))
            loss = F.cross_entropy(logits.float(), labels.index_select(0, keep))
            return (loss, None) if return_outputs else loss

    clock = StepClock()
    cls = SparseHeadTrainer if sparse_head else Trainer
    trainer = cls(model=model, args=targs, train_dataset=dataset, data_collator=collator, callbacks=[clock])
    trainer.remove_callback(PrinterCallback)  # it prints the end-of-training metrics dict
    out = trainer.train()
    times = clock.times
    w, n = args.warmup, args.steps
    assert len(times) == w + n + 1, len(times)
    del trainer
    return {
        "tokens_per_s": n * args.batch_size * SEQ_LEN / (times[w + n] - times[w]),
        "step_s": list(np.diff(times[w:])), "mean_loss": out.training_loss,  # over all steps, like es-zoo's
    }


RUNNERS = {
    "es-zoo": lambda p, a: run_es_zoo(p, a),
    "trainer": lambda p, a: run_trainer(p, a),
    "trainer-wwm": lambda p, a: run_trainer(p, a, whole_word=True),
    "trainer-sparse": lambda p, a: run_trainer(p, a, sparse_head=True),
    "es-zoo-dense": lambda p, a: run_es_zoo(p, a, dense_head=True),
    "es-zoo-fused": lambda p, a: run_es_zoo(p, a, optimizer_impl="fused"),
}


# ------------------------------------------------------------------------------------------------
# Breakdown of one step on one batch, and the profile
# ------------------------------------------------------------------------------------------------


def timed(fns: dict, repeats: int) -> dict:
    """Median seconds per call, calls interleaved (one warm-up call each)."""
    for fn in fns.values():
        fn()
    times = {k: [] for k in fns}
    for _ in range(repeats):
        for k, fn in fns.items():
            t = time.perf_counter()
            fn()
            times[k].append(time.perf_counter() - t)
    return {k: statistics.median(v) for k, v in times.items()}


def breakdown(prep: Prepared, args) -> list[tuple[str, float]]:
    """Milliseconds of each piece of a step, on one batch of the same shape."""
    import copy

    from transformers import DataCollatorForLanguageModeling

    from es_zoo.modeling import SparseMLM
    from es_zoo.training import BatchMaker, build_optimizer

    cfg = recipe(prep)
    make = BatchMaker(cfg, prep.data, 0, 1)
    batch = make(0)
    mb = batch.micro[0]
    if isinstance(mb, dict):  # a micro-batch is a dict of tensors (the loss module's keyword arguments)
        from types import SimpleNamespace

        mb = SimpleNamespace(**mb)
    model = fresh_model(prep)
    model.train()
    sparse = SparseMLM(model)
    dense_labels = torch.full((mb.input_ids.numel(),), -100, dtype=torch.long)
    dense_labels[mb.flat_positions] = mb.labels
    dense_labels = dense_labels.view_as(mb.input_ids)
    ones = torch.ones_like(mb.input_ids)
    optimizer = build_optimizer(sparse, cfg.training)
    fused_cfg = copy.deepcopy(cfg.training)
    fused_cfg.optimizer_impl = "fused"
    fused = build_optimizer(sparse, fused_cfg)
    ds = trainer_dataset(prep, args, whole_word=True)
    features = [ds[i] for i in range(args.batch_size)]
    plain = [{k: f[k] for k in ("input_ids", "special_tokens_mask")} for f in features]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        coll = DataCollatorForLanguageModeling(prep.tokenizer, mlm=True, mlm_probability=0.15)
        coll_wwm = DataCollatorForLanguageModeling(prep.tokenizer, mlm=True, mlm_probability=0.15,
                                                   whole_word_mask=True)

    def fb_sparse(mask=None):
        model.zero_grad(set_to_none=True)
        loss, _ = sparse(mb.input_ids, mb.flat_positions, mb.labels, attention_mask=mask)
        loss.backward()

    def fb_sparse_no_dropout():
        sparse.eval()  # dropout off, everything else as in training
        try:
            fb_sparse()
        finally:
            sparse.train()

    def fb_dense(mask=None):
        model.zero_grad(set_to_none=True)
        model(input_ids=mb.input_ids, attention_mask=mask, labels=dense_labels).loss.backward()

    def fwd_only(dense: bool):
        with torch.no_grad():
            if dense:
                model(input_ids=mb.input_ids, labels=dense_labels)
            else:
                sparse(mb.input_ids, mb.flat_positions, mb.labels)

    def opt_step(opt=optimizer):
        fb_sparse()
        t = time.perf_counter()
        torch.nn.utils.clip_grad_norm_(sparse.parameters(), 1.0)
        opt.step()
        return time.perf_counter() - t

    fns = {
        "es-zoo BatchMaker (sample + whole-word mask + tensors)": lambda: make(1),
        "transformers collator(features), token-level": lambda: coll(plain),
        "transformers collator(features), whole_word_mask": lambda: coll_wwm(features),
        "forward, sparse head (es-zoo)": lambda: fwd_only(False),
        "forward, dense head (BertForMaskedLM labels=)": lambda: fwd_only(True),
        "forward+backward, sparse head, no attention mask (es-zoo)": fb_sparse,
        "forward+backward, sparse head, all-ones attention mask": lambda: fb_sparse(ones),
        "forward+backward, sparse head, dropout off": fb_sparse_no_dropout,
        "forward+backward, dense head, no attention mask": fb_dense,
        "forward+backward, dense head, all-ones attention mask (Trainer)": lambda: fb_dense(ones),
    }
    res = timed(fns, args.breakdown_repeats)
    opt = statistics.median(opt_step() for _ in range(args.breakdown_repeats))
    opt_fused = statistics.median(opt_step(fused) for _ in range(args.breakdown_repeats))
    out = [(k, v * 1e3) for k, v in res.items()]
    out.append(("clip_grad_norm_ + AdamW step (es-zoo's CPU default)", opt * 1e3))
    out.append(("clip_grad_norm_ + AdamW step, fused=True", opt_fused * 1e3))
    return out


def profile(prep: Prepared, args) -> str:
    """torch.profiler over a few es-zoo train_steps (batches built beforehand): top ops by self CPU."""
    from accelerate import Accelerator
    from torch.profiler import ProfilerActivity, profile as tprofile

    from es_zoo.modeling import SparseMLM
    from es_zoo.training import BatchMaker, build_optimizer, train_step

    cfg = recipe(prep)
    make = BatchMaker(cfg, prep.data, 0, 1)
    total = args.warmup + args.steps
    batches = [make(s % total) for s in range(8)]
    acc = Accelerator(cpu=True)
    wrapped = SparseMLM(fresh_model(prep))
    opt = build_optimizer(wrapped, cfg.training)
    wrapped, opt = acc.prepare(wrapped, opt)
    wrapped.train()
    for b in batches[:3]:
        train_step(wrapped, opt, b, acc, cfg.training)
    with tprofile(activities=[ProfilerActivity.CPU]) as prof:
        for b in batches[3:]:
            train_step(wrapped, opt, b, acc, cfg.training)
    acc.free_memory()
    return prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=args.profile_rows)


# ------------------------------------------------------------------------------------------------


def machine() -> str:
    import transformers

    model = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    from importlib.metadata import version

    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    flags = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    simd = "avx512" if "avx512f" in flags else ("avx2" if "avx2" in flags else "no avx2")
    malloc = " ".join(f"{k}={v}" for k, v in sorted(os.environ.items()) if k.startswith("MALLOC_"))
    return (f"CPU: {model} ({simd}), nproc {usable}, torch threads {torch.get_num_threads()}, "
            f"load average {os.getloadavg()[0]:.2f}, glibc malloc {malloc or 'defaults'}\n"
            f"python {platform.python_version()}, torch {torch.__version__}, "
            f"transformers {transformers.__version__}, "
            f"accelerate {version('accelerate')}, datasets {version('datasets')}, numpy {np.__version__}")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=50, help="timed optimizer steps per run")
    parser.add_argument("--warmup", type=int, default=5, help="untimed optimizer steps before them")
    parser.add_argument("--batch-size", type=int, default=None,
                        help="sequences of 128 tokens per step (default: the preset's first phase)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override of the tiny preset for every row, e.g. model.hidden_size=192")
    parser.add_argument("--rounds", type=int, default=3, help="runs of every row, in rotating order")
    parser.add_argument("--rows", default=DEFAULT_ROWS, help=f"comma-separated, from {','.join(ROWS)}")
    parser.add_argument("--tokenizer-chars", type=int, default=2_000_000,
                        help="characters of the corpus the WordPiece vocabulary is trained on")
    parser.add_argument("--no-breakdown", dest="breakdown", action="store_false")
    parser.add_argument("--breakdown-repeats", type=int, default=10)
    parser.add_argument("--profile", action="store_true",
                        help="also profile es-zoo train_step (torch.profiler)")
    parser.add_argument("--profile-rows", type=int, default=20)
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads for every row [torch's default]; 1 keeps the rows steady when "
                             "another process takes a core")
    parser.add_argument("--json", default=None, help="also write the results to this file")
    args = parser.parse_args(argv)
    rows = [r.strip() for r in args.rows.split(",") if r.strip()]
    unknown = [r for r in rows if r not in ROWS]
    if unknown or not rows:
        parser.error(f"unknown rows {unknown}; choose from {', '.join(ROWS)}")

    import logging

    import transformers

    transformers.logging.set_verbosity_error()
    if args.threads:
        torch.set_num_threads(args.threads)
    logging.getLogger("accelerate").setLevel(logging.ERROR)

    print(machine())
    with tempfile.TemporaryDirectory(prefix="bench-pretrain-") as tmp:
        prep = prepare(args, Path(tmp))
        d, m, t = prep.data, prep.cfg.model, prep.cfg.training
        print(f"model: {m.num_hidden_layers} layers x {m.hidden_size} hidden x {m.num_attention_heads} heads, "
              f"feed-forward {m.intermediate_size}, dropout {m.hidden_dropout_prob}/"
              f"{m.attention_probs_dropout_prob}; lr {t.learning_rate}, AdamW betas ({t.adam_beta1}, "
              f"{t.adam_beta2}); recipe overrides {args.set or 'none'}")
        print(f"data: {len(d.stream):,} training tokens, vocabulary {d.vocab_size}, sequences of {SEQ_LEN}, "
              f"batch {args.batch_size} ({args.batch_size * SEQ_LEN:,} tokens/step); "
              f"prepared in {prep.prep_s:.0f}s")
        print(f"each run: {args.warmup} warm-up + {args.steps} timed optimizer steps; {args.rounds} rounds\n")

        results = {r: [] for r in rows}
        for rnd in range(args.rounds):
            order = rows[rnd % len(rows):] + rows[: rnd % len(rows)]
            for r in order:
                res = RUNNERS[r](prep, args)
                results[r].append(res)
                print(f"  round {rnd + 1} {r:<15} {res['tokens_per_s']:8,.0f} tokens/s  "
                      f"median step {statistics.median(res['step_s']) * 1e3:6.0f} ms  "
                      f"mean loss {res['mean_loss']:.3f}", flush=True)

        base = ("trainer" if "trainer" in rows else None)
        base_tps = statistics.median(x["tokens_per_s"] for x in results[base]) if base else None
        print()
        sparse_base = "trainer-sparse" if "trainer-sparse" in rows else None
        sparse_tps = (statistics.median(x["tokens_per_s"] for x in results[sparse_base])
                      if sparse_base else None)
        header = (f"{'method':<56} {'tokens/s':>9} {'range':>15} {'ms/step':>8} {'vs anchor 1':>11} "
                  f"{'vs anchor 2':>11}")
        print(header)
        print("-" * len(header))
        table = []
        for r in rows:
            tps = [x["tokens_per_s"] for x in results[r]]
            med = statistics.median(tps)
            step = statistics.median(s for x in results[r] for s in x["step_s"])
            ratio = med / base_tps if base_tps else float("nan")
            ratio2 = med / sparse_tps if sparse_tps else float("nan")
            table.append({"row": r, "method": ROWS[r], "tokens_per_s": med, "min": min(tps), "max": max(tps),
                          "median_step_ms": step * 1e3, "ratio": ratio, "ratio_sparse_trainer": ratio2})
            shown = f"{ratio:10.2f}x" if base_tps else f"{'-':>11}"
            shown2 = f"{ratio2:10.2f}x" if sparse_tps else f"{'-':>11}"
            print(f"{ROWS[r]:<56} {med:9,.0f} {min(tps):7,.0f}-{max(tps):<7,.0f} {step * 1e3:8.0f} {shown} {shown2}")
        paired = []
        if base_tps and "es-zoo" in rows:
            es = statistics.median(x["tokens_per_s"] for x in results["es-zoo"])
            # Within a round the two rows ran minutes apart at most, so the per-round ratio sees
            # less of the machine's drift than the ratio of medians.
            paired = [e["tokens_per_s"] / b["tokens_per_s"] for e, b in zip(results["es-zoo"], results[base])]
            print(f"\nratio es-zoo / Trainer (anchor 1, dense head): {es / base_tps:.2f}x (medians of {args.rounds} "
                  f"rounds); per round: " + ", ".join(f"{p:.2f}x" for p in paired))
        paired_sparse = []
        if sparse_tps and "es-zoo" in rows:
            es = statistics.median(x["tokens_per_s"] for x in results["es-zoo"])
            paired_sparse = [e["tokens_per_s"] / b["tokens_per_s"]
                             for e, b in zip(results["es-zoo"], results[sparse_base])]
            print(f"ratio es-zoo / Trainer with the head at masked positions (anchor 2): {es / sparse_tps:.2f}x "
                  f"(medians of {args.rounds} rounds); per round: " + ", ".join(f"{p:.2f}x" for p in paired_sparse))

        pieces = []
        if args.breakdown:
            print(f"\nOne step's pieces on one {args.batch_size}x{SEQ_LEN} batch "
                  f"(median of {args.breakdown_repeats}, interleaved):")
            pieces = breakdown(prep, args)
            for name, ms in pieces:
                print(f"  {name:<64} {ms:8.1f} ms")
        if args.profile:
            print("\ntorch.profiler, 5 es-zoo train_step calls (batches prebuilt):")
            print(profile(prep, args))
        print(f"\nload average at the end: {os.getloadavg()[0]:.2f}")
        if args.json:
            Path(args.json).write_text(json.dumps({
                "machine": machine(), "args": vars(args), "table": table,
                "es_zoo_over_trainer_per_round": paired,
                "es_zoo_over_sparse_trainer_per_round": paired_sparse, "breakdown_ms": dict(pieces),
            }, indent=2))


if __name__ == "__main__":
    main()
