"""The ``es-zoo`` command line: a thin table of verbs that call library functions.

Nothing heavy is imported at module level, so ``es-zoo --help`` answers instantly.
"""

from __future__ import annotations

import json
import shlex
import sys
from typing import Any

import click

from es_zoo import __version__
from es_zoo.demos import DEMO_ALIASES, DEMOS, demo_name
from es_zoo.errors import EsZooError, FirstProcessFailed


class _Group(click.Group):
    """Turns every :class:`EsZooError` into one clear line and exit status 1 (never a traceback)."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except EsZooError as exc:
            if not isinstance(exc, FirstProcessFailed):  # the first process has printed the reason
                click.echo(f"error: {exc}", err=True)
            ctx.exit(1)
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            ctx.exit(130)
        except OSError as exc:
            import errno

            # A full disk, a quota or a read-only folder anywhere (an export, a results file): one line with
            # the file and the cause. Other OSErrors are bugs or environment faults worth a traceback.
            if exc.errno not in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS):
                raise
            where = f" writing {exc.filename}" if exc.filename else ""
            click.echo(f"error: {exc.strerror or exc}{where}; free space (or fix the folder), then run the same "
                       "command again (with --resume where it has one)", err=True)
            ctx.exit(1)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="es-zoo")
def cli() -> None:
    """es-zoo: reproduce, evaluate, publish and demo the Spanish language models BETO, BARTO, T5S,
    BERT2BERT and MarIA's RoBERTa-BNE.

    \b
    es-zoo list                      the model catalogue
    es-zoo show beto-base-cased      one entry, with its published scores
    es-zoo compare beto-base-cased roberta-base-bne --task pawsx   published scores side by side
    es-zoo recipes list              the recipes that reproduce them
    es-zoo reproduce beto            tokenizer -> pretraining -> evaluation -> model folder
    """


# ----------------------------------------------------------------------------------- catalogue


@cli.command("list")
@click.argument("pattern", required=False)
@click.option("--family", help="Only this family (bert, roberta, albert, bart, t5, led, bert2bert, gpt2, mbert, xlmr, ...).")
@click.option("--kind", help="Only this kind (pretrained, finetuned, warm-started, baseline).")
@click.option("--scores", "scores_task", metavar="TASK",
              help="Instead of the list, the published scores of TASK of every matching model, side by side "
                   "(as `es-zoo compare`).")
@click.option("--json", "as_json", is_flag=True, help="Print the records as JSON.")
def list_cmd(pattern: str | None, family: str | None, kind: str | None, scores_task: str | None, as_json: bool) -> None:
    """List catalogued models, optionally filtered by a glob PATTERN such as 'beto*'."""
    from es_zoo.catalog import get_model, list_models  # lazy, as in every command: a fast `es-zoo --help`

    names = list_models(pattern, family=family, kind=kind)
    if scores_task is not None:
        names = [n for n in names if get_model(n).scores_for(scores_task, own=False)]
        if not names:
            from es_zoo.catalog import score_tasks

            click.echo(f"no matching model has a published score for '{scores_task}'; tasks with scores: "
                       f"{', '.join(score_tasks())}", err=True)
            sys.exit(1)
        _print_compare(names, scores_task, as_json)
        return
    if as_json:
        click.echo(json.dumps([get_model(n).to_dict() for n in names], indent=2, ensure_ascii=False))
        return
    if not names:
        click.echo("no model matches", err=True)
        sys.exit(1)
    rows = [("name", "family", "kind", "hub id", "params", "vocab", "recipe")]
    for n in names:
        r = get_model(n)
        p = r.architecture.get("parameters_m")
        rows.append((n, r.family, r.kind, r.hub_id or "(warm start)", f"{p}M" if p else "?",
                     str(r.vocab_size or "?"), r.recipe or ""))
    _table(rows)


@cli.command("show")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print the record as JSON.")
def show_cmd(name: str, as_json: bool) -> None:
    """Show one catalogue entry with its architecture and published scores."""
    from es_zoo.catalog import get_model

    r = get_model(name)
    if as_json:
        click.echo(json.dumps(r.to_dict(), indent=2, ensure_ascii=False))
        return
    click.echo(f"{r.name}  ({r.family}, {r.kind})")
    for label, value in (
        ("hub id", r.hub_id or "none (built by warm start)"), ("encoder", r.encoder), ("base model", r.base_model),
        ("task", r.task), ("languages", ", ".join(r.languages)), ("licence", r.license), ("recipe", r.recipe),
    ):
        if value:
            click.echo(f"  {label:<12} {value}")
    click.echo("  architecture " + ", ".join(f"{k}={v}" for k, v in r.architecture.items() if v is not None))
    click.echo("  tokenizer    " + ", ".join(f"{k}={v}" for k, v in r.tokenizer.items() if v is not None))
    if r.paper:
        click.echo(f"  paper        {r.paper.get('title')} ({r.paper.get('year')}) {r.paper.get('url') or ''}")
    if r.scores_for():
        click.echo("  published scores:")
        rows = [("task", "dataset", "split", "metric", "value", "source")]
        rows += [(s.task, s.dataset, s.split or "", s.metric, f"{s.value:g}", s.source) for s in r.scores_for()]
        _table(rows, indent=4)
    others = [s for s in r.scores if not s.own]
    if others:
        click.echo("  measured by others (see `es-zoo compare`):")
        rows = [("task", "dataset", "split", "metric", "value", "by", "source")]
        rows += [(s.task, s.dataset, s.split or "", s.metric, f"{s.value:g}", s.by, s.source) for s in others]
        _table(rows, indent=4)
    if r.unknown:
        click.echo(f"  unknown in the sources: {', '.join(r.unknown)}")
    if r.notes:
        click.echo(f"  note: {r.notes}")


@cli.command("compare")
@click.argument("names", nargs=-1, required=True)
@click.option("--task", help="Only this task (xnli, pawsx, ner, pos, qa, sts, ...).")
@click.option("--json", "as_json", is_flag=True, help="Print the rows as JSON.")
def compare_cmd(names: tuple[str, ...], task: str | None, as_json: bool) -> None:
    """The published scores of several catalogued models side by side, one table per task.

    \b
    es-zoo compare beto-base-cased roberta-base-bne bertin-base
    es-zoo compare beto-base-cased roberta-large-bne --task pawsx

    Numbers stand in one row only when task, dataset (the evaluation, as its source names it), split and
    metric agree; a model measured by someone else than its authors is marked with *. A metric other
    than the es-zoo task's (F1 where GLUES reports accuracy) is flagged. Different rows are not
    comparable.
    """
    from es_zoo.catalog import get_model

    models = list(dict.fromkeys(get_model(n).name for n in names))
    _print_compare(models, task, as_json)


def _print_compare(models: list[str], task: str | None, as_json: bool) -> None:
    from es_zoo.catalog import compare_scores

    tables = compare_scores(models, task)
    if as_json:
        click.echo(json.dumps(tables, indent=2, ensure_ascii=False))
        return
    if not tables:
        click.echo(f"none of {', '.join(models)} has a published score" + (f" for '{task}'" if task else ""), err=True)
        sys.exit(1)
    by: dict[str, int] = {}
    for t in tables:
        click.echo(f"{t['task']}  ({t['note']})")
        rows = [("dataset", "split", "metric", *models)]
        for r in t["rows"]:
            cells = []
            for m in models:
                c = r["values"].get(m)
                if c is None:
                    cells.append("-")
                    continue
                mark = ""
                if c["by"]:
                    mark = "*" * by.setdefault(c["by"], len(by) + 1)
                cells.append(f"{c['value']:g}{mark}")
            metric = r["metric"] + (f" (not {r['task_metric']})" if r["metric_differs"] else "")
            rows.append((r["dataset"], r["split"] or "-", metric, *cells))
        _table(rows, indent=2)
        click.echo()
    for who, n in by.items():
        click.echo(f"{'*' * n} measured by {who}, not the model's authors")
    click.echo("Numbers in one row share task, dataset, split and metric; different rows are not comparable.")


def _table(rows: list[tuple[str, ...]], indent: int = 0) -> None:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for i, r in enumerate(rows):
        click.echo(" " * indent + "  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())
        if i == 0:
            click.echo(" " * indent + "  ".join("-" * w for w in widths))


# ------------------------------------------------------------------------------------- recipes


@cli.group("recipes", cls=_Group)
def recipes_group() -> None:
    """List, show, validate and copy recipes."""


@recipes_group.command("list")
def recipes_list() -> None:
    """The shipped recipes and their presets."""
    from es_zoo.recipes import list_recipes, load_recipe_file

    rows = [("recipe", "reproduces", "presets", "description")]
    for name in list_recipes():
        r = load_recipe_file(name)
        rows.append((name, r.reproduces or "", ", ".join(r.presets), r.description.strip().splitlines()[0]))
    _table(rows)


@recipes_group.command("show")
@click.argument("name")
@click.option("--preset", default=None, help="Print only this preset, resolved.")
def recipes_show(name: str, preset: str | None) -> None:
    """Print a recipe file (or one preset of it, resolved with defaults)."""
    from es_zoo.recipes import load_recipe, recipe_path

    if preset is None:
        click.echo(recipe_path(name).read_text(encoding="utf-8"), nl=False)
    else:
        click.echo(load_recipe(name, preset=preset).to_yaml(), nl=False)


@recipes_group.command("validate")
@click.argument("names", nargs=-1, required=True)
def recipes_validate(names: tuple[str, ...]) -> None:
    """Check recipe files (shipped names or paths) against the schema."""
    from es_zoo.recipes import load_recipe_file, recipe_path

    for name in names:
        r = load_recipe_file(name)
        click.echo(f"ok  {recipe_path(name)}  (presets: {', '.join(r.presets)})")


@recipes_group.command("cp")
@click.argument("name")
@click.argument("destination", type=click.Path())
@click.option("--overwrite", is_flag=True, help="Replace DESTINATION if it exists.")
def recipes_cp(name: str, destination: str, overwrite: bool) -> None:
    """Copy a shipped recipe to DESTINATION to edit it; run it with `es-zoo reproduce PATH`."""
    from es_zoo.recipes import copy_recipe

    click.echo(f"copied to {copy_recipe(name, destination, overwrite=overwrite)}")


# ----------------------------------------------------------------------------------- reproduce


@cli.command("reproduce", context_settings={"ignore_unknown_options": False})
@click.argument("recipe")
@click.argument("overrides", nargs=-1)
@click.option("--preset", default="tiny", show_default=True, help="Preset of the recipe (tiny or paper).")
@click.option("--corpus", default=None,
              help="Pretraining text: 'embedded', a .txt/.jsonl/.parquet file, a folder, or a Hub dataset id.")
@click.option("--output-dir", default=None, type=click.Path(), help="Run folder [default: runs/RECIPE-PRESET].")
@click.option("--max-steps", type=int, default=None,
              help="Stop after this many optimizer steps in total: later length phases are dropped and the warmup "
                   "keeps its fraction of the schedule (said, and recorded in run_info.json and the card).")
@click.option("--resume", is_flag=True, help="Continue the run in --output-dir from its newest complete checkpoint.")
@click.option("--overwrite", is_flag=True, help="Replace the es-zoo run already in --output-dir.")
@click.option("--data", default=None, type=click.Path(),
              help="A folder made by `es-zoo prepare` (tokenizer + token shards): used as it is, never "
                   "re-tokenized, after checking it was prepared for this recipe [default: prepare the corpus "
                   "into RUN_DIR/data].")
@click.option("--report-to", "report_to", multiple=True, metavar="NAME",
              help="Also log training to this experiment tracker (tensorboard, wandb, trackio, mlflow, ...; "
                   "repeatable or comma-separated): sets training.trackers; files under RUN_DIR/tracking.")
def reproduce_cmd(recipe: str, overrides: tuple[str, ...], preset: str, corpus: str | None,
                  output_dir: str | None, max_steps: int | None, resume: bool, overwrite: bool,
                  data: str | None, report_to: tuple[str, ...]) -> None:
    """Reproduce a model end to end: tokenizer, pretraining, held-out evaluation, model folder.

    RECIPE is a shipped recipe name (see `es-zoo recipes list`) or a YAML path. OVERRIDES are
    KEY=VALUE settings checked against the schema, e.g. training.learning_rate=2e-4. Without --data
    the corpus is first prepared into RUN_DIR/data (tokenizer, token shards; see `es-zoo prepare`).

    \b
    es-zoo reproduce beto                                  # tiny preset, embedded corpus, CPU
    es-zoo reproduce barto                                 # BART denoising (text infilling)
    es-zoo reproduce t5s                                   # T5 span corruption
    es-zoo reproduce bert2bert                             # BETO2BETO warm start (+ adaptation)
    es-zoo reproduce bert2bert model.share_weights=true    # BETOShare
    es-zoo prepare beto --preset paper --corpus CORPUS --output data/beto-paper
    accelerate launch --config_file recipes/accelerate/multi_gpu.yaml -m es_zoo reproduce beto \\
        --preset paper --data data/beto-paper --output-dir runs/beto-paper
    accelerate launch --num_processes 2 --cpu -m es_zoo reproduce t5s --output-dir runs/t5s-2
    es-zoo reproduce beto --report-to tensorboard          # + TensorBoard events in RUN_DIR/tracking
    """
    from es_zoo.reproduce import reproduce

    trackers = [n.strip() for item in report_to for n in item.split(",") if n.strip()]
    if trackers:  # an ordinary override, checked like any other: an unknown name fails at load time
        overrides = (*overrides, f"training.trackers=[{', '.join(trackers)}]")
    result = reproduce(recipe, preset=preset, output_dir=output_dir, corpus=corpus, overrides=overrides,
                       max_steps=max_steps, resume=resume, overwrite=overwrite, data=data,
                       command="es-zoo reproduce " + shlex.join(sys.argv[2:]))
    if result.get("stopped_early"):
        sys.exit(0)


# ------------------------------------------------------------------------------------- prepare


@cli.command("prepare")
@click.argument("recipe")
@click.argument("overrides", nargs=-1)
@click.option("--output", "output", required=True, type=click.Path(),
              help="The prepared folder (a rerun of the same command resumes it).")
@click.option("--preset", default="tiny", show_default=True, help="Preset of the recipe (tiny or paper).")
@click.option("--corpus", default=None,
              help="Pretraining text: 'embedded', a .txt/.jsonl/.parquet file, a folder, or a Hub dataset id.")
@click.option("--executor", type=click.Choice(["local", "slurm", "ray"]), default="local", show_default=True,
              help="datatrove executor: local processes, Slurm job arrays, or a Ray cluster.")
@click.option("--workers", type=int, default=None,
              help="Tasks running at once (local: processes on this machine; ray: at once) [all cores].")
@click.option("--tasks", type=int, default=None,
              help="Group the corpus into this many tasks (shards) [one per --chunk-mb of text].")
@click.option("--chunk-mb", type=int, default=128, show_default=True,
              help="Text per task when cutting large files (uncompressed .txt/.jsonl at record starts, "
                   "parquet at row groups).")
@click.option("--margin", type=float, default=0.05, show_default=True,
              help="Extra share of tokens over what the schedule needs (presets with corpus.max_epochs).")
@click.option("--overwrite", is_flag=True, help="Replace a different preparation already in --output.")
@click.option("--slurm-partition", default=None, help="Slurm: partition (required with --executor slurm).")
@click.option("--slurm-time", default="24:00:00", show_default=True, help="Slurm: time limit per task.")
@click.option("--slurm-cpus", type=int, default=4, show_default=True, help="Slurm: CPUs per task.")
@click.option("--slurm-mem-per-cpu-gb", type=int, default=4, show_default=True, help="Slurm: memory per CPU.")
@click.option("--slurm-qos", default=None, help="Slurm: quality of service.")
@click.option("--slurm-venv", default=None, help="Slurm: virtual environment the jobs activate [none].")
@click.option("--slurm-arg", "slurm_args", multiple=True, metavar="KEY=VALUE",
              help="Slurm: any other sbatch option, e.g. --slurm-arg account=nlp (repeatable).")
@click.option("--ray-address", default=None, help="Ray: the cluster to connect to [a local Ray].")
def prepare_cmd(recipe: str, overrides: tuple[str, ...], output: str, preset: str, corpus: str | None,
                executor: str, workers: int | None, tasks: int | None, chunk_mb: int, margin: float,
                overwrite: bool, slurm_partition: str | None, slurm_time: str, slurm_cpus: int,
                slurm_mem_per_cpu_gb: int, slurm_qos: str | None, slurm_venv: str | None,
                slurm_args: tuple[str, ...], ray_address: str | None) -> None:
    """Prepare a recipe's corpus once: tokenizer + sharded, memory-mapped token files + manifest.

    Runs as a datatrove pipeline (scan, dedup, tokenizer, tokenize, manifest). The tokenizer trains on a
    deterministic sample spread over the whole corpus (tokenizer.max_training_chars); presets with
    corpus.max_epochs tokenize only what their schedule needs. A killed preparation resumes when the same
    command runs again; `es-zoo reproduce RECIPE --data OUTPUT` then trains from it without re-tokenizing,
    on one process or many.

    \b
    es-zoo prepare beto --output data/beto-tiny                       # the embedded corpus, all cores
    es-zoo prepare beto --preset paper --corpus ~/corpora/es --output data/beto-paper --workers 16
    es-zoo prepare t5s --preset paper --corpus ~/corpora/es --output /shared/t5s-paper \\
        --executor slurm --slurm-partition cpu --slurm-cpus 8
    """
    from es_zoo.prepare import SlurmOptions, prepare
    from es_zoo.recipes import load_recipe

    overrides = list(overrides)
    if corpus is not None:
        overrides.append(f"corpus.source={json.dumps(corpus)}")
    if workers is not None and workers < 1:
        raise EsZooError(f"--workers must be >= 1, got {workers}")
    if tasks is not None and tasks < 1:
        raise EsZooError(f"--tasks must be >= 1, got {tasks}")
    if chunk_mb < 1:
        raise EsZooError(f"--chunk-mb must be >= 1, got {chunk_mb}")
    cfg = load_recipe(recipe, preset=preset, overrides=overrides)
    slurm = None
    if executor == "slurm":
        if not slurm_partition:
            raise EsZooError("--executor slurm needs --slurm-partition")
        extra = {}
        for item in slurm_args:
            if "=" not in item:
                raise EsZooError(f"--slurm-arg {item!r}: expected KEY=VALUE, e.g. account=nlp")
            k, v = item.split("=", 1)
            extra[k.strip()] = v
        slurm = SlurmOptions(partition=slurm_partition, time=slurm_time, cpus_per_task=slurm_cpus,
                             mem_per_cpu_gb=slurm_mem_per_cpu_gb, qos=slurm_qos, venv_path=slurm_venv,
                             sbatch_args=extra)
    from es_zoo.families import get_family

    tokenizer_from = get_family(cfg.model.architecture).tokenizer_from(cfg)
    prepare(cfg, output, executor=executor, workers=workers, tasks=tasks, chunk_bytes=chunk_mb << 20,
            margin=margin, overwrite=overwrite, tokenizer_from=tokenizer_from, slurm=slurm,
            ray_options={"address": ray_address} if ray_address else None, echo=click.echo,
            command="es-zoo prepare " + shlex.join(sys.argv[2:]))


# ---------------------------------------------------------------------------------- GLUES tasks


def _hparam_options(f: Any) -> Any:
    for opt in reversed([
        click.option("--batch-size", type=int, help="Examples per optimizer step [task default]."),
        click.option("--learning-rate", type=float, help="Peak learning rate [task default]."),
        click.option("--epochs", type=int, help="Passes over the training split [task default]."),
        click.option("--max-length", type=int, help="Sub-word tokens per window; longer inputs become "
                                                      "overlapping windows, never truncated (seq2seq: the source "
                                                      "limit; longer is an error unless the task truncates) "
                                                      "[task default]."),
        click.option("--stride", type=int, help="Overlap of consecutive windows, in sub-word tokens [task default]."),
        click.option("--seed", type=int, help="Seed of the new head and of the batch order [42]."),
        click.option("--set", "settings", multiple=True, metavar="KEY=VALUE",
                     help="Any other hyperparameter, e.g. --set warmup_ratio=0.06 (see recipes/tasks/*.yaml)."),
    ]):
        f = opt(f)
    return f


def _hparams(batch_size: Any, learning_rate: Any, epochs: Any, max_length: Any, stride: Any, seed: Any,
             settings: tuple[str, ...]) -> dict:
    hp = {k: v for k, v in dict(batch_size=batch_size, learning_rate=learning_rate, epochs=epochs,
                                  max_length=max_length, stride=stride, seed=seed).items() if v is not None}
    for item in settings:
        if "=" not in item:
            raise EsZooError(f"--set {item!r}: expected KEY=VALUE")
        k, v = item.split("=", 1)
        from es_zoo.safeyaml import YamlLimitError, load_yaml

        try:
            hp[k.strip()] = load_yaml(v, f"--set {k.strip()}")
        except YamlLimitError as exc:
            raise EsZooError(str(exc)) from None
    return hp


def _files(train: tuple[str, ...], validation: tuple[str, ...], test: tuple[str, ...]) -> dict | None:
    files = {k: list(v) for k, v in (("train", train), ("validation", validation), ("test", test)) if v}
    return files or None


def _accept_changed_option(f: Any) -> Any:
    return click.option("--accept-changed-data", "accept_changed", is_flag=True,
                        help="Score a Hub dataset whose split sizes are not the published ones (marked CHANGED in "
                             "the results) instead of refusing it.")(f)


@cli.command("tasks")
@click.argument("name", required=False)
def tasks_cmd(name: str | None) -> None:
    """List the task definitions (GLUES and seq2seq), or show one: where each source's data comes from
    without --data-dir (its Hub home, or why it has none), its licence, then the task file."""
    from es_zoo.tasks.definitions import list_tasks, load_task

    if name is None:
        rows = [("task", "head", "metric", "sources", "description")]
        for n in list_tasks():
            t = load_task(n)
            rows.append((n, t.head, f"{t.metric['name']} ({t.metric['main']})", ", ".join(t.sources), t.description))
        _table(rows)
        return
    from pathlib import Path

    task = load_task(name)
    rows = [("source", "where the data comes from without --data-dir", "licence")]
    for sname, src in task.sources.items():
        if src.embedded:
            home = "shipped with es-zoo"
        elif src.hub is None:
            home = "no Hub copy known; --data-dir with the published files"
        elif src.hub.unavailable:
            home = f"no Hub copy: {src.hub.unavailable}; --data-dir with the published files"
        else:
            home = "Hub: " + src.hub.describe()
        rows.append((sname, home, src.license))
    _table(rows)
    click.echo("")
    click.echo(Path(task.path).read_text(encoding="utf-8"), nl=False)


@cli.group("data", cls=_Group)
def data_group() -> None:
    """The task data's Hub homes: fetch them ahead of time for a machine without network."""


