"""T5 and BART pretraining step: es-zoo against the plain transformers step, side by side, on any device.

For the same model (the same initial weights), the same corrupted batches (T5 span corruption, BART text
infilling + sentence permutation, drawn once by es-zoo's ``Seq2SeqBatchMaker``) prints input tokens/s,
samples/s, seconds per step, model TFLOP/s, MFU and (on CUDA) peak memory of

- **es-zoo**: ``Seq2SeqBatchMaker`` (each slice padded to its own longest input) +
  ``es_zoo.training.train_step`` on ``Seq2SeqLoss`` (summed cross-entropy over the target tokens, the
  decoder input built by the batch maker), prepared by accelerate (bf16 autocast on CUDA, fp32 on CPU),
  the recipe's optimizer from ``build_optimizer(model, cfg, device)``: nanoT5's AdamWScale (foreach on
  CUDA) for T5, AdamW (fused on CUDA) for BART; no host sync inside a step;
- **transformers**: ``model(input_ids=..., attention_mask=..., labels=...)`` (the model shifts the labels
  into its decoder input itself; the script checks that this is the decoder input es-zoo feeds) with
  ``torch.optim.AdamW``, ``clip_grad_norm_(1.0)``, a linear warm-up schedule and ``loss.item()`` every
  step, under ``torch.autocast(bf16)`` on CUDA and fp32 on CPU;

and the ratio of their tokens/s. The optimizers differ for T5 on purpose: es-zoo runs the one its T5S
recipe trains with (AdamWScale, as nanoT5), the anchor the AdamW a user writes; ``--es-zoo-optimizer
adamw`` gives es-zoo AdamW too, to compare the step alone. ``--compile`` compiles both (es-zoo:
``training.compile``; the anchor: ``torch.compile(model)``); use ``--warmup 5`` or more then (BART's
inputs vary in length, so both recompile once with dynamic shapes).

Sizes (``--size base``): T5 v1.1 base (the ``t5s`` paper preset's 12+12 x 768, gated-GELU feed-forward
2,048, vocabulary 32,128) on 568 raw tokens -> 512 input / 114 target tokens, 128 rows per step; BART base
(the ``barto`` paper preset's 6+6 x 768, dropout 0.1, vocabulary 50,264) on 1,024-token blocks, 32 rows
per step; one micro-batch per step. ``--size tiny``: 2+2 x 64 models with a 1,000-entry vocabulary on
64-token inputs, 8 rows: seconds on a CPU (a smoke test of the script, not a measurement).

The token stream is synthetic (uniform ids over the ordinary vocabulary; BART: 3/4 of the ids start a
word, a sentence every ~30 tokens): no tokenizer is trained. The cost of a step does not depend on which
ids are drawn: the shapes (rows, input and target lengths, vocabulary) set the model's work, and the
corruption produces the same lengths from synthetic ids as from text with the same word and sentence
statistics.

FLOPs follow ``es_zoo.flops.encoder_decoder_flops`` (the same computation on both sides). MFU is printed
only where the device's dense bf16 peak is known (``es_zoo.flops.PEAK_TFLOPS``) or given with
``--peak-tflops``; otherwise "n/a".

    python benchmarks/bench_gpu_seq2seq.py --size base                 # T5 and BART, CUDA if present
    python benchmarks/bench_gpu_seq2seq.py --size base --family t5 --compile --steps 30 --json t5.json
    python benchmarks/bench_gpu_seq2seq.py --size tiny --steps 5       # smoke test on a CPU
"""

from __future__ import annotations

import argparse
import time

import _step_bench as sb  # noqa: F401  (sets the environment and sys.path first)
import numpy as np
import torch

# family -> (recipe, input length, rows per step) at each size
SHAPES = {"base": {"t5": ("t5s", 512, 128), "bart": ("barto", 1024, 32)},
          "tiny": {"t5": ("t5s", 64, 8), "bart": ("barto", 64, 8)}}
TINY = {"t5": ["model.d_model=64", "model.d_kv=16", "model.d_ff=128", "model.num_layers=2",
               "model.num_decoder_layers=2", "model.num_heads=4"],
        "bart": ["model.d_model=64", "model.encoder_layers=2", "model.decoder_layers=2",
                 "model.encoder_attention_heads=4", "model.decoder_attention_heads=4", "model.encoder_ffn_dim=128",
                 "model.decoder_ffn_dim=128", "model.max_position_embeddings=128"]}
TINY_VOCAB = 1000


