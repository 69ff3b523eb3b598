"""GLUES metrics reproduce the official scripts.

Every expected number below was produced by running the official script on the same input and is
frozen here with a comment naming the script:

- ``conlleval`` (perl, version 2004-01-26), printed with 2 decimals, plus its exact phrase counts;
- ``conll18_ud_eval.py`` (CoNLL 2018 shared task, v1.2): ``-c`` counts, and ``evaluate()``'s floats x100;
- ``evaluate-v1.1.py`` (SQuAD v1.1) and ``mlqa_evaluation_v1.py`` (MLQA): the JSON they print.

The fixtures in tests/fixtures/metrics are invented sentences (see the README there). The tests at the
end re-score real files from ../shared/data when that folder exists (skipped otherwise).
"""

from __future__ import annotations

import doctest
import importlib
import json
import os
import random
import subprocess
import sys
import unicodedata
import warnings
from pathlib import Path

import numpy as np
import pytest

from es_zoo.errors import EsZooError
from es_zoo.metrics import (EVALUATE_MODULES, MetricInputError, accuracy, attachment_scores, evaluate_conllu,
                            load_metric, mlqa, module_path, ner_f1, normalize_mlqa, normalize_squad, squad_v1)
from es_zoo.tasks.readers import NER_LABELS, read_conll2002, read_conllu, read_squad
from tests.conftest import SHARED_DATA

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "metrics"


def read_conlleval_input(path: Path) -> tuple[list[list[str]], list[list[str]]]:
    """(gold tags, predicted tags) per sentence of a ``token gold pred`` file."""
    gold, pred = [], []
    for block in path.read_text(encoding="utf-8").split("\n\n"):
        rows = [line.split(" ") for line in block.splitlines() if line]
        if rows:
            gold.append([r[1] for r in rows])
            pred.append([r[2] for r in rows])
    return gold, pred


