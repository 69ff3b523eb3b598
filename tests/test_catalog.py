"""The catalogue is data; every record is checked (parametrized, so a new entry is tested for free)."""

from __future__ import annotations

import re

import pytest
from click.testing import CliRunner

from es_zoo.catalog import FAMILIES, KINDS, UnknownModelError, all_models, get_model, list_models
from es_zoo.cli import cli
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


def _rec(name: str, scores: list[dict]) -> dict:
    return {"name": name, "family": "roberta", "kind": "pretrained", "hub_id": f"org/{name}", "languages": ["es"],
            "architecture": {}, "tokenizer": {"kind": "bpe"}, "license": "mit", "paper": None, "scores": scores}


def test_a_malformed_record_or_score_is_refused_with_its_path() -> None:
    """The catalogue is checked as recipes are (es_zoo.recipes.from_mapping): one line with the key path."""
    from es_zoo.catalog import _record
    from es_zoo.errors import EsZooError

    good = {"task": "pawsx", "dataset": "PAWS-X es", "split": "test", "metric": "accuracy", "value": 89.0, "source": "x"}
    _record(_rec("ok", [good]), 0)
    for bad, expected in (({**good, "value": 890.0}, r"scores\[0\]: value: expected a score from 0 to 100"),
                          ({**good, "value": True}, r"scores\[0\].value: expected a number, got True"),
                          ({**good, "source": " "}, r"scores\[0\]: source: expected a non-empty text"),
                          ({**good, "by": 3}, r"scores\[0\].by: expected a string, got 3"),
                          ({**good, "metric": None}, r"scores\[0\].metric: expected a string, got None"),
                          ({**good, "extra": 1}, r"scores\[0\].extra: unknown key; expected one of: task, dataset")):
        with pytest.raises(EsZooError, match=r"catalog.yaml: models\[7\] \(m\): " + expected):
            _record(_rec("m", [bad]), 7)
    with pytest.raises(EsZooError, match=r"models\[7\] \(m\): family: expected one of 'bert', 'roberta'.*got 'bertt'"):
        _record({**_rec("m", []), "family": "bertt"}, 7)
    with pytest.raises(EsZooError, match=r"models\[7\] \(m\): licence: unknown key \(did you mean 'license'\?\)"):
        _record({**_rec("m", []), "licence": "mit"}, 7)
    with pytest.raises(EsZooError, match=r"models\[7\] \(m\): hub_id: missing required key"):
        _record({k: v for k, v in _rec("m", []).items() if k != "hub_id"}, 7)


def test_numbers_measured_by_others_are_compared_but_never_the_models_own(monkeypatch) -> None:
    from es_zoo import catalog
    from es_zoo.catalog import _record, compare_scores

    own = {"task": "pawsx", "dataset": "PAWS-X es (MarIA evaluation)", "split": "test", "metric": "accuracy",
           "value": 90.0, "source": "table"}
    records = {
        "roberta-x": _record(_rec("roberta-x", [own, {**own, "task": "sts", "dataset": "STS 2017", "metric": "combined"}]), 0),
        "beto-x": _record(_rec("beto-x", [
            {**own, "dataset": "PAWS-X es", "split": None, "value": 89.05},  # its own paper
            {**own, "value": 88.5, "by": "MarIA (Gutiérrez-Fandiño et al. 2022)"},  # the same table as roberta-x
            {**own, "metric": "f1", "value": 88.0, "by": "MarIA (Gutiérrez-Fandiño et al. 2022)"}]), 1),
    }
    monkeypatch.setattr(catalog, "_catalog", lambda: records)
    beto = records["beto-x"]
    assert [s.value for s in beto.scores_for("pawsx")] == [89.05]  # what cards, summaries and evaluate show
    assert len(beto.scores_for("pawsx", own=False)) == 3
    [pawsx, sts] = compare_scores(["beto-x", "roberta-x"])
    assert sts["task"] == "sts" and sts["note"] == "not an es-zoo task"
    rows = {(r["dataset"], r["metric"]): r for r in pawsx["rows"]}
    assert set(rows["PAWS-X es", "accuracy"]["values"]) == {"beto-x"}  # another evaluation: its own row
    same = rows["PAWS-X es (MarIA evaluation)", "accuracy"]
    assert {m: c["value"] for m, c in same["values"].items()} == {"beto-x": 88.5, "roberta-x": 90.0}
    assert same["values"]["beto-x"]["by"] and same["values"]["roberta-x"]["by"] is None
    assert not same["metric_differs"] and rows["PAWS-X es (MarIA evaluation)", "f1"]["metric_differs"]
    res = CliRunner().invoke(cli, ["compare", "beto-x", "roberta-x", "--task", "pawsx"])
    assert res.exit_code == 0, res.output
    line = next(x for x in res.output.splitlines() if "MarIA evaluation" in x and "accuracy" in x)
    assert line.split()[-2:] == ["88.5*", "90"]
    assert "f1 (not accuracy)" in res.output and "* measured by MarIA (Gutiérrez-Fandiño et al. 2022)" in res.output
    res = CliRunner().invoke(cli, ["list", "--scores", "sts"])
    assert res.exit_code == 0 and "roberta-x" in res.output and "beto-x" not in res.output
    res = CliRunner().invoke(cli, ["list", "--scores", "nope"])
    assert res.exit_code == 1 and "tasks with scores: pawsx, sts" in res.output


def test_evaluate_never_puts_another_metric_beside_the_measured_one() -> None:
    from es_zoo.tasks.definitions import load_task
    from es_zoo.tasks.suite import published_for, table_rows

    def cell(model: str, task: str, main: str) -> str:
        t = load_task(task)
        r = {"metric": {"main": main}, "published": published_for(model, t), "data": {"source": t.default_source},
             "split": "test", "main": 50.0, "examples": 10, "comparable": True}
        return table_rows({"tasks": {task: r}})[1][5]

    # MarIA's PAWS-X number is F1; GLUES (and the task's published scores) use accuracy
    assert cell("roberta-base-bne", "pawsx", "accuracy") == "[other metrics, not comparable: f1]"
    # BETO's own PAWS-X accuracy; MarIA's re-measurement of BETO is not BETO's own published number
    assert cell("beto-base-cased", "pawsx", "accuracy") == "89.05 (accuracy)"
    qa = cell("beto-base-cased", "qa", "f1")
    assert "45.88" not in qa and qa.endswith("[other metrics, not comparable: exact_match]") and "68.01 (f1, test, MLQA" in qa
