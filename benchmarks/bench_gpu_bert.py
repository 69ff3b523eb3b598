"""BERT-base pretraining throughput and MFU on one GPU: the es-zoo step against a plain transformers step.

Runs, side by side in one process, on the same BERT-base model (the `beto` paper preset: 12 x 768 x 12,
vocabulary 31,002), the same packed sequences and the same masks:

- es-zoo: `es_zoo.training.BatchMaker` + `train_step` (packed sequences, whole-word masks built in
  numpy, MLM head only at the masked positions, bf16 autocast through accelerate);
- anchor: `BertForMaskedLM(input_ids, labels=...)` with the same masks as dense labels (what a
  Trainer + DataCollatorForLanguageModeling step computes: the vocabulary projection at every position).

Prints tokens/s, the ratio and the model FLOPs utilisation (MFU) of each. FLOPs per token follow the
usual accounting (6 x parameters touched per token for forward + backward, plus attention
12 x layers x hidden x length), with the MLM head counted where it is computed: at 15% of the positions
for es-zoo, at every position for the anchor. MFU divides by the GPU's dense bf16 peak (--peak-tflops,
989 for H100/H200 SXM).

    python benchmarks/bench_gpu_bert.py --steps 30 --seq-len 128 --batch 128
    python benchmarks/bench_gpu_bert.py --steps 20 --seq-len 512 --batch 32
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch


def flops_per_token(layers: int, hidden: int, ffn: int, vocab: int, seq_len: int, head_fraction: float) -> float:
    per_layer = 4 * hidden * hidden + 2 * hidden * ffn  # attention projections + feed-forward
    encoder = layers * per_layer
    head = hidden * hidden + hidden * vocab  # transform + decoder, where it is computed
    attention = 2 * layers * hidden * seq_len  # QK^T and AV per token (forward, multiply-adds)
    return 6 * (encoder + head_fraction * head) + 6 * attention


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--seq-len", type=int, default=128)
    ap.add_argument("--batch", type=int, default=128, help="sequences per step (one micro-batch)")
    ap.add_argument("--peak-tflops", type=float, default=989.0)
    ap.add_argument("--json", default=None, help="also write the results here")
    ap.add_argument("--max-chars", type=int, default=None, help="train the tokenizer on this much text only")
    args = ap.parse_args()

    from accelerate import Accelerator

    from es_zoo.corpus import open_corpus
    from es_zoo.modeling import build_bert_mlm
    from es_zoo.recipes import load_recipe
    from es_zoo.tokenization import tokenize_documents, train_wordpiece, wordpiece_tables
    from es_zoo.modeling import SparseMLM
    from es_zoo.training import BatchMaker, MLMData, build_optimizer, train_step

    phase = (f"training.phases=[{{max_steps: {args.steps + args.warmup}, seq_len: {args.seq_len}, "
             f"global_batch_size: {args.batch}, micro_batch_size: {args.batch}, "
             f"max_predictions: {max(20, round(args.seq_len * 0.15))}}}]")
    cfg = load_recipe("beto", preset="paper", overrides=[phase, "training.warmup_steps=1"])
    corpus = open_corpus(cfg.corpus)
    t0 = time.perf_counter()
    docs = list(corpus.documents("train"))
    if args.max_chars:
        docs = [d[: args.max_chars // len(docs)] for d in docs]
    tok = train_wordpiece(docs, vocab_size=cfg.tokenizer.vocab_size)
    stream = np.concatenate([np.append(d, tok.sep_token_id) for d in tokenize_documents(tok, docs)])
    print(f"tokenizer + tokens: {time.perf_counter() - t0:.1f}s, {len(stream):,} tokens, vocab {len(tok)}")
    is_special, is_cont = wordpiece_tables(tok)
    data = MLMData(stream=stream.astype(np.int32), is_special=is_special, is_continuation=is_cont,
                   vocab_size=len(tok), mask_id=tok.mask_token_id, pad_id=tok.pad_token_id,
                   cls_id=tok.cls_token_id, sep_id=tok.sep_token_id)

    acc = Accelerator(mixed_precision="bf16")
    dev = acc.device
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"
    m = cfg.model
    results = {"gpu": gpu, "torch": torch.__version__, "seq_len": args.seq_len, "batch": args.batch}

    # es-zoo step
    torch.manual_seed(0)
    model = build_bert_mlm(m, vocab_size=len(tok), pad_token_id=tok.pad_token_id)
    wrapped = SparseMLM(model)
    opt = build_optimizer(wrapped, cfg.training)
    wrapped, opt = acc.prepare(wrapped, opt)
    maker = BatchMaker(cfg, data, 0, 1)
    masked_share = []
    for step in range(args.warmup + args.steps):
        if step == args.warmup:
            torch.cuda.synchronize() if torch.cuda.is_available() else None
            t0 = time.perf_counter()
        batch = maker(step)
        masked_share.append(batch.masked_tokens / batch.tokens)
        train_step(wrapped, opt, batch, acc, cfg.training)
    torch.cuda.synchronize() if torch.cuda.is_available() else None
    dt = time.perf_counter() - t0
    tps = args.steps * args.batch * args.seq_len / dt
    share = float(np.mean(masked_share))
    f = flops_per_token(m.num_hidden_layers, m.hidden_size, m.intermediate_size, len(tok), args.seq_len, share)
    results["es_zoo"] = {"tokens_per_s": tps, "step_s": dt / args.steps, "tflops": tps * f / 1e12,
                         "mfu": tps * f / 1e12 / args.peak_tflops, "masked_share": share}
    mem_es = torch.cuda.max_memory_allocated() / 2**30 if torch.cuda.is_available() else 0.0
    del wrapped, opt, model
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()

    # anchor: dense labels, full-vocabulary head at every position (what Trainer + collator compute)
    torch.manual_seed(0)
    model = build_bert_mlm(m, vocab_size=len(tok), pad_token_id=tok.pad_token_id).to(dev)
    opt = build_optimizer(model, cfg.training)
    for step in range(args.warmup + args.steps):
        if step == args.warmup:
            torch.cuda.synchronize() if torch.cuda.is_available() else None
            t0 = time.perf_counter()
        batch = maker(step)
        mb = batch.micro[0]
        labels = torch.full((mb.input_ids.numel(),), -100, dtype=torch.long)
        labels[mb.flat_positions] = mb.labels
        with torch.autocast(device_type=dev.type, dtype=torch.bfloat16):
            out = model(input_ids=mb.input_ids.to(dev), labels=labels.view_as(mb.input_ids).to(dev))
        out.loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        out.loss.item()  # the same host sync the es-zoo step has
    torch.cuda.synchronize() if torch.cuda.is_available() else None
    dt = time.perf_counter() - t0
    tps_a = args.steps * args.batch * args.seq_len / dt
    f_a = flops_per_token(m.num_hidden_layers, m.hidden_size, m.intermediate_size, len(tok), args.seq_len, 1.0)
    results["anchor"] = {"tokens_per_s": tps_a, "step_s": dt / args.steps, "tflops": tps_a * f_a / 1e12,
                         "mfu": tps_a * f_a / 1e12 / args.peak_tflops}
    mem_a = torch.cuda.max_memory_allocated() / 2**30 if torch.cuda.is_available() else 0.0
    results["es_zoo"]["max_memory_gib"], results["anchor"]["max_memory_gib"] = mem_es, mem_a

    print(f"\n{gpu}, torch {torch.__version__}, BERT-base, bf16, {args.batch} x {args.seq_len} tokens per step")
    print(f"{'':28}{'tokens/s':>12}{'s/step':>9}{'TFLOP/s':>9}{'MFU':>8}{'GiB':>7}")
    for name, key in (("es-zoo step", "es_zoo"), ("transformers dense MLM step", "anchor")):
        r = results[key]
        print(f"{name:28}{r['tokens_per_s']:>12,.0f}{r['step_s']:>9.3f}{r['tflops']:>9.1f}{100 * r['mfu']:>7.1f}%"
              f"{r['max_memory_gib']:>7.1f}")
    print(f"ratio es-zoo / anchor: {tps / tps_a:.2f}x")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(results, fh, indent=2)


if __name__ == "__main__":
    main()
