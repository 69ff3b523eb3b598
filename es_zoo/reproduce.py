"""``es-zoo reproduce``: prepared data -> pretraining -> held-out evaluation -> Hub-ready model folder.

Every stage is resumable: it writes its output atomically and is skipped when that output is already
complete, so ``--resume`` continues an interrupted run from its last complete checkpoint. The run
folder layout is documented in docs/run-folder.md::

    RUN_DIR/
      run_info.json        es-zoo/torch/transformers versions, git revision, command, processes
      recipe.yaml          the resolved recipe (preset + overrides) this run used
      tokenizer/           the trained tokenizer (AutoTokenizer.from_pretrained loads it)
      encoder.json         bert2bert only: which BETO the model was warm-started from, and how
      beto/                bert2bert only: the tiny BETO reproduced first when the catalogue's is unreachable
      data/                the corpus prepared by es-zoo prepare's pipeline when no --data is given
                           (tokenizer/, train/ and heldout/ uint16 shards, manifest.json; docs/prepare.md)
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
import shlex
import shutil
import sys
from pathlib import Path
from typing import Any

from es_zoo.cards import write_model_card
from es_zoo.corpus import open_corpus
from es_zoo.errors import CorpusError, FirstProcessFailed, RunDirError
from es_zoo.families import get_family
from es_zoo.locking import FolderBusy, FolderLock, only_lock, remove_empty
from es_zoo.recipes import ResolvedRecipe, load_recipe, read_yaml, resolved_from_dict
from es_zoo.runinfo import atomic_write, git_revision, library_versions, replace_folder, scratch_folder
from es_zoo.safeyaml import short
from es_zoo.summary import print_summary

RUN_MARKERS = ("run_info.json", "recipe.yaml")


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

    if only_lock(run_dir):
        return "new"
    is_run = (run_dir / "recipe.yaml").is_file()
    if not is_run:
        raise RunDirError(
            f"{run_dir} is not empty and is not an es-zoo run folder; nothing was changed. "
            "Choose a new or empty --output-dir."
        )

    stored = resolved_from_dict(read_yaml(run_dir / "recipe.yaml"), str(run_dir / "recipe.yaml"))
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
    """The differing keys of two recipe dicts, each as ``key.path: old -> new`` (lists item by item; a list
    whose length changed is named with both lengths, never dumped)."""
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for k in sorted(set(a) | set(b)):
            out += _diff(a.get(k), b.get(k), f"{path}.{k}" if path else k)
        return out
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return [f"{path}: {len(a)} items -> {len(b)} items"]
        return [d for i, (x, y) in enumerate(zip(a, b)) for d in _diff(x, y, f"{path}.{i}")]
    return [] if a == b else [f"{path}: {short(a, 60)} -> {short(b, 60)}"]


def _clear_run(run_dir: Path) -> None:
    """Remove what an earlier es-zoo run wrote (only our own entries)."""
    for name in ("run_info.json", "recipe.yaml", "tokenizer", "data", "checkpoints", "logs",
                 "loss_curve.png", "results.json", "model", "encoder.json", "initial_scores.json", "beto",
                 "tracking", ".prepare-failed", ".tmp-tokenizer", ".tmp-model"):
        p = run_dir / name
        if p.is_dir():
            shutil.rmtree(p)
        elif p.exists():
            p.unlink()


def reproduce(
    recipe: str, preset: str = "tiny", output_dir: str | Path | None = None, corpus: str | None = None,
    overrides: list[str] | tuple[str, ...] = (), max_steps: int | None = None, resume: bool = False,
    overwrite: bool = False, command: str | None = None,
    data: str | Path | None = None,
) -> dict:
    """Run the whole reproduction; returns the results dictionary (also written to results.json).

    ``data`` is a folder made by ``es-zoo prepare`` (its tokenizer and token shards are used as they are,
    after checking that they were prepared for this recipe). Without it, the corpus is prepared into
    ``RUN_DIR/data`` first, by the same pipeline. With several processes (``accelerate launch``) on one
    machine that happens on the first process *before* the process group starts; across machines, run
    ``es-zoo prepare`` first and pass ``data``.

    Example:
        >>> results = reproduce("beto", output_dir="runs/beto", max_steps=20)  # doctest: +SKIP
    """
    overrides = list(overrides)
    explicit_source = corpus is not None or any(o.strip().startswith("corpus.source=") for o in overrides)
    if corpus is not None:
        overrides.append(f"corpus.source={json.dumps(corpus)}")
    cfg = load_recipe(recipe, preset=preset, overrides=overrides, max_steps=max_steps)
    run_dir = Path(output_dir or Path("runs") / f"{cfg.recipe}-{cfg.preset}")
    if data is None and resume and (run_dir / "run_info.json").is_file():
        data = json.loads((run_dir / "run_info.json").read_text()).get("data", {}).get("path")  # the run's own
    manifest = None
    if data is not None:
        # lazy (as below): torch and the Hub client load only when a run needs them
        from es_zoo.prepare import cfg_with_prepared_corpus, check_compatible, read_manifest

        manifest = read_manifest(data)
        cfg = cfg_with_prepared_corpus(cfg, manifest, explicit_source)
        check_compatible(manifest, cfg, str(data))
    world, local_world, rank = _launch_layout()
    own_data = run_dir / "data"
    if data is None and world > 1 and local_world != world:
        raise RunDirError(
            f"{world} processes on {world // max(1, local_world)} machines: prepare the data once before "
            f"launching (es-zoo prepare {cfg.recipe} --preset {cfg.preset} --corpus ... --output DATA, on a "
            "filesystem every machine sees, or copied to each) and pass --data DATA"
        )

    get_family(cfg.model.architecture).check_launch(cfg, run_dir, world)
    # Only the first process looks at and writes the run folder; the others learn its decision (new,
    # resume, overwrite) or its error from it. Were each process to check for itself, a fast first
    # process that has already written recipe.yaml would make a slower one see "a run already exists".
    from accelerate import Accelerator

    from es_zoo.training import tracker_kwargs

    locks: list = []  # the first process's lock on the run folder, held until this function returns

    def setup() -> str:
        return _first_process_setup(cfg, run_dir, data, manifest, resume, overwrite, world, locks)

    decision: str | None = None
    if data is None:
        # The run's own data is prepared by the first process *before* the process group starts, so no
        # collective can time out however long that takes; the others (same machine) wait on a file.
        if rank == 0:
            try:
                decision = setup()
            except BaseException as exc:
                if world > 1:
                    _launch_signal(run_dir, {"failed": str(exc) or type(exc).__name__})
                raise
            if world > 1:
                _launch_signal(run_dir, {"ok": True})
        else:
            _wait_for_first_process(run_dir)
        data = own_data
    accelerator = Accelerator(mixed_precision=cfg.training.mixed_precision,
                              kwargs_handlers=_process_group_kwargs(cfg), **tracker_kwargs(cfg.training, run_dir))
    failure: str | None = None
    if decision is None and accelerator.is_main_process:  # --data: the setup is quick, done in the group
        try:
            decision = setup()
        except BaseException as exc:
            if accelerator.num_processes == 1:
                raise
            failure = str(exc) or type(exc).__name__
            raised = exc
    if accelerator.num_processes > 1:
        from accelerate.utils import broadcast_object_list

        decision, failure = broadcast_object_list([decision, failure], from_process=0)
        if accelerator.is_main_process:
            _launch_signal_path(run_dir).unlink(missing_ok=True)
            if failure is not None:
                raise raised
        if failure is not None:
            raise FirstProcessFailed(f"the first process stopped before training: {failure}")
    from es_zoo.prepare import read_manifest

    manifest = read_manifest(data)
    if accelerator.is_main_process:
        info = {
            "es_zoo_command": command or shlex.join(sys.argv),
            "recipe": cfg.recipe, "preset": cfg.preset, "started": _dt.datetime.now(_dt.timezone.utc).isoformat(),
            "processes": accelerator.num_processes, "device": str(accelerator.device),
            "mixed_precision": cfg.training.mixed_precision, "git_revision": git_revision(),
            "versions": library_versions(), "resumed": decision == "resume",
            **({"schedule_changed": cfg.schedule_note} if cfg.schedule_note else {}),
            "data": {"path": str(Path(data).resolve()), "fingerprint": manifest["fingerprint"],
                     "inside_run": Path(data).resolve() == own_data.resolve()},
        }
        atomic_write(run_dir / "run_info.json", json.dumps(info, indent=2))
        if cfg.schedule_note:
            print(f"note: {cfg.schedule_note} (recorded in run_info.json and the model card)", flush=True)
    accelerator.wait_for_everyone()

    try:
        return run_family(cfg, run_dir, accelerator, Path(data), resume=decision == "resume")
    finally:
        for lock in locks:
            lock.release()


def _launch_layout() -> tuple[int, int, int]:
    """(processes, processes on this machine, global rank) from the launcher's environment
    (torchrun / accelerate launch set WORLD_SIZE, LOCAL_WORLD_SIZE and RANK); (1, 1, 0) otherwise."""
    world = int(os.environ.get("WORLD_SIZE", "1") or 1)
    local_world = int(os.environ.get("LOCAL_WORLD_SIZE", str(world)) or world)
    rank = int(os.environ.get("RANK", "0") or 0)
    return world, local_world, rank


def _process_group_kwargs(cfg: ResolvedRecipe) -> list:
    """The process-group timeout: long enough for what the first process does while the others wait
    (held-out scoring, export, the model card, a checkpoint write), never a data preparation."""
    import datetime

    from accelerate import InitProcessGroupKwargs

    return [InitProcessGroupKwargs(timeout=datetime.timedelta(seconds=cfg.training.process_group_timeout_s))]


def _first_process_setup(cfg: ResolvedRecipe, run_dir: Path, data: str | Path | None, manifest: dict | None,
                         resume: bool, overwrite: bool, world: int, locks: list) -> str:
    """What only the first process does: decide new / resume / overwrite, write recipe.yaml and the
    family's setup (bert2bert: its BETO's tokenizer), and (without --data) prepare the corpus into RUN_DIR/data, before the process
    group starts; with --data (nothing long to do) just after it. Returns the decision; the run folder's
    lock (taken before the folder is looked at, so two commands on one folder never both start) goes into
    ``locks``. A folder this command created is removed again when it fails before writing anything, or
    on a corpus error."""
    if run_dir.exists() and not run_dir.is_dir():
        raise RunDirError(f"{run_dir} exists and is not a folder")
    created = not run_dir.exists()
    new_parents = [a for a in run_dir.absolute().parents if not a.exists()]  # removed with it on failure
    run_dir.mkdir(parents=True, exist_ok=True)
    lock_file = run_dir / ".lock"
    had_lock_file = lock_file.exists()
    decision = None
    try:
        locks.append(FolderLock(run_dir, "this command (with --resume to continue that run)"))
        decision = check_run_dir(run_dir, cfg, resume, overwrite)
        own_data = run_dir / "data"
        if data is None and (decision != "resume" or not (own_data / "manifest.json").is_file()):
            open_corpus(cfg.corpus)  # a missing or unreachable corpus fails before anything is written
        if decision == "overwrite":
            _clear_run(run_dir)
        if decision != "resume":
            atomic_write(run_dir / "recipe.yaml", cfg.to_yaml())

        tokenizer_from = get_family(cfg.model.architecture).setup_run(cfg, run_dir, manifest, data)
        if data is None:
            from es_zoo.prepare import prepare

            prepare(cfg, own_data, workers=None, tokenizer_from=tokenizer_from,
                    command=f"(es-zoo reproduce {cfg.recipe}: the run's own data)", echo=_echo)
    except BaseException as exc:
        for lock in locks:
            lock.release()
        locks.clear()
        # The corpus must be fixed first (which a resume could not use anyway): a run folder this command
        # created is removed, so the corrected command starts clean.
        if created and ((decision == "new" and isinstance(exc, CorpusError)) or only_lock(run_dir)):
            shutil.rmtree(run_dir, ignore_errors=True)
            remove_empty(new_parents)
        elif not had_lock_file and not isinstance(exc, FolderBusy):
            lock_file.unlink(missing_ok=True)  # a folder this command refused stays as it was
        raise
    return decision


def _launch_key() -> str:
    """What identifies this launch to the processes on one machine: torchrun's agent (the workers'
    common parent), else the Slurm job step, else the rendezvous address."""
    env = os.environ
    if "TORCHELASTIC_RUN_ID" in env:
        return f"torchrun-{os.getppid()}-{env.get('TORCHELASTIC_RUN_ID')}-{env.get('MASTER_PORT')}"
    if "SLURM_JOB_ID" in env:
        return f"slurm-{env['SLURM_JOB_ID']}-{env.get('SLURM_STEP_ID', '')}"
    return f"{env.get('MASTER_ADDR')}-{env.get('MASTER_PORT')}"


def _launch_signal_path(run_dir: Path) -> Path:
    """Where the first process tells the others on its machine that its setup is done (or failed). Not in
    the run folder: a command that fails must leave that as it found it."""
    import hashlib
    import tempfile

    key = hashlib.sha1(f"{_launch_key()}|{run_dir.resolve()}".encode()).hexdigest()[:20]
    return Path(tempfile.gettempdir()) / f"es-zoo-launch-{key}.json"


def _launch_signal(run_dir: Path, state: dict) -> None:
    atomic_write(_launch_signal_path(run_dir), json.dumps(state))


def _wait_for_first_process(run_dir: Path) -> None:
    import time

    path = _launch_signal_path(run_dir)
    while True:
        try:
            state = json.loads(path.read_text())
        except (OSError, ValueError):
            time.sleep(0.5)
            continue
        if "failed" in state:
            raise FirstProcessFailed(f"the first process stopped before training: {state['failed']}")
        return


def _echo(line: str) -> None:
    print(line, flush=True)


def data_record(manifest: dict) -> dict:
    """What results.json and the model card say about the training data: where it came from, how much
    of it was prepared, and how the tokenizer's sample was drawn (from the prepared folder's manifest)."""
    sel, sample = manifest["selection"], manifest["sample"]
    return {
        "fingerprint": manifest["fingerprint"],
        "corpus": manifest["corpus_description"],
        "train_tokens": manifest["splits"]["train"]["tokens"],
        "train_documents": manifest["splits"]["train"]["documents"],
        "heldout_tokens": manifest["splits"]["heldout"]["tokens"],
        "dtype": manifest["dtype"],
        "fraction_of_corpus": sel["fraction_of_corpus"],
        "needed_tokens": sel["needed_tokens"],
        "duplicates_dropped": sel["dropped"]["duplicates"],
        "tokenizer_sample": {k: sample.get(k) for k in ("budget_chars", "characters", "documents",
                                                         "share_of_training_text", "method", "note") if k in sample},
    }


def _stage_tokenizer(cfg: ResolvedRecipe, run_dir: Path, data_dir: Path, accelerator: Any) -> Any:
    """The prepared tokenizer, copied into the run folder once (a run folder describes itself)."""
    from transformers import AutoTokenizer

    tok_dir = run_dir / "tokenizer"
    if accelerator.is_main_process and not (tok_dir / "COMPLETE").is_file():
        tmp = scratch_folder(run_dir / ".tmp-tokenizer")
        shutil.copytree(data_dir / "tokenizer", tmp)
        replace_folder(tmp, tok_dir, complete=True)
    accelerator.wait_for_everyone()
    return AutoTokenizer.from_pretrained(tok_dir)


def _stage_tokens(cfg: ResolvedRecipe, data_dir: Path) -> dict:
    """The prepared token streams (memory-mapped; each process reads only the rows it trains on)."""
    from es_zoo.prepare import open_prepared

    prepared = open_prepared(data_dir)
    out = {"train": prepared.train, "heldout": prepared.heldout, "unigram_counts": prepared.unigram_counts,
           "manifest": prepared.manifest}
    if prepared.train_starts is not None:
        out["train_starts"], out["heldout_starts"] = prepared.train_starts, prepared.heldout_starts
    return out


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
    out = run_dir / "model"
    tmp = scratch_folder(run_dir / ".tmp-model")
    from es_zoo.modeling import save_model

    save_model(model, tmp)  # safetensors; BETOShare's shared tensors as equal copies
    tokenizer.save_pretrained(tmp)
    if (run_dir / "tokenizer" / "vocab.txt").is_file() and not (tmp / "vocab.txt").is_file():
        shutil.copyfile(run_dir / "tokenizer" / "vocab.txt", tmp / "vocab.txt")  # BETO ships a vocab.txt too
    shutil.copyfile(run_dir / "recipe.yaml", tmp / "recipe.yaml")
    if (run_dir / "loss_curve.png").is_file():
        shutil.copyfile(run_dir / "loss_curve.png", tmp / "loss_curve.png")
    write_model_card(tmp / "README.md", cfg, results)
    return replace_folder(tmp, out)


# --------------------------------------------------------------------------------------------------
# One flow for every family (es_zoo.families): pretrain, score, export, fine-tune
# --------------------------------------------------------------------------------------------------


def run_family(cfg: ResolvedRecipe, run_dir: Path, accelerator: Any, data_dir: Path, resume: bool) -> dict:
    """Pretrain the recipe's model with its family's job (es_zoo.families), score it on held-out text
    (beside the untrained model for encoder-decoders), export the Hub-ready model/, run the recipe's
    fine-tunes (GLUES for encoders, seq2seq for encoder-decoders) and print the summary."""
    from es_zoo.modeling import count_parameters
    from es_zoo.training import LoopSettings, plot_loss_curve, train_loop

    family = get_family(cfg.model.architecture)
    tokenizer = _stage_tokenizer(cfg, run_dir, data_dir, accelerator)
    streams = _stage_tokens(cfg, data_dir)
    job = family.job(cfg, run_dir, tokenizer, streams, accelerator)
    initial_path = run_dir / "initial_scores.json"
    if job.score_before_training and accelerator.is_main_process and not initial_path.is_file():
        accelerator.print("scoring the held-out text before training (step 0)")
        atomic_write(initial_path, json.dumps(job.score(job.model), indent=2))  # still untrained here
    accelerator.wait_for_everyone()
    summary = train_loop(LoopSettings.of_recipe(cfg), job.loss, job.batches, run_dir, accelerator, resume=resume)
    # A plain, unsharded model on the main process under every strategy (gathered from the shards under
    # FSDP and DeepSpeed, which hand None to the other processes): only the main process uses it below.
    model = summary.pop("model")
    if summary["stopped_early"]:
        return {"stopped_early": True, "training": summary}
    results: dict = {}
    if accelerator.is_main_process:
        if summary["steps"]:
            plot_loss_curve(run_dir / "logs" / "train.jsonl", run_dir / "loss_curve.png",
                            f"{cfg.recipe} ({cfg.preset} preset)", family.loss_label)
        results = {"recipe": cfg.recipe, "preset": cfg.preset, "reproduces": cfg.reproduces}
        if job.score_before_training:
            results["objective"] = cfg.objective.kind
        results["data"] = data_record(streams["manifest"])
        results["heldout"] = job.score(model)
        if job.score_before_training:
            results["heldout_step0"] = json.loads(initial_path.read_text())
        results["training"] = {**summary, "parameters": count_parameters(model), "vocab_size": len(tokenizer),
                               "processes": accelerator.num_processes}
        results.update(job.extra(model))  # generation samples, the warm-start encoder
        atomic_write(run_dir / "results.json", json.dumps(results, indent=2, ensure_ascii=False))
        export_model(cfg, run_dir, model, tokenizer, results)
    accelerator.wait_for_everyone()
    suite = family.finetune_suite
    if getattr(cfg.config, suite).runs:
        finetuned = run_finetunes(cfg, run_dir, accelerator, resume, suite)
        if accelerator.is_main_process:
            results[suite] = finetuned
            atomic_write(run_dir / "results.json", json.dumps(results, indent=2, ensure_ascii=False))
            export_model(cfg, run_dir, model, tokenizer, results)  # the card now lists the fine-tunes' scores
    if accelerator.is_main_process:
        print_summary(results)
    accelerator.wait_for_everyone()
    return results
