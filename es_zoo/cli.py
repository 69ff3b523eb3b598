"""The ``es-zoo`` command line: a thin table of verbs that call library functions.

Nothing heavy is imported at module level, so ``es-zoo --help`` answers instantly.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from es_zoo import __version__
from es_zoo.errors import EsZooError


class _Group(click.Group):
    """Turns every :class:`EsZooError` into one clear line and exit status 1 (never a traceback)."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except EsZooError as exc:
            click.echo(f"error: {exc}", err=True)
            ctx.exit(1)
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            ctx.exit(130)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="es-zoo")
def cli() -> None:
    """es-zoo: reproduce, evaluate, publish and demo the Spanish language models BETO, BARTO, T5S
    and BERT2BERT.

    \b
    es-zoo list                      the model catalogue
    es-zoo show beto-base-cased      one entry, with its published scores
    es-zoo recipes list              the recipes that reproduce them
    es-zoo reproduce beto            tokenizer -> pretraining -> evaluation -> model folder
    """


# ----------------------------------------------------------------------------------- catalogue


@cli.command("list")
@click.argument("pattern", required=False)
@click.option("--family", help="Only this family (bert, bart, t5, led, bert2bert, mbert, xlmr, ...).")
@click.option("--kind", help="Only this kind (pretrained, finetuned, warm-started, baseline).")
@click.option("--json", "as_json", is_flag=True, help="Print the records as JSON.")
def list_cmd(pattern: str | None, family: str | None, kind: str | None, as_json: bool) -> None:
    """List catalogued models, optionally filtered by a glob PATTERN such as 'beto*'."""
    from es_zoo.catalog import get_model, list_models

    names = list_models(pattern, family=family, kind=kind)
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
    if r.scores:
        click.echo("  published scores:")
        rows = [("task", "dataset", "split", "metric", "value", "source")]
        rows += [(s.task, s.dataset, s.split or "", s.metric, f"{s.value:g}", s.source) for s in r.scores]
        _table(rows, indent=4)
    if r.unknown:
        click.echo(f"  unknown in the sources: {', '.join(r.unknown)}")
    if r.notes:
        click.echo(f"  note: {r.notes}")


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
@click.option("--max-steps", type=int, default=None, help="Stop after this many optimizer steps in total.")
@click.option("--resume", is_flag=True, help="Continue the run in --output-dir from its newest complete checkpoint.")
@click.option("--overwrite", is_flag=True, help="Replace the es-zoo run already in --output-dir.")
def reproduce_cmd(recipe: str, overrides: tuple[str, ...], preset: str, corpus: str | None,
                  output_dir: str | None, max_steps: int | None, resume: bool, overwrite: bool) -> None:
    """Reproduce a model end to end: tokenizer, pretraining, held-out evaluation, model folder.

    RECIPE is a shipped recipe name (see `es-zoo recipes list`) or a YAML path. OVERRIDES are
    KEY=VALUE settings checked against the schema, e.g. training.learning_rate=2e-4.

    \b
    es-zoo reproduce beto                                  # tiny preset, embedded corpus, CPU
    es-zoo reproduce barto                                 # BART denoising (text infilling)
    es-zoo reproduce t5s                                   # T5 span corruption
    es-zoo reproduce bert2bert                             # BETO2BETO warm start (+ adaptation)
    es-zoo reproduce bert2bert model.share_weights=true    # BETOShare
    es-zoo reproduce beto --preset paper --corpus DATA --output-dir runs/beto
    accelerate launch --num_processes 2 --cpu -m es_zoo reproduce t5s --output-dir runs/t5s-2
    """
    from es_zoo.reproduce import reproduce

    result = reproduce(recipe, preset=preset, output_dir=output_dir, corpus=corpus, overrides=overrides,
                       max_steps=max_steps, resume=resume, overwrite=overwrite,
                       command="es-zoo reproduce " + " ".join(sys.argv[2:]))
    if result.get("stopped_early"):
        sys.exit(0)


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="es-zoo")


if __name__ == "__main__":
    main()
