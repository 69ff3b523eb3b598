"""Generation throughput: es-zoo's batched, length-sorted ``generate`` against plain batched
``model.generate``, same model, same inputs, same batch size, same decoding settings, in one run.

The anchor is what a user writes without es-zoo: the tokenizer pads each slice of ``--batch-size``
inputs, in the order they come (``tokenizer(texts[i:i + 32], padding=True, return_tensors="pt")``),
and one ``model.generate`` call per slice. es-zoo's ``generate`` differs in one thing: it sorts the
inputs by length first, so each batch holds inputs of similar length (less padding in the encoder,
beams of a batch finish closer together). Both are run on two input sets:

- ``flores``: FLORES-200 devtest sentences (Spanish) one per input, as they come (short, 20-60 tokens);
- ``long-varied``: each input joins 1 to ``--max-join`` consecutive FLORES sentences (drawn with a
  fixed seed), so lengths vary by an order of magnitude within a batch: where sorting should matter;

and, for each, with greedy decoding and with ``--num-beams`` beams. Each pair runs ``--repeats`` times,
interleaved; sentences/s is from the best repetition. ``--unbatched`` adds the naive baseline (one
``model.generate`` call per input), which is NOT the anchor: nobody with a batch would write it.

    python benchmarks/bench_generation.py --model runs/t5s-tiny/seq2seq/translation/model
    python benchmarks/bench_generation.py --model runs/t5s-tiny --sentences 128 --unbatched

The sentences are FLORES-200 devtest (Spanish) from ../shared/data, or es-zoo's shipped FLORES lines.
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
FLORES = HERE.parent.parent / "shared" / "data" / "mt" / "flores200-devtest" / "spa_Latn.devtest"


def long_varied(lines: list[str], n: int, max_join: int, seed: int) -> list[str]:
    """n inputs, each 1..max_join consecutive lines joined by a space (lengths spread widely)."""
    rng = np.random.default_rng(seed)
    out, at = [], 0
    for k in rng.integers(1, max_join + 1, size=n):
        out.append(" ".join(lines[(at + j) % len(lines)] for j in range(int(k))))
        at += int(k)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True, help="an encoder-decoder: run folder, model folder, name or Hub id")
    ap.add_argument("--sentences", type=int, default=128, help="inputs per input set")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--num-beams", type=int, default=4, help="the beam-search rows (greedy rows use 1)")
    ap.add_argument("--max-new-tokens", type=int, default=48)
    ap.add_argument("--max-join", type=int, default=8, help="most sentences joined into one long-varied input")
    ap.add_argument("--inputs", default="flores,long-varied", help="comma-separated input sets")
    ap.add_argument("--repeats", type=int, default=2, help="timed repetitions of each pair, interleaved")
    ap.add_argument("--unbatched", action="store_true",
                    help="also time the naive baseline: one model.generate call per input")
    ap.add_argument("--threads", type=int, default=None, help="torch threads [torch's default]")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    import torch
    import transformers

    from es_zoo.generation import decode, encode, generate, load_generator
    from es_zoo.resources import DATA_DIR

    if args.threads:
        torch.set_num_threads(args.threads)
    path = FLORES if FLORES.is_file() else DATA_DIR / "tasks" / "flores200-test.spa"
    lines = [t for t in path.read_text(encoding="utf-8").splitlines() if t.strip()]
    sets = {"flores": lines[: args.sentences],
            "long-varied": long_varied(lines, args.sentences, args.max_join, args.seed)}
    wanted = [s.strip() for s in args.inputs.split(",") if s.strip()]
    if any(s not in sets for s in wanted):
        ap.error(f"--inputs: choose from {', '.join(sets)}")
    model, tok = load_generator(args.model)
    model.eval()

    def ours(texts, beams):
        return generate(model, tok, texts, batch_size=args.batch_size, num_beams=beams,
                        max_new_tokens=args.max_new_tokens)

    def anchor(texts, beams):
        # the plain batched loop: inputs in their order, padded per batch by the tokenizer
        out = []
        with torch.no_grad():
            for lo in range(0, len(texts), args.batch_size):
                enc = tok(texts[lo: lo + args.batch_size], padding=True, return_tensors="pt")
                gen = model.generate(**enc, num_beams=beams, max_new_tokens=args.max_new_tokens,
                                     early_stopping=beams > 1, length_penalty=1.0, do_sample=False)
                out.extend(gen.tolist())
        return decode(tok, out)

    def unbatched(texts, beams):
        out = []
        with torch.no_grad():
            for r in encode(tok, texts).ids:
                ids = torch.tensor([r])
                gen = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), num_beams=beams,
                                     max_new_tokens=args.max_new_tokens, early_stopping=beams > 1,
                                     length_penalty=1.0, do_sample=False)
                out.append(gen[0].tolist())
        return decode(tok, out)

    for beams in (1, args.num_beams):  # warm-up of every path, outside the timing
        ours(lines[:8], beams)
        anchor(lines[:8], beams)

    print(f"model {args.model} ({type(model).__name__}, "
          f"{sum(p.numel() for p in model.parameters()) / 1e6:.1f} M parameters), inputs from {path.name}; "
          f"python {platform.python_version()}, torch {torch.__version__}, transformers {transformers.__version__}, "
          f"torch threads {torch.get_num_threads()}")
    print(f"batch {args.batch_size}, max_new_tokens {args.max_new_tokens}, {args.repeats} interleaved repeats, "
          f"sentences/s from the best; anchor = plain batched model.generate (inputs in order, padded per batch)")
    header = (f"{'inputs':<12} {'tokens min/mean/max':>20} {'decoding':<9} {'implementation':<40} "
              f"{'sent/s':>8} {'s':>7} {'pad %':>6}")
    print(header)
    print("-" * len(header))
    summary = []
    for name in wanted:
        texts = sets[name]
        lens = np.array([len(r) for r in encode(tok, texts).ids])
        order = np.argsort(-lens, kind="stable")

        def pad_share(idx):
            chunks = [lens[idx[i: i + args.batch_size]] for i in range(0, len(idx), args.batch_size)]
            padded = sum(len(c) * c.max() for c in chunks)
            return 100 * (1 - lens.sum() / padded)

        pads = {"es-zoo": pad_share(order), "anchor": pad_share(np.arange(len(texts))), "unbatched": 0.0}
        for beams in (1, args.num_beams):
            impls = {"es-zoo": ours, "anchor": anchor}
            if args.unbatched:
                impls["unbatched"] = unbatched
            times = {k: [] for k in impls}
            outs = {}
            for rep in range(args.repeats):
                keys = list(impls) if rep % 2 == 0 else list(impls)[::-1]
                for k in keys:
                    t0 = time.perf_counter()
                    outs[k] = impls[k](texts, beams)
                    times[k].append(time.perf_counter() - t0)
            decoding = "greedy" if beams == 1 else f"beams {beams}"
            labels = {"es-zoo": f"es-zoo generate (batch {args.batch_size}, sorted)",
                      "anchor": f"model.generate (batch {args.batch_size}) [anchor]",
                      "unbatched": "unbatched model.generate loop [naive]"}
            for k, ts in times.items():
                best = min(ts)
                print(f"{name:<12} {f'{lens.min()}/{lens.mean():.0f}/{lens.max()}':>20} {decoding:<9} "
                      f"{labels[k]:<40} {len(texts) / best:8.2f} {best:7.2f} {pads[k]:6.1f}")
            same = sum(a == b for a, b in zip(outs["es-zoo"], outs["anchor"]))
            ratio = min(times["anchor"]) / min(times["es-zoo"])
            line = (f"{name:<12} {decoding:<9} ratio es-zoo / batched model.generate: {ratio:.2f}x; "
                    f"identical outputs {same}/{len(texts)}")
            if args.unbatched:
                naive = min(times["unbatched"]) / min(times["es-zoo"])
                line += f"; es-zoo / unbatched loop (naive baseline): {naive:.2f}x"
            summary.append(line)
    print()
    for line in summary:
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