def synthetic_data(family: str, vocab: int, tokens: int, seed: int = 0):
    """A uniform token stream and the tables each objective needs (BART's and T5's special-id layouts)."""
    from es_zoo.seq2seq_batches import Seq2SeqData

    rng = np.random.default_rng(seed)
    if family == "t5":  # <pad>=0 </s>=1 <unk>=2; sentinels <extra_id_0..99> are the top 100 ids
        stream = rng.integers(3, vocab - 100, size=tokens).astype(np.int32)
        stream[299::300] = 1  # a document end every 300 tokens
        return Seq2SeqData(family="t5", stream=stream, sentence_starts=None, pad_id=0, eos_id=1, bos_id=None,
                           decoder_start_id=0, sentinel_start=vocab - 1, num_sentinels=100)
    # BART: <s>=0 <pad>=1 </s>=2 <unk>=3, <mask> the last id
    stream = rng.integers(4, vocab - 1, size=tokens).astype(np.int32)
    starts = rng.random(tokens) < 1 / 30
    word_start = rng.random(vocab) < 0.75
    return Seq2SeqData(family="bart", stream=stream, sentence_starts=starts, pad_id=1, eos_id=2, bos_id=0,
                       decoder_start_id=2, word_start=word_start, random_ids=np.arange(4, vocab - 1),
                       mask_id=vocab - 1)


def check_same_decoder_input(model, mb: dict) -> None:
    """The decoder input es-zoo feeds is the one the transformers model derives from the labels."""
    labels = mb["labels"]
    if hasattr(model, "_shift_right"):
        shifted = model._shift_right(labels)
    else:
        from transformers.models.bart.modeling_bart import shift_tokens_right

        shifted = shift_tokens_right(labels, model.config.pad_token_id, model.config.decoder_start_token_id)
    if not torch.equal(shifted, mb["decoder_input_ids"]):
        raise SystemExit("the anchor's decoder input differs from es-zoo's: the two sides would not compute the same step")