@data_group.command("download")
@click.option("--suite", type=click.Choice(["glues", "seq2seq"]), default="glues", show_default=True,
              help="Every task source of this suite that has a Hub home.")
@click.option("--tasks", "task_names", help="Comma-separated tasks [every task of the suite].")
@click.option("--source", "source_items", multiple=True, metavar="TASK=SOURCE",
              help="Only this source of a task [every source with a Hub home].")
@click.option("--local-dir", type=click.Path(), default=None,
              help="Write the files to DIR/ORG/NAME (copy DIR to the offline machine and pass --data-dir DIR) "
                   "[the Hub cache, used by `es-zoo evaluate` without --data-dir].")
@click.option("--accept-changed-data", "accept_changed", is_flag=True,
              help="Keep going when a dataset's split sizes are not the published ones.")
def data_download_cmd(suite: str, task_names: str | None, source_items: tuple[str, ...], local_dir: str | None,
                      accept_changed: bool) -> None:
    """Download the pinned Hub copies of a suite's task data and check them as `evaluate` would (labels,
    answers, trees, split sizes); print where each went. Sources without a Hub home are listed with why.

    \b
    es-zoo data download --suite glues
    es-zoo data download --suite seq2seq --local-dir ~/es-zoo-data   # then: --data-dir ~/es-zoo-data
    """
    from es_zoo.tasks.data import download_suite

    tasks = [t.strip() for t in task_names.split(",") if t.strip()] if task_names else None
    failed = download_suite(suite, tasks, _source_map(source_items), local_dir, accept_changed, echo=click.echo)
    if failed:
        raise EsZooError(f"{failed} source(s) could not be downloaded or checked (see above)")


