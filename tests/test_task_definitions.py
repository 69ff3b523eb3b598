"""Task files (recipes/tasks/*.yaml) and fine-tuning hyperparameters are checked by the converter recipes
use (es_zoo.schema): one line naming the file and the key path, "did you mean" for a typo, never a
traceback; `--set` and recipe runs' `hparams` go through the same checks."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from es_zoo.errors import RecipeError
from es_zoo.recipes import load_recipe_file, recipe_path
from es_zoo.tasks.definitions import Hyperparameters, TaskError, load_task, tasks_dir


def _task_file(tmp_path: Path, task: str, old: str, new: str) -> Path:
    text = (tasks_dir() / f"{task}.yaml").read_text()
    assert old in text, old
    path = tmp_path / f"{task}-bad.yaml"
    path.write_text(text.replace(old, new, 1))
    return path


@pytest.mark.parametrize("task, old, new, expected", [
    # unknown keys: the key path and the closest name
    ("pawsx", "head: sequence", "haed: sequence", r"haed: unknown key \(did you mean 'head'\?\)"),
    ("pawsx", "    license: free for any use (Google; see", "    licnse: free for any use (Google; see",
     r"sources.pawsx.licnse: unknown key \(did you mean 'license'\?\)"),
    ("pawsx", "      config: es", "      confg: es", r"sources.pawsx.hub.confg: unknown key \(did you mean 'config'\?\)"),
    ("xnli_t2t", "input: {template:", "input: {templte:", r"input.templte: unknown key \(did you mean 'template'\?\)"),
    ("pawsx", "hparams: {batch_size: 32", "hparams: {bach_size: 32",
     r"hparams.bach_size: unknown key \(did you mean 'batch_size'\?\)"),
    # wrong types
    ("pawsx", "      train: [embedded:pawsx-train.tsv]\n      test: [embedded:pawsx-test.tsv]",
     "      train: embedded:pawsx-train.tsv\n      test: [embedded:pawsx-test.tsv]",
     r"sources.shipped.files.train: expected a list of a string or a list of a string, got 'embedded:pawsx-train.tsv'"),
    ("pawsx", "      train: [embedded:pawsx-train.tsv]", "      train: [7]",
     r"sources.shipped.files.train\[0\]: expected a string or a list of a string, got 7"),
    ("pawsx", "    files:\n      train: [embedded:pawsx-train.tsv]\n      test: [embedded:pawsx-test.tsv]",
     "    files: embedded:pawsx-train.tsv", r"sources.shipped.files: expected a mapping of a list of"),
    ("pawsx", "hparams: {batch_size: 32", "hparams: {batch_size: many", r"hparams.batch_size: expected an integer, got 'many'"),
    ("pawsx", "hparams: {batch_size: 32", "hparams: {batch_size: 32.5", r"hparams.batch_size: expected an integer, got 32.5"),
    ("pawsx", "rows: 49401", "rows: lots", r"sources.pawsx.hub.splits.train.rows: expected an integer, got 'lots'"),
    # choices
    ("pawsx", "kind: pair", "kind: pairs", r"kind: expected one of 'pair', 'document'.*got 'pairs'"),
    ("pawsx", "    format: pawsx\n    license: free for any use (Google; see",
     "    format: paws\n    license: free for any use (Google; see", r"sources.pawsx.format: expected one of .*got 'paws'"),
    ("pawsx", "metric: {name: accuracy", "metric: {name: acc", r"metric.name: expected one of 'accuracy'.*got 'acc'"),
    ("xnli_t2t", "prefix: {bart: \"\"", "prefix: {gpt: \"\"", r"input.prefix.gpt: not a model family"),
    # missing keys and cross-field rules
    ("pawsx", "description: Spanish paraphrase identification (PAWS-X es)\n", "",
     r"description: missing required key; expected a string"),
    ("pawsx", "labels: [\"0\", \"1\"]\n", "", r"labels: a non-empty label list is required for this kind of task"),
    ("pawsx", "    license: free for any use (Google; see the PAWS-X LICENSE)\n", "",
     r"sources.pawsx.license: a license is required"),
    ("pawsx", "      validation: [[x-final", "      dev: [[x-final", r"sources.pawsx.files.dev: 'dev' is not train, validation, test"),
    ("pawsx", "      train: [embedded:pawsx-train.tsv]", "      train: []", r"sources.shipped.files.train: expected a list of files"),
    ("pawsx", "hparams: {", "input: {template: x, target: y}\nhparams: {", r"input: only seq2seq tasks have an input template"),
    ("xnli_t2t", "contradiction: contradiction}", "}", r"input.verbalizer: a text-to-text classifier needs one output text"),
    ("pawsx", "hparams: {batch_size: 32", "grid: {batch: [8]}\nhparams: {batch_size: 32",
     r"grid.batch: not a hyperparameter \(did you mean 'batch_size'\?\)"),
    ("pawsx", "hparams: {batch_size: 32", "grid: {epochs: [2, zero]}\nhparams: {batch_size: 32",
     r"grid.epochs\[1\]: expected an integer, got 'zero'"),
    ("pawsx", "hparams: {batch_size: 32", "hparams: {batch_size: 0", r"hparams: batch_size >= 1"),
    ("pawsx", "id: google-research-datasets/paws-x", "id: not an id", r"sources.pawsx.hub.id: 'not an id' is not a Hub dataset id"),
])
def test_a_bad_task_file_is_one_line_with_its_path_and_key(tmp_path, task, old, new, expected) -> None:
    path = _task_file(tmp_path, task, old, new)
    with pytest.raises(TaskError) as info:
        load_task(path)
    message = str(info.value)
    assert message.startswith(f"{path}: ") and "\n" not in message, message
    assert re.search(expected, message), message


def test_a_task_file_that_is_no_mapping_is_one_line(tmp_path) -> None:
    path = tmp_path / "t.yaml"
    path.write_text("- a\n- b\n")
    with pytest.raises(TaskError, match=r"t.yaml: expected a mapping at the top level"):
        load_task(path)


def test_hub_unavailable_takes_only_a_note(tmp_path) -> None:
    path = _task_file(tmp_path, "pawsx", "    hub:\n      id: google-research-datasets/paws-x",
                      "    hub:\n      unavailable: why\n      id: google-research-datasets/paws-x")
    with pytest.raises(TaskError, match=r"sources.pawsx.hub.unavailable: a reason \(text\), and no other keys but note"):
        load_task(path)


def test_hyperparameters_go_through_the_converter() -> None:
    hp = Hyperparameters()
    # YAML 1.1 reads 2e-3 as a string (--set learning_rate=2e-3): read as a number for number fields
    assert hp.replace(learning_rate="2e-3", epochs="4", truncate_source=1).learning_rate == 2e-3
    assert hp.replace(epochs="4").epochs == 4 and hp.replace(truncate_source="yes").truncate_source is True
    assert hp.replace(head_learning_rate="1e-3").head_learning_rate == 1e-3
    assert hp.replace(prefix="1.5").prefix == "1.5"  # a text field keeps its text
    assert hp.replace(learning_rate=1).learning_rate == 1.0 and isinstance(hp.replace(learning_rate=1).learning_rate, float)
    with pytest.raises(TaskError, match=r"^hparams.lerning_rate: unknown key \(did you mean 'learning_rate'\?\)"):
        hp.replace(lerning_rate=1e-3)
    with pytest.raises(TaskError, match=r"^hparams.epochs: expected an integer, got '1e3'$"):
        hp.replace(epochs="1e3")
    with pytest.raises(TaskError, match=r"^hparams.epochs: expected an integer, got 2.5$"):
        hp.replace(epochs=2.5)
    with pytest.raises(TaskError, match=r"^hparams.truncate_source: expected true or false, got 'maybe'$"):
        hp.replace(truncate_source="maybe")
    with pytest.raises(TaskError, match=r"^hparams: max_length must be >= 16"):
        hp.replace(max_length=8)


def test_set_with_an_unknown_hyperparameter_fails_before_any_work(tmp_path) -> None:
    from es_zoo.cli import cli

    out = tmp_path / "ft"
    r = CliRunner().invoke(cli, ["finetune", "no-such-model", "--task", "pos", "--source", "shipped",
                                 "--output-dir", str(out), "--set", "lerning_rate=1e-3"])
    assert r.exit_code == 1 and "hparams.lerning_rate: unknown key (did you mean 'learning_rate'?)" in r.output, r.output
    assert "Traceback" not in r.output and not out.exists()


def test_a_recipe_run_with_a_typo_in_its_hparams_fails_at_load(tmp_path) -> None:
    text = recipe_path("beto").read_text()
    old = "- {task: pos, hparams: {epochs: 4, batch_size: 16, learning_rate: 2.0e-3"
    assert old in text
    path = tmp_path / "beto.yaml"
    path.write_text(text.replace(old, old.replace("learning_rate", "lerning_rate"), 1))
    with pytest.raises(RecipeError) as info:
        load_recipe_file(path)
    message = str(info.value)
    assert message.startswith(f"{path}: presets.") and "\n" not in message, message
    assert ".glues.runs[0].hparams.lerning_rate: unknown key (did you mean 'learning_rate'?)" in message, message
    # a number YAML 1.1 reads as a string is a number here too, as in --set
    path.write_text(text.replace(old, old.replace("2.0e-3", "2e-3"), 1))
    load_recipe_file(path)


def test_from_mapping_still_imports_from_recipes() -> None:
    from es_zoo import recipes, schema

    assert recipes.from_mapping is schema.from_mapping
