"""T5-base and BART-base pretraining throughput (samples/s) and MFU on one GPU with the es-zoo step.

Runs the es-zoo training step (``Seq2SeqBatchMaker`` corrupting the global batch in numpy, inputs padded
only to the longest row, ``Seq2SeqLoss`` + ``train_step`` under bf16 autocast through accelerate, the
recipe's optimizer: nanoT5's AdamWScale for T5, AdamW for BART) on the `t5s` / `barto` paper presets
(T5 v1.1 base 12+12 x 768, BART base 6+6 x 768) and prints samples/s, seconds per batch and the model
FLOPs utilisation. The anchor is nanoT5's published figure: 0.56 s per batch of 128 x 512 for T5 v1.1
base on one A100 with bf16 and torch.compile, about 29% MFU (nanoT5 README). Run with the same shape
(``--model t5 --batch 128 --seq-len 512 --compile``) to compare; the ratio printed is nanoT5's time per
batch over es-zoo's (mind the GPU: an H100 has ~3x an A100's dense bf16 peak).

The token stream is synthetic (uniform ids over the vocabulary, ~30-token sentences, 3/4 of the tokens
starting a word) so the script needs no corpus and no tokenizer training; the objective, padding, model,
optimizer and step are the ones ``es-zoo reproduce`` runs. FLOPs are counted per sample as
6 x multiply-accumulates of every matmul (encoder over the input length, decoder over the target length,
cross-attention keys/values over the input length, attention scores, the vocabulary projection at every
target position); the peak is the GPU's dense bf16 figure (--peak-tflops: 989 for H100/H200 SXM, 312 for A100).

    python benchmarks/bench_gpu_seq2seq.py --model t5 --batch 128 --seq-len 512 --compile
    python benchmarks/bench_gpu_seq2seq.py --model bart --batch 32 --seq-len 1024
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch

NANOT5_S_PER_BATCH = 0.56  # T5 v1.1 base, 128 x 512, one A100 40GB, bf16 + torch.compile (nanoT5 README)
NANOT5_MFU = 0.29


def macs_per_sample(model_cfg, arch: str, enc_len: float, dec_len: float, vocab: int) -> float:
    """Multiply-accumulates of one forward pass over one sample (see the module docstring)."""
    if arch == "t5":
        d, inner, dff = model_cfg.d_model, model_cfg.num_heads * model_cfg.d_kv, model_cfg.d_ff
        le, ld = model_cfg.num_layers, model_cfg.num_decoder_layers
        ffn = (3 if model_cfg.feed_forward_proj.startswith("gated") else 2) * d * dff
    else:
        d = inner = model_cfg.d_model
        dff = model_cfg.encoder_ffn_dim
        le, ld = model_cfg.encoder_layers, model_cfg.decoder_layers
        ffn = 2 * d * dff
    enc = enc_len * le * (4 * d * inner + ffn) + le * 2 * enc_len * enc_len * inner
    dec = dec_len * ld * (4 * d * inner + 2 * d * inner + ffn)
    dec += ld * 2 * enc_len * d * inner  # cross-attention keys and values over the encoder output
    dec += ld * (2 * dec_len * dec_len * inner + 2 * dec_len * enc_len * inner)
    head = dec_len * d * vocab
    return enc + dec + head


def synthetic_data(arch: str, vocab: int, tokens: int, seed: int = 0):
    from es_zoo.seq2seq_batches import Seq2SeqData

    rng = np.random.default_rng(seed)
    stream = rng.integers(200, vocab - 200, size=tokens, dtype=np.int32)
    if arch == "t5":
        return Seq2SeqData(family="t5", stream=stream, sentence_starts=None, pad_id=0, eos_id=1, bos_id=None,
                           decoder_start_id=0, sentinel_start=vocab - 1, num_sentinels=100)
    starts = rng.random(tokens) < 1 / 30
    word_start = rng.random(vocab) < 0.75
    return Seq2SeqData(family="bart", stream=stream, sentence_starts=starts, pad_id=1, eos_id=2, bos_id=0,
                       decoder_start_id=2, word_start=word_start, random_ids=np.arange(4, vocab - 1),
                       mask_id=vocab - 1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", choices=["t5", "bart"], default="t5")
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--seq-len", type=int, default=512, help="input length (T5: after corruption)")
    ap.add_argument("--batch", type=int, default=128, help="samples per optimizer step")
    ap.add_argument("--micro-batch", type=int, default=None, help="samples per forward pass [default: --batch]")
    ap.add_argument("--compile", action="store_true", help="torch.compile the model (as nanoT5's figure)")
    ap.add_argument("--peak-tflops", type=float, default=989.0)
    ap.add_argument("--json", default=None)
    args = ap.parse_args()

    from accelerate import Accelerator

    from es_zoo.modeling import Seq2SeqLoss, build_bart, build_t5
    from es_zoo.recipes import load_recipe
    from es_zoo.seq2seq_batches import Seq2SeqBatchMaker
    from es_zoo.training import build_optimizer, train_step

    recipe = "t5s" if args.model == "t5" else "barto"
    micro = args.micro_batch or args.batch
    phase = (f"training.phases=[{{max_steps: {args.steps + args.warmup}, seq_len: {args.seq_len}, "
             f"global_batch_size: {args.batch}, micro_batch_size: {micro}}}]")
    cfg = load_recipe(recipe, preset="paper", overrides=[phase, "training.warmup_steps=1",
                                                          "training.mixed_precision=bf16"])
    vocab = cfg.tokenizer.vocab_size
    data = synthetic_data(args.model, vocab, tokens=(args.steps + args.warmup) * args.batch * 1200 + 10_000)
    acc = Accelerator(mixed_precision="bf16")
    torch.manual_seed(0)
    if args.model == "t5":
        model = build_t5(cfg.model, vocab_size=vocab, pad_token_id=0, eos_token_id=1)
    else:
        model = build_bart(cfg.model, vocab_size=vocab, pad_token_id=1, bos_token_id=0, eos_token_id=2)
    if args.compile:
        model = torch.compile(model)
    wrapped = Seq2SeqLoss(model)
    opt = build_optimizer(wrapped, cfg.training)
    wrapped, opt = acc.prepare(wrapped, opt)
    maker = Seq2SeqBatchMaker(cfg, data, 0, 1)
    enc_tokens, dec_tokens = [], []
    for step in range(args.warmup + args.steps):
        if step == args.warmup:
            torch.cuda.synchronize() if torch.cuda.is_available() else None
            t0 = time.perf_counter()
        batch = maker(step)
        if step >= args.warmup:
            enc_tokens.append(batch.tokens / args.batch)
            dec_tokens.append(batch.predicted / args.batch)
        train_step(wrapped, opt, batch, acc, cfg.training)
    torch.cuda.synchronize() if torch.cuda.is_available() else None
    dt = time.perf_counter() - t0
    s_per_batch = dt / args.steps
    sps = args.batch / s_per_batch
    flops = 6 * macs_per_sample(cfg.model, args.model, float(np.mean(enc_tokens)), float(np.mean(dec_tokens)), vocab)
    tflops = sps * flops / 1e12
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"
    mem = torch.cuda.max_memory_allocated() / 2**30 if torch.cuda.is_available() else 0.0
    res = {"gpu": gpu, "torch": torch.__version__, "model": args.model, "batch": args.batch, "micro_batch": micro,
           "seq_len": args.seq_len, "compile": args.compile, "samples_per_s": sps, "s_per_batch": s_per_batch,
           "tflops": tflops, "mfu": tflops / args.peak_tflops, "max_memory_gib": mem,
           "mean_input_tokens": float(np.mean(enc_tokens)), "mean_target_tokens": float(np.mean(dec_tokens))}
    name = "T5 v1.1 base" if args.model == "t5" else "BART base"
    print(f"\n{gpu}, torch {torch.__version__}, {name}, bf16{' + compile' if args.compile else ''}, "
          f"batch {args.batch} (micro {micro}), input length {args.seq_len}")
    print(f"es-zoo: {sps:,.1f} samples/s, {s_per_batch:.3f} s/batch, {tflops:.1f} TFLOP/s, MFU {100 * res['mfu']:.1f}%, "
          f"{mem:.1f} GiB; mean input {res['mean_input_tokens']:.0f} / target {res['mean_target_tokens']:.0f} tokens")
    if args.model == "t5" and args.batch == 128 and args.seq_len == 512:
        print(f"nanoT5 anchor (A100, published): {NANOT5_S_PER_BATCH} s/batch, MFU ~{100 * NANOT5_MFU:.0f}%; "
              f"ratio nanoT5 s/batch / es-zoo s/batch: {NANOT5_S_PER_BATCH / s_per_batch:.2f}x")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(res, fh, indent=2)


if __name__ == "__main__":
    main()