@cli.command("finetune")
@click.argument("model")
@click.option("--task", "task_name", required=True, help="A GLUES or seq2seq task (see `es-zoo tasks`) or a task YAML.")
@click.option("--source", help="Which of the task's data sources [the first listed].")
@click.option("--data-dir", help="Folder with the published files, a parquet folder, or a Hub dataset id.")
@click.option("--train", multiple=True, help="Training file(s) in the task's format (overrides --data-dir).")
@click.option("--validation", multiple=True, help="Validation file(s).")
@click.option("--test", multiple=True, help="Test file(s).")
@click.option("--output-dir", type=click.Path(), help="Where to write [default: runs/finetune-TASK].")
@click.option("--grid", is_flag=True, help="Run the task's grid (batch x learning rate x epochs; GLUES's for the "
                                          "GLUES tasks) instead of one setting.")
@click.option("--revision", help="Hub revision of MODEL.")
@click.option("--resume", is_flag=True, help="Continue an interrupted fine-tune in --output-dir (a --grid resumes "
                                            "on its own: settings in grid.jsonl are skipped).")
@click.option("--overwrite", is_flag=True, help="Replace the fine-tune already in --output-dir.")
@_accept_changed_option
@_hparam_options
def finetune_cmd(model: str, task_name: str, source: str | None, data_dir: str | None, train: tuple[str, ...],
                 validation: tuple[str, ...], test: tuple[str, ...], output_dir: str | None, grid: bool,
                 revision: str | None, resume: bool, overwrite: bool, accept_changed: bool, **hp: Any) -> None:
    """Fine-tune MODEL (a run folder, a model folder, a catalogue name or a Hub id) on one task.

    Writes OUTPUT/model/ (Hub-ready: weights, tokenizer, labels in config.json or the task's generation
    settings in generation_config.json, a model card with the scores), OUTPUT/results.json and
    OUTPUT/predictions/. With --grid, one line per setting goes to OUTPUT/grid.jsonl and the setting
    best on validation is reported on test. An es-zoo run is fine-tuned with its recipe's settings for
    the task (a tiny run's tiny ones); other models with the task's defaults (the paper's); options given
    here win. Without --data-dir the data comes from the task source's Hub home (`es-zoo tasks TASK`). Seq2seq settings go through --set, e.g. --set num_beams=4
    --set prefix="traducir: " --set label_smoothing=0.1.

    \b
    es-zoo finetune runs/beto-tiny --task pos --source shipped
    es-zoo finetune beto-base-cased --task ner --data-dir ~/data/glues
    es-zoo finetune beto-base-cased --task pawsx --train train.tsv --validation dev.tsv --test test.tsv
    es-zoo finetune beto-base-cased --task xnli --data-dir ~/data/glues --grid
    es-zoo finetune runs/t5s-tiny --task translation --source shipped --set max_target_length=256
    """
    from es_zoo.tasks.definitions import load_task

    task = load_task(task_name)
    out = output_dir or f"runs/finetune-{task.name}"
    settings = _hparams(**hp)
    files = _files(train, validation, test)
    data = None
    if accept_changed:
        from es_zoo.tasks.data import load_task_data

        data = load_task_data(task, source=source, data_dir=data_dir, files=files, accept_changed=True)
    if grid:
        from es_zoo.tasks.suite import grid_search

        r = grid_search(model, task, out, source=source, data_dir=data_dir, files=files, hparams=settings,
                        revision=revision, data=data)
        if r.get("stopped_early"):
            sys.exit(0)
        click.echo(f"{r['runs']} settings; best on validation: {r['best']['key']}; {r['split']}: "
                   + ", ".join(f"{k} {v:.2f}" for k, v in r["metrics"].items() if isinstance(v, float)))
        click.echo(f"results: {out}/grid.jsonl. To save that model: es-zoo finetune {model} --task {task.name} "
                   f"--batch-size {r['best']['hyperparameters']['batch_size']} --learning-rate "
                   f"{r['best']['hyperparameters']['learning_rate']:g} --epochs {r['best']['hyperparameters']['epochs']}")
        return
    from es_zoo.tasks.finetune import finetune

    r = finetune(model, task, out, source=source, data_dir=data_dir, files=files, hparams=settings, resume=resume,
                 overwrite=overwrite, revision=revision, data=data)
    if r.get("stopped_early"):
        sys.exit(0)
    click.echo(f"model: {out}/model  results: {out}/results.json")


