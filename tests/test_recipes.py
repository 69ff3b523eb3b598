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


def test_max_steps_cuts_phases_in_order_keeps_the_warmup_fraction_and_says_so() -> None:
    cfg = load_recipe("beto", preset="paper", max_steps=900_010)
    assert [p.max_steps for p in cfg.training.phases] == [900_000, 10]
    cfg = load_recipe("beto", preset="paper", max_steps=5)
    assert [p.max_steps for p in cfg.training.phases] == [5]
    assert cfg.training.warmup_steps == 1  # 10,000 of 2M steps: the same fraction, at least one, below the total
    # the tiny preset: 1,200 + 30 steps, warmup 100; --max-steps 60 used to be all warmup and never decay
    cfg = load_recipe("beto", max_steps=60)
    assert cfg.training.warmup_steps == 5 and [p.max_steps for p in cfg.training.phases] == [60]
    assert cfg.schedule_note == ("--max-steps 60: 60 optimizer steps instead of 1,230; phase(s) 2 (sequence length "
                                 "512) dropped; warmup 100 -> 5 steps (the same fraction)")
    assert "schedule_note" in cfg.to_dict() and load_recipe("beto").schedule_note is None
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


def test_barto_and_t5s_paper_presets_are_the_published_setups() -> None:
    b = load_recipe("barto", preset="paper")
    assert (b.model.encoder_layers, b.model.decoder_layers, b.model.d_model, b.model.encoder_attention_heads,
            b.model.max_position_embeddings) == (6, 6, 768, 12, 1024)
    assert b.tokenizer.kind == "byte_level_bpe" and b.tokenizer.vocab_size == 50264
    assert [(p.max_steps, p.seq_len, p.global_batch_size) for p in b.training.phases] == [(100_000, 1024, 2048)]
    assert b.training.warmup_steps == 10_000 and b.training.mixed_precision == "fp16"
    assert (b.objective.mask_ratio, b.objective.poisson_lambda, b.objective.permute_sentence_ratio) == (0.3, 3.5, 1.0)
    assert b.objective.copy_warmup_steps == 0  # BART's objective, unchanged (the warm-up is a tiny-model aid)
    t = load_recipe("t5s", preset="paper")
    m = t.model
    assert (m.num_layers, m.num_decoder_layers, m.d_model, m.d_ff, m.feed_forward_proj) == (12, 12, 768, 2048, "gated-gelu")
    assert m.tie_word_embeddings is False and m.dropout_rate == 0.0
    assert t.tokenizer.kind == "sentencepiece_unigram" and (t.tokenizer.vocab_size, t.tokenizer.extra_ids) == (32128, 100)
    assert [(p.max_steps, p.seq_len, p.global_batch_size) for p in t.training.phases] == [(130_000, 1024, 320)]
    assert (t.training.optimizer, t.training.learning_rate, t.training.lr_schedule) == ("adamw_scale", 2e-2, "cosine")
    assert t.training.mixed_precision == "bf16"
    assert (t.objective.noise_density, t.objective.mean_noise_span_length) == (0.15, 3.0)
    for cfg in (b, t, load_recipe("bert2bert", preset="paper")):
        assert cfg.unknown, "what the sources leave unknown must be marked"


def test_t5_in_fp16_is_refused_with_the_reason() -> None:
    with pytest.raises(RecipeError, match="T5 must not train in fp16.*bf16"):
        load_recipe("t5s", preset="tiny", overrides=["training.mixed_precision=fp16"])
    assert load_recipe("t5s", preset="tiny", overrides=["training.mixed_precision=bf16"]).training.mixed_precision == "bf16"


def test_families_must_match_their_tokenizer_and_objective(tmp_path: Path) -> None:
    with pytest.raises(RecipeError, match="model.architecture: expected one of 'bert', 'roberta', 'bart', 't5', 'bert2bert', got 'gpt2'"):
        load_recipe("barto", overrides=["model.architecture=gpt2"])
    with pytest.raises(RecipeError, match=r"objective\.mask_ratio: unknown key"):
        load_recipe("barto", overrides=["objective.kind=span_corruption"])
    with pytest.raises(RecipeError, match="needs tokenizer.kind 'sentencepiece_unigram'"):
        load_recipe("t5s", overrides=["tokenizer.kind=byte_level_bpe", "tokenizer.extra_ids=0"])
    with pytest.raises(RecipeError, match="extra_ids applies to kind 'sentencepiece_unigram' only"):
        load_recipe("barto", overrides=["tokenizer.extra_ids=100"])
    with pytest.raises(RecipeError, match="needs extra_ids >= 1"):
        load_recipe("t5s", overrides=["tokenizer.extra_ids=0"])
    with pytest.raises(RecipeError, match="no tokenizer section"):
        load_recipe("bert2bert", overrides=["tokenizer={kind: wordpiece, vocab_size: 1000}"])
    with pytest.raises(RecipeError, match="max_predictions applies to masked-LM"):
        load_recipe("barto", overrides=["training.phases.0.max_predictions=20"])
    with pytest.raises(RecipeError, match="at least one phase"):
        load_recipe("barto", overrides=["training.phases=[]", "training.warmup_steps=0"])
    assert load_recipe("bert2bert", preset="paper").training.total_steps == 0  # warm start only
    with pytest.raises(RecipeError, match=r"copy_warmup_steps \(200\) must be shorter than the first training "
                       r"phase \(50 steps\); lower it, e.g. objective.copy_warmup_steps=0"):
        load_recipe("barto", max_steps=50)
    assert load_recipe("barto", max_steps=50, overrides=["objective.copy_warmup_steps=0"]).training.total_steps == 50
    with pytest.raises(RecipeError, match=r"copy_warmup_length \(256\) must not exceed the first phase's seq_len \(128\)"):
        load_recipe("barto", overrides=["objective.copy_warmup_length=256"])
    with pytest.raises(RecipeError, match="copy_warmup_steps must be >= 0"):
        load_recipe("barto", overrides=["objective.copy_warmup_steps=-1"])
    p = _write(tmp_path, lambda d: d["presets"]["tiny"]["model"].pop("architecture"))
    with pytest.raises(RecipeError, match=r"presets\.tiny\.model\.architecture: missing required key"):
        load_recipe_file(p)


def test_each_tiny_preset_states_one_measured_time() -> None:
    """The recipe header, the preset's expected_wall_clock and the README give the same measured time."""
    import re

    from es_zoo.recipes import recipe_path

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    for name in list_recipes():
        text = recipe_path(name).read_text()
        wall = load_recipe(name, "tiny").expected_wall_clock
        measured = re.match(r"(\d+ min \d+ s) on a 2-core CPU VM", wall)
        assert measured and "measured" in wall, (name, wall)
        header = [ln for ln in text.splitlines() if ln.startswith(f"#   es-zoo reproduce {name} ") and "tiny" in ln]
        assert all("minutes" not in ln for ln in header), header
        if name != "bert2bert":
            assert measured.group(1) in header[0], (name, header)
    assert "4 min 33 s on a 2-core CPU VM" in readme and "about 5 minutes" not in readme
