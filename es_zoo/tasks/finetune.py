"""Fine-tune an encoder on one GLUES task and score it like the official scripts.

The optimisation loop is the pretraining loop (``es_zoo.training.train_loop``): the same atomic
checkpoints, exact resume, JSONL log, SIGTERM handling and NaN guard. What differs per head (preparation,
collation, model, loss, prediction, scoring, saving) is one class each in ``es_zoo.tasks.task_heads``;
the loss modules are in ``es_zoo.tasks.heads``:

=========  ============================  ==========================  ===========================
head       model                         scored item                 merged back by
=========  ============================  ==========================  ===========================
sequence   AutoModelForSequenceClass.    one window                  mean of the windows' logits
token      AutoModelForTokenClass.       first sub-token of a word   the word's max-context window
parser     BiaffineParser (heads.py)     a word (head and relation)  the word's max-context window
qa         AutoModelForQuestionAnswering one window (start, end)     best span over the windows
seq2seq    AutoModelForSeq2SeqLM         a target token              beam search (tasks/seq2seq.py)
=========  ============================  ==========================  ===========================

Batches are dynamically padded and length-grouped: each epoch is shuffled (seeded by the epoch), cut
into chunks of 50 batches, each chunk sorted by length and cut into batches, and the batches shuffled.
The last batch of an epoch is filled up with the epoch's first examples, so every optimizer step sees
``batch_size`` items on any number of processes. A step number alone determines its batch, which is
what makes resume exact.

Example:
    >>> from es_zoo.tasks.finetune import finetune  # doctest: +SKIP
    >>> r = finetune("runs/beto-tiny", "pos", source="shipped", output_dir="runs/beto-tiny-pos")  # doctest: +SKIP
    >>> r["metrics"]["accuracy"]  # doctest: +SKIP
"""

from __future__ import annotations

import json
import math
import shutil
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch

from es_zoo.batching import StepBatch, step_slices
from es_zoo.cards import write_finetune_card
from es_zoo.errors import EsZooError, FirstProcessFailed, RunDirError
from es_zoo.loading import captured_load_report, load_config, load_tokenizer
from es_zoo.locking import FolderBusy, FolderLock, only_lock, remove_empty
from es_zoo.recipes import Phase, TrainingConfig, list_recipes, load_recipe, read_yaml, resolved_from_dict
from es_zoo.runinfo import replace_folder, scratch_folder
from es_zoo.tasks.data import TaskData, load_task_data
from es_zoo.tasks.definitions import Hyperparameters, TaskDef, TaskError, load_task
from es_zoo.tasks.task_heads import Prepared, get_head, label_names
from es_zoo.training import LoopSettings, flat_config, plot_loss_curve, tracker_kwargs, train_loop

SPEC_FILE = "finetune.json"


# ---------------------------------------------------------------------------------- preparation
def _names(ds: Any, column: str) -> list[str]:
    return label_names(ds, column)


def prepare(task: TaskDef, tokenizer: Any, split: Any, hp: Hyperparameters, relations: list[str] | None = None,
            ) -> Prepared:
    """Encode one split for the task's head (labels as ids of the task's label set; es_zoo.tasks.task_heads)."""
    return get_head(task.head).prepare(task, tokenizer, split, hp, relations=relations)


# ------------------------------------------------------------------------------------- batching
def collate(task: TaskDef, items: list[dict], windows: list[dict] | None, pad_id: int) -> dict[str, torch.Tensor]:
    """Dynamically padded tensors for one micro-batch (``windows``: all windows, for the parser)."""
    return get_head(task.head).collate(items, windows, pad_id)