def quiet(fn, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn(*args, **kwargs)


# ------------------------------------------------------------------------------------------- accuracy
def test_accuracy_is_a_percentage_of_equal_labels() -> None:
    assert accuracy([0, 1, 1, 2], [0, 1, 0, 2]) == {"accuracy": 75.0, "correct": 3, "total": 4}
    assert accuracy(np.array([1, 1]), np.array([1, 0]))["accuracy"] == 50.0
    assert accuracy([np.int64(2), np.int32(1)], [2, 2]) == {"accuracy": 50.0, "correct": 1, "total": 2}
    assert accuracy(["entailment", "neutral"], ["entailment", "neutral"])["accuracy"] == 100.0


@pytest.mark.parametrize("preds, refs, words", [
    ([0, 1], [0, 1, 1], ["2 predictions", "3 references"]),
    ([], [], ["no examples"]),
    ([0, 1], ["entailment", "neutral"], ["int", "str"]),
    ([0, "neutral"], [0, 1], ["mix"]),
    ([0.0, 1.0], [0, 1], ["float"]),
    ("01", [0, 1], ["must be a list"]),
])
def test_accuracy_refuses_what_it_cannot_compare(preds, refs, words) -> None:
    with pytest.raises(MetricInputError) as err:
        accuracy(preds, refs)
    assert isinstance(err.value, EsZooError)
    for word in words:
        assert word in str(err.value)


# ------------------------------------------------------------------------------------------------ NER
def test_ner_reproduces_conlleval_on_the_fixture() -> None:
    gold, pred = read_conlleval_input(FIXTURES / "ner.conlleval.txt")
    s = ner_f1(pred, gold)
    # conlleval.pl < ner.conlleval.txt:
    #   processed 58 tokens with 16 phrases; found: 18 phrases; correct: 9.
    #   accuracy:  79.31%; precision:  50.00%; recall:  56.25%; FB1:  52.94
    assert (s["tokens"], s["number"], s["predicted"], s["correct"]) == (58, 16, 18, 9)
    for key, printed in (("accuracy", 79.31), ("precision", 50.00), ("recall", 56.25), ("f1", 52.94)):
        assert abs(s[key] - printed) <= 0.005, key
    # per type: precision, recall, FB1, and the number of predicted phrases that conlleval prints
    official = {"LOC": (66.67, 66.67, 66.67, 6), "MISC": (33.33, 33.33, 33.33, 3),
                "ORG": (50.00, 66.67, 57.14, 4), "PER": (40.00, 50.00, 44.44, 5)}
    assert sorted(s["per_type"]) == sorted(official)
    for kind, (p, r, f, found) in official.items():
        t = s["per_type"][kind]
        assert abs(t["precision"] - p) <= 0.005 and abs(t["recall"] - r) <= 0.005 and abs(t["f1"] - f) <= 0.005
        assert t["predicted"] == found
    # exact values follow from the counts
    assert s["precision"] == 100 * 9 / 18 and s["recall"] == 100 * 9 / 16 and s["accuracy"] == 100 * 46 / 58


@pytest.mark.parametrize("gold, pred, counts", [
    # conlleval: "processed 2 tokens with 1 phrases; found: 1 phrases; correct: 1." (I- after O starts a chunk)
    ([["B-PER", "I-PER"]], [["I-PER", "I-PER"]], (1, 1, 1)),
    # conlleval: "... with 1 phrases; found: 2 phrases; correct: 0." (a type switch ends a chunk, starts another)
    ([["B-ORG", "I-ORG", "I-ORG"]], [["B-ORG", "I-ORG", "I-LOC"]], (1, 2, 0)),
    # conlleval: "... with 2 phrases; found: 2 phrases; correct: 2." (a sentence break ends a chunk)
    ([["B-MISC"], ["I-MISC"]], [["B-MISC"], ["I-MISC"]], (2, 2, 2)),
    # conlleval: "... with 1 phrases; found: 2 phrases; correct: 0." (I-LOC after I-PER: a new LOC chunk)
    ([["O", "O", "B-LOC"]], [["I-PER", "I-LOC", "I-LOC"]], (1, 2, 0)),
])
def test_ner_chunk_rules_are_conllevals(gold, pred, counts) -> None:
    s = ner_f1(pred, gold)
    assert (s["number"], s["predicted"], s["correct"]) == counts


def test_seqeval_strict_mode_is_not_conlleval() -> None:
    """Why ner_f1 uses seqeval's default mode: strict IOB2 drops I- entities that conlleval counts."""
    from seqeval.metrics import f1_score
    from seqeval.scheme import IOB2

    gold, pred = read_conlleval_input(FIXTURES / "ner.conlleval.txt")
    assert abs(100 * f1_score(gold, pred) - 52.94) <= 0.005  # conlleval's FB1
    assert abs(100 * f1_score(gold, pred, mode="strict", scheme=IOB2) - 52.94) > 1


def test_ner_refuses_mismatched_or_unknown_tags() -> None:
    with pytest.raises(MetricInputError, match="2 predictions for 1 references"):
        ner_f1([["O"], ["O"]], [["O"]])
    with pytest.raises(MetricInputError, match=r"sentence 1: 2 predicted tags for 3 reference tags"):
        ner_f1([["O"], ["O", "B-PER"]], [["O"], ["O", "B-PER", "I-PER"]])
    for bad in ("PER", "S-PER", "E-LOC", "B-", "b-PER", 3):
        with pytest.raises(MetricInputError, match=r"predictions\[0\]\[1\]"):
            ner_f1([["O", bad]], [["O", "B-PER"]])
    with pytest.raises(MetricInputError, match="no tokens"):
        ner_f1([[]], [[]])


# -------------------------------------------------------------------------------------------- parsing
def test_evaluate_conllu_reproduces_conll18_ud_eval_on_the_fixture() -> None:
    s = evaluate_conllu(FIXTURES / "ud.gold.conllu", FIXTURES / "ud.system.conllu")
    # conll18_ud_eval.py -c ud.gold.conllu ud.system.conllu (Correct | Gold | Predicted | Aligned):
    #   Words 26 26 26 26; UAS 21 26 26 26; LAS 16 26 26 26; CLAS 8 13 14 13
    assert (s["words"], s["uas_correct"], s["las_correct"]) == (26, 21, 16)
    assert (s["clas_correct"], s["clas_gold"], s["clas_system"]) == (8, 13, 14)
    # 100 * evaluate()[metric].f1 (printed by -v as 80.77, 61.54, 59.26)
    assert s["uas"] == pytest.approx(80.76923076923077, abs=1e-9)
    assert s["las"] == pytest.approx(61.53846153846154, abs=1e-9)
    assert s["clas"] == pytest.approx(59.25925925925925, abs=1e-9)
    assert s["sentences"] == 4


def test_las_ignores_subtypes_and_uas_counts_punctuation() -> None:
    gold_h, gold_r = [[2, 3, 0, 3]], [["det", "nsubj:pass", "root", "punct"]]
    s = attachment_scores([[2, 3, 0, 2]], [["det:art", "nsubj", "root", "obj"]], gold_h, gold_r)
    assert (s["uas"], s["las"]) == (75.0, 75.0)
    # CLAS: gold content words nsubj, root (2); system content words nsubj, root, obj (3); 2 correct
    assert (s["clas_correct"], s["clas_gold"], s["clas_system"]) == (2, 2, 3)
    assert s["clas"] == 100 * 2 * 2 / 5
    assert attachment_scores([np.array([2, 3, 0, 2])], [["det", "nsubj", "root", "obj"]], gold_h, gold_r) == s


def test_attachment_scores_refuses_mismatches() -> None:
    h, r = [[2, 0]], [["nsubj", "root"]]
    with pytest.raises(MetricInputError, match="2 predictions for 1 references"):
        attachment_scores(h * 2, r * 2, h, r)
    with pytest.raises(MetricInputError, match=r"sentence 0: 2 gold words but pred_heads has 3"):
        attachment_scores([[2, 0, 1]], r, h, r)
    with pytest.raises(MetricInputError, match=r"word 1: HEAD 5 is not a word id 0..2"):
        attachment_scores([[5, 0]], r, h, r)
    with pytest.raises(MetricInputError, match="DEPREL ''"):
        attachment_scores(h, [["", "root"]], h, r)


def _edit(src: Path, dst: Path, old: str, new: str) -> Path:
    text = src.read_text(encoding="utf-8")
    assert old in text
    dst.write_text(text.replace(old, new, 1), encoding="utf-8")
    return dst


def test_evaluate_conllu_needs_the_gold_tokenization(tmp_path: Path) -> None:
    gold = FIXTURES / "ud.gold.conllu"
    system = _edit(FIXTURES / "ud.system.conllu", tmp_path / "words.conllu", "4\tparque\tparque", "4\tparques\tparque")
    with pytest.raises(MetricInputError, match=r"sentence 2 \(gold id s2\): word 4 is 'parque' .* but 'parques'"):
        evaluate_conllu(gold, system)
    system = _edit(FIXTURES / "ud.system.conllu", tmp_path / "mwt.conllu", "5-6\tdel", "5-6\tdeel")
    with pytest.raises(MetricInputError, match=r"sentence 2 \(gold id s2\): multiword tokens differ"):
        evaluate_conllu(gold, system)
    text = (FIXTURES / "ud.system.conllu").read_text(encoding="utf-8")
    (tmp_path / "short.conllu").write_text(text.split("# sent_id = s4")[0], encoding="utf-8")
    with pytest.raises(MetricInputError, match="has 3 sentences but .* has 4"):
        evaluate_conllu(gold, tmp_path / "short.conllu")


# ------------------------------------------------------------------------------------------------- QA
# Per question of qa.squad.json: (SQuAD EM, SQuAD F1, MLQA-es EM, MLQA-es F1), from the official
# scripts' metric_max_over_ground_truths(exact_match_score / f1_score, ...).
PER_QUESTION = {
    "m1": (1, 1.0, 1, 1.0),  # 'Museo del Prado.' vs ['El Museo del Prado', 'Museo del Prado']
    "m2": (0, 0.6666666666666666, 0, 0.6666666666666666),  # 'en Madrid' vs ['Madrid']
    "m3": (0, 0.0, 1, 1.0),  # 'Las meninas' vs ['«Las meninas»']
    "m4": (0, 0.8000000000000002, 0, 0.75),  # 'Velazquez, Goya y el Greco' vs ['Velázquez, Goya y El Greco']
    "m5": (0, 0.5, 0, 0.7499999999999999),  # '¡casi tres millones!' vs ['casi tres millones de personas']
    "b1": (1, 1.0, 0, 0.6666666666666666),  # 'Beatles' vs ['The Beatles']
    "b2": (0, 0.3333333333333333, 1, 1.0),  # 'un público entusiasta' vs ['“un público entusiasta”']
    "b3": (0, 0.6666666666666666, 1, 1.0),  # 'final' vs ['el final']
    "b4": (0, 0.5, 1, 1.0),  # '—su única gira española—' vs ['su única gira española']
    "b5": (0, 0.8571428571428571, 0, 0.8571428571428571),  # 'mejor del concierto' vs ['Lo mejor del concierto']
    "b6": (0, 0.0, 0, 0.0),  # '' vs ['en 1965']
}


@pytest.fixture(scope="module")
def qa() -> tuple[dict, list[dict]]:
    preds = json.loads((FIXTURES / "qa.predictions.json").read_text(encoding="utf-8"))
    return preds, read_squad(FIXTURES / "qa.squad.json")


def test_squad_and_mlqa_reproduce_the_official_scripts(qa) -> None:
    preds, refs = qa
    with pytest.warns(UserWarning, match=r"1 of 12 questions have no prediction .*'m6'"):
        sq = squad_v1(preds, refs)
    # evaluate-v1.1.py qa.squad.json qa.predictions.json (prints "Unanswered question m6 will receive score 0.")
    assert sq == {"exact_match": 16.666666666666668, "f1": 52.6984126984127, "total": 12, "missing": 1}
    # mlqa_evaluation_v1.py qa.squad.json qa.predictions.json es
    assert quiet(mlqa, preds, refs) == {"exact_match": 41.666666666666664, "f1": 72.42063492063492,
                                        "total": 12, "missing": 1}
    # mlqa_evaluation_v1.py qa.squad.json qa.predictions.json en
    assert quiet(mlqa, preds, refs, lang="en") == {"exact_match": 41.666666666666664, "f1": 72.83730158730158,
                                                   "total": 12, "missing": 1}


@pytest.mark.parametrize("qid", sorted(PER_QUESTION))
def test_squad_and_mlqa_per_question(qa, qid: str) -> None:
    preds, refs = qa
    ref = [r for r in refs if r["id"] == qid]
    sq, ml = squad_v1({qid: preds[qid]}, ref), mlqa({qid: preds[qid]}, ref)
    assert (sq["exact_match"] / 100, sq["f1"] / 100, ml["exact_match"] / 100, ml["f1"] / 100) == \
        pytest.approx(PER_QUESTION[qid], abs=1e-12)


def test_the_two_normalisations_differ_on_spanish() -> None:
    assert normalize_squad("¿El «Quijote»?") == "¿el «quijote»"  # ASCII `?` goes, `¿ « »` stay
    assert normalize_mlqa("¿El «Quijote»?") == "quijote"
    assert normalize_mlqa("“Las Meninas” — 1656…") == "meninas 1656"
    assert normalize_mlqa("lo mejor") == "lo mejor"  # `lo` is not on MLQA's article list
    assert normalize_squad("The Beatles") == normalize_mlqa("The Beatles", "en") == "beatles"
    assert normalize_mlqa("The Beatles") == "the beatles"
    assert normalize_mlqa("Élla") == "élla"  # accents stay; `\b` does not cut `la` out of a word


def test_qa_accepts_dicts_and_records(qa) -> None:
    preds, refs = qa
    expected = quiet(squad_v1, preds, refs)
    as_dict = {r["id"]: r["answers"]["text"] for r in refs}
    records = [{"id": k, "prediction_text": v} for k, v in preds.items()]
    assert quiet(squad_v1, records, as_dict) == expected
    squad_json_answers = [{"id": r["id"], "answers": [{"text": t} for t in r["answers"]["text"]]} for r in refs]
    assert quiet(squad_v1, preds, squad_json_answers) == expected


def test_qa_refuses_unknown_ids_and_bad_references() -> None:
    refs = {"q1": ["Madrid"], "q2": ["1819"]}
    with pytest.raises(MetricInputError, match=r"1 predictions are for questions not in the references .*'q9'"):
        squad_v1({"q1": "Madrid", "q9": "x"}, refs)
    with pytest.raises(MetricInputError, match="two predictions for question 'q1'"):
        mlqa([{"id": "q1", "prediction_text": "a"}, {"id": "q1", "prediction_text": "b"}], refs)
    with pytest.raises(MetricInputError, match="'q1' has no answer"):
        squad_v1({}, {"q1": []})
    with pytest.raises(MetricInputError, match="expected a list of answer texts"):
        squad_v1({}, {"q1": "Madrid"})
    with pytest.raises(MetricInputError, match="must be strings"):
        squad_v1({"q1": None}, refs)
    with pytest.raises(MetricInputError, match="'zh' is not implemented"):
        mlqa({}, refs, lang="zh")
    with pytest.raises(MetricInputError, match="no references"):
        mlqa({}, {})


def test_an_empty_gold_answer_is_flagged() -> None:
    with pytest.warns(UserWarning, match="1 of 1 questions have a gold answer that is empty"):
        assert squad_v1({"q1": ""}, {"q1": ["Madrid", ""]})["exact_match"] == 100.0


# --------------------------------------------------------------------------------- evaluate modules
def test_every_evaluate_module_is_one_python_file() -> None:
    """Nothing but ``<name>.py`` is needed, and it lives under es_zoo/, which the wheel packs whole."""
    for name in EVALUATE_MODULES:
        files = [p.name for p in module_path(name).iterdir() if p.name != "__pycache__"]
        assert files == [f"{name}.py"], files
        assert "es_zoo/metrics/evaluate_modules" in module_path(name).as_posix()
    with pytest.raises(MetricInputError, match="no es_zoo evaluate module 'seqeval'"):
        module_path("seqeval")


def test_evaluate_modules_load_in_a_fresh_offline_process(tmp_path: Path) -> None:
    """Empty caches, offline flags, and a Hub endpoint that refuses connections: nothing is fetched."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGINGFACE_"))}
    env.update(HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", HF_HOME=str(tmp_path / "hf"),
               HF_ENDPOINT="http://127.0.0.1:9")
    code = ("from es_zoo.metrics import EVALUATE_MODULES, load_metric\n"
            "for name in EVALUATE_MODULES:\n"
            "    print(name, type(load_metric(name)).__name__)\n"
            "ner = load_metric('es_zoo_seqeval')\n"
            "print(ner.compute(predictions=[['B-PER', 'O']], references=[['B-PER', 'O']])['f1'])\n")
    done = subprocess.run([sys.executable, "-c", code], env=env, cwd=tmp_path, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.splitlines()[-1] == "100.0"
    assert "EsZooUdAttachment" in done.stdout


def test_evaluate_modules_agree_with_the_functions(qa) -> None:
    gold, pred = read_conlleval_input(FIXTURES / "ner.conlleval.txt")
    seqeval = load_metric("es_zoo_seqeval", keep_in_memory=True)
    for p, g in zip(pred, gold):  # batches add up to the whole
        seqeval.add(predictions=p, references=g)
    assert seqeval.compute() == ner_f1(pred, gold)

    acc = load_metric("es_zoo_accuracy", keep_in_memory=True)
    assert acc.compute(predictions=[0, 1, 2], references=[0, 1, 1]) == accuracy([0, 1, 2], [0, 1, 1])
    assert acc.compute(predictions=["a", "b"], references=["a", "a"])["accuracy"] == 50.0

    g, s = read_conllu(FIXTURES / "ud.gold.conllu"), read_conllu(FIXTURES / "ud.system.conllu")
    cols = {"pred_heads": [x["head"] for x in s], "pred_deprels": [x["deprel"] for x in s],
            "gold_heads": [x["head"] for x in g], "gold_deprels": [x["deprel"] for x in g]}
    ud = load_metric("es_zoo_ud_attachment", keep_in_memory=True)
    assert ud.compute(**cols) == attachment_scores(**cols)

    preds, refs = qa
    # one row per reference (evaluate pairs rows); None marks the question without a prediction (m6)
    records = [{"id": r["id"], "prediction_text": preds.get(r["id"])} for r in refs]
    references = [{"id": r["id"], "answers": r["answers"]} for r in refs]
    assert sum(rec["prediction_text"] is None for rec in records) == 1
    for name, fn, kwargs in (("es_zoo_squad_v1", squad_v1, {}), ("es_zoo_mlqa", mlqa, {}),
                             ("es_zoo_mlqa", mlqa, {"lang": "en"})):
        module = load_metric(name, keep_in_memory=True)
        assert quiet(module.compute, predictions=records, references=references, **kwargs) == \
            quiet(fn, preds, refs, **kwargs)


def test_module_docstring_examples() -> None:
    for name in ("es_zoo.metrics", "es_zoo.metrics.classification", "es_zoo.metrics.ner",
                 "es_zoo.metrics.parsing", "es_zoo.metrics.qa"):
        result = doctest.testmod(importlib.import_module(name))
        assert result.failed == 0, name


# ------------------------------------------------------------------------- real files (../shared/data)
# The same deterministic corruptions as the check scripts behind docs/metrics.md; the expected numbers
# are the official scripts' output on the corrupted files.
needs_shared = pytest.mark.skipif(not (SHARED_DATA / "ud").is_dir(), reason="../shared/data is not here")


def corrupt_tags(refs: list[list[str]], fraction: float, seed: int) -> list[list[str]]:
    """Each tag replaced, with probability ``fraction``, by one of the 9 CoNLL-2002 tags drawn at random."""
    rng = random.Random(seed)
    return [[rng.choice(NER_LABELS) if rng.random() < fraction else t for t in r] for r in refs]


def corrupt_trees(conllu: str, fraction: float, seed: int) -> str:
    """A CoNLL-U text with HEADs and DEPRELs changed at random, still one tree per sentence.

    A non-root word gets, with probability ``fraction``, a new head that is not itself nor one of its
    descendants, and independently a new relation: half the time another subtype of the same
    universal relation when the file has one, otherwise any other non-root relation of the file.
    """
    rng = random.Random(seed)
    lines = conllu.split("\n")
    rels = sorted({line.split("\t")[7] for line in lines
                   if line and not line.startswith("#") and line.split("\t")[0].isdigit()} - {"root"})
    by_universal: dict[str, list[str]] = {}
    for rel in rels:
        by_universal.setdefault(rel.split(":")[0], []).append(rel)
    out: list[str] = []
    sent: list[str] = []

    def flush() -> None:
        words = [i for i, line in enumerate(sent) if not line.startswith("#") and line.split("\t")[0].isdigit()]
        cols = [sent[i].split("\t") for i in words]
        heads = [int(c[6]) for c in cols]
        n = len(heads)
        for w in range(n):
            if heads[w] == 0:
                continue
            if rng.random() < fraction:
                below, grew = {w + 1}, True
                while grew:
                    grew = False
                    for v in range(n):
                        if heads[v] in below and v + 1 not in below:
                            below.add(v + 1)
                            grew = True
                choices = [h for h in range(1, n + 1) if h not in below and h != heads[w]]
                if choices:
                    heads[w] = rng.choice(choices)
            if rng.random() < fraction:
                rel = cols[w][7]
                same = [r for r in by_universal.get(rel.split(":")[0], []) if r != rel]
                others = [r for r in rels if r != rel]
                cols[w][7] = rng.choice(same) if same and rng.random() < 0.5 else rng.choice(others)
            cols[w][6] = str(heads[w])
        for i, c in zip(words, cols):
            sent[i] = "\t".join(c)
        out.extend(sent)
        sent.clear()

    for line in lines:
        if line == "":
            if sent:
                flush()
            out.append(line)
        else:
            sent.append(line)
    if sent:
        flush()
    return "\n".join(out)


QA_VARIANTS = (  # what the prediction for the k-th question is, by k modulo 13
    lambda g: g, lambda g: " ".join(g.split()[: max(1, len(g.split()) // 2)]), lambda g: "el " + g,
    lambda g: "La " + g, lambda g: "lo " + g, lambda g: "¿" + g + "?", lambda g: "«" + g + "»",
    lambda g: "“" + g + "” —", lambda g: g + ".",
    lambda g: "".join(c for c in unicodedata.normalize("NFD", g) if unicodedata.category(c) != "Mn"),
    None,  # a wrong span of the context, as long as the gold answer
    lambda g: "", "missing",
)


def qa_predictions(refs: list[dict], seed: int) -> dict[str, str]:
    rng = random.Random(seed)
    preds = {}
    for k, rec in enumerate(refs):
        make = QA_VARIANTS[k % len(QA_VARIANTS)]
        gold, context = rec["answers"]["text"][0], rec["context"]
        if make == "missing":
            continue
        if make is None:
            start = rng.randrange(0, max(1, len(context) - len(gold)))
            preds[rec["id"]] = context[start:start + len(gold)]
        else:
            preds[rec["id"]] = make(gold)
    return preds


@needs_shared
@pytest.mark.parametrize("name, fraction, counts, printed", [
    # conlleval.pl: "processed 51533 tokens with 3559 phrases; found: 7827 phrases; correct: 3049."
    #               "accuracy:  91.16%; precision:  38.95%; recall:  85.67%; FB1:  53.56"
    ("esp.testb", 0.10, (51533, 3559, 7827, 3049), (91.16, 38.95, 85.67, 53.56)),
    # conlleval.pl: "processed 52923 tokens with 4352 phrases; found: 16975 phrases; correct: 2712."
    #               "accuracy:  73.40%; precision:  15.98%; recall:  62.32%; FB1:  25.43"
    ("esp.testa", 0.30, (52923, 4352, 16975, 2712), (73.40, 15.98, 62.32, 25.43)),
])
def test_conll2002_with_corrupted_tags_matches_conlleval(name: str, fraction: float, counts, printed) -> None:
    refs = [s["ner_tags"] for s in read_conll2002(SHARED_DATA / "ner" / "conll2002" / name)]
    s = ner_f1(corrupt_tags(refs, fraction, seed=2002), refs)
    assert (s["tokens"], s["number"], s["predicted"], s["correct"]) == counts
    for key, value in zip(("accuracy", "precision", "recall", "f1"), printed):
        assert abs(s[key] - value) <= 0.005, key


@needs_shared
def test_gsd_dev_with_corrupted_trees_matches_conll18_ud_eval(tmp_path: Path) -> None:
    gold = SHARED_DATA / "ud" / "r2.2" / "es_gsd-ud-dev.conllu"
    system = tmp_path / "system.conllu"
    system.write_text(corrupt_trees(gold.read_text(encoding="utf-8"), 0.10, seed=2018), encoding="utf-8")
    s = evaluate_conllu(gold, system)
    # conll18_ud_eval.py -c: UAS, LAS, CLAS correct; CLAS gold and predicted; words
    assert (s["uas_correct"], s["las_correct"], s["clas_correct"], s["clas_gold"], s["clas_system"], s["words"]) == \
        (33543, 30501, 15632, 18832, 19780, 37151)
    # 100 * evaluate()[metric].f1 (-v prints UAS 90.29, LAS 82.10, CLAS 80.97)
    assert (s["uas"], s["las"], s["clas"]) == \
        pytest.approx((90.28828295335254, 82.10007805980996, 80.96964674194551), abs=1e-9)


@needs_shared
@pytest.mark.parametrize("path, official_squad, official_mlqa", [
    # evaluate-v1.1.py FILE PREDS; mlqa_evaluation_v1.py FILE PREDS es
    ("qa/xquad/xquad.es.json", (22.689075630252102, 54.11605318172993), (61.260504201680675, 72.3337121609132)),
    ("qa/squad-es/dev-v1.1-es_small.json", (29.37870271912502, 43.56625695280731),
     (67.85660033419414, 59.41766137677827)),
])
def test_real_qa_files_match_the_official_scripts(path: str, official_squad, official_mlqa) -> None:
    refs = read_squad(SHARED_DATA / path)
    preds = qa_predictions(refs, seed=1)
    sq, ml = quiet(squad_v1, preds, refs), quiet(mlqa, preds, refs)
    assert (sq["exact_match"], sq["f1"]) == official_squad  # evaluate-v1.1.py, bit for bit
    assert (ml["exact_match"], ml["f1"]) == official_mlqa  # mlqa_evaluation_v1.py ... es, bit for bit