@cli.command("evaluate")
@click.argument("model")
@click.option("--suite", type=click.Choice(["glues", "seq2seq"]), default="glues", show_default=True,
              help="GLUES (encoders: BETO) or the seq2seq paper's tasks (encoder-decoders: BARTO, T5S, BERT2BERT).")
@click.option("--tasks", "task_names", help="Comma-separated tasks [every task of the suite with data].")
@click.option("--data-dir", help="Folder with the published files, a parquet folder, or a Hub dataset id.")
@click.option("--source", "source_items", multiple=True, metavar="TASK=SOURCE",
              help="Data source of a task, e.g. --source qa=xquad (see `es-zoo tasks qa`).")
@click.option("--output-dir", type=click.Path(), help="Where to write [default: runs/evaluate-SUITE].")
@click.option("--grid", is_flag=True, help="Run the GLUES grid per task (chosen on validation, reported on test).")
@click.option("--save-models", is_flag=True, help="Keep each task's Hub-ready fine-tuned model folder.")
@click.option("--revision", help="Hub revision of MODEL.")
@click.option("--resume", is_flag=True, help="Keep the tasks already scored in --output-dir and resume the rest.")
@click.option("--overwrite", is_flag=True, help="Replace results already in --output-dir.")
@_accept_changed_option
@_hparam_options
def evaluate_cmd(model: str, suite: str, task_names: str | None, data_dir: str | None, source_items: tuple[str, ...],
                 output_dir: str | None, grid: bool, save_models: bool, revision: str | None, resume: bool,
                 overwrite: bool, accept_changed: bool, **hp: Any) -> None:
    """Fine-tune and score MODEL on every task of a suite; write results.json and print the table
    beside the catalogue's published numbers. Without --data-dir every task source is read from its Hub
    home at the revision es-zoo pins (`es-zoo tasks TASK` shows it; `es-zoo data download` fetches them
    ahead of time for an offline machine). The seq2seq suite runs every dataset of each task (a row per
    task/dataset, as the paper's tables), plus extra test sets.

    \b
    es-zoo evaluate beto-base-cased --suite glues
    es-zoo evaluate runs/beto-tiny --suite glues --tasks pos,parsing,pawsx,qa --source pos=shipped ...
    es-zoo evaluate beto-base-cased --suite glues --data-dir ~/data/glues
    es-zoo evaluate runs/t5s-tiny --suite seq2seq --tasks translation,generative_qa \\
        --source translation=shipped --source generative_qa=shipped
    """
    from es_zoo.tasks.suite import data_rows, evaluate_suite, extra_rows, table_rows

    sources = _source_map(source_items)
    tasks = [t.strip() for t in task_names.split(",") if t.strip()] if task_names else None
    out = output_dir or f"runs/evaluate-{suite}"
    results = evaluate_suite(model, out, tasks=tasks, data_dir=data_dir, sources=sources, grid=grid,
                             hparams=_hparams(**hp), resume=resume, overwrite=overwrite, revision=revision,
                             save_models=save_models, echo=click.echo, suite=suite, accept_changed=accept_changed)
    click.echo("")
    _table(table_rows(results))
    extra = extra_rows(results)
    if extra:
        click.echo("\nother scored splits (extra test sets, validation):")
        _table([("task", "split", "metric", "measured", "examples"), *extra])
    if results["tasks"]:
        click.echo("\ndata (where each task's data came from, its licence and citation):")
        _table(data_rows(results))
    click.echo(f"\nresults: {out}/results.json")
    if results.get("stopped_early"):
        click.echo(f"stopped by a signal before every task was scored; the finished ones are in {out}/results.json. "
                   "Continue with the same command and --resume.")
        return
    if not results["tasks"]:
        raise EsZooError(f"no task had data (the reasons are above); pass --data-dir (see docs/"
                         f"{'glues' if suite == 'glues' else 'seq2seq-tasks'}.md and docs/hub-data.md) or --tasks "
                         "with --source TASK=shipped")