def length_grouped_epoch(lengths: np.ndarray, batch_size: int, seed: int, epoch: int) -> list[np.ndarray]:
    """One epoch of batches (item indices): shuffled, length-sorted within chunks of 50 batches, the
    batch order shuffled, the last batch filled up with the epoch's first items."""
    rng = np.random.default_rng([seed, epoch, 0x61E5])
    order = rng.permutation(len(lengths))
    short = (-len(order)) % batch_size
    if short:
        order = np.concatenate([order, order[:short]])
    chunk = batch_size * 50
    batches = []
    for lo in range(0, len(order), chunk):
        part = order[lo: lo + chunk]
        part = part[np.argsort(-lengths[part], kind="stable")]
        batches.extend(part[i: i + batch_size] for i in range(0, len(part), batch_size))
    return [batches[i] for i in rng.permutation(len(batches))]


class TaskBatchMaker:
    """Step number -> this process's slices of the global batch (a :class:`es_zoo.batching.StepBatch`)."""

    def __init__(self, task: TaskDef, prepared: Any, hp: Hyperparameters, pad_id: int, rank: int,
                 world: int, micro_batch: int, collate_fn: Any = None) -> None:
        if hp.batch_size % (micro_batch * world):
            raise TaskError(f"batch_size {hp.batch_size} must be a multiple of micro-batch {micro_batch} x "
                            f"{world} processes")
        self.task, self.p, self.hp, self.pad_id = task, prepared, hp, pad_id
        # items -> padded tensors; the head family's collate unless the caller brings one (seq2seq)
        self.collate = collate_fn or (lambda part: collate(task, part, prepared.encoded.windows, pad_id))
        self.rank, self.world, self.micro = rank, world, micro_batch
        self.steps_per_epoch = math.ceil(len(prepared.items) / hp.batch_size)
        self._epoch: tuple[int, list[np.ndarray]] | None = None

    def __call__(self, step: int) -> StepBatch:
        epoch, index = divmod(step, self.steps_per_epoch)
        if self._epoch is None or self._epoch[0] != epoch:
            self._epoch = (epoch, length_grouped_epoch(self.p.lengths, self.hp.batch_size, self.hp.seed, epoch))
        batch = self._epoch[1][index]
        micro, mine = [], []
        # Only this process's slices are collated and counted; the loop sums the counts over processes.
        for _, part in step_slices(batch, self.micro, self.rank, self.world):
            micro.append(self.collate([self.p.items[i] for i in part]))
            mine.extend(int(i) for i in part)
        return StepBatch(micro, predicted=_scored(self.task, [self.p.items[i] for i in mine]),
                         tokens=int(self.p.lengths[mine].sum()))


def _scored(task: TaskDef, items: list[dict]) -> int:
    """Items the loss is summed over, among ``items`` (this process's share of a global batch; the
    loop sums the shares and never divides by less than 1)."""
    return get_head(task.head).scored(items)


# ---------------------------------------------------------------------------------------- models
def build_model(task: TaskDef, model_name: str, labels: list[str], relations: list[str] | None,
                hp: Hyperparameters, revision: str | None = None) -> Any:
    """The model for the task's head, loaded from a run folder, a model folder, a catalogue name or a
    Hub id (es_zoo.loading rules: safetensors only, a clear message offline)."""
    return get_head(task.head).build_model(task, model_name, labels, hp, revision=revision, relations=relations)


def loss_module(task: TaskDef, model: Any, hp: Hyperparameters | None = None) -> Any:
    return get_head(task.head).loss(model, hp)


# ------------------------------------------------------------------------------------ prediction
def predict(task: TaskDef, model: Any, tokenizer: Any, prepared: Prepared, hp: Hyperparameters,
            batch_size: int = 64, device: Any = None) -> list[Any]:
    """One prediction per example (label name, list of word labels, (heads, relations) or answer text),
    windows batched in length order and merged back."""
    return get_head(task.head).predict(task, model, tokenizer, prepared, hp, batch_size=batch_size, device=device)


# --------------------------------------------------------------------------------------- scoring
def score(task: TaskDef, metric: dict[str, str], predictions: list[Any], split: Any,
          checked: bool = False) -> dict[str, Any]:
    """The task's metric on one split (values in percent, as the official scripts print them). The
    predictions are checked against their gold examples first (``es_zoo.tasks.checks.check_predictions``)
    unless ``checked``."""
    head = get_head(task.head)
    return head.score(task, metric, predictions if checked else head.check(task, split, predictions), split)


