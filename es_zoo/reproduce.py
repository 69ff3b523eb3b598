"""``es-zoo reproduce``: tokenizer -> pretraining -> held-out evaluation -> Hub-ready model folder.

Every stage is resumable: it writes its output atomically and is skipped when that output is already
complete, so ``--resume`` continues an interrupted run from its last complete checkpoint. The run
folder layout is documented in docs/run-folder.md::

    RUN_DIR/
      run_info.json        es-zoo/torch/transformers versions, git revision, command, processes
      recipe.yaml          the resolved recipe (preset + overrides) this run used
      tokenizer/           the trained tokenizer (AutoTokenizer.from_pretrained loads it)
      encoder.json         bert2bert only: which BETO the model was warm-started from, and how
      beto/                bert2bert only: the tiny BETO reproduced first when the catalogue's is unreachable
      data/                the tokenized corpus (train.bin, heldout.bin + .json sidecars; .starts:
                           sentence-start flags for the BART-style objectives)
      checkpoints/step-*/  complete checkpoints (the newest kept ones)
      logs/train.jsonl     one line per logged step
      loss_curve.png       training loss against step
      initial_scores.json  held-out scores of the model before training (step 0), for comparison
      results.json         held-out scores (and at step 0), unigram baseline, samples, training summary
      model/               Hub-ready: model.safetensors, config.json, generation_config.json (encoder-
                           decoders), tokenizer files, README.md, recipe.yaml, loss_curve.png
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from es_zoo.errors import RunDirError
from es_zoo.recipes import ResolvedRecipe, load_recipe, resolved_from_dict

RUN_MARKERS = ("run_info.json", "recipe.yaml")


def _git_revision() -> str | None:
    root = Path(__file__).resolve().parent.parent
    if not (root / ".git").exists():
        return None
    try:
        out = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def library_versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for pkg in ("es-zoo", "torch", "transformers", "tokenizers", "accelerate", "datasets", "numpy"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            pass
    return out


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def check_run_dir(run_dir: Path, cfg: ResolvedRecipe, resume: bool, overwrite: bool) -> str:
    """Decide what to do with ``run_dir``: 'new', 'resume' or 'overwrite'. Raises on a conflict.

    Pure (reads only), so every process reaches the same decision.
    """
    if resume and overwrite:
        raise RunDirError("--resume and --overwrite exclude each other")
    if not run_dir.exists():
        return "new"
    if not run_dir.is_dir():
        raise RunDirError(f"{run_dir} exists and is not a folder")
    if not any(run_dir.iterdir()):
        return "new"
    is_run = (run_dir / "recipe.yaml").is_file()
    if not is_run:
        raise RunDirError(
            f"{run_dir} is not empty and is not an es-zoo run folder; nothing was changed. "
            "Choose a new or empty --output-dir."
        )
    import yaml

    stored = resolved_from_dict(yaml.safe_load((run_dir / "recipe.yaml").read_text()), str(run_dir / "recipe.yaml"))
    if overwrite:
        return "overwrite"
    if not resume:
        raise RunDirError(
            f"{run_dir} already holds an es-zoo run ({stored.recipe}/{stored.preset}); nothing was changed. "
            "Pass --resume to continue it, --overwrite to replace it, or choose another --output-dir."
        )
    if stored.to_dict()["config"] != cfg.to_dict()["config"]:
        diff = _diff(stored.to_dict()["config"], cfg.to_dict()["config"])
        raise RunDirError(
            f"{run_dir} holds a run with a different recipe ({'; '.join(diff[:5])}); --resume needs the "
            "same recipe, preset and overrides. Use --overwrite to replace it or another --output-dir."
        )
    return "resume"


def _diff(a: Any, b: Any, path: str = "") -> list[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for k in sorted(set(a) | set(b)):
            out += _diff(a.get(k), b.get(k), f"{path}.{k}" if path else k)
        return out
    return [] if a == b else [f"{path}: {a!r} -> {b!r}"]


def _clear_run(run_dir: Path) -> None:
    """Remove what an earlier es-zoo run wrote (only our own entries)."""
    for name in ("run_info.json", "recipe.yaml", "tokenizer", "data", "checkpoints", "logs",
                 "loss_curve.png", "results.json", "model", "encoder.json", "initial_scores.json", "beto"):
        p = run_dir / name
        if p.is_dir():
            shutil.rmtree(p)
        elif p.exists():
            p.unlink()


def reproduce(
    recipe: str, preset: str = "tiny", output_dir: str | Path | None = None, corpus: str | None = None,
    overrides: list[str] | tuple[str, ...] = (), max_steps: int | None = None, resume: bool = False,
    overwrite: bool = False, interrupt_after: int | None = None, command: str | None = None,
) -> dict:
    """Run the whole reproduction; returns the results dictionary (also written to results.json).

    Example:
        >>> results = reproduce("beto", output_dir="runs/beto", max_steps=20)  # doctest: +SKIP
    """
    overrides = list(overrides)
    if corpus is not None:
        overrides.append(f"corpus.source={json.dumps(corpus)}")
    cfg = load_recipe(recipe, preset=preset, overrides=overrides, max_steps=max_steps)
    run_dir = Path(output_dir or Path("runs") / f"{cfg.recipe}-{cfg.preset}")
    decision = check_run_dir(run_dir, cfg, resume, overwrite)
    if decision != "resume" or not (run_dir / "data" / "heldout.bin.json").is_file():
        from es_zoo.corpus import open_corpus

        open_corpus(cfg.corpus)  # a missing or unreachable corpus fails before anything is written

    from accelerate import Accelerator

    accelerator = Accelerator(mixed_precision=cfg.training.mixed_precision)
    if accelerator.is_main_process:
        if decision == "overwrite":
            _clear_run(run_dir)
        run_dir.mkdir(parents=True, exist_ok=True)
        if decision != "resume":
            _atomic_write(run_dir / "recipe.yaml", cfg.to_yaml())
        info = {
            "es_zoo_command": command or " ".join(sys.argv),
            "recipe": cfg.recipe, "preset": cfg.preset, "started": _dt.datetime.now(_dt.timezone.utc).isoformat(),
            "processes": accelerator.num_processes, "device": str(accelerator.device),
            "mixed_precision": cfg.training.mixed_precision, "git_revision": _git_revision(),
            "versions": library_versions(), "resumed": decision == "resume",
        }
        _atomic_write(run_dir / "run_info.json", json.dumps(info, indent=2))
    accelerator.wait_for_everyone()

    if cfg.model.architecture == "bert":
        return run_bert(cfg, run_dir, accelerator, resume=decision == "resume", interrupt_after=interrupt_after)
    return run_seq2seq(cfg, run_dir, accelerator, resume=decision == "resume", interrupt_after=interrupt_after)


def _stage_tokenizer(cfg: ResolvedRecipe, run_dir: Path, accelerator: Any) -> Any:
    """Train (or load the published vocabulary) once, on the main process; everyone loads the result."""
    from transformers import AutoTokenizer

    from es_zoo.corpus import open_corpus
    from es_zoo.tokenization import build_tokenizer

    tok_dir = run_dir / "tokenizer"
    done = tok_dir / "COMPLETE"
    if accelerator.is_main_process and not done.is_file():
        corpus = open_corpus(cfg.corpus)
        tmp = run_dir / ".tmp-tokenizer"
        shutil.rmtree(tmp, ignore_errors=True)
        accelerator.print(f"training the {cfg.tokenizer.kind} tokenizer on {corpus.source_description}")
        # T5 has relative positions and no hard limit; its tokenizers say 512 (or the longest phase).
        max_len = getattr(cfg.model, "max_position_embeddings", None) or max(
            [512, cfg.evaluation.seq_len] + [p.seq_len for p in cfg.training.phases])
        build_tokenizer(cfg.tokenizer, lambda: corpus.documents("train"), tmp, model_max_length=max_len)
        (tmp / "COMPLETE").write_text("ok\n")
        shutil.rmtree(tok_dir, ignore_errors=True)
        os.replace(tmp, tok_dir)
    accelerator.wait_for_everyone()
    return AutoTokenizer.from_pretrained(tok_dir)


def _stage_tokens(cfg: ResolvedRecipe, run_dir: Path, tokenizer: Any, accelerator: Any,
                  with_sentences: bool = False) -> dict:
    """Tokenize the train and held-out documents once into flat token files.

    Documents are separated by ``[SEP]`` (BERT) or ``</s>`` (BART, T5). ``with_sentences`` also
    stores where each sentence of the text begins (BART's sentence permutation needs it).
    """
    from es_zoo.corpus import open_corpus
    from es_zoo.packing import read_token_file, write_token_file
    from es_zoo.tokenization import tokenize_documents

    data_dir = run_dir / "data"
    if accelerator.is_main_process:
        data_dir.mkdir(parents=True, exist_ok=True)
        corpus = None
        for split, name in (("train", "train.bin"), ("heldout", "heldout.bin")):
            if read_token_file(data_dir / name) is None:
                corpus = corpus or open_corpus(cfg.corpus)
                accelerator.print(f"tokenizing the {split} split of {corpus.source_description}")
                separator = tokenizer.sep_token_id if tokenizer.sep_token_id is not None else tokenizer.eos_token_id
                kwargs = {"with_sentences": True} if with_sentences else {}
                docs = tokenize_documents(tokenizer, corpus.documents(split), **kwargs)
                n = write_token_file(docs, data_dir / name, separator)
                accelerator.print(f"  {n:,} tokens")
    accelerator.wait_for_everyone()
    out = {split: read_token_file(data_dir / f"{split}.bin") for split in ("train", "heldout")}
    if with_sentences:
        from es_zoo.packing import read_sentence_starts

        for split in ("train", "heldout"):
            out[f"{split}_starts"] = read_sentence_starts(data_dir / f"{split}.bin")
    return out


def run_bert(cfg: ResolvedRecipe, run_dir: Path, accelerator: Any, resume: bool,
             interrupt_after: int | None = None) -> dict:
    """BETO: WordPiece tokenizer, whole-word-masking pretraining, held-out MLM scores, export."""
    import torch

    from es_zoo.evaluation import evaluate_mlm
    from es_zoo.modeling import build_bert_mlm, count_parameters
    from es_zoo.tokenization import wordpiece_tables
    from es_zoo.training import MLMData, plot_loss_curve, pretrain

    tokenizer = _stage_tokenizer(cfg, run_dir, accelerator)
    streams = _stage_tokens(cfg, run_dir, tokenizer, accelerator)
    is_special, is_continuation = wordpiece_tables(tokenizer)
    data = MLMData(
        stream=streams["train"], is_special=is_special, is_continuation=is_continuation,
        vocab_size=len(tokenizer), mask_id=tokenizer.mask_token_id, pad_id=tokenizer.pad_token_id,
        cls_id=tokenizer.cls_token_id, sep_id=tokenizer.sep_token_id,
    )
    torch.manual_seed(cfg.training.seed)  # identical initial weights on every process and every run
    model = build_bert_mlm(cfg.model, vocab_size=len(tokenizer), pad_token_id=tokenizer.pad_token_id)
    summary = pretrain(cfg, model, data, run_dir, accelerator, resume=resume, interrupt_after=interrupt_after)
    model = summary.pop("model")
    if summary["stopped_early"]:
        return {"stopped_early": True, "training": summary}
    results: dict = {}
    if accelerator.is_main_process:
        plot_loss_curve(run_dir / "logs" / "train.jsonl", run_dir / "loss_curve.png",
                        f"{cfg.recipe} ({cfg.preset} preset)", "training loss (masked LM)")
        ev = cfg.evaluation
        scores = evaluate_mlm(
            model, streams["heldout"], data, seq_len=ev.seq_len, max_sequences=ev.max_sequences,
            batch_size=ev.batch_size, seed=ev.seed, mlm_probability=cfg.objective.mlm_probability,
            max_predictions=cfg.objective.max_predictions,
        )
        results = {
            "recipe": cfg.recipe, "preset": cfg.preset, "reproduces": cfg.reproduces,
            "heldout": scores,
            "training": {**summary, "parameters": count_parameters(model), "vocab_size": len(tokenizer),
                         "processes": accelerator.num_processes},
        }
        _atomic_write(run_dir / "results.json", json.dumps(results, indent=2))
        export_model(cfg, run_dir, model, tokenizer, results)
    accelerator.wait_for_everyone()
    if cfg.config.glues.runs:
        glues = run_finetunes(cfg, run_dir, accelerator, resume, "glues")
        if accelerator.is_main_process:
            results["glues"] = glues
            _atomic_write(run_dir / "results.json", json.dumps(results, indent=2))
            export_model(cfg, run_dir, model, tokenizer, results)  # the card now lists the GLUES scores
    if accelerator.is_main_process:
        from es_zoo.summary import print_summary

        print_summary(results)
    accelerator.wait_for_everyone()
    return results


def run_finetunes(cfg: ResolvedRecipe, run_dir: Path, accelerator: Any, resume: bool, suite: str) -> dict:
    """The recipe's fine-tunes of the exported model (``glues`` or ``seq2seq``), each in
    ``<suite>/<task>/`` (a Hub-ready ``model/`` inside); a task already scored is kept, an interrupted
    one resumes from its checkpoint."""
    import transformers

    from es_zoo.tasks.finetune import finetune

    out: dict = {}
    for run in getattr(cfg.config, suite).runs:
        task_dir = run_dir / suite / run.task
        done = task_dir / "results.json"
        if done.is_file():
            r = json.loads(done.read_text())
        else:
            accelerator.print(f"fine-tuning on {'GLUES' if suite == 'glues' else 'seq2seq'} task {run.task} "
                              f"({run.source} data)")
            verbosity = transformers.logging.get_verbosity()
            transformers.logging.set_verbosity_error()  # the new head's "newly initialised" report
            try:
                r = finetune(str(run_dir / "model"), run.task, task_dir, source=run.source, hparams=run.hparams,
                             resume=resume and (task_dir / "finetune.json").is_file(),
                             overwrite=not resume and task_dir.exists())
            finally:
                transformers.logging.set_verbosity(verbosity)
            if r.get("stopped_early"):
                break
        if r:
            out[run.task] = {k: r[k] for k in ("metric", "main", "metrics", "split", "examples", "hyperparameters")}
            out[run.task]["source"] = r["data"]["source"]
            out[run.task]["split_examples"] = r["splits"][r["split"]].get("split_examples", 0)
            if "majority_baseline" in r["splits"][r["split"]]:
                out[run.task]["majority_baseline"] = r["splits"][r["split"]]["majority_baseline"]
            out[run.task]["other_splits"] = {name: {"main": part["metrics"][r["metric"]["main"]], "examples": part["examples"]}
                                             for name, part in r["splits"].items() if name != r["split"]}
    return out


def export_model(cfg: ResolvedRecipe, run_dir: Path, model: Any, tokenizer: Any, results: dict) -> Path:
    """Write the Hub-ready ``model/`` folder atomically (weights, config, tokenizer, card, recipe, curve)."""
    from es_zoo.cards import write_model_card

    out = run_dir / "model"
    tmp = run_dir / ".tmp-model"
    shutil.rmtree(tmp, ignore_errors=True)
    from es_zoo.modeling import save_model

    save_model(model, tmp)  # safetensors; BETOShare's shared tensors as equal copies
    tokenizer.save_pretrained(tmp)
    if (run_dir / "tokenizer" / "vocab.txt").is_file() and not (tmp / "vocab.txt").is_file():
        shutil.copyfile(run_dir / "tokenizer" / "vocab.txt", tmp / "vocab.txt")  # BETO ships a vocab.txt too
    shutil.copyfile(run_dir / "recipe.yaml", tmp / "recipe.yaml")
    if (run_dir / "loss_curve.png").is_file():
        shutil.copyfile(run_dir / "loss_curve.png", tmp / "loss_curve.png")
    write_model_card(tmp / "README.md", cfg, results)
    shutil.rmtree(out, ignore_errors=True)
    os.replace(tmp, out)
    return out


# --------------------------------------------------------------------------------------------------
# Encoder-decoders: BARTO (BART), T5S (T5), BERT2BERT (warm-started from BETO)
# --------------------------------------------------------------------------------------------------

_OBJECTIVE_LABEL = {
    "bart": "training loss (text infilling + sentence permutation)",
    "t5": "training loss (span corruption)",
    "bert2bert": "training loss (denoising adaptation)",
}


def _stage_warm_start(cfg: ResolvedRecipe, run_dir: Path, accelerator: Any) -> tuple[Any, dict]:
    """bert2bert: find the BETO to warm-start from (the catalogue's, a local folder or run, or a tiny
    BETO reproduced first), copy its tokenizer into ``tokenizer/`` and record the choice in ``encoder.json``."""
    from transformers import AutoTokenizer

    from es_zoo.errors import EsZooError

    m = cfg.model
    record_path = run_dir / "encoder.json"
    if accelerator.is_main_process and not record_path.is_file():
        record = _resolve_encoder(m.encoder, accelerator)
        if record is None:
            if not m.fallback_recipe:
                raise EsZooError(
                    f"the encoder '{m.encoder}' cannot be reached and the recipe has no fallback; point "
                    "model.encoder at a local BETO folder or an `es-zoo reproduce beto` run folder"
                )
            beto_dir = run_dir / "beto"
            accelerator.print(
                f"BETO '{m.encoder}' is not reachable (offline or not found): reproducing a "
                f"{m.fallback_recipe}/{m.fallback_preset} BETO first in {beto_dir}"
            )
            resume = (beto_dir / "recipe.yaml").is_file()
            if not (beto_dir / "model" / "config.json").is_file():
                # only the pretrained encoder is needed: the fallback's GLUES fine-tunes are skipped
                reproduce(m.fallback_recipe, preset=m.fallback_preset, output_dir=beto_dir, resume=resume,
                          overrides=["glues.runs=[]"],
                          command=f"(bert2bert fallback) es-zoo reproduce {m.fallback_recipe} --preset "
                                  f"{m.fallback_preset} glues.runs=[]")
            record = {"requested": m.encoder, "path": str(beto_dir / "model"),
                      "source": f"reproduced here: es-zoo reproduce {m.fallback_recipe} --preset {m.fallback_preset}"}
        from es_zoo.modeling import check_is_bert

        check_is_bert(record["path"])
        tok = AutoTokenizer.from_pretrained(record["path"])
        tmp = run_dir / ".tmp-tokenizer"
        shutil.rmtree(tmp, ignore_errors=True)
        tok.save_pretrained(tmp)
        shutil.rmtree(run_dir / "tokenizer", ignore_errors=True)
        os.replace(tmp, run_dir / "tokenizer")
        _atomic_write(record_path, json.dumps(record, indent=2))
    accelerator.wait_for_everyone()
    record = json.loads(record_path.read_text())
    accelerator.print(f"warm-starting from {record['path']} ({record['source']})")
    return AutoTokenizer.from_pretrained(run_dir / "tokenizer"), record


def _resolve_encoder(name: str, accelerator: Any) -> dict | None:
    """Where the BETO ``name`` lives locally, or None if it cannot be reached (the fallback applies)."""
    from es_zoo.loading import _hub_probe, resolve

    where, is_local = resolve(name)  # local folder, es-zoo run folder, catalogue name or Hub id
    if is_local:
        return {"requested": name, "path": where, "source": f"local folder {where}"}
    problem = _hub_probe(where, None)
    try:
        if problem is not None:
            raise problem
        from huggingface_hub import snapshot_download

        # Offline (HF_HUB_OFFLINE=1) this serves a copy from the local cache, or fails at once.
        path = snapshot_download(where, allow_patterns=["*.json", "*.txt", "*.safetensors"])
    except Exception as exc:  # noqa: BLE001 - offline, DNS, timeout, proxy: all mean "not reachable"
        accelerator.print(f"note: '{where}' cannot be reached ({type(exc).__name__}: {str(exc).splitlines()[0][:160]})")
        return None
    how = "from the catalogue" if where != name else "Hub id"
    return {"requested": name, "path": path, "hub_id": where, "source": f"the Hub, {where} ({how})"}


def seq2seq_data(cfg: ResolvedRecipe, tokenizer: Any, streams: dict) -> Any:
    """The objective's token ids and tables for this tokenizer (clear errors when it lacks them)."""
    from es_zoo.seq2seq_batches import Seq2SeqData
    from es_zoo.tokenization import mask_token_id, ordinary_token_ids, sentinel_ids, word_start_table

    arch = cfg.model.architecture
    if arch == "t5":
        first, count = sentinel_ids(tokenizer)
        return Seq2SeqData(
            family="t5", stream=streams["train"], sentence_starts=None, pad_id=tokenizer.pad_token_id,
            eos_id=tokenizer.eos_token_id, bos_id=None, decoder_start_id=tokenizer.pad_token_id,
            sentinel_start=first, num_sentinels=count,
        )
    if arch == "bart":
        bos, eos, start = tokenizer.bos_token_id, tokenizer.eos_token_id, tokenizer.eos_token_id
    else:  # bert2bert: BERT's frame, the decoder starts from [CLS]
        bos, eos, start = tokenizer.cls_token_id, tokenizer.sep_token_id, tokenizer.cls_token_id
    return Seq2SeqData(
        family=arch, stream=streams["train"], sentence_starts=streams["train_starts"],
        pad_id=tokenizer.pad_token_id, eos_id=eos, bos_id=bos, decoder_start_id=start,
        word_start=word_start_table(tokenizer), random_ids=ordinary_token_ids(tokenizer),
        mask_id=mask_token_id(tokenizer),
    )


def _build_seq2seq(cfg: ResolvedRecipe, tokenizer: Any, encoder: dict | None) -> Any:
    import torch

    from es_zoo.modeling import build_bart, build_t5, warm_start_bert2bert

    torch.manual_seed(cfg.training.seed)  # identical initial weights on every process and every run
    arch = cfg.model.architecture
    if arch == "bart":
        return build_bart(cfg.model, vocab_size=len(tokenizer), pad_token_id=tokenizer.pad_token_id,
                          bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id)
    if arch == "t5":
        return build_t5(cfg.model, vocab_size=len(tokenizer), pad_token_id=tokenizer.pad_token_id,
                        eos_token_id=tokenizer.eos_token_id)
    return warm_start_bert2bert(encoder["path"], share_weights=cfg.model.share_weights, tokenizer=tokenizer)


def run_seq2seq(cfg: ResolvedRecipe, run_dir: Path, accelerator: Any, resume: bool,
                interrupt_after: int | None = None) -> dict:
    """BARTO, T5S and BERT2BERT: tokenizer (or warm start), denoising / span-corruption pretraining,
    held-out scores against step 0, generation samples, export."""
    from es_zoo.evaluation import evaluate_seq2seq, generation_samples
    from es_zoo.modeling import Seq2SeqLoss, count_parameters
    from es_zoo.seq2seq_batches import Seq2SeqBatchMaker
    from es_zoo.training import plot_loss_curve, train_loop

    arch = cfg.model.architecture
    encoder = None
    if arch == "bert2bert":
        tokenizer, encoder = _stage_warm_start(cfg, run_dir, accelerator)
    else:
        tokenizer = _stage_tokenizer(cfg, run_dir, accelerator)
    streams = _stage_tokens(cfg, run_dir, tokenizer, accelerator, with_sentences=arch != "t5")
    data = seq2seq_data(cfg, tokenizer, streams)
    model = _build_seq2seq(cfg, tokenizer, encoder)
    ev = cfg.evaluation

    def score(m: Any) -> dict:
        return evaluate_seq2seq(
            m, data, cfg.objective, streams["heldout"], streams.get("heldout_starts"), seq_len=ev.seq_len,
            max_sequences=ev.max_sequences, batch_size=ev.batch_size, seed=ev.seed,
        )

    initial_path = run_dir / "initial_scores.json"
    if accelerator.is_main_process and not initial_path.is_file():
        accelerator.print("scoring the held-out text before training (step 0)")
        _atomic_write(initial_path, json.dumps(score(model), indent=2))  # the model is still untrained here
    accelerator.wait_for_everyone()

    make = Seq2SeqBatchMaker(cfg, data, accelerator.process_index, accelerator.num_processes)
    summary = train_loop(cfg, Seq2SeqLoss(model), make, run_dir, accelerator, resume=resume,
                         interrupt_after=interrupt_after)
    model = summary.pop("model")
    if summary["stopped_early"]:
        return {"stopped_early": True, "training": summary}
    results: dict = {}
    if accelerator.is_main_process:
        if summary["steps"]:
            plot_loss_curve(run_dir / "logs" / "train.jsonl", run_dir / "loss_curve.png",
                            f"{cfg.recipe} ({cfg.preset} preset)", _OBJECTIVE_LABEL[arch])
        results = {
            "recipe": cfg.recipe, "preset": cfg.preset, "reproduces": cfg.reproduces,
            "objective": cfg.objective.kind,
            "heldout": score(model),
            "heldout_step0": json.loads(initial_path.read_text()),
            "samples": generation_samples(model, tokenizer, data, cfg.objective, streams["heldout"],
                                          streams.get("heldout_starts"), seq_len=ev.seq_len, seed=ev.seed),
            "training": {**summary, "parameters": count_parameters(model), "vocab_size": len(tokenizer),
                         "processes": accelerator.num_processes},
        }
        if encoder is not None:
            results["encoder"] = encoder
        _atomic_write(run_dir / "results.json", json.dumps(results, indent=2, ensure_ascii=False))
        export_model(cfg, run_dir, model, tokenizer, results)
    accelerator.wait_for_everyone()
    if cfg.config.seq2seq.runs:
        finetuned = run_finetunes(cfg, run_dir, accelerator, resume, "seq2seq")
        if accelerator.is_main_process:
            results["seq2seq"] = finetuned
            _atomic_write(run_dir / "results.json", json.dumps(results, indent=2, ensure_ascii=False))
            export_model(cfg, run_dir, model, tokenizer, results)  # the card now lists the fine-tunes' scores
    if accelerator.is_main_process:
        from es_zoo.summary import print_summary

        print_summary(results)
    accelerator.wait_for_everyone()
    return results
