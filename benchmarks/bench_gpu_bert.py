"""BERT masked-LM training step: es-zoo against the plain transformers step, side by side, on any device.

For the same model (the same initial weights), the same batches and the same whole-word masks, prints
tokens/s, seconds per step, model TFLOP/s, MFU and (on CUDA) peak memory of

- **es-zoo**: ``BatchMaker`` (packed ``[CLS] ... [SEP]`` rows, whole-word masks in numpy) +
  ``es_zoo.training.train_step`` on ``SparseMLM`` (the MLM head only at the masked positions), prepared by
  accelerate (bf16 autocast on CUDA, fp32 on CPU), the optimizer of ``build_optimizer(model, cfg, device)``
  (fused AdamW on CUDA), no host sync inside a step;
- **transformers**: ``BertForMaskedLM(input_ids=..., labels=dense_labels)`` (the vocabulary projection at
  every position, as Trainer + DataCollatorForLanguageModeling compute it) with ``torch.optim.AdamW``,
  ``clip_grad_norm_(1.0)``, a linear warm-up schedule and ``loss.item()`` every step, under
  ``torch.autocast(bf16)`` on CUDA and fp32 on CPU;

and the ratio of their tokens/s. ``--compile`` compiles both (es-zoo: ``training.compile``, i.e.
``compile_loss_module``; the anchor: ``torch.compile(model)``); use ``--warmup 5`` or more then, so the
compilations (es-zoo recompiles once when the number of masked tokens changes) stay out of the timing.

Sizes: ``--size base`` is the ``beto`` paper preset's BERT-base (12 x 768 x 12, feed-forward 3,072, dropout
0.1, vocabulary 31,002) at its two phases, 128 x 128 (20 predictions per row) and 32 x 512 (80), batch
per step = one micro-batch; ``--size tiny`` is a 2 x 64 model with a 1,000-entry vocabulary at 8 x 64,
which runs in seconds on a CPU (a smoke test of the script, not a measurement).

The token stream is synthetic (uniform ids over the vocabulary, 30% of them flagged as ``##``
continuation pieces so whole words span 1.4 tokens on average, a ``[SEP]`` every 200 tokens): no tokenizer
is trained. That keeps the benchmark honest because the cost of a step does not depend on which ids are
drawn: the model's work is set by the shapes (batch, length, vocabulary) and by the number of masked
positions, which both sides share and which is capped at ``max_predictions`` per row as with real text.

FLOPs follow ``es_zoo.flops`` (6 x weights touched per token + attention): es-zoo's count has the MLM head
at the masked positions, the anchor's at every position (what each computes; the ratio is of tokens/s).
MFU is printed only where the device's dense bf16 peak is known (``es_zoo.flops.PEAK_TFLOPS``: H100/H200,
A100, ...) or given with ``--peak-tflops``; otherwise "n/a".

    python benchmarks/bench_gpu_bert.py --size base                    # both phases, CUDA if present
    python benchmarks/bench_gpu_bert.py --size base --seq-len 128 --steps 50 --compile --json bert.json
    python benchmarks/bench_gpu_bert.py --size tiny --steps 5          # smoke test on a CPU
"""

from __future__ import annotations

import argparse
import time

import _step_bench as sb  # noqa: F401  (sets the environment and sys.path first)
import numpy as np
import torch

SHAPES = {"base": [(128, 128, 20), (512, 32, 80)], "tiny": [(64, 8, 10)]}  # (seq_len, batch, max_predictions)
TINY = ["model.hidden_size=64", "model.num_hidden_layers=2", "model.num_attention_heads=2",
        "model.intermediate_size=128", "model.max_position_embeddings=128"]
TINY_VOCAB = 1000