# ------------------------------------------------------------------------------------ the run
def recipe_hparams(model_name: str, task: TaskDef) -> tuple[dict[str, Any], str | None]:
    """Fine-tuning settings that fit the model: for an es-zoo run (or its model/ folder), the settings its
    recipe fine-tunes ``task`` with (a tiny run's tiny settings), and where they come from; for any other
    model ``({}, None)``: the task's defaults, the paper's. A run whose recipe does not fine-tune the task
    gets the task defaults, with a warning when the run is not paper-scale."""
    def settings(cfg: Any) -> dict | None:
        return next((dict(r.hparams) for r in [*cfg.glues.runs, *cfg.seq2seq.runs] if r.task == task.name), None)

    p = Path(str(model_name))
    found = next((d / "recipe.yaml" for d in (p, p.parent) if (d / "recipe.yaml").is_file()), None)
    if found is None:
        return {}, None
    try:
        stored = resolved_from_dict(read_yaml(found), str(found))
    except (EsZooError, OSError, ValueError) as exc:  # the run is loaded anyway; its recipe cannot guide
        return {}, f"the task's defaults ({found} could not be read: {str(exc).splitlines()[0][:160]})"
    own = settings(stored)
    if own is not None:
        return own, f"the {stored.recipe} recipe's {stored.preset} preset"
    if stored.preset != "paper":
        # the run's recipe left the fine-tunes out: the shipped recipe's settings for this preset
        try:
            shipped = settings(load_recipe(stored.recipe, stored.preset)) if stored.recipe in list_recipes() else None
        except EsZooError:  # a preset the shipped recipe does not have
            shipped = None
        if shipped is not None:
            return shipped, f"the shipped {stored.recipe} recipe's {stored.preset} preset"
        return {}, (f"the task's defaults, which are for a paper-scale model: the {stored.recipe} {stored.preset} "
                    f"recipe has no fine-tune of {task.name}, and a small model usually needs a larger "
                    "--learning-rate and more --epochs")
    return {}, None


def check_model(model_name: str, revision: str | None) -> None:
    """Resolve the model's config before any folder is claimed (a typo'd path or Hub id: nothing written)."""
    load_config(model_name, revision=revision)


def _spec(model_name: str, task: TaskDef, data: TaskData, hp: Hyperparameters) -> dict:
    return {"model": str(model_name), "task": task.name, "source": data.source, "hyperparameters": hp.to_dict(),
            "train_examples": len(data.dataset["train"])}


def check_output_dir(out: Path, spec: dict, resume: bool, overwrite: bool) -> str:
    """'new', 'resume' or 'overwrite' for a fine-tuning folder; a clear error on any conflict."""
    if resume and overwrite:
        raise RunDirError("--resume and --overwrite exclude each other")

    if not out.exists() or only_lock(out):
        return "new"
    if not (out / SPEC_FILE).is_file():
        raise RunDirError(f"{out} is not empty and is not an es-zoo fine-tuning folder; nothing was changed. "
                          "Choose a new or empty --output-dir.")
    try:
        stored = json.loads((out / SPEC_FILE).read_text(encoding="utf-8"))
        if not isinstance(stored, dict):
            raise ValueError
    except (ValueError, UnicodeDecodeError):
        raise RunDirError(f"{out / SPEC_FILE}: not the JSON object es-zoo writes; the folder is damaged. Use "
                          "--overwrite to replace it or another --output-dir") from None
    if overwrite:
        return "overwrite"
    if not resume:
        raise RunDirError(f"{out} already holds a fine-tune of {stored['model']} on {stored['task']}; nothing was "
                          "changed. Pass --resume to continue it, --overwrite to replace it, or another --output-dir.")
    if stored != spec:
        diff = [k for k in spec if stored.get(k) != spec[k]]
        raise RunDirError(f"{out} holds a fine-tune with different settings ({', '.join(diff)}); --resume needs the "
                          "same model, task, data and hyperparameters")
    return "resume"