@cli.command("score")
@click.argument("task_name")
@click.argument("predictions", type=click.Path())
@click.option("--split", default="test", show_default=True, help="The gold split the predictions are for.")
@click.option("--source", help="Which of the task's data sources [the first listed].")
@click.option("--data-dir", help="Folder with the published files, a parquet folder, or a Hub dataset id.")
@click.option("--gold", multiple=True, help="The gold file(s) of the split (overrides --data-dir).")
def score_cmd(task_name: str, predictions: str, split: str, source: str | None, data_dir: str | None,
              gold: tuple[str, ...]) -> None:
    """Score a predictions file (JSON lines `{"id", "prediction"}`, as `es-zoo finetune` writes them
    in OUTPUT/predictions/) against a task's gold split with the task's official metric."""
    from es_zoo.tasks.scoring import score_file

    scores = score_file(task_name, predictions, split=split, source=source, data_dir=data_dir,
                        files={split: list(gold)} if gold else None)
    click.echo(json.dumps(scores, indent=2))


# ----------------------------------------------------------------------------------- publishing


def _publish_options(f: Any) -> Any:
    for opt in reversed([
        click.option("--repo-id", required=True, help="The Hub repo to publish to, ORG/NAME."),
        click.option("--private", is_flag=True, help="Create the repo private (an existing repo keeps its visibility)."),
        click.option("--revision", help="Branch to commit to (created from main when missing) [main]."),
        click.option("--create-pr", is_flag=True, help="Open a pull request with the commit instead of committing."),
        click.option("--dry-run", "dry_run", type=click.Path(), metavar="OUT_DIR",
                     help="Write the files that would be uploaded and manifest.json to OUT_DIR; contact nothing."),
        click.option("--overwrite-card", is_flag=True, help="Replace a README.md that a person edited on the Hub."),
    ]):
        f = opt(f)
    return f


