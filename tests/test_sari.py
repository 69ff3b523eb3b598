"""SARI reproduces both reference implementations.

Every expected number below was produced by running a reference implementation on the same input (in a
scratch folder outside the repository) and is frozen here:

- ``evaluate``: Hugging Face evaluate's ``metrics/sari/sari.py`` (huggingface/evaluate @ a7dd338, file last
  changed in c447fc8): ``Sari().compute(...)["sari"]``; the ``keep``/``delete``/``add`` components were
  recorded from the same file's ``SARIngram`` during ``SARIsent(normalize(...))`` (``compute`` returns only
  ``sari``), and averaged over orders and sentences the way ``SARIsent``/``compute`` average ``sari``.
- ``SARI.py``: the authors' script (cocoxu/simplification @ 35570464, file last changed in 0210f15):
  ``SARIsent`` on the pre-tokenized text (x100; the mean over sentences for a corpus), components recorded
  from its ``SARIngram`` the same way.

Both references agree with es_zoo bit for bit on these cases and on 3 x 200 randomised Spanish cases
(/tmp/sari_check/compare.py, see docs/metrics.md); the tolerance below only allows for other Python builds.
"""

from __future__ import annotations

import doctest
import importlib

import pytest

from es_zoo.errors import EsZooError
from es_zoo.metrics._common import MetricInputError
from es_zoo.metrics.sari import sari

# the module, not the function es_zoo.metrics exports under the same name
sari_module = importlib.import_module("es_zoo.metrics.sari")

TOL = 1e-9
KEYS = ("sari", "keep", "delete", "add")


def assert_scores(got: dict, expected: dict) -> None:
    for key, value in expected.items():
        assert got[key] == pytest.approx(value, abs=TOL), (key, got[key], value)


# ------------------------------------------------------------------ documented test vectors
SRC_95 = "About 95 species are currently accepted ."
REFS_95 = ["About 95 species are currently known .", "About 95 species are now accepted .",
           "95 species are now accepted ."]


def test_evaluate_documented_vectors() -> None:
    # evaluate's docstring and README: {'sari': 26.953601953601954}
    assert sari([SRC_95], ["About 95 you now get in ."], [REFS_95])["sari"] == pytest.approx(26.953601953601954,
                                                                                              abs=TOL)
    # README "How to use": the same sentences untokenized (13a splits the final period): same score
    assert sari(["About 95 species are currently accepted."], ["About 95 you now get in."],
                [[r.replace(" .", ".") for r in REFS_95]])["sari"] == pytest.approx(26.953601953601954, abs=TOL)
    # README "Perfect match": {'sari': 100.0}
    assert sari([SRC_95], [SRC_95], [[SRC_95]])["sari"] == 100.0


# SARI.py's main() prints SARIsent for these three outputs (evaluate's numbers alongside, from its file)
MAIN_95 = {
    "About 95 you now get in .": (  # SARI.py prints 0.2682782411698074
        {"sari": 26.953601953601954, "keep": 22.527472527472526, "delete": 50.0, "add": 8.333333333333332},
        {"sari": 26.827824116980743, "keep": 22.150139017608893, "delete": 50.0, "add": 8.333333333333332}),
    "About 95 species are now agreed .": (  # SARI.py prints 0.5889995423074248
        {"sari": 61.709656084656075, "keep": 79.375, "delete": 73.6111111111111, "add": 32.142857142857146},
        {"sari": 58.89995423074248, "keep": 70.9458944382592, "delete": 73.6111111111111, "add": 32.142857142857146}),
    "About 95 species are currently agreed .": (  # SARI.py prints 0.5071608864657479
        {"sari": 50.88681849551415, "keep": 77.66045548654245, "delete": 75.0, "add": 0.0},
        {"sari": 50.71608864657479, "keep": 77.14826593972435, "delete": 75.0, "add": 0.0}),
}


