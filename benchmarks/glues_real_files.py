"""GLUES end to end on the real Spanish files in ../shared/data, with a model from `es-zoo reproduce beto`.

Every task's real files go through the readers, the fine-tuning loop and the official-script metrics.
Train splits that cannot be had on these machines are replaced, and the table says so:

- pos: UD v1.4 AnCora + GSD, trained on dev, scored on test (train splits not available);
- parsing: UD v2.2 AnCora + GSD, trained on dev, scored on test (same);
- ner: CoNLL-2002 esp.train / esp.testa / esp.testb (the real splits);
- xnli: XNLI 1.0 es, trained on dev, scored on test (XNLI-MT train not available);
- pawsx: PAWS-X es dev only: trained on its first 1,500 rows, scored on the last 500;
- qa: trained on SQuAD-es v1.1 dev (small), scored on XQuAD es with the SQuAD v1.1 rules.

    python benchmarks/glues_real_files.py --model runs/beto-tiny --output runs/glues-real
    python benchmarks/glues_real_files.py --model runs/beto-tiny --tasks pos,ner --max-train 2000

Prints a Markdown table (recorded in docs/glues.md) and writes OUTPUT/results.json.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from _real_files import parser, task_settings

# task -> (source, {split: [files relative to the data folder]}, what replaced what)
PLAN = {
    "pos": ("ud-v1.4", {"train": ["ud/r1.4/es_ancora-ud-dev.conllu", "ud/r1.4/es_gsd-ud-dev.conllu"],
                        "test": ["ud/r1.4/es_ancora-ud-test.conllu", "ud/r1.4/es_gsd-ud-test.conllu"]},
            "trained on dev (no train split here)"),
    "parsing": ("ud-v2.2", {"train": ["ud/r2.2/es_ancora-ud-dev.conllu", "ud/r2.2/es_gsd-ud-dev.conllu"],
                            "test": ["ud/r2.2/es_ancora-ud-test.conllu", "ud/r2.2/es_gsd-ud-test.conllu"]},
                "trained on dev (no train split here)"),
    "ner": ("conll2002", {"train": ["ner/conll2002/esp.train"], "validation": ["ner/conll2002/esp.testa"],
                          "test": ["ner/conll2002/esp.testb"]}, "the published splits"),
    "xnli": ("xnli", {"train": ["xnli/xnli.dev.es.tsv"], "test": ["xnli/xnli.test.es.tsv"]},
             "trained on dev (no XNLI-MT train here)"),
    "pawsx": ("pawsx", {"train": ["pawsx/dev-es.tsv#:1500"], "test": ["pawsx/dev-es.tsv#1500:"]},
              "dev only: first 1,500 rows train, last 500 test"),
    "qa": ("xquad", {"train": ["qa/squad-es/dev-v1.1-es_small.json"], "test": ["qa/xquad/xquad.es.json"]},
           "trained on SQuAD-es v1.1 dev (small), scored on XQuAD es"),
}


def _materialise(data: Path, spec: str, tmp: Path) -> str:
    """A file path, or a row slice of a line-based file (``path#start:end``) written to ``tmp``."""
    if "#" not in spec:
        return str(data / spec)
    name, rows = spec.split("#")
    lo, hi = (int(x) if x else None for x in rows.split(":"))
    lines = (data / name).read_text(encoding="utf-8").splitlines(True)[lo:hi]
    out = tmp / f"{Path(name).stem}-{lo or 0}-{hi or 'end'}{Path(name).suffix}"
    out.write_text("".join(lines), encoding="utf-8")
    return str(out)


def main() -> int:
    args = parser(__doc__, "a run folder of `es-zoo reproduce beto` (or any encoder)", "runs/glues-real", ",".join(PLAN),
                  "pos.epochs=2 parsing.head_learning_rate=4e-3 all.learning_rate=1e-3").parse_args()

    import transformers

    from es_zoo.tasks.data import load_task_data
    from es_zoo.tasks.definitions import load_task
    from es_zoo.tasks.finetune import finetune

    transformers.logging.set_verbosity_error()
    data, out = Path(args.data), Path(args.output)
    (out / "files").mkdir(parents=True, exist_ok=True)
    settings = task_settings(args.set)
    rows, results = [], {}
    for name in [t for t in args.tasks.split(",") if t]:
        source, files, how = PLAN[name]
        task = load_task(name)
        paths = {split: [_materialise(data, f, out / "files") for f in fs] for split, fs in files.items()}
        loaded = load_task_data(task, source=source, files=paths)
        ds = loaded.dataset
        if args.max_train and len(ds["train"]) > args.max_train:
            ds["train"] = ds["train"].select(range(args.max_train))
            how += f"; first {args.max_train} training examples"
        hp = {**settings.get("all", {}), **settings.get(name, {})}
        started = time.perf_counter()
        r = finetune(args.model, task, out / name, data=loaded, hparams=hp, overwrite=True, save_model=False,
                     quiet=True)
        wall = time.perf_counter() - started
        results[name] = {**r, "how": how}
        m = r["metrics"]
        shown = ", ".join(f"{k} {m[k]:.2f}" for k in ("accuracy", "f1", "exact_match", "uas", "las") if k in m)
        rows.append((name, how, f"{len(ds['train']):,}", f"{r['examples']:,}", shown,
                     str(r["splits"][r["split"]]["split_examples"]), f"{wall:.0f}"))
        print(f"{name}: {shown} ({wall:.0f} s)", flush=True)
    (out / "results.json").write_text(json.dumps(results, indent=2, ensure_ascii=False))
    print("\n| task | data | train | test | scores (%) | test examples split | wall-clock (s) |")
    print("|---|---|---|---|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