@cli.command("card")
@click.argument("run_dir", type=click.Path())
@click.option("--repo-id", help="Hub id to show in the card's usage snippet [the local path placeholder].")
@click.option("--overwrite-card", is_flag=True, help="Replace a model/README.md that was edited by hand.")
def card_cmd(run_dir: str, repo_id: str | None, overwrite_card: bool) -> None:
    """(Re)render RUN_DIR/model/README.md from what the run measured (results.json): metadata and
    model-index through huggingface_hub's ModelCardData, the body from model_cards/. RUN_DIR is an
    `es-zoo reproduce` run or an `es-zoo finetune` folder. A card edited by hand is kept unless
    --overwrite-card."""
    from es_zoo.publish import check_repo_id, write_card

    if repo_id:
        check_repo_id(repo_id)
    click.echo(f"wrote {write_card(run_dir, repo_id, overwrite_card)}")


@cli.command("publish")
@click.argument("run_dir", type=click.Path())
@_publish_options
def publish_cmd(run_dir: str, repo_id: str, private: bool, revision: str | None, create_pr: bool,
                dry_run: str | None, overwrite_card: bool) -> None:
    """Publish a run's model to the Hub in one commit: safetensors weights, config.json,
    generation_config.json, tokenizer files, the model card, the loss curve and the resolved recipe,
    nothing else. Files the Hub already holds unchanged are not uploaded.

    \b
    es-zoo publish runs/t5s-tiny --repo-id my-org/t5s-tiny --dry-run /tmp/t5s-dry
    HF_TOKEN=... es-zoo publish runs/t5s-tiny --repo-id my-org/t5s-tiny --private
    es-zoo publish runs/beto-tiny/glues/pos --repo-id my-org/beto-tiny-pos
    """
    from es_zoo.publish import publish_run

    publish_run(run_dir, repo_id, private=private, revision=revision, create_pr=create_pr, dry_run=dry_run,
                overwrite_card=overwrite_card, echo=click.echo)