def finetune(model_name: str, task: str | TaskDef, output_dir: str | Path, source: str | None = None,
             data_dir: str | Path | None = None, files: dict[str, list[str]] | None = None,
             hparams: dict[str, Any] | None = None, resume: bool = False, overwrite: bool = False,
             save_model: bool = True, data: TaskData | None = None, revision: str | None = None,
             quiet: bool = False,
             trackers: list[str] | tuple[str, ...] = ()) -> dict:
    """Fine-tune ``model_name`` on ``task`` and score every held-out split; returns the results.

    ``trackers`` names experiment trackers (``training.trackers`` of a recipe: tensorboard, wandb, ...)
    that get the training log too, under ``output_dir/tracking``.

    Writes into ``output_dir``: ``finetune.json`` (the settings), ``checkpoints/``, ``logs/train.jsonl``,
    ``predictions/<split>.jsonl``, ``results.json`` and, with ``save_model``, the Hub-ready ``model/``
    folder (weights, tokenizer, labels in config.json, a model card with the scores). The training
    checkpoints are removed once the model is saved.
    """
    from accelerate import Accelerator

    t = load_task(task) if isinstance(task, str) else task
    base, hp_from = recipe_hparams(model_name, t)
    hp = t.hparams.replace(**{**base, **(hparams or {})})
    data = data or load_task_data(t, source=source, data_dir=data_dir, files=files)
    if "train" not in data.dataset:
        raise TaskError(f"task '{t.name}' (source '{data.source}') has no train split to fine-tune on; name one "
                        "with --train FILE (the benchmark trains on dev where no train split is public)")
    out = Path(output_dir)
    spec = _spec(model_name, t, data, hp)
    accelerator = Accelerator(**tracker_kwargs(list(trackers), out))
    given = sorted(set(hparams or {}) & set(base))
    if hp_from and not quiet and (not base or set(base) - set(given)):  # nothing to say when all were given
        accelerator.print(f"{t.name}: fine-tuning settings from {hp_from}"
                          + (f" ({', '.join(f'{k} {v}' for k, v in base.items() if k not in given)})" if base else "")
                          + (f"; {', '.join(given)} as given" if given else ""))
    # Only the first process looks at and writes the folder (under its lock); the others follow its
    # decision or its error, so they never race it to "a fine-tune already exists".
    locks: list = []
    decision, failure = None, None
    if accelerator.is_main_process:
        try:
            decision = _claim_output_dir(out, spec, resume, overwrite, locks,
                                         check=lambda: check_model(model_name, revision))
        except BaseException as exc:
            if accelerator.num_processes == 1:
                raise
            failure, raised = str(exc) or type(exc).__name__, exc
    if accelerator.num_processes > 1:
        from accelerate.utils import broadcast_object_list

        decision, failure = broadcast_object_list([decision, failure], from_process=0)
        if failure is not None:
            if accelerator.is_main_process:
                raise raised

            raise FirstProcessFailed(f"the first process stopped before fine-tuning: {failure}")
    try:
        return _finetune_in(out, accelerator, decision, model_name, t, data, hp, spec, save_model, revision,
                            quiet, trackers)
    finally:
        for lock in locks:
            lock.release()


