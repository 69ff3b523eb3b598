"""Generation throughput: es-zoo's batched, length-sorted generation against an unbatched loop over
``model.generate`` (one sentence at a time), same model, same sentences, same decoding settings, in one
run. Prints sentences/s of both, the ratio, and how many outputs are identical.

    python benchmarks/bench_generation.py --model runs/t5s-tiny
    python benchmarks/bench_generation.py --model runs/barto-tiny --sentences 256 --batch-size 32 --num-beams 4

The sentences are FLORES-200 devtest (Spanish) from ../shared/data, or es-zoo's shipped FLORES lines.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
FLORES = HERE.parent.parent / "shared" / "data" / "mt" / "flores200-devtest" / "spa_Latn.devtest"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True, help="an encoder-decoder: run folder, model folder, name or Hub id")
    ap.add_argument("--sentences", type=int, default=256)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--num-beams", type=int, default=4)
    ap.add_argument("--max-new-tokens", type=int, default=48)
    ap.add_argument("--threads", type=int, default=None, help="torch threads [torch's default]")
    args = ap.parse_args()

    import torch

    from es_zoo.generation import decode, encode, generate, load_generator
    from es_zoo.resources import DATA_DIR

    if args.threads:
        torch.set_num_threads(args.threads)
    path = FLORES if FLORES.is_file() else DATA_DIR / "tasks" / "flores200-test.spa"
    texts = path.read_text(encoding="utf-8").splitlines()[: args.sentences]
    model, tok = load_generator(args.model)
    settings = dict(num_beams=args.num_beams, max_new_tokens=args.max_new_tokens)
    generate(model, tok, texts[:4], batch_size=4, **settings)  # warm-up

    t0 = time.perf_counter()
    ours = generate(model, tok, texts, batch_size=args.batch_size, **settings)
    t_ours = time.perf_counter() - t0

    # the anchor: what a user writes without es-zoo, one sentence per model.generate call
    rows = encode(tok, texts).ids
    t0 = time.perf_counter()
    loop = []
    with torch.no_grad():
        for r in rows:
            ids = torch.tensor([r])
            out = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), do_sample=False,
                                 early_stopping=args.num_beams > 1, **settings)
            loop.append(out[0].tolist())
    t_loop = time.perf_counter() - t0
    loop_text = decode(tok, loop)

    same = sum(a == b for a, b in zip(ours, loop_text))
    print(f"model {args.model} ({type(model).__name__}), {len(texts)} sentences from {path.name}, "
          f"beams {args.num_beams}, max_new_tokens {args.max_new_tokens}, torch threads {torch.get_num_threads()}")
    print(f"es-zoo generate (batch {args.batch_size}, sorted by length): {len(texts) / t_ours:8.2f} sentences/s "
          f"({t_ours:.1f} s)")
    print(f"unbatched model.generate loop:                  {len(texts) / t_loop:8.2f} sentences/s ({t_loop:.1f} s)")
    print(f"ratio: {t_loop / t_ours:.2f}x; identical outputs: {same}/{len(texts)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