@cli.group("datasets", cls=_Group)
def datasets_group() -> None:
    """Build the GLUES and seq2seq task data into Hub datasets (parquet, one config per task) and publish them."""


@datasets_group.command("build")
@click.argument("suite", type=click.Choice(["glues", "seq2seq"]))
@click.option("--data-dir", help="Folder with the published files (layout in docs/glues.md, docs/seq2seq-tasks.md).")
@click.option("--output", required=True, type=click.Path(), help="Folder to write the dataset to.")
@click.option("--tasks", "task_names", help="Comma-separated tasks [every task of the suite].")
@click.option("--source", "source_items", multiple=True, metavar="TASK=SOURCE",
              help="Build this source of a task (e.g. --source pos=shipped for the shipped fixture).")
@click.option("--overwrite", is_flag=True, help="Rebuild an es-zoo dataset already in --output.")
@_accept_changed_option
def datasets_build_cmd(suite: str, data_dir: str | None, output: str, task_names: str | None,
                       source_items: tuple[str, ...], overwrite: bool, accept_changed: bool) -> None:
    """Read every task source of SUITE found under --data-dir (without it: from each source's Hub home)
    with the suite's strict readers and write parquet shards (typed features), es_zoo_dataset.json and a
    dataset card to --output."""
    from es_zoo.hub_datasets import build_dataset

    tasks = [t.strip() for t in task_names.split(",") if t.strip()] if task_names else None
    manifest = build_dataset(suite, output, data_dir=data_dir, tasks=tasks, source_names=_source_map(source_items),
                             overwrite=overwrite, echo=click.echo, accept_changed=accept_changed)
    click.echo(f"wrote {output}: {len(manifest['configs'])} config(s): {', '.join(manifest['configs'])}")
    for k, why in manifest["skipped"].items():
        click.echo(f"  skipped {k}: {why.split('. Looked for')[0]}")