def _claim_output_dir(out: Path, spec: dict, resume: bool, overwrite: bool, locks: list,
                      check: Any = None) -> str:
    """Lock ``out`` (before looking at it), decide new / resume / overwrite, run ``check`` (the model
    resolves), write finetune.json; a folder this created (and the parents it created), or a lock file it
    added to a folder it then refused, is removed again on failure."""
    if out.exists() and not out.is_dir():
        raise RunDirError(f"{out} exists and is not a folder")
    created = not out.exists()
    new_parents = [a for a in out.absolute().parents if not a.exists()]
    out.mkdir(parents=True, exist_ok=True)
    had_lock_file = (out / ".lock").exists()
    try:
        locks.append(FolderLock(out, "this fine-tune (with --resume to continue it)"))
        decision = check_output_dir(out, spec, resume, overwrite)
        if check is not None:
            check()  # a wrong model is refused before anything is written
        if decision == "overwrite":
            for p in out.iterdir():
                if p.name != ".lock":
                    shutil.rmtree(p) if p.is_dir() and not p.is_symlink() else p.unlink()
        (out / SPEC_FILE).write_text(json.dumps(spec, indent=2))
    except BaseException as exc:
        for lock in locks:
            lock.release()
        locks.clear()
        if created and only_lock(out):
            shutil.rmtree(out, ignore_errors=True)
            remove_empty(new_parents)
        elif not had_lock_file and not isinstance(exc, FolderBusy):
            (out / ".lock").unlink(missing_ok=True)
        raise
    return decision


