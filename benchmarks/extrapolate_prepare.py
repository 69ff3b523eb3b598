"""Extrapolate ``bench_prepare.py``'s measurements to the paper presets: CPU-hours, token-file disk, and
the CPU cores that would keep 8 H100s fed.

Reads the JSON of ``bench_prepare.py`` and, per family, fits the cost of preparing a corpus as::

    CPU seconds = a x characters read + b x tokens written + tokenizer training

- ``b`` (CPU seconds per token tokenized) from the difference between the full run (everything
  tokenized) and the selection run (``corpus.max_epochs=1``: everything read, a share tokenized) at the
  largest size; without a selection run (BETO, which tokenizes everything anyway), the tokenize stage's
  CPU divided by its tokens (an upper bound on ``b``: that stage also reads and filters the corpus);
- ``a`` (CPU seconds per character read, cleaned, hashed, deduplicated) from what the full run spent
  besides ``b`` x its tokens and the tokenizer stage;
- tokenizer training: the measured tokenizer stage scaled linearly from the bounded sample to the
  preset's ``tokenizer.max_training_chars`` (1 G characters for BETO and BARTO, 500 M for T5S). ASSUMPTION:
  trainers are close to linear in their input; the real figure depends on the trainer and the text.

and applies it to each paper preset:

- **BETO**: an 18 GB corpus (``--beto-corpus-gb``, the size the BETO paper reports), tokenized completely
  (``corpus.max_epochs: null``);
- **BARTO, T5S**: a 600 GB corpus (``--corpus-gb``) read completely, of which ``corpus.max_epochs: 1``
  tokenizes what the schedule needs (``es_zoo.prepare.needed_tokens``: 209 B and 47.3 B tokens) plus the
  5% margin, plus the held-out documents (``corpus.heldout_fraction``).

Characters per GB and tokens per character are the measured ones (the synthetic ELTeC corpus, the
bounded-sample tokenizers): ASSUMPTIONS for a real corpus. Disk is the token files (uint16, 2 bytes per
token; BARTO's sentence-start bits, 1/8 byte per token). Cores to keep the GPUs fed = the tokens per second
that ``--gpus`` GPUs consume over the pipeline's tokens per CPU-second (what preparing at the training's
pace would take; ``es-zoo prepare`` actually runs once, before training). The GPUs' consumption rates are
``--h100-tokens-per-s FAMILY=RATE``; without them the script uses ASSUMED rates, ``--assumed-mfu`` (40%) of
an H100's dense bf16 peak (989 TFLOP/s) over the model FLOPs per stream token of the paper shape
(``es_zoo.flops``), printed as assumptions, never as measurements.

    python benchmarks/extrapolate_prepare.py prepare.json
    python benchmarks/extrapolate_prepare.py prepare.json --h100-tokens-per-s beto=650000 --h100-tokens-per-s t5s=400000
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

H100_PEAK_TFLOPS = 989.0  # dense bf16, SXM (es_zoo.flops.PEAK_TFLOPS)
CORPUS = {"beto": "beto_corpus_gb", "barto": "corpus_gb", "t5s": "corpus_gb"}


def flops_per_stream_token(family: str) -> tuple[float, str]:
    """Model training FLOPs per token of the training stream at the paper preset's (first) phase shape."""
    from transformers import BartConfig, BertConfig, T5Config

    from es_zoo.flops import bert_mlm_flops_per_token, encoder_decoder_flops
    from es_zoo.prepare import stream_tokens_per_sequence
    from es_zoo.recipes import load_recipe

    cfg = load_recipe(family, "paper")
    fields = {k: v for k, v in dataclasses.asdict(cfg.model).items() if k not in ("architecture", "attn_implementation")}
    ph = cfg.training.phases[0]
    per_seq = stream_tokens_per_sequence(cfg, ph.seq_len)
    vocab = cfg.tokenizer.vocab_size
    if family == "beto":
        c = BertConfig(vocab_size=vocab, **fields)
        share = (ph.max_predictions or cfg.objective.max_predictions) / ph.seq_len
        per_token = bert_mlm_flops_per_token(c, seq_len=ph.seq_len, masked_share=share)
        return per_token * ph.seq_len / per_seq, f"BERT-base {ph.seq_len} (phase 1), {share:.3f} masked"
    if family == "barto":
        c = BartConfig(vocab_size=vocab, **fields)
        f = encoder_decoder_flops(c, rows=1, input_tokens=ph.seq_len, target_tokens=ph.seq_len)
        return f / per_seq, f"BART-base {ph.seq_len} -> {ph.seq_len}"
    from es_zoo.objectives.span_corruption import compute_input_and_target_lengths

    c = T5Config(vocab_size=vocab, **fields)
    raw, target = compute_input_and_target_lengths(ph.seq_len, cfg.objective.noise_density,
                                                   cfg.objective.mean_noise_span_length)
    f = encoder_decoder_flops(c, rows=1, input_tokens=ph.seq_len, target_tokens=target)
    return f / raw, f"T5 v1.1 base {raw} raw -> {ph.seq_len} / {target}"


