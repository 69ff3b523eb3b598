"""The family registry (es_zoo.families): every family is checked from the registry (a new one is tested
for free), a family added outside es-zoo is usable by recipes without touching them, and MarIA's RoBERTa,
the family added through the registry, reproduces end to end."""

from __future__ import annotations

import dataclasses
import json
import typing
from pathlib import Path

import numpy as np
import pytest
import torch

from es_zoo.families import all_families, family_names, get_family, register
from es_zoo.families.bert import Bert, BertModelConfig
from es_zoo.recipes import RecipeError, list_recipes, load_recipe

FAMILIES = all_families()


@pytest.mark.parametrize("family", FAMILIES, ids=[f.name for f in FAMILIES])
def test_every_family_is_complete_and_has_a_shipped_recipe(family) -> None:
    cfg = family.model_config
    assert dataclasses.is_dataclass(cfg)
    assert typing.get_args(typing.get_type_hints(cfg)["architecture"]) == (family.name,)
    assert cfg().architecture == family.name
    assert family.finetune_suite in ("glues", "seq2seq") and family.loss_label and family.objective_kind
    shipped = [r for r in list_recipes() if load_recipe(r, "tiny").model.architecture == family.name]
    assert shipped, f"no shipped recipe trains family {family.name}"
    tiny = load_recipe(shipped[0], "tiny")
    assert (tiny.tokenizer.kind if tiny.tokenizer else None) == family.tokenizer_kind
    assert tiny.objective.kind == family.objective_kind


@pytest.mark.parametrize("family", FAMILIES, ids=[f.name for f in FAMILIES])
def test_a_recipe_with_another_familys_tokenizer_or_objective_is_one_clear_line(family, tmp_path) -> None:
    recipe = next(r for r in list_recipes() if load_recipe(r, "tiny").model.architecture == family.name)
    other = next(f for f in FAMILIES if f.objective_kind != family.objective_kind)
    with pytest.raises(RecipeError, match=f"model.architecture '{family.name}' needs objective.kind "
                                          f"'{family.objective_kind}'"):
        load_recipe(recipe, "tiny", overrides=[f"objective={{kind: {other.objective_kind}}}"])


def test_a_family_registered_elsewhere_is_read_by_recipes_without_changing_them(tmp_path) -> None:
    """What a new family needs: one module that registers it (here, a BERT with another name)."""

    @dataclasses.dataclass
    class TinyBertConfig(BertModelConfig):
        architecture: typing.Literal["tinybert"] = "tinybert"

    class TinyBert(Bert):
        name = "tinybert"
        model_config = TinyBertConfig

    register(TinyBert())
    try:
        assert "tinybert" in family_names()
        cfg = load_recipe("beto", "tiny", overrides=["model.architecture=tinybert"])
        assert type(cfg.model) is TinyBertConfig and cfg.model.hidden_size == 128
        with pytest.raises(RecipeError, match=r"model.architecture: expected one of .*'tinybert'"):
            load_recipe("beto", "tiny", overrides=["model.architecture=tinybrt"])
    finally:
        from es_zoo import families

        families._REGISTRY.pop("tinybert")


def test_fsdp_wraps_each_familys_own_layers() -> None:
    from transformers import RobertaConfig, RobertaForMaskedLM

    from es_zoo.sharding import fsdp_layer_classes, fsdp_layer_names

    assert set(fsdp_layer_names()) == {c for f in FAMILIES for c in f.fsdp_layers}
    model = RobertaForMaskedLM(RobertaConfig(hidden_size=8, num_hidden_layers=1, num_attention_heads=2,
                                             intermediate_size=8, vocab_size=20))
    assert fsdp_layer_classes(model) == ["RobertaLayer"]


def test_sparse_mlm_finds_each_heads_model(tmp_path) -> None:
    """The masked-positions loss equals the full model's cross-entropy at those positions, for BERT's
    head (``cls``) and RoBERTa's (``lm_head``)."""
    from transformers import BertConfig, BertForMaskedLM, RobertaConfig, RobertaForMaskedLM

    from es_zoo.modeling import SparseMLM

    torch.manual_seed(0)
    small = dict(hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32, vocab_size=50)
    for model, head in ((BertForMaskedLM(BertConfig(**small)), "cls"),
                        (RobertaForMaskedLM(RobertaConfig(**small, pad_token_id=1)), "lm_head")):
        model.eval()
        ids = torch.randint(3, 50, (2, 7))
        flat = torch.tensor([1, 4, 9, 12])
        labels = torch.tensor([5, 6, 7, 8])
        with torch.no_grad():
            loss_sum, _ = SparseMLM(model, head=head)(ids, flat, labels)
            full = model(input_ids=ids).logits.reshape(-1, 50)[flat]
        assert float(loss_sum) == pytest.approx(float(torch.nn.functional.cross_entropy(full, labels, reduction="sum")),
                                                rel=1e-5)


# ---------------------------------------------------------------------------------- RoBERTa (MarIA)
def test_roberta_recipe_is_marias_setup() -> None:
    paper = load_recipe("roberta", "paper")
    m = paper.model
    assert (m.num_hidden_layers, m.hidden_size, m.num_attention_heads, m.intermediate_size) == (12, 768, 12, 3072)
    assert m.max_position_embeddings == 514 and m.type_vocab_size == 1
    assert paper.tokenizer.kind == "byte_level_bpe" and paper.tokenizer.vocab_size == 50262
    assert paper.objective.whole_word is False  # dynamic token-level masking, no NSP
    assert [p.seq_len for p in paper.training.phases] == [512]  # full-length sequences only
    assert paper.reproduces == "roberta-base-bne" and paper.unknown
    with pytest.raises(RecipeError, match="needs model.max_position_embeddings >= 514"):
        load_recipe("roberta", "paper", overrides=["model.max_position_embeddings=512"])