def _finetune_in(out: Path, accelerator: Any, decision: str, model_name: str, t: TaskDef, data: TaskData,
                 hp: Hyperparameters, spec: dict, save_model: bool, revision: str | None,
                 quiet: bool, trackers: list[str] | tuple[str, ...]) -> dict:
    """The fine-tune itself, in its locked folder (see :func:`finetune`)."""
    head = get_head(t.head)  # everything below that differs between heads (es_zoo.tasks.task_heads)
    tokenizer = load_tokenizer(model_name, revision=revision)
    ctx = head.before_model(t, data, model_name, revision)
    torch.manual_seed(hp.seed)  # the new head's initial weights
    with captured_load_report() as load:
        model = head.build_model(t, model_name, data.labels, hp, revision=revision, **ctx)
    if load.reports and accelerator.is_main_process:
        (out / "logs").mkdir(parents=True, exist_ok=True)
        (out / "logs" / "load_report.txt").write_text("\n\n".join(load.reports) + "\n", encoding="utf-8")
        if not quiet:
            accelerator.print(f"{t.name}: loaded {model_name}; the weights it lacks (the new head) or leaves unused are "
                              f"listed in {out / 'logs' / 'load_report.txt'}")
    started = time.perf_counter()
    hp, more = head.after_model(model, hp, str(model_name), accelerator.print)
    ctx.update(more, source=data.source)

    def prepare_split(split: Any) -> Any:
        return head.prepare(t, tokenizer, split, hp, **ctx)

    train = prepare_split(data.dataset["train"])
    windows = getattr(train.encoded, "windows", None)  # the parser's items point into them
    world = accelerator.num_processes
    make = TaskBatchMaker(t, train, hp, tokenizer.pad_token_id, accelerator.process_index, world,
                          micro_batch=hp.batch_size // world,
                          collate_fn=lambda part: head.collate(part, windows, tokenizer.pad_token_id, **ctx))
    total = make.steps_per_epoch * hp.epochs
    training = TrainingConfig(
        phases=[Phase(max_steps=total, seq_len=hp.max_length, global_batch_size=hp.batch_size)],
        micro_batch_size=hp.batch_size // world, learning_rate=hp.learning_rate,
        warmup_steps=int(round(hp.warmup_ratio * total)), weight_decay=hp.weight_decay, adam_beta2=0.999,
        adam_epsilon=1e-8, seed=hp.seed, log_every=max(1, min(50, total // 20)),
        save_every=max(1, make.steps_per_epoch), keep_checkpoints=1, trackers=list(trackers),
    )
    # The trackers' run is TASK-finetune, its configuration the fine-tune's training section.
    settings = LoopSettings(training, run_name=f"{t.name}-finetune", label=f"fine-tuning {t.name}",
                            tracked=flat_config({"recipe": t.name, "preset": "finetune",
                                                 "training": asdict(training)}))
    summary = train_loop(settings, head.loss(model, hp), make, out, accelerator, resume=decision == "resume")
    # A plain, unsharded model on the main process under every strategy (gathered from the shards under
    # FSDP and DeepSpeed, which hand None to the other processes): only the main process uses it below.
    model = summary.pop("model")
    if summary["stopped_early"]:
        return {"stopped_early": True, "training": summary}
    results: dict[str, Any] = {}
    if accelerator.is_main_process:
        plot_loss_curve(out / "logs" / "train.jsonl", out / "loss_curve.png", f"{t.name} fine-tuning", "training loss")
        metric = t.metric_for(data.source)
        splits: dict[str, Any] = {}
        (out / "predictions").mkdir(exist_ok=True)
        for name in [n for n in data.dataset if n != "train"]:
            prep = prepare_split(data.dataset[name])
            preds = head.check(t, data.dataset[name], head.predict(t, model, tokenizer, prep, hp, device=accelerator.device))
            scores = head.score(t, metric, preds, data.dataset[name], prep)
            splits[name] = {"metrics": scores, "examples": len(data.dataset[name]), **prep.encoded.report()}
            _write_predictions(out / "predictions" / f"{name}.jsonl", data.dataset[name], preds)
        head.baselines(data, splits)
        reported = "test" if "test" in splits else ("validation" if "validation" in splits else None)
        if reported is None:
            raise TaskError(f"task '{t.name}': no validation or test split to score; name one with --test FILE")
        results = {
            "task": t.name, "model": str(model_name), "metric": metric, "split": reported,
            "metrics": splits[reported]["metrics"], "main": splits[reported]["metrics"][metric["main"]],
            "examples": splits[reported]["examples"], "splits": splits, "data": data.describe(),
            "hyperparameters": hp.to_dict(), "seed": hp.seed,
            "training": {**{k: v for k, v in summary.items() if k != "model"}, "train_examples": len(data.dataset["train"]),
                         **{f"train_{k}": v for k, v in train.encoded.report().items()},
                         "processes": world, "wall_s": time.perf_counter() - started},
        }
        (out / "results.json").write_text(json.dumps(results, indent=2, ensure_ascii=False))
        if "family" in ctx:
            results["family"] = ctx["family"]
        if save_model:
            save_finetuned(t, model, tokenizer, out, results, hp)
        shutil.rmtree(out / "checkpoints", ignore_errors=True)
        if not quiet:
            s = results["metrics"]
            accelerator.print(f"{t.name}: " + ", ".join(f"{k} {v:.2f}" for k, v in s.items()
                                                        if isinstance(v, float) and not k.startswith("paper_"))
                              + f" on {reported} ({results['examples']} examples)")
            if s.get("meteor_unavailable"):
                accelerator.print(f"METEOR not computed: {s['meteor_unavailable']}")
    accelerator.wait_for_everyone()
    return results


def _write_predictions(path: Path, split: Any, preds: list[Any]) -> None:
    with open(path, "w", encoding="utf-8") as fh:
        for row, p in zip(split, preds):
            fh.write(json.dumps({"id": row["id"], "prediction": p}, ensure_ascii=False) + "\n")


def save_finetuned(task: TaskDef, model: Any, tokenizer: Any, out: Path, results: dict,
                   hp: Hyperparameters | None = None) -> Path:
    """The Hub-ready ``model/`` folder, written atomically (a seq2seq model's generation_config.json
    holds the task's beam size, length penalty and output length)."""
    tmp, final = scratch_folder(out / ".tmp-model"), out / "model"
    get_head(task.head).save(model, tmp, hp)
    tokenizer.save_pretrained(tmp)
    (tmp / "results.json").write_text(json.dumps(results, indent=2, ensure_ascii=False))
    if (out / "loss_curve.png").is_file():
        shutil.copyfile(out / "loss_curve.png", tmp / "loss_curve.png")
    write_finetune_card(tmp / "README.md", task, results)
    return replace_folder(tmp, final)