@pytest.mark.parametrize("prediction", list(MAIN_95))
def test_original_script_vectors(prediction: str) -> None:
    by_evaluate, by_sari_py = MAIN_95[prediction]
    assert_scores(sari([SRC_95], [prediction], [REFS_95]), by_evaluate)
    assert_scores(sari([SRC_95], [prediction], [REFS_95], variant="original", tokenize="none"), by_sari_py)


def test_perfect_match_is_not_100_in_the_original() -> None:
    # SARI.py: 0/0 counts 0, so a copy of the source that equals the only reference gets delete = add = 0
    assert_scores(sari([SRC_95], [SRC_95], [[SRC_95]], variant="original", tokenize="none"),
                  {"sari": 33.33333333333333, "keep": 100.0, "delete": 0.0, "add": 0.0})


# ------------------------------------------------------------------ varied Spanish cases
# name: (source, prediction, references), all pre-tokenized so that both references read the same tokens.
CASES = {
    "split_rephrase": ("El Museo del Prado , que fue inaugurado en 1819 , está en Madrid .",
                       "El Museo del Prado está en Madrid . Fue inaugurado en 1819 .",
                       ["El Museo del Prado está en Madrid . Se inauguró en 1819 .",
                        "El museo está en Madrid . Fue inaugurado en 1819 ."]),
    "four_refs": ("La población de la región aumentó rápidamente durante el siglo XIX debido a la inmigración .",
                  "La población de la región creció mucho en el siglo XIX por la inmigración .",
                  ["La población de la región creció mucho en el siglo XIX .",
                   "La región tuvo más habitantes en el siglo XIX por la inmigración .",
                   "En el siglo XIX llegaron muchos inmigrantes . La población aumentó .",
                   "La población de la región aumentó rápido en el siglo XIX ."]),
    "empty_prediction": ("Cervantes escribió el Quijote en 1605 .", "",
                         ["Cervantes escribió el Quijote .", "El Quijote es de 1605 ."]),
    "copy_of_source": ("Gabriel García Márquez nació en Aracataca , Colombia , en 1927 .",
                       "Gabriel García Márquez nació en Aracataca , Colombia , en 1927 .",
                       ["García Márquez nació en Aracataca en 1927 .",
                        "Gabriel García Márquez nació en Colombia en 1927 ."]),
    "equals_reference": ("El niño , que tenía sueño , se durmió pronto .",
                         "El niño tenía sueño . Se durmió pronto .",
                         ["El niño tenía sueño . Se durmió pronto ."]),
    "one_token": ("Hola", "Buenas", ["Buenas"]),
    "three_tokens": ("¡ Qué bien !", "¡ Muy bien !", ["Muy bien .", "¡ Qué bien !"]),
    "keep_recall_counts": ("muy bien", "bien", ["muy bien", "muy"]),  # cocoxu/simplification issue #6
    "repeated_ngrams": ("el niño y el perro y el gato juegan en el parque de la ciudad .",
                        "el niño y el perro juegan . el gato juega en el parque .",
                        ["el niño , el perro y el gato juegan en el parque .",
                         "el niño y el perro juegan en el parque . el gato también .",
                         "los niños y los animales juegan en el parque de la ciudad ."]),
    "casing": ("MADRID es la Capital de ESPAÑA desde 1561 .", "Madrid es la capital de España .",
               ["Madrid es la capital de España .", "madrid es la capital de españa desde 1561 ."]),
}

