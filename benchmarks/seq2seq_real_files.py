"""The seq2seq suite end to end on the real files in ../shared/data, with models from `es-zoo reproduce`.

Every run goes through the task readers, the seq2seq fine-tuning loop, batched beam-search generation
and the suite's metrics. The training splits the paper used are not on these machines, so they are
replaced, and the table says how:

- translation es->en (and en->es): trained on Tatoeba eng-spa test pairs (a seeded sample), scored on
  FLORES-200 devtest (1,012 lines) and on 1,000 other Tatoeba pairs;
- generative_qa: trained on SQuAD-es v1.1 dev (small), scored on XQuAD es ("question: Q context: C").

    python benchmarks/seq2seq_real_files.py --model runs/t5s-tiny --output runs/seq2seq-real-t5s
    python benchmarks/seq2seq_real_files.py --model runs/barto-tiny --tasks translation --max-train 8000

Prints a Markdown table (recorded in docs/seq2seq-tasks.md) and writes OUTPUT/results.json.
"""

from __future__ import annotations

import json
import random
import sys
import time
from pathlib import Path

from _real_files import parser, task_settings

TATOEBA = "mt/tatoeba/tatoeba-test-v2021-08-07.eng-spa"
FLORES = "mt/flores200-devtest"


def _translation_files(data: Path, tmp: Path, reverse: bool, max_train: int | None) -> dict[str, list[str]]:
    spa = (data / f"{TATOEBA}.spa").read_text(encoding="utf-8").splitlines()
    eng = (data / f"{TATOEBA}.eng").read_text(encoding="utf-8").splitlines()
    order = list(range(len(spa)))
    random.Random(2021).shuffle(order)
    test, train = sorted(order[:1000]), sorted(order[1000:])
    if max_train:
        train = sorted(train[:max_train])
    files: dict[str, list[str]] = {}
    for split, idx in (("train", train), ("test_tatoeba", test)):
        for lang, lines in (("spa", spa), ("eng", eng)):
            p = tmp / f"tatoeba-{split}.{lang}"
            p.write_text("".join(lines[i] + "\n" for i in idx), encoding="utf-8")
        files[split] = [str(tmp / f"tatoeba-{split}.spa"), str(tmp / f"tatoeba-{split}.eng")]
    files["test"] = [str(data / FLORES / "spa_Latn.devtest"), str(data / FLORES / "eng_Latn.devtest")]
    if reverse:
        files = {k: v[::-1] for k, v in files.items()}
    return files


def main() -> int:
    ap = parser(__doc__, "a run folder of `es-zoo reproduce barto|t5s|bert2bert`", "runs/seq2seq-real",
                "translation,generative_qa", "all.learning_rate=1e-3 translation.epochs=2 (runs: translation "
                "(es->en), translation-en-es, generative_qa)")
    ap.add_argument("--max-test", type=int, default=None, help="cap on examples per scored split (CPU budget)")
    args = ap.parse_args()

    import transformers

    from es_zoo.tasks.data import load_task_data
    from es_zoo.tasks.definitions import load_task
    from es_zoo.tasks.finetune import finetune

    transformers.logging.set_verbosity_error()
    data, out = Path(args.data), Path(args.output)
    tmp = out / "files"
    tmp.mkdir(parents=True, exist_ok=True)
    settings = task_settings(args.set)
    rows, results = [], {}
    for name in [t for t in args.tasks.split(",") if t]:
        if name.startswith("translation"):
            task, source = load_task("translation"), ("wmt13-en-es" if name.endswith("en-es") else "wmt13-es-en")
            files = _translation_files(data, tmp, name.endswith("en-es"), args.max_train)
            how = "train: Tatoeba pairs; test: FLORES-200 devtest; test_tatoeba: 1,000 other Tatoeba pairs"
        elif name == "generative_qa":
            task, source = load_task("generative_qa"), "tar-xquad"
            files = {"train": [str(data / "qa/squad-es/dev-v1.1-es_small.json")],
                     "test": [str(data / "qa/xquad/xquad.es.json")]}
            how = "train: SQuAD-es v1.1 dev (small); test: XQuAD es"
        else:
            raise SystemExit(f"unknown run {name!r}")
        loaded = load_task_data(task, source=source, files=files)
        ds = loaded.dataset
        if args.max_train and len(ds["train"]) > args.max_train:
            ds["train"] = ds["train"].select(range(args.max_train))
            how += f"; first {args.max_train:,} training examples"
        if args.max_test:
            for split in [s for s in ds if s != "train" and len(ds[s]) > args.max_test]:
                ds[split] = ds[split].select(range(args.max_test))
            how += f"; at most {args.max_test:,} examples per scored split"
        hp = {**settings.get("all", {}), **settings.get(name.split("-")[0], {}), **settings.get(name, {})}
        started = time.perf_counter()
        r = finetune(args.model, task, out / name, data=loaded, hparams=hp, overwrite=True, save_model=False,
                     quiet=True)
        wall = time.perf_counter() - started
        results[name] = {**r, "how": how}
        for split, part in r["splits"].items():
            m = part["metrics"]
            shown = ", ".join(f"{k} {m[k]:.2f}" for k in ("bleu", "chrf", "rougeL", "paper_rougeL", "f1", "exact_match")
                              if isinstance(m.get(k), float))
            trunc = f"{part.get('truncated_sources', 0)}/{part.get('truncated_targets', 0)}"
            rows.append((name, split, how if split == r["split"] else "", f"{len(ds['train']):,}",
                         f"{part['examples']:,}", shown, trunc, f"{wall:.0f}" if split == r["split"] else ""))
            print(f"{name} {split}: {shown}", flush=True)
    (out / "results.json").write_text(json.dumps(results, indent=2, ensure_ascii=False))
    print(f"\nmodel: {args.model}\n")
    print("| run | split | data | train | examples | scores (%) | truncated src/tgt | wall-clock (s) |")
    print("|---|---|---|---|---|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
