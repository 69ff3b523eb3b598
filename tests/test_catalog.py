"""The catalogue is data; every record is checked (parametrized, so a new entry is tested for free)."""

from __future__ import annotations

import re

import pytest

from es_zoo.catalog import FAMILIES, KINDS, UnknownModelError, all_models, get_model, list_models
from es_zoo.recipes import list_recipes

RECORDS = all_models()
NAME = re.compile(r"^[a-z0-9]+(?:[.-][a-z0-9]+)*$")


@pytest.mark.parametrize("rec", RECORDS, ids=[r.name for r in RECORDS])
def test_record_is_complete_and_consistent(rec) -> None:
    assert NAME.match(rec.name), "names are lowercase words joined by '-'"
    assert rec.family in FAMILIES and rec.kind in KINDS
    if rec.kind == "warm-started":
        assert rec.hub_id is None and rec.encoder, "warm starts name the encoder they start from"
    else:
        assert rec.hub_id and re.match(r"^[\w.-]+/[\w.-]+$", rec.hub_id)
    if rec.kind == "finetuned":
        assert rec.task and rec.base_model
    if rec.recipe is not None:
        assert rec.recipe in list_recipes() or rec.recipe in ("barto", "t5s", "bert2bert")
    # A fact is either recorded or listed as unknown: never silently missing.
    assert rec.tokenizer.get("kind") or any(u.startswith("tokenizer.kind") for u in rec.unknown)
    assert rec.paper or "paper" in rec.unknown
    assert rec.license or "license" in rec.unknown or rec.kind == "baseline"
    for s in rec.scores:
        assert s.source.strip(), "every published number says where it comes from"
        assert isinstance(s.value, (int, float)) and 0 <= s.value <= 100
    for field in rec.unknown:
        assert isinstance(field, str) and field


def test_names_and_hub_ids_are_unique() -> None:
    hub = [r.hub_id for r in RECORDS if r.hub_id]
    assert len(hub) == len(set(hub))


def test_the_papers_models_are_there() -> None:
    for name in ("beto-base-cased", "beto-base-uncased", "barto-base", "t5s-base"):
        get_model(name)
    assert get_model("beto-base-cased").hub_id == "dccuchile/bert-base-spanish-wwm-cased"
    assert get_model("beto-base-uncased").hub_id == "dccuchile/bert-base-spanish-wwm-uncased"
    assert get_model("barto-base").hub_id == "vgaraujov/bart-base-spanish"
    assert get_model("t5s-base").hub_id == "vgaraujov/t5-base-spanish"
    warm = {r.name for r in RECORDS if r.kind == "warm-started"}
    assert len(warm) >= 4
    families = {r.family for r in RECORDS}
    assert {"mbert", "xlmr", "mbart", "mt5", "led", "bert2bert"} <= families
    beto = get_model("beto-base-cased")
    assert beto.vocab_size == 31002 and beto.architecture["layers"] == 12
    xnli = [s for s in beto.scores if s.task == "xnli"]
    assert xnli and xnli[0].value == pytest.approx(82.01)


def test_list_filters() -> None:
    betos = list_models("beto*")
    assert "beto-base-cased" in betos and all(n.startswith("beto") for n in betos)
    assert all(get_model(n).family == "bert" for n in list_models(family="bert"))
    assert list_models("zzz*") == []


def test_unknown_name_suggests_close_matches() -> None:
    with pytest.raises(UnknownModelError, match="beto-base-cased"):
        get_model("beto-base-casd")
    assert get_model("dccuchile/bert-base-spanish-wwm-cased").name == "beto-base-cased"