# name: (evaluate's numbers, SARI.py's numbers)
EXPECTED = {
    "split_rephrase": (  # the two agree here: no empty set at any order, and the keep recalls coincide
        {"sari": 77.22222222222221, "keep": 84.375, "delete": 100.0, "add": 47.291666666666664},
        {"sari": 77.22222222222221, "keep": 84.375, "delete": 100.0, "add": 47.291666666666664}),
    "four_refs": (  # keep recall: summed counts (evaluate) vs per-type average (SARI.py)
        {"sari": 72.64920997403345, "keep": 72.45221159773469, "delete": 95.34451659451659, "add": 50.150901729849096},
        {"sari": 71.7625131268916, "keep": 69.79212105630911, "delete": 95.34451659451659, "add": 50.150901729849096}),
    "empty_prediction": (  # the prediction is the one token "": nothing kept, everything deleted
        {"sari": 21.79563492063492, "keep": 0.0, "delete": 65.38690476190476, "add": 0.0},
        {"sari": 21.79563492063492, "keep": 0.0, "delete": 65.38690476190476, "add": 0.0}),
    "copy_of_source": (  # nothing deleted or added: 0/0 is 1 in evaluate, 0 in SARI.py
        {"sari": 62.48408454290807, "keep": 62.45225362872422, "delete": 100.0, "add": 25.0},
        {"sari": 20.817417876241407, "keep": 62.45225362872422, "delete": 0.0, "add": 0.0}),
    "equals_reference": (  # no new unigram: SARI.py's add is 0 at order 1
        {"sari": 100.0, "keep": 100.0, "delete": 100.0, "add": 100.0},
        {"sari": 91.66666666666666, "keep": 100.0, "delete": 100.0, "add": 75.0}),
    "one_token": (  # no 2-, 3-, 4-grams (cocoxu/simplification issue #17)
        {"sari": 100.0, "keep": 100.0, "delete": 100.0, "add": 100.0},
        {"sari": 16.666666666666664, "keep": 0.0, "delete": 25.0, "add": 25.0}),
    "three_tokens": (
        {"sari": 35.78282828282828, "keep": 28.18181818181818, "delete": 50.0, "add": 29.166666666666664},
        {"sari": 35.60457516339869, "keep": 27.647058823529413, "delete": 50.0, "add": 29.166666666666664}),
    "keep_recall_counts": (
        {"sari": 74.16666666666667, "keep": 60.0, "delete": 62.5, "add": 100.0},
        {"sari": 8.333333333333332, "keep": 12.5, "delete": 12.5, "add": 0.0}),
    "repeated_ngrams": (
        {"sari": 43.19458877367611, "keep": 53.77793628150261, "delete": 56.950757575757585, "add": 18.855072463768117},
        {"sari": 41.73376016240247, "keep": 49.39545044768169, "delete": 56.950757575757585, "add": 18.855072463768117}),
    "casing": (  # both lower-case by default
        {"sari": 78.70836511568777, "keep": 86.12509534706332, "delete": 50.0, "add": 100.0},
        {"sari": 66.98475135975136, "keep": 75.95425407925408, "delete": 50.0, "add": 75.0}),
}


@pytest.mark.parametrize("name", list(CASES))
def test_sentence_matches_evaluate(name: str) -> None:
    source, prediction, references = CASES[name]
    got = sari([source], [prediction], [references])
    assert_scores(got, EXPECTED[name][0])
    assert got["sentences"] == 1
    assert got["sari"] == pytest.approx((got["keep"] + got["delete"] + got["add"]) / 3, abs=TOL)


@pytest.mark.parametrize("name", list(CASES))
def test_sentence_matches_original_script(name: str) -> None:
    source, prediction, references = CASES[name]
    assert_scores(sari([source], [prediction], [references], variant="original", tokenize="none"), EXPECTED[name][1])
    # SARI.py lower-cases inside SARIsent, so lowercase=False matches it on text lower-cased beforehand
    low = sari([source.lower()], [prediction.lower()], [[r.lower() for r in references]], variant="original",
               tokenize="none", lowercase=False)
    assert_scores(low, EXPECTED[name][1])