def synthetic_mlm_data(vocab: int, tokens: int, seed: int = 0):
    """A uniform token stream with BETO's special ids (0-5) and 30% ``##`` pieces (the upper ids)."""
    from es_zoo.training import MLMData

    rng = np.random.default_rng(seed)
    stream = rng.integers(6, vocab, size=tokens).astype(np.int32)
    stream[199::200] = 5  # a document separator ([SEP]) every 200 tokens
    is_special = np.zeros(vocab, dtype=bool)
    is_special[:6] = True
    is_continuation = np.zeros(vocab, dtype=bool)
    is_continuation[int(vocab * 0.7):] = True
    return MLMData(stream=stream, is_special=is_special, is_continuation=is_continuation, vocab_size=vocab,
                   mask_id=0, pad_id=1, cls_id=4, sep_id=5)


def dense_labels(mb: dict) -> torch.Tensor:
    ids = mb["input_ids"]
    labels = torch.full((ids.numel(),), -100, dtype=torch.long)
    labels[mb["flat_positions"]] = mb["labels"]
    return labels.view_as(ids)


def run_shape(args, seq_len: int, batch: int, max_pred: int, device, accelerator) -> dict:
    from es_zoo.flops import bert_mlm_flops, device_peak_tflops
    from es_zoo.modeling import SparseMLM, build_bert_mlm
    from es_zoo.recipes import load_recipe
    from es_zoo.training import BatchMaker

    n = args.warmup + args.steps
    overrides = [
        f"training.phases=[{{max_steps: {n}, seq_len: {seq_len}, global_batch_size: {batch}, "
        f"micro_batch_size: {batch}, max_predictions: {max_pred}}}]",
        f"training.warmup_steps={min(n, 10)}",
        f"training.mixed_precision={'bf16' if device.type == 'cuda' else repr('no')}",
    ]
    if args.compile:
        overrides.append("training.compile=true")
    if args.size == "tiny":
        cfg = load_recipe("beto", "tiny", overrides=TINY + overrides)
        vocab = TINY_VOCAB
    else:
        cfg = load_recipe("beto", "paper", overrides=overrides)
        vocab = cfg.tokenizer.vocab_size
    data = synthetic_mlm_data(vocab, tokens=n * batch * seq_len + 10 * seq_len)
    maker = BatchMaker(cfg, data, 0, 1)
    t0 = time.perf_counter()
    es_batches = [maker(s) for s in range(n)]
    build_ms = 1000 * (time.perf_counter() - t0) / n
    es_batches = [sb.pin(b, device) for b in es_batches]
    anchor_batches = []
    for b in es_batches:
        (mb,) = b.micro
        pair = {"input_ids": mb["input_ids"], "labels": dense_labels(mb)}
        if device.type == "cuda":
            pair = {k: v.pin_memory() for k, v in pair.items()}
        anchor_batches.append(pair)
    timed = es_batches[args.warmup:]
    tokens = sum(b.tokens for b in timed)
    predicted = sum(b.predicted for b in timed)
    peak = device_peak_tflops(device, args.peak_tflops)

    def build_model():
        torch.manual_seed(0)
        return build_bert_mlm(cfg.model, vocab_size=vocab, pad_token_id=data.pad_id)

    results: dict = {"es_zoo": [], "anchor": []}
    descs = {}
    for r in range(args.rounds):
        for side in (("es_zoo", "anchor") if r % 2 == 0 else ("anchor", "es_zoo")):
            model = build_model()
            config = model.config
            if side == "es_zoo":
                step = sb.es_zoo_side(SparseMLM(model), cfg, accelerator, args.compile)
                descs[side] = step.optimizer_desc
                got = sb.time_side(step, es_batches, args.warmup, device)
            else:
                model.to(device).train()
                fwd = torch.compile(model) if args.compile else model
                opt, sched = sb.anchor_optimizer(model, cfg.training, n)
                descs[side] = sb._optimizer_desc(opt)

                def step(b, fwd=fwd, model=model, opt=opt, sched=sched):
                    ids, labels = b["input_ids"].to(device), b["labels"].to(device)
                    with sb.autocast(device):
                        out = fwd(input_ids=ids, labels=labels)
                    sb.plain_update(out.loss, model, opt, sched, cfg.training.max_grad_norm)

                got = sb.time_side(step, anchor_batches, args.warmup, device)
            results[side].append(got)
            del model, step
            accelerator.free_memory()  # drops accelerate's references to the prepared model and optimizer
            sb.reset_memory(device)
    flops = {"es_zoo": float(bert_mlm_flops(config, rows=batch * args.steps, input_tokens=tokens, masked_tokens=predicted)),
             "anchor": float(bert_mlm_flops(config, rows=batch * args.steps, input_tokens=tokens, masked_tokens=tokens))}
    out = {"seq_len": seq_len, "batch": batch, "max_predictions": max_pred, "vocab": vocab,
           "tokens_per_step": tokens / args.steps, "masked_share": predicted / tokens,
           "batch_build_ms": build_ms}
    for side in ("es_zoo", "anchor"):
        out[side] = {**sb.side_summary(results[side], args.steps, tokens, flops[side], peak, descs[side]),
                     "flops_per_token": flops[side] / tokens}
    out["ratio"] = out["es_zoo"]["tokens_per_s"] / out["anchor"]["tokens_per_s"]
    out["peak_tflops"] = peak
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", choices=["tiny", "base"], default="base")
    ap.add_argument("--seq-len", type=int, choices=[64, 128, 512], default=None,
                    help="only this phase shape [base: 128 and 512; tiny: 64]")
    ap.add_argument("--batch", type=int, default=None, help="sequences per step [base: 128 at 128, 32 at 512; tiny: 8]")
    ap.add_argument("--steps", type=int, default=30, help="timed steps per side and round")
    ap.add_argument("--warmup", type=int, default=3, help="untimed steps first, plus one per further input shape (5+ with --compile)")
    ap.add_argument("--rounds", type=int, default=1, help="repeat both sides, alternating which goes first")
    ap.add_argument("--compile", action="store_true", help="torch.compile both sides")
    ap.add_argument("--device", choices=["auto", "cuda", "cpu"], default="auto")
    ap.add_argument("--peak-tflops", type=float, default=None,
                    help="dense bf16 peak of the device for MFU [looked up by name: es_zoo.flops.PEAK_TFLOPS]")
    ap.add_argument("--json", default=None, help="also write the results here")
    args = ap.parse_args()

    device = sb.pick_device(args.device)
    accelerator = sb.accelerator_for(device)
    shapes = [s for s in SHAPES[args.size] if args.seq_len in (None, s[0])]
    if not shapes:
        raise SystemExit(f"--seq-len {args.seq_len} is not a shape of --size {args.size}")
    name = sb.device_name(device)
    vers = sb.versions()
    precision = "bf16 autocast" if device.type == "cuda" else "fp32"
    report = {"benchmark": "bench_gpu_bert", "device": name, "precision": precision, "versions": vers,
              "args": vars(args), "shapes": []}
    print(f"{name}; torch {vers['torch']}, transformers {vers['transformers']}, accelerate {vers['accelerate']}; "
          f"{precision}{', compiled' if args.compile else ''}; {args.size} BERT; {args.steps} timed steps after "
          f"{args.warmup} warm-up, {args.rounds} round(s)")
    for seq_len, batch, max_pred in shapes:
        batch = args.batch or batch
        r = run_shape(args, seq_len, batch, max_pred, device, accelerator)
        report["shapes"].append(r)
        print()
        sb.print_table(f"{batch} x {seq_len} tokens per step, vocabulary {r['vocab']:,}, "
                       f"{100 * r['masked_share']:.1f}% of tokens masked "
                       f"(es-zoo batch build {r['batch_build_ms']:.1f} ms, off the step)",
                       [(f"es-zoo train_step ({r['es_zoo']['optimizer']})", r["es_zoo"]),
                        (f"transformers BertForMaskedLM ({r['anchor']['optimizer']})", r["anchor"])])
        print(f"ratio es-zoo / transformers tokens/s at {batch} x {seq_len}: {r['ratio']:.2f}x")
    sb.write_json(args.json, report)


if __name__ == "__main__":
    main()