@datasets_group.command("publish")
@click.argument("folder", type=click.Path())
@_publish_options
def datasets_publish_cmd(folder: str, repo_id: str, private: bool, revision: str | None, create_pr: bool,
                         dry_run: str | None, overwrite_card: bool) -> None:
    """Check a dataset built by `es-zoo datasets build` (features agree with the task labels, shards
    complete, licences allow redistribution) and publish it to the Hub in one commit."""
    from es_zoo.hub_datasets import publish_dataset

    publish_dataset(folder, repo_id, private=private, revision=revision, create_pr=create_pr, dry_run=dry_run,
                    overwrite_card=overwrite_card, echo=click.echo)


def _source_map(items: tuple[str, ...]) -> dict[str, str]:
    sources = {}
    for item in items:
        if "=" not in item:
            raise EsZooError(f"--source {item!r}: expected TASK=SOURCE")
        k, v = item.split("=", 1)
        sources[k] = v
    return sources


# ----------------------------------------------------------------------------------- demos


_DEMO_NAMES = list(DEMOS) + list(DEMO_ALIASES)  # the registry itself (importing it loads no Gradio and no torch)


@cli.command("demo")
@click.argument("task", type=click.Choice(_DEMO_NAMES))
@click.option("--model", help="Hub id, catalogue name, model folder or run folder [the catalogue's fine-tune for "
                              "TASK; env ES_ZOO_DEMO_MODEL].")
@click.option("--reverse-model", help="translation: the en->es model [the catalogue's].")
@click.option("--results", multiple=True, type=click.Path(exists=True),
              help="zoo: results.json files or folders of `es-zoo evaluate` / `reproduce` for the leaderboard.")
@click.option("--port", type=int, default=7860, show_default=True)
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on (localhost only by default).")
@click.option("--share", is_flag=True, help="Also open a public gradio.live link (off by default).")
@click.option("--max-queue", type=int, default=32, show_default=True, help="Requests allowed to wait; more are refused.")
@click.option("--concurrency", type=int, default=1, show_default=True, help="Requests processed at a time.")
def demo_cmd(task: str, model: str | None, reverse_model: str | None, results: tuple[str, ...], port: int, host: str,
             share: bool, max_queue: int, concurrency: int) -> None:
    """Launch the Gradio demo of TASK on http://HOST:PORT (needs the demo extra: pip install -e ".[demo]").

    \b
    es-zoo demo pos --model runs/beto-tiny/glues/pos
    es-zoo demo translation --model runs/t5s-tiny/seq2seq/translation
    es-zoo demo zoo --results runs/evaluate-glues
    """
    task = demo_name(task)  # task names work too: xnli -> nli, pawsx -> paraphrase, ...
    try:
        import gradio  # noqa: F401
    except ImportError:
        raise EsZooError('the demos need Gradio: pip install -e ".[demo]"') from None
    from es_zoo.demos import launch

    try:
        launch(task, model=model, port=port, host=host, share=share, max_queue=max_queue, concurrency=concurrency,
               reverse_model=reverse_model, results=results, strict=True,
               on_ready=lambda app: click.echo(f"es-zoo demo {task} on http://{host}:{port} (Ctrl+C to stop)"))
    except OSError as exc:  # Gradio's "Cannot find empty port", an address that is not this machine's, ...
        raise EsZooError(f"cannot listen on {host}:{port}: {str(exc).splitlines()[0]} Pass another --port "
                         "(or stop what uses this one).") from None


@cli.group("spaces", cls=_Group)
def spaces_group() -> None:
    """The Hugging Face Spaces of the demos (spaces/<task>/)."""


@spaces_group.command("publish")
@click.argument("task", type=click.Choice(_DEMO_NAMES))
@_publish_options
def spaces_publish_cmd(task: str, repo_id: str, private: bool, revision: str | None, create_pr: bool,
                       dry_run: str | None, overwrite_card: bool) -> None:
    """Publish spaces/TASK (app.py, README.md with the Spaces header, requirements.txt) as a Gradio
    Space through the publishing layer (one commit, unchanged files skipped, --dry-run)."""
    from es_zoo.spaces import publish_space

    task = demo_name(task)
    publish_space(task, repo_id, private=private, revision=revision, create_pr=create_pr, dry_run=dry_run,
                  overwrite_card=overwrite_card, echo=click.echo)


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="es-zoo")


if __name__ == "__main__":
    main()