def test_corpus_is_the_mean_of_sentences() -> None:
    sources = [c[0] for c in CASES.values()]
    predictions = [c[1] for c in CASES.values()]
    references = [c[2] for c in CASES.values()]  # 1 to 4 references per sentence
    # evaluate: Sari().compute(...) == {'sari': 66.60036004986576}
    assert_scores(sari(sources, predictions, references),
                  {"sari": 66.60036004986576, "keep": 64.73643150368432, "delete": 78.0182178932179,
                   "add": 57.04643075269505})
    # SARI.py: mean of SARIsent x100
    assert_scores(sari(sources, predictions, references, variant="original", tokenize="none"),
                  {"sari": 45.25875414982094, "keep": 48.21161380354986, "delete": 55.518217893217894,
                   "add": 32.04643075269505})
    result = sari(sources, predictions, references)
    assert set(result) == {"sari", "keep", "delete", "add", "sentences", "variant", "tokenize", "lowercase"}
    assert (result["sentences"], result["variant"], result["tokenize"], result["lowercase"]) == \
        (len(CASES), "evaluate", "13a", True)


RAW = ("¿Sabías que «Don Quijote» se publicó en 1605?", "«Don Quijote» se publicó en 1605.",
       ["«Don Quijote» salió en 1605.", "Don Quijote se publicó en 1605."])


@pytest.mark.parametrize("tokenize, expected", [
    # evaluate: SARIsent(normalize(s, tokenizer=...)) for each of its tokenizers
    ("13a", {"sari": 62.14285714285713, "keep": 53.80952380952381, "delete": 100.0, "add": 32.61904761904761}),
    ("intl", {"sari": 65.18213268213267, "keep": 54.59401709401709, "delete": 100.0, "add": 40.95238095238095}),
    ("none", {"sari": 57.779581529581534, "keep": 39.52922077922077, "delete": 100.0, "add": 33.80952380952381}),
])
def test_raw_spanish_text_and_tokenizers(tokenize: str, expected: dict) -> None:
    assert_scores(sari([RAW[0]], [RAW[1]], [RAW[2]], tokenize=tokenize), expected)


def test_original_on_13a_tokenized_text() -> None:
    # SARI.py's SARIsent fed evaluate's normalize(..., "13a") output: the same numbers as evaluate here
    assert_scores(sari([RAW[0]], [RAW[1]], [RAW[2]], variant="original"),
                  {"sari": 62.14285714285713, "keep": 53.80952380952381, "delete": 100.0, "add": 32.61904761904761})


def test_lowercase_false() -> None:
    # evaluate: SARIsent(normalize(s, lowercase=False)) on the "casing" case
    source, prediction, references = CASES["casing"]
    assert_scores(sari([source], [prediction], [references], lowercase=False),
                  {"sari": 74.91809116809117, "keep": 63.888888888888886, "delete": 89.64285714285714,
                   "add": 71.22252747252747})


def test_module_docstring_example() -> None:
    result = doctest.testmod(sari_module, verbose=False)
    assert result.attempted >= 1 and result.failed == 0


# ------------------------------------------------------------------ bad input
@pytest.mark.parametrize("args, pattern", [
    ((["a b", "c"], ["a"], [["a"], ["c"]]), r"2 sources, 1 predictions and 2 reference lists"),
    ((["a b"], ["a"], [["a"], ["b"]]), r"1 sources, 1 predictions and 2 reference lists"),
    (([], [], []), r"no sentences"),
    ((["a", "b"], ["a", "b"], [["a"], []]), r"references\[1\] is empty"),
    ((["a"], ["a"], ["a b"]), r"references\[0\] must be a list"),
    ((["a"], [None], [["a"]]), r"predictions\[0\] must be a string"),
    ((["a", 3], ["a", "b"], [["a"], ["b"]]), r"sources\[1\] must be a string"),
    ((["a"], ["a"], [["a", 1]]), r"references\[0\]\[1\] must be a string"),
    (("a", "a", [["a"]]), r"sources must be a list"),
])
def test_bad_input(args: tuple, pattern: str) -> None:
    with pytest.raises(MetricInputError, match=pattern):
        sari(*args)


def test_bad_options() -> None:
    with pytest.raises(MetricInputError, match="tokenize='moses'"):
        sari(["a"], ["a"], [["a"]], tokenize="moses")
    with pytest.raises(MetricInputError, match="variant='easse'"):
        sari(["a"], ["a"], [["a"]], variant="easse")
    assert issubclass(MetricInputError, EsZooError)
