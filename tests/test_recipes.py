"""Recipes load strictly: unknown keys, wrong types and broken cross-field rules fail at load time."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from es_zoo.errors import RecipeError
from es_zoo.recipes import copy_recipe, list_recipes, load_recipe, load_recipe_file, recipe_path

RECIPES = list_recipes()


@pytest.mark.parametrize("name", RECIPES)
def test_every_shipped_recipe_and_preset_validates(name: str) -> None:
    recipe = load_recipe_file(name)
    assert {"tiny", "paper"} <= set(recipe.presets)
    text = recipe_path(name).read_text(encoding="utf-8")
    # Each file opens with what it reproduces and the exact command.
    assert text.startswith("#") and "es-zoo reproduce" in text.split("\nname:")[0]
    for preset in recipe.presets:
        cfg = load_recipe(name, preset=preset)
        assert cfg.hardware and cfg.expected_wall_clock


def test_beto_paper_preset_is_the_published_setup() -> None:
    cfg = load_recipe("beto", preset="paper")
    m, t = cfg.model, cfg.training
    assert (m.num_hidden_layers, m.hidden_size, m.num_attention_heads) == (12, 768, 12)
    assert cfg.tokenizer.vocab_size == 31002 and cfg.objective.whole_word
    assert [(p.max_steps, p.seq_len, p.global_batch_size) for p in t.phases] == [
        (900_000, 128, 2048), (1_100_000, 512, 256)]
    assert t.total_steps == 2_000_000
    assert t.learning_rate == 1e-4 and t.warmup_steps == 10_000
    assert cfg.unknown, "what the sources leave unknown must be marked"


def _write(tmp_path: Path, mutate) -> Path:
    data = yaml.safe_load(recipe_path("beto").read_text(encoding="utf-8"))
    mutate(data)
    p = tmp_path / "custom.yaml"
    p.write_text(yaml.safe_dump(data), encoding="utf-8")
    return p


def test_unknown_key_names_file_key_and_suggestion(tmp_path: Path) -> None:
    p = _write(tmp_path, lambda d: d["presets"]["tiny"]["training"].update(learning_rat=1e-3))
    with pytest.raises(RecipeError) as err:
        load_recipe(p)
    msg = str(err.value)
    assert str(p) in msg and "presets.tiny.training.learning_rat" in msg
    assert "unknown key" in msg and "learning_rate" in msg


def test_wrong_type_says_what_was_expected(tmp_path: Path) -> None:
    p = _write(tmp_path, lambda d: d["presets"]["paper"]["model"].update(num_hidden_layers="twelve"))
    with pytest.raises(RecipeError, match=r"presets\.paper\.model\.num_hidden_layers: expected an integer, got 'twelve'"):
        load_recipe_file(p)


def test_cross_field_rules_fail_at_load(tmp_path: Path) -> None:
    p = _write(tmp_path, lambda d: d["presets"]["tiny"]["model"].update(num_attention_heads=3))
    with pytest.raises(RecipeError, match="divisible by num_attention_heads"):
        load_recipe_file(p)
    p = _write(tmp_path, lambda d: d["presets"]["tiny"]["training"]["phases"][0].update(micro_batch_size=5))
    with pytest.raises(RecipeError, match="multiple of micro_batch_size"):
        load_recipe_file(p)


def test_yaml_syntax_error_names_the_line(tmp_path: Path) -> None:
    p = tmp_path / "broken.yaml"
    p.write_text("name: x\npresets:\n  tiny: [unclosed\n", encoding="utf-8")
    with pytest.raises(RecipeError, match=r"broken\.yaml:\d+: not valid YAML"):
        load_recipe_file(p)


def test_overrides_are_validated_like_the_file() -> None:
    cfg = load_recipe("beto", overrides=["training.learning_rate=2e-4", "model.num_hidden_layers=2",
                                         "training.phases.0.max_steps=70"])
    assert cfg.training.learning_rate == 2e-4 and cfg.model.num_hidden_layers == 2
    assert cfg.training.phases[0].max_steps == 70
    with pytest.raises(RecipeError, match="training.learning_rate: expected a number, got 'fast'"):
        load_recipe("beto", overrides=["training.learning_rate=fast"])
    with pytest.raises(RecipeError, match="unknown key"):
        load_recipe("beto", overrides=["training.nope=1"])
    with pytest.raises(RecipeError, match="expected KEY=VALUE"):
        load_recipe("beto", overrides=["training.seed"])
    with pytest.raises(RecipeError, match="not a valid list index"):
        load_recipe("beto", overrides=["training.phases.9.max_steps=1"])


def test_max_steps_cuts_phases_in_order_and_caps_warmup() -> None:
    cfg = load_recipe("beto", preset="paper", max_steps=900_010)
    assert [p.max_steps for p in cfg.training.phases] == [900_000, 10]
    cfg = load_recipe("beto", preset="paper", max_steps=5)
    assert [p.max_steps for p in cfg.training.phases] == [5]
    assert cfg.training.warmup_steps == 5
    with pytest.raises(RecipeError, match="--max-steps must be >= 1"):
        load_recipe("beto", max_steps=0)


def test_unknown_recipe_and_preset_suggest() -> None:
    with pytest.raises(RecipeError, match="Did you mean: beto"):
        load_recipe("bet")
    with pytest.raises(RecipeError, match="available presets: tiny, paper"):
        load_recipe("beto", preset="huge")


def test_copy_refuses_to_overwrite(tmp_path: Path) -> None:
    dest = copy_recipe("beto", tmp_path)
    assert dest.read_text() == recipe_path("beto").read_text()
    dest.write_text("# my edits\n")
    with pytest.raises(RecipeError, match="already exists"):
        copy_recipe("beto", tmp_path)
    assert dest.read_text() == "# my edits\n"
    copy_recipe("beto", tmp_path, overwrite=True)
    assert dest.read_text() == recipe_path("beto").read_text()


def test_resolved_recipe_round_trips() -> None:
    from es_zoo.recipes import resolved_from_dict

    cfg = load_recipe("beto", overrides=["training.seed=7"])
    again = resolved_from_dict(yaml.safe_load(cfg.to_yaml()))
    assert again.to_dict() == cfg.to_dict()
