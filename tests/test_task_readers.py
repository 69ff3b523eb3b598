"""The GLUES readers: each published format parsed exactly, and every malformed input a clear error that
names the file and line. The last tests parse the real files in ../shared/data when they are there."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from es_zoo.tasks.readers import (
    UPOS_V1, FormatError, concatenate, read_conll2002, read_conllu, read_mldoc, read_pawsx, read_squad, read_xnli,
)
from tests.conftest import REPO

SHARED = REPO.parent / "shared" / "data"


def _write(tmp_path: Path, name: str, text: str, encoding: str = "utf-8") -> Path:
    p = tmp_path / name
    p.write_bytes(text.encode(encoding))
    return p


# ------------------------------------------------------------------------------------------- CoNLL-2002
CONLL = """-DOCSTART- -X- O

Sao NC B-LOC
Paulo VMI I-LOC
( Fpa O
Brasil NC B-LOC
) Fpt O
, Fc O
23 Z O

El DA O
Abogado NC B-PER
General AQ I-PER
' Fz O
Cantidad NC I-MISC
"""


def test_conll2002_sentences_tokens_and_tags(tmp_path: Path) -> None:
    sents = read_conll2002(_write(tmp_path, "esp.testa", CONLL))
    assert [s["tokens"] for s in sents] == [["Sao", "Paulo", "(", "Brasil", ")", ",", "23"],
                                            ["El", "Abogado", "General", "'", "Cantidad"]]
    assert sents[0]["ner_tags"] == ["B-LOC", "I-LOC", "O", "B-LOC", "O", "O", "O"]
    assert sents[1]["pos_tags"][:3] == ["DA", "NC", "AQ"]
    # An I- that does not continue an entity is kept (the published files have one each; conlleval
    # counts it as a new entity), and ids say where each sentence starts.
    assert sents[1]["ner_tags"][-1] == "I-MISC" and sents[1]["id"] == "esp.testa:11"


def test_conll2002_accepts_a_leading_bom_and_windows_newlines(tmp_path: Path) -> None:
    p = _write(tmp_path, "bom", "\ufeff" + CONLL.replace("\n", "\r\n"))
    strip = lambda rows: [{k: v for k, v in r.items() if k != "id"} for r in rows]  # noqa: E731
    assert strip(read_conll2002(p)) == strip(read_conll2002(_write(tmp_path, "plain", CONLL)))


@pytest.mark.parametrize("line, message", [
    ("Sao\tNC\tB-LOC", r"x:3: a tab; CoNLL-2002 separates `token POS IOB2` by single spaces"),
    ("Sao NC", r"x:3: expected 3 space-separated fields `token POS IOB2`, got 2"),
    ("Sao NC B-LOC extra", r"x:3: expected 3 space-separated fields `token POS IOB2`, got 4"),
    ("Sao  NC B-LOC", r"x:3: expected 3 space-separated fields"),
    ("Sao NC B-CITY", r"x:3: tag 'B-CITY' is not in the task's label set"),
    ("Sao NC \ufeffO", r"x:3: a byte-order mark \(U\+FEFF\) inside the file"),
])
def test_conll2002_bad_lines_name_file_and_line(tmp_path: Path, line: str, message: str) -> None:
    p = _write(tmp_path, "x", f"El DA O\n\n{line}\n")
    with pytest.raises(FormatError, match=message):
        read_conll2002(p)


def test_conll2002_latin1_and_empty_files_are_refused(tmp_path: Path) -> None:
    with pytest.raises(FormatError, match=r"latin:2: not UTF-8 .*convert the file to UTF-8"):
        read_conll2002(_write(tmp_path, "latin", "El DA O\nEspaña NC B-LOC\n", encoding="latin-1"))
    with pytest.raises(FormatError, match="empty: no sentences"):
        read_conll2002(_write(tmp_path, "empty", "\n\n"))
    with pytest.raises(FormatError, match="no such file"):
        read_conll2002(tmp_path / "missing")


# --------------------------------------------------------------------------------------------- CoNLL-U
CONLLU = """# newdoc id = d1
# sent_id = s1
# text = Vámonos al mar.
1-2	Vámonos	_	_	_	_	_	_	_	_
1	Vamos	ir	VERB	_	_	0	root	_	_
2	nos	nosotros	PRON	_	_	1	obj	_	_
3-4	al	_	_	_	_	_	_	_	_
3	a	a	ADP	_	_	5	case	_	_
4	el	el	DET	_	_	5	det	_	_
5	mar	mar	NOUN	_	_	1	obl:arg	_	_
5.1	va	ir	VERB	_	_	_	_	1:conj	_
6	.	.	PUNCT	_	_	1	punct	_	_