def run_family(args, family: str, device, accelerator) -> dict:
    from es_zoo.flops import device_peak_tflops, encoder_decoder_flops
    from es_zoo.modeling import Seq2SeqLoss, build_bart, build_t5
    from es_zoo.recipes import load_recipe
    from es_zoo.seq2seq_batches import Seq2SeqBatchMaker, block_length

    recipe, seq_len, rows = SHAPES[args.size][family]
    rows = args.batch or rows
    n = args.warmup + args.steps
    overrides = [
        f"training.phases=[{{max_steps: {n}, seq_len: {seq_len}, global_batch_size: {rows}, micro_batch_size: {rows}}}]",
        f"training.warmup_steps={min(n, 10)}",
        f"training.mixed_precision={'bf16' if device.type == 'cuda' else repr('no')}",
    ]
    if args.compile:
        overrides.append("training.compile=true")
    if args.es_zoo_optimizer == "adamw":
        overrides += ["training.optimizer=adamw", "training.learning_rate=1e-3"]
    if args.size == "tiny":
        # the tiny BARTO's copy warm-up (es-zoo's, for minutes-long CPU runs) is not part of a step benchmark
        overrides = TINY[family] + (["objective.copy_warmup_steps=0"] if family == "bart" else []) + overrides
        vocab = TINY_VOCAB
    cfg = load_recipe(recipe, "tiny" if args.size == "tiny" else "paper", overrides=overrides)
    if args.size != "tiny":
        vocab = cfg.tokenizer.vocab_size
    raw = block_length(family, seq_len, cfg.objective)
    data = synthetic_data(family, vocab, tokens=n * rows * (raw + 2) + 10 * raw)
    maker = Seq2SeqBatchMaker(cfg, data, 0, 1)
    t0 = time.perf_counter()
    es_batches = [maker(s) for s in range(n)]
    build_ms = 1000 * (time.perf_counter() - t0) / n
    es_batches = [sb.pin(b, device) for b in es_batches]
    anchor_batches = [{k: b.micro[0][k] for k in ("input_ids", "attention_mask", "labels")} for b in es_batches]
    timed = es_batches[args.warmup:]
    tokens = sum(b.tokens for b in timed)
    targets = sum(b.predicted for b in timed)
    samples = rows * args.steps
    peak = device_peak_tflops(device, args.peak_tflops)

    def build_model():
        torch.manual_seed(0)
        if family == "t5":
            return build_t5(cfg.model, vocab_size=vocab, pad_token_id=0, eos_token_id=1)
        return build_bart(cfg.model, vocab_size=vocab, pad_token_id=1, bos_token_id=0, eos_token_id=2)

    results: dict = {"es_zoo": [], "anchor": []}
    descs = {}
    for r in range(args.rounds):
        for side in (("es_zoo", "anchor") if r % 2 == 0 else ("anchor", "es_zoo")):
            model = build_model()
            config = model.config
            if r == 0 and side == "es_zoo":
                check_same_decoder_input(model, es_batches[0].micro[0])
            if side == "es_zoo":
                step = sb.es_zoo_side(Seq2SeqLoss(model), cfg, accelerator, args.compile)
                descs[side] = step.optimizer_desc
                got = sb.time_side(step, es_batches, args.warmup, device)
            else:
                model.to(device).train()
                fwd = torch.compile(model) if args.compile else model
                opt, sched = sb.anchor_optimizer(model, cfg.training, n)
                descs[side] = sb._optimizer_desc(opt)

                def step(b, fwd=fwd, model=model, opt=opt, sched=sched):
                    batch = {k: v.to(device) for k, v in b.items()}
                    with sb.autocast(device):
                        out = fwd(**batch)
                    sb.plain_update(out.loss, model, opt, sched, cfg.training.max_grad_norm)

                got = sb.time_side(step, anchor_batches, args.warmup, device)
            results[side].append(got)
            del model, step
            accelerator.free_memory()  # drops accelerate's references to the prepared model and optimizer
            sb.reset_memory(device)
    flops = float(encoder_decoder_flops(config, rows=samples, input_tokens=tokens, target_tokens=targets))
    out = {"family": family, "recipe": recipe, "input_len": seq_len, "raw_len": raw, "rows": rows, "vocab": vocab,
           "mean_input_tokens": tokens / samples, "mean_target_tokens": targets / samples,
           "padded_input_share": 1 - tokens / sum(b.micro[0]["input_ids"].numel() for b in timed),
           "batch_build_ms": build_ms}
    for side in ("es_zoo", "anchor"):
        out[side] = sb.side_summary(results[side], args.steps, tokens, flops, peak, descs[side])
        out[side]["samples_per_s"] = samples / sb.median_of(results[side], "seconds")
    out["ratio"] = out["es_zoo"]["tokens_per_s"] / out["anchor"]["tokens_per_s"]
    out["peak_tflops"] = peak
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--family", choices=["t5", "bart", "both"], default="both")
    ap.add_argument("--size", choices=["tiny", "base"], default="base")
    ap.add_argument("--batch", type=int, default=None, help="rows per step [base: T5 128, BART 32; tiny: 8]")
    ap.add_argument("--steps", type=int, default=20, help="timed steps per side and round")
    ap.add_argument("--warmup", type=int, default=3, help="untimed steps first, plus one per further input shape (5+ with --compile)")
    ap.add_argument("--rounds", type=int, default=1, help="repeat both sides, alternating which goes first")
    ap.add_argument("--compile", action="store_true", help="torch.compile both sides")
    ap.add_argument("--es-zoo-optimizer", choices=["recipe", "adamw"], default="recipe",
                    help="es-zoo's optimizer: the recipe's (T5: AdamWScale) or AdamW like the anchor")
    ap.add_argument("--device", choices=["auto", "cuda", "cpu"], default="auto")
    ap.add_argument("--peak-tflops", type=float, default=None,
                    help="dense bf16 peak of the device for MFU [looked up by name: es_zoo.flops.PEAK_TFLOPS]")
    ap.add_argument("--json", default=None, help="also write the results here")
    args = ap.parse_args()

    device = sb.pick_device(args.device)
    accelerator = sb.accelerator_for(device)
    name = sb.device_name(device)
    vers = sb.versions()
    precision = "bf16 autocast" if device.type == "cuda" else "fp32"
    report = {"benchmark": "bench_gpu_seq2seq", "device": name, "precision": precision, "versions": vers,
              "args": vars(args), "families": []}
    print(f"{name}; torch {vers['torch']}, transformers {vers['transformers']}, accelerate {vers['accelerate']}; "
          f"{precision}{', compiled' if args.compile else ''}; {args.size} models; {args.steps} timed steps after "
          f"{args.warmup} warm-up, {args.rounds} round(s)")
    for family in (("t5", "bart") if args.family == "both" else (args.family,)):
        r = run_family(args, family, device, accelerator)
        report["families"].append(r)
        label = {"t5": "T5", "bart": "BART"}[family]
        shape = (f"{r['rows']} x {r['raw_len']} raw -> {r['input_len']} input / {r['mean_target_tokens']:.0f} target"
                 if family == "t5" else
                 f"{r['rows']} x {r['input_len']} blocks -> mean input {r['mean_input_tokens']:.0f} / "
                 f"target {r['mean_target_tokens']:.0f}")
        print()
        sb.print_table(f"{label} ({r['recipe']}, {args.size}): {shape} tokens, vocabulary {r['vocab']:,} "
                       f"(es-zoo batch build {r['batch_build_ms']:.1f} ms, off the step); tokens/s = input tokens",
                       [(f"es-zoo train_step ({r['es_zoo']['optimizer']})", r["es_zoo"]),
                        (f"transformers model(labels=) ({r['anchor']['optimizer']})", r["anchor"])])
        print(f"  samples/s: es-zoo {r['es_zoo']['samples_per_s']:,.1f}, transformers {r['anchor']['samples_per_s']:,.1f}")
        print(f"ratio es-zoo / transformers tokens/s, {label}: {r['ratio']:.2f}x")
    sb.write_json(args.json, report)


if __name__ == "__main__":
    main()