def test_roberta_reproduces_end_to_end_with_its_glues_finetune(micro_roberta: Path) -> None:
    from transformers import AutoModelForMaskedLM, AutoTokenizer, pipeline

    run = micro_roberta
    results = json.loads((run / "results.json").read_text())
    assert results["recipe"] == "roberta" and results["reproduces"] == "roberta-base-bne"
    h = results["heldout"]
    assert h["masked_tokens"] > 0 and 0 <= h["masked_accuracy"] <= 1 and "unigram_accuracy" in h
    model = AutoModelForMaskedLM.from_pretrained(run / "model")
    tok = AutoTokenizer.from_pretrained(run / "model")
    assert type(model).__name__ == "RobertaForMaskedLM" and model.config.type_vocab_size == 1
    assert tok.mask_token == "<mask>" and tok.convert_ids_to_tokens([0, 1, 2, 3]) == ["<s>", "<pad>", "</s>", "<unk>"]
    assert tok("e\u0301l")["input_ids"] == tok("él")["input_ids"]  # NFC inside the saved tokenizer
    fill = pipeline("fill-mask", model=model, tokenizer=tok)
    assert len(fill(f"Madrid es la {tok.mask_token} de España.")) == 5
    # the fill-mask demo takes it (BETO's [MASK] written by the user becomes <mask>)
    from es_zoo.demos import predict

    loaded = predict.load("fill-mask", str(run / "model"), "fill-mask")
    assert loaded.problem is None and len(predict.fill_mask(loaded, "Madrid es la [MASK] de España.")) == 5
    # the GLUES fine-tune that ends the recipe, scored on the shipped fixture, beside its baseline
    pos = results["glues"]["pos"]
    assert pos["source"] == "shipped" and pos["examples"] == 200 and pos["main"] > 100 / 17
    assert (run / "glues" / "pos" / "model" / "config.json").is_file()
    card = (run / "model" / "README.md").read_text()
    assert "RoBERTa 2 layers x 32 hidden" in card and "token-level masking" in card and "fill-mask" in card
    assert "gutierrezfandino2022maria" in card and "liu2019roberta" in card


def test_the_pos_demo_tags_a_roberta_tagger_as_the_evaluation_reads_it(micro_roberta: Path) -> None:
    from es_zoo.demos import predict
    from es_zoo.tasks.definitions import load_task
    from es_zoo.tasks.features import encode_words

    loaded = predict.load("token", str(micro_roberta / "glues" / "pos" / "model"), "POS",
                          labels=load_task("pos").labels_for("shipped"))
    assert loaded.problem is None
    words = ["El", "perro", "de", "mi", "vecino", "ladra", "mucho", "."]
    shown = [e["entity"] for e in predict.tag(loaded, " ".join(words[:-1]) + ".", entities=False)["entities"]]
    enc = encode_words(loaded.tokenizer, [words], 128, 32)
    with torch.no_grad():
        logits = loaded.model(input_ids=torch.tensor([enc.windows[0]["input_ids"]])).logits[0]
    id2label = loaded.model.config.id2label
    assert shown == [id2label[int(logits[p].argmax())] for _, p in enc.word_slots[0]]


def test_roberta_trains_on_packed_full_sequences_with_token_level_masking(micro_roberta: Path) -> None:
    """RoBERTa's FULL-SENTENCES: <s> ... </s> blocks cut from the document stream (documents separated by
    </s>), and single tokens masked, continuation pieces included (whole_word: false)."""
    from transformers import AutoTokenizer

    from es_zoo.prepare import open_prepared
    from es_zoo.recipes import resolved_from_dict
    from es_zoo.tokenization import word_start_table
    from es_zoo.training import BatchMaker

    run = micro_roberta
    cfg = resolved_from_dict(__import__("yaml").safe_load((run / "recipe.yaml").read_text()))
    tok = AutoTokenizer.from_pretrained(run / "tokenizer")
    job = get_family("roberta").job(cfg, run, tok, {**_streams(run)}, _OneProcess())
    assert isinstance(job.batches, BatchMaker)
    seqs = job.batches.packed[0][np.arange(8)]
    assert (seqs[:, 0] == tok.bos_token_id).all() and (seqs[:, -1] == tok.eos_token_id).all()
    stream = open_prepared(run / "data").train
    assert (np.asarray(stream) == tok.eos_token_id).sum() > 1  # documents separated by </s> inside blocks
    starts = word_start_table(tok)
    partial = 0  # a word's continuation piece masked while the piece before it is not
    for step in range(job.batches.cfg.training.phases[0].max_steps):
        for micro in job.batches(step).micro:
            masked = set(micro["flat_positions"].tolist())
            for pos, label in zip(micro["flat_positions"].tolist(), micro["labels"].tolist()):
                partial += (not starts[label]) and (pos - 1) not in masked
    assert partial > 0  # whole-word masking never leaves a word half masked


class _OneProcess:
    process_index, num_processes, is_main_process = 0, 1, True

    def print(self, *args) -> None:
        pass


def _streams(run: Path) -> dict:
    from es_zoo.prepare import open_prepared

    p = open_prepared(run / "data")
    return {"train": p.train, "heldout": p.heldout, "unigram_counts": p.unigram_counts, "manifest": p.manifest}