def fit(runs: list[dict], family: str) -> dict:
    mine = [r for r in runs if r["family"] == family]
    size = max(r["size_mb"] for r in mine)
    fulls = sorted((r for r in mine if r["kind"] == "es-zoo" and r["size_mb"] == size), key=lambda r: -r["workers"])
    if not fulls:
        raise SystemExit(f"no es-zoo run of {family} in the JSON")
    full = fulls[0]
    sel = next((r for r in mine if r["kind"] == "selection" and r["size_mb"] == size), None)
    tok_stage = full["stages"].get("tokenizer", {}).get("cpu_s", 0.0)
    if sel is not None and full["tokens"] > sel["tokens"]:
        b = (full["cpu_s"] - sel["cpu_s"]) / (full["tokens"] - sel["tokens"])
        how = f"b from the full and the {100 * sel['fraction_selected']:.0f}% selection runs"
    else:
        tz = full["stages"].get("tokenize", {}).get("cpu_s", 0.0)
        b = tz / full["tokens"]
        how = "b = tokenize stage CPU / tokens (upper bound: no selection run)"
    a = max(0.0, (full["cpu_s"] - b * full["tokens"] - tok_stage) / full["corpus_chars"])
    return {"size_mb": size, "workers": full["workers"], "a_cpu_s_per_char": a, "b_cpu_s_per_token": b,
            "tokenizer_stage_cpu_s": tok_stage, "sample_chars": full["sample_chars"],
            "tokens_per_char": full["tokens"] / full["corpus_chars"], "how": how,
            "tokens_per_cpu_s_measured": full["tokens_per_cpu_s"], "dtype": full["dtype"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("json", type=Path, help="bench_prepare.py --json output")
    ap.add_argument("--beto-corpus-gb", type=float, default=18.0, help="BETO's corpus, GB of text [18]")
    ap.add_argument("--corpus-gb", type=float, default=600.0, help="the corpus BARTO and T5S select from, GB [600]")
    ap.add_argument("--gpus", type=int, default=8)
    ap.add_argument("--h100-tokens-per-s", action="append", default=[], metavar="FAMILY=RATE",
                    help="training-stream tokens/s one H100 consumes, per family (repeatable) [ASSUMED from --assumed-mfu]")
    ap.add_argument("--assumed-mfu", type=float, default=0.40)
    ap.add_argument("--json-out", default=None)
    args = ap.parse_args()

    from es_zoo.prepare import needed_tokens
    from es_zoo.recipes import load_recipe

    data = json.loads(args.json.read_text())
    corpora = data.get("corpora", {})
    given = {}
    for item in args.h100_tokens_per_s:
        fam, _, rate = item.partition("=")
        given[fam.strip()] = float(rate)
    families = sorted({r["family"] for r in data["runs"]}, key=["beto", "barto", "t5s"].index)
    env = data["environment"]
    print(f"measured on: {env['cpu']}, {env['cores']} cores; es-zoo {env['es-zoo']}, datatrove {env['datatrove']}, "
          f"tokenizers {env['tokenizers']}; TOKENIZERS_PARALLELISM {env.get('TOKENIZERS_PARALLELISM')}")
    out = {}
    rows = []
    for fam in families:
        f = fit(data["runs"], fam)
        info = corpora.get(f"{f['size_mb']:g}", {})
        bytes_per_char = (info["text_utf8_bytes"] / info["text_chars"]) if info.get("text_chars") else 1.0
        cfg = load_recipe(fam, "paper")
        gb = getattr(args, CORPUS[fam])
        chars = gb * 1e9 / bytes_per_char
        corpus_tokens = chars * f["tokens_per_char"]
        heldout = cfg.corpus.heldout_fraction * corpus_tokens
        need = needed_tokens(cfg)
        if need is None:
            tokens = corpus_tokens
            what = f"{gb:g} GB, all tokenized"
        else:
            selected = need * 1.05
            if selected > corpus_tokens * (1 - cfg.corpus.heldout_fraction):
                what = f"{gb:g} GB: TOO SMALL ({corpus_tokens / 1e9:,.0f} B tokens < {selected / 1e9:,.0f} B needed)"
                selected = corpus_tokens
            else:
                what = f"{gb:g} GB, {100 * selected / corpus_tokens:.0f}% tokenized (needed x 1.05)"
            tokens = selected + heldout
        budget = cfg.tokenizer.max_training_chars or chars
        tokenizer_cpu = f["tokenizer_stage_cpu_s"] * budget / max(1, f["sample_chars"])
        cpu = f["a_cpu_s_per_char"] * chars + f["b_cpu_s_per_token"] * tokens + tokenizer_cpu
        bytes_per_token = 2 if f["dtype"] == "uint16" else 4
        disk = tokens * (bytes_per_token + (1 / 8 if fam == "barto" else 0))
        fpt, shape = flops_per_stream_token(fam)
        if fam in given:
            rate, source = given[fam], "given (--h100-tokens-per-s)"
        else:
            rate = args.assumed_mfu * H100_PEAK_TFLOPS * 1e12 / fpt
            source = (f"ASSUMED: {100 * args.assumed_mfu:.0f}% MFU x {H100_PEAK_TFLOPS:g} TFLOP/s / {fpt / 1e6:,.0f} MFLOP "
                      f"per token ({shape}); not measured")
        per_core = tokens / (cpu - tokenizer_cpu)  # tokens per CPU-second of the pipeline, tokenizer training aside
        cores = args.gpus * rate / per_core
        row = {"family": fam, "corpus": what, "chars": chars, "tokens": tokens, "cpu_hours": cpu / 3600,
               "tokenizer_cpu_hours": tokenizer_cpu / 3600, "disk_gb": disk / 1e9, "h100_tokens_per_s": rate,
               "rate_source": source, "pipeline_tokens_per_cpu_s": per_core, "cores_for_gpus": cores, "fit": f}
        rows.append(row)
        out[fam] = row
    print(f"\n{'family':7}{'corpus':44}{'tokens':>10}{'CPU-hours':>11}{'(tokenizer)':>12}{'disk':>10}"
          f"{'tok/CPU-s':>11}{'cores for ' + str(args.gpus) + ' H100':>18}")
    for r in rows:
        print(f"{r['family']:7}{r['corpus']:44}{r['tokens'] / 1e9:>8,.1f} B{r['cpu_hours']:>11,.0f}"
              f"{r['tokenizer_cpu_hours']:>12,.1f}{r['disk_gb']:>7,.0f} GB{r['pipeline_tokens_per_cpu_s']:>11,.0f}"
              f"{r['cores_for_gpus']:>18,.1f}")
    print()
    for r in rows:
        f = r["fit"]
        print(f"{r['family']}: fit at {f['size_mb']:g} MB, {f['workers']} worker(s): a = {f['a_cpu_s_per_char'] * 1e9:,.1f} "
              f"CPU-s per G characters read, b = {f['b_cpu_s_per_token'] * 1e6:,.2f} CPU-s per M tokens ({f['how']}); "
              f"tokenizer stage {f['tokenizer_stage_cpu_s']:,.1f} CPU-s on {f['sample_chars']:,} characters, scaled "
              f"linearly (ASSUMPTION); {f['tokens_per_char']:.3f} tokens per character (synthetic corpus: ASSUMPTION)")
        print(f"  GPU consumption: {r['h100_tokens_per_s']:,.0f} tokens/s per H100 -- {r['rate_source']}")
    if args.json_out:
        Path(args.json_out).write_text(json.dumps({"source": str(args.json), "gpus": args.gpus, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