# sent_id = s2
1	Sí	sí	ADV	_	_	0	root	_	SpaceAfter=No
2	.	.	PUNCT	_	_	1	punct	_	_
"""


def test_conllu_words_multiword_tokens_and_empty_nodes(tmp_path: Path) -> None:
    sents = read_conllu(_write(tmp_path, "x.conllu", CONLLU))
    s1, s2 = sents
    assert s1["id"] == "s1" and s1["text"] == "Vámonos al mar."
    # Words, not surface tokens, are what UD scores; the empty node 5.1 is not a word.
    assert s1["tokens"] == ["Vamos", "nos", "a", "el", "mar", "."]
    assert s1["upos"] == ["VERB", "PRON", "ADP", "DET", "NOUN", "PUNCT"]
    assert s1["head"] == [0, 1, 5, 5, 1, 1] and s1["deprel"][4] == "obl:arg"
    assert s1["multiword"] == [[0, 1, "Vámonos"], [2, 3, "al"]]
    assert s2["tokens"] == ["Sí", "."] and s2["multiword"] == []


def _one_word_changed(old: str, new: str) -> str:
    assert old in CONLLU
    return CONLLU.replace(old, new, 1)


@pytest.mark.parametrize("text, message", [
    (_one_word_changed("2\tnos\tnosotros\tPRON\t_\t_\t1\tobj\t_\t_", "2\tnos\tnosotros\tPRON\t_\t_\t1\tobj\t_"),
     r"x:6: expected 10 tab-separated columns `ID FORM .* MISC`, got 9"),
    (_one_word_changed("2\tnos\tnosotros\tPRON\t_\t_\t1\tobj\t_\t_", "2 nos nosotros PRON _ _ 1 obj _ _"),
     r"x:6: expected 10 tab-separated columns `ID .*`, got 1 \(spaces instead of tabs\?\)"),
    (_one_word_changed("2\tnos", "3\tnos"), r"x:6: word id '3': expected 2"),
    (_one_word_changed("\t1\tobj\t", "\t9\tobj\t"), r"x:6: word 2 has HEAD 9 but the sentence has 6 words"),
    (_one_word_changed("\t1\tobj\t", "\t0\tobj\t"), r"x:6: HEAD 0 with DEPREL 'obj'"),
    (_one_word_changed("\t1\tobj\t", "\t2\tobj\t"), r"x:6: word 2 is its own HEAD"),
    (_one_word_changed("PRON", "PRONOUN"), r"x:6: UPOS 'PRONOUN' is not in the task's label set"),
    (_one_word_changed("obl:arg", "oblique:arg"), r"x:10: DEPREL 'oblique' is not in the task's label set"),
    (_one_word_changed("3-4\tal", "3-3\tal"), r"x:7: multiword token range '3-3'"),
    (_one_word_changed("5.1\tva", "4.1\tva"), r"x:11: empty node '4.1': expected 5.N"),
    (CONLLU + "\n# sent_id = s3\n# text = nada\n", r"x:18: a sentence with no words \(comments only\)"),
    (_one_word_changed("\n\n# sent_id = s2", "\n \n# sent_id = s2"), r"x:13: a line of spaces"),
])
def test_conllu_bad_input_names_the_line(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(FormatError, match=message):
        read_conllu(_write(tmp_path, "x", text))


def test_conllu_two_roots_and_ud_v1_tags(tmp_path: Path) -> None:
    two_roots = "1\tSí\tsí\tADV\t_\t_\t0\troot\t_\t_\n2\tno\tno\tADV\t_\t_\t0\troot\t_\t_\n"
    with pytest.raises(FormatError, match=r"x:1: expected exactly one word with HEAD 0, found 2"):
        read_conllu(_write(tmp_path, "x", two_roots))
    v1 = "1\ty\ty\tCONJ\t_\t_\t0\troot\t_\t_\n"
    with pytest.raises(FormatError, match="UPOS 'CONJ'"):
        read_conllu(_write(tmp_path, "v1", v1))
    assert read_conllu(_write(tmp_path, "v1", v1), upos=UPOS_V1)[0]["upos"] == ["CONJ"]


# ------------------------------------------------------------------------------------------------- TSV
XNLI10 = ("language\tgold_label\tsentence1_binary_parse\tsentence2_binary_parse\tsentence1_parse\tsentence2_parse\t"
          "sentence1\tsentence2\tpromptID\tpairID\tgenre\tlabel1\tlabel2\tlabel3\tlabel4\tlabel5\t"
          "sentence1_tokenized\tsentence2_tokenized\tmatch\n"
          "en\tneutral\t_\t_\t_\t_\tHe said.\tHe called.\t1\t1\tfacetoface\tneutral\t\t\t\t\t_\t_\tFalse\n"
          "es\tneutral\t_\t_\t_\t_\tY él dijo: «Mamá».\tLlamó a su madre.\t1\t1\tfacetoface\tneutral\t\t\t\t\t_\t_\tFalse\n"
          "es\tcontradiction\t_\t_\t_\t_\tY él dijo.\tNo dijo nada.\t1\t2\tfacetoface\tcontradiction\t\t\t\t\t_\t_\tFalse\n")


def test_xnli_reads_all_three_published_layouts(tmp_path: Path) -> None:
    rows = read_xnli(_write(tmp_path, "xnli.dev.tsv", XNLI10))
    assert [(r["id"], r["label"]) for r in rows] == [("1", "neutral"), ("2", "contradiction")]  # es rows only
    assert rows[0]["sentence1"] == "Y él dijo: «Mamá»."
    five = read_xnli(_write(tmp_path, "five.tsv", "pairID\tgold_label\tsentence1\tsentence2\tgenre\n"
                                                  "7_xnli.dev\tentailment\tUna casa.\tUn edificio.\ttravel\n"))
    assert five == [{"id": "7_xnli.dev", "sentence1": "Una casa.", "sentence2": "Un edificio.",
                     "label": "entailment", "genre": "travel"}]
    mt = read_xnli(_write(tmp_path, "multinli.train.es.tsv",
                          "premise\thypo\tlabel\nLa casa.\tNo hay casa.\tcontradictory\nA\tB\tneutral\n"))
    assert [r["label"] for r in mt] == ["contradiction", "neutral"]  # XNLI-MT's "contradictory"


def test_xnli_bad_input(tmp_path: Path) -> None:
    with pytest.raises(FormatError, match=r"x:2: label 'maybe' is not in the task's label set"):
        read_xnli(_write(tmp_path, "x", "premise\thypo\tlabel\nA\tB\tmaybe\n"))
    with pytest.raises(FormatError, match=r"x:2: expected 3 tab-separated columns"):
        read_xnli(_write(tmp_path, "x", "premise\thypo\tlabel\nA\tneutral\n"))
    with pytest.raises(FormatError, match=r"x:2: an empty hypothesis"):
        read_xnli(_write(tmp_path, "x", "premise\thypo\tlabel\nA\t \tneutral\n"))
    with pytest.raises(FormatError, match=r"x:1: not an XNLI header"):
        read_xnli(_write(tmp_path, "x", "A\tB\tneutral\n"))
    with pytest.raises(FormatError, match="no rows in language es"):
        read_xnli(_write(tmp_path, "x", XNLI10.replace("\nes\t", "\nde\t")))


def test_pawsx_published_and_xtreme_layouts(tmp_path: Path) -> None:
    full = read_pawsx(_write(tmp_path, "dev_2k.tsv", "id\tsentence1\tsentence2\tlabel\n3\tUno.\tOtro.\t1\n"))
    assert full == [{"id": "3", "sentence1": "Uno.", "sentence2": "Otro.", "label": "1"}]
    short = read_pawsx(_write(tmp_path, "dev-es.tsv", "Uno.\tOtro.\t0\n"))
    assert short[0]["label"] == "0" and short[0]["id"] == "dev-es.tsv:1"
    with pytest.raises(FormatError, match=r"x:1: expected 4 tab-separated columns .* or 3"):
        read_pawsx(_write(tmp_path, "x", "Uno. Otro. 0\n"))
    with pytest.raises(FormatError, match=r"x:2: label '2'"):
        read_pawsx(_write(tmp_path, "x", "Uno.\tOtro.\t0\nUno.\tOtro.\t2\n"))


def test_mldoc(tmp_path: Path) -> None:
    rows = read_mldoc(_write(tmp_path, "spanish.dev", "CCAT\tLa bolsa subió.\nGCAT\tEl gobierno dijo.\n"))
    assert [r["label"] for r in rows] == ["CCAT", "GCAT"]
    with pytest.raises(FormatError, match=r"x:1: label 'XCAT'"):
        read_mldoc(_write(tmp_path, "x", "XCAT\tTexto.\n"))
    with pytest.raises(FormatError, match=r"x:1: expected 2 tab-separated columns `label text`, got 1 \(spaces instead"):
        read_mldoc(_write(tmp_path, "x", "CCAT La bolsa subió.\n"))
    with pytest.raises(FormatError, match=r"x:1: expected 2 tab-separated columns `label text`, got 3"):
        read_mldoc(_write(tmp_path, "x", "CCAT\tTexto\tmás\n"))


# ---------------------------------------------------------------------------------------------- SQuAD
def _squad(qas: list[dict], context: str = "El río Ebro nace en Cantabria.") -> dict:
    return {"version": "1.1", "data": [{"title": "Ebro", "paragraphs": [{"context": context, "qas": qas}]}]}


def test_squad_v1_and_v2(tmp_path: Path) -> None:
    p = tmp_path / "q.json"
    p.write_text(json.dumps(_squad([
        {"id": "a", "question": "¿Dónde nace el Ebro?", "answers": [{"text": "en Cantabria", "answer_start": 17},
                                                                   {"text": "Cantabria", "answer_start": 20}]},
        {"id": "b", "question": "¿Qué río?", "answers": [], "is_impossible": True},
    ]), ensure_ascii=False), encoding="utf-8")
    rows = read_squad(p)
    assert rows[0]["answers"] == {"text": ["en Cantabria", "Cantabria"], "answer_start": [17, 20]}
    assert rows[1]["is_impossible"] and rows[1]["answers"] == {"text": [], "answer_start": []}
    with pytest.raises(FormatError, match="question 'b' is unanswerable, which this task does not allow"):
        read_squad(p, allow_unanswerable=False)


@pytest.mark.parametrize("qas, message", [
    ([{"id": "a", "question": "¿Dónde?", "answers": [{"text": "Cantabria", "answer_start": 3}]}],
     r"question 'a': answer 'Cantabria' is not at answer_start 3 of its context \(found 'río Ebro ' there\)"),
    ([{"id": "a", "question": "¿Dónde?", "answers": []}], "question 'a' has no answers and is not marked is_impossible"),
    ([{"id": "a", "question": "¿Dónde?", "answers": [{"text": "Cantabria", "answer_start": 20}]}] * 2,
     "question 'a' appears twice"),
    ([{"id": "a", "question": " ", "answers": []}], r"data\[0\]\.paragraphs\[0\]\.qas\[0\]\.question: expected text"),
    ([{"question": "¿Dónde?", "answers": []}], r"qas\[0\]: missing 'id' \(SQuAD JSON\)"),
    ([{"id": "a", "question": "¿Dónde?", "answers": [{"text": "Cantabria", "answer_start": -3}]}],
     r"qas\[0\]\.answers\[0\]\.answer_start: expected a number >= -1, got -3"),
    ([{"id": "a", "question": "¿Dónde?", "answers": [{"text": "Ebro", "answer_start": -1}]}],
     r"question 'a': answer 'Ebro' has answer_start -1; expected a position in the context"),
    ([{"id": 7, "question": "¿Dónde?", "answers": []}], r"qas\[0\]\.id: expected a string, got 7"),
])
def test_squad_bad_answers_name_the_question(tmp_path: Path, qas: list[dict], message: str) -> None:
    p = tmp_path / "q.json"
    p.write_text(json.dumps(_squad(qas), ensure_ascii=False), encoding="utf-8")
    with pytest.raises(FormatError, match=message):
        read_squad(p)


def test_squad_not_json_or_not_squad(tmp_path: Path) -> None:
    with pytest.raises(FormatError, match=r"x.json:2: not valid JSON"):
        read_squad(_write(tmp_path, "x.json", '{"data":\n [,]}'))
    with pytest.raises(FormatError, match=r"\(the top level\): expected an object, got \[1, 2\] \(SQuAD JSON\)"):
        read_squad(_write(tmp_path, "x.json", '[1, 2]'))
    with pytest.raises(FormatError, match="UTF-16 text; expected SQuAD JSON in UTF-8"):
        read_squad(_write_bytes(tmp_path, "x.json", json.dumps({"data": []}).encode("utf-16")))
    with pytest.raises(FormatError, match="JSON nested too deeply"):
        read_squad(_write(tmp_path, "x.json", "[" * 50000 + "]" * 50000))


def _write_bytes(tmp_path: Path, name: str, data: bytes) -> Path:
    (tmp_path / name).write_bytes(data)
    return tmp_path / name


def test_conllu_trees_must_be_trees(tmp_path: Path) -> None:
    def conllu(heads: list) -> str:
        return "".join(f"{i}\tw{i}\t_\tNOUN\t_\t_\t{h}\t{'root' if h == 0 else 'nmod'}\t_\t_\n"
                       for i, h in enumerate(heads, start=1)) + "\n"
    assert len(read_conllu(_write(tmp_path, "ok.conllu", conllu([0, 1, 2])))) == 1
    with pytest.raises(FormatError, match=r"c.conllu:3: words 3 -> 4 -> 3 form a cycle"):
        read_conllu(_write(tmp_path, "c.conllu", conllu([0, 1, 4, 3])))
    with pytest.raises(FormatError, match=r"s.conllu:2: HEAD '²': expected a word id"):
        read_conllu(_write(tmp_path, "s.conllu", conllu([0, "²"])))
    with pytest.raises(FormatError, match=r"n.conllu:2: a control character \(U\+0000\) at column 5"):
        read_conllu(_write(tmp_path, "n.conllu", conllu([0, 1]).replace("w2", "w2\x00")))


# ---------------------------------------------------------------------------------- the real files
needs_shared = pytest.mark.skipif(not SHARED.is_dir(), reason="../shared/data is not beside the checkout")


@needs_shared
def test_every_real_file_parses_with_the_published_sizes() -> None:
    ner = {split: len(read_conll2002(SHARED / "ner" / "conll2002" / f"esp.{split}")) for split in ("train", "testa", "testb")}
    assert ner == {"train": 8323, "testa": 1915, "testb": 1517}
    # GLUES parsing = UD v2.2 AnCora + GSD: dev 3,054 = 1,400 GSD + 1,654 AnCora; test 2,147 = 426 + 1,721.
    for split, size in (("dev", 3054), ("test", 2147)):
        both = concatenate(*(read_conllu(SHARED / "ud" / "r2.2" / f"es_{tb}-ud-{split}.conllu") for tb in ("ancora", "gsd")))
        assert len(both) == size
    for split in ("dev", "test"):  # GLUES POS: UD v1.4 (CONJ, not CCONJ), and the latest GSD
        for tb in ("ancora", "gsd"):
            assert read_conllu(SHARED / "ud" / "r1.4" / f"es_{tb}-ud-{split}.conllu", upos=UPOS_V1)
        assert read_conllu(SHARED / "ud" / "latest" / f"es_gsd-ud-{split}.conllu")
    assert len(read_xnli(SHARED / "xnli" / "xnli.dev.es.tsv")) == 2490
    assert len(read_xnli(SHARED / "xnli" / "xnli.test.es.tsv")) == 5010
    assert len(read_pawsx(SHARED / "pawsx" / "dev-es.tsv")) == 2000
    assert len(read_squad(SHARED / "qa" / "xquad" / "xquad.es.json")) == 1190
    assert len(read_squad(SHARED / "qa" / "squad-es" / "dev-v1.1-es_small.json")) == 6583
    v2 = read_squad(SHARED / "qa" / "squad-es" / "dev-v2.0-es_small.json")
    assert (len(v2), sum(r["is_impossible"] for r in v2)) == (7134, 3256)


# ------------------------------------------------------------------------------------ typed datasets
def test_records_become_typed_datasets_with_class_labels(tmp_path: Path) -> None:
    from datasets import ClassLabel

    from es_zoo.tasks.datasets import to_dataset, to_dataset_dict
    from es_zoo.tasks.readers import NER_LABELS, UPOS, XNLI_LABELS

    ner = to_dataset(read_conll2002(_write(tmp_path, "esp.testa", CONLL)), "ner", NER_LABELS)
    assert ner.features["ner_tags"].feature.names == list(NER_LABELS)
    assert ner[0]["ner_tags"] == [5, 6, 0, 5, 0, 0, 0] and ner[0]["tokens"][0] == "Sao"
    ud = read_conllu(_write(tmp_path, "x.conllu", CONLLU))
    parsed = to_dataset_dict({"dev": ud[:1], "test": ud[1:]}, "parsing", UPOS)
    rels = parsed["dev"].features["deprel"].feature
    assert rels == parsed["test"].features["deprel"].feature  # one label set for every split
    assert rels.names == ["case", "det", "obj", "obl:arg", "punct", "root"] and parsed["test"][0]["head"] == [0, 1]
    pair = to_dataset(read_xnli(_write(tmp_path, "x.tsv", XNLI10)), "pair", XNLI_LABELS)
    assert isinstance(pair.features["label"], ClassLabel) and pair["label"] == [1, 2]
    with pytest.raises(ValueError, match="maybe"):
        to_dataset([{"id": "1", "sentence1": "a", "sentence2": "b", "label": "maybe"}], "pair", XNLI_LABELS)
