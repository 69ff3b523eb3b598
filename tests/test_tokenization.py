"""BETO WordPiece tokenizers: published vocabularies load exactly, trained ones cover Spanish."""

from __future__ import annotations

import gzip
import itertools
import json
import logging
import os
import re
from pathlib import Path

import numpy as np
import pytest

from es_zoo.errors import CorpusError, EsZooError
from es_zoo.recipes import TokenizerConfig
from es_zoo.resources import DATA_DIR
from es_zoo.tokenization import (
    BETO_SPECIAL_TOKENS,
    SPANISH_ALPHABET,
    build_tokenizer,
    tokenize_documents,
    train_wordpiece,
    wordpiece_from_vocab,
    wordpiece_tables,
)

# The real data beside the checkout (see ../shared/data/README.md); tests that need it skip without.
SHARED = Path(os.environ.get("ES_ZOO_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared/data"))
PUBLISHED = {
    "cased": (SHARED / "beto/cased_2M/vocab.txt", False),
    "uncased": (SHARED / "beto/uncased_2M/vocab.txt", True),
}
MISSING_FROM_PUBLISHED = "%/;$€&@#'"  # dccuchile/beto issue 11

HANDWRITTEN = [
    "¿Dónde está el niño? ¡Aquí, en la montaña!",
    "El señor Núñez pagó 20€ por el 15% de las acciones; después, 3,50 $ más.",
    "«No lo sé», dijo ella —y se fue— a las 10:30 del 1.º de enero de 1999.",
    "Escribe a info@ejemplo.es o usa #España & 'comillas' y “curvas” / barras.",
    "CANCIÓN, Canción y canción; ÁRBOL y árbol; pingüino, PINGÜINO, Ñandú.",
    "Había una vez, hacia 1850, un camión que no cabía por la vía.",
    "superextraordinariamente antidesestablecimentarianismo 123456789 1.000.000",
    "",
    "   espacios   y\ttabuladores\ny saltos  ",
]


def _paragraphs(path: Path, field: str, limit: int) -> list[str]:
    out: list[str] = []
    with gzip.open(path, "rt", encoding="utf-8") as f:
        for line in f:
            value = json.loads(line)[field]
            out.extend(p for p in (value if isinstance(value, list) else value.split("\n")) if p.strip())
            if len(out) >= limit:
                break
    return out[:limit]


@pytest.fixture(scope="module")
def corpus() -> list[str]:
    """Real Spanish paragraphs from the corpus sample that ships inside the package."""
    return _paragraphs(DATA_DIR / "eltec-es-sample.jsonl.gz", "text", 400)


@pytest.fixture(scope="module")
def trained(corpus):
    return train_wordpiece(corpus + HANDWRITTEN, vocab_size=800)


def _published(variant: str) -> tuple[Path, bool]:
    path, lowercase = PUBLISHED[variant]
    if not path.is_file():
        pytest.skip(f"published BETO vocabulary not found at {path}")
    return path, lowercase


def _reference(path: Path, lowercase: bool) -> list:
    """transformers' own BERT tokenizers built from the same vocab.txt, configured as published."""
    from transformers import BertTokenizer, BertTokenizerLegacy

    return [
        BertTokenizerLegacy(str(path), do_lower_case=lowercase, strip_accents=False),  # pure Python
        BertTokenizer(vocab=str(path), do_lower_case=lowercase, strip_accents=False),
    ]


def _write_vocab(path: Path, tokens: list[str]) -> Path:
    path.write_text("".join(t + "\n" for t in tokens), encoding="utf-8")
    return path


def _mini_vocab(path: Path) -> Path:
    """A tiny vocabulary in BETO's layout: special tokens 0..5, [unused*], then pieces."""
    tokens = list(BETO_SPECIAL_TOKENS) + ["[unused0]", "[unused1]"]
    tokens += list("abcdefghijklmnopqrstuvwxyzáéíóúñ¿?¡!.,")
    tokens += ["el", "perro", "casa", "##s", "##a", "##o", "niño", "##ito"]
    return _write_vocab(path, tokens)


def _vocab_txt(tokenizer, path: Path) -> Path:
    vocab = tokenizer.get_vocab()
    return _write_vocab(path, sorted(vocab, key=vocab.__getitem__))


# --------------------------------------------------------------------------------------------------
# Published vocabularies
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("variant", ["cased", "uncased"])
def test_published_vocab_keeps_beto_ids(variant):
    path, lowercase = _published(variant)
    tok = wordpiece_from_vocab(path, lowercase=lowercase)
    assert len(tok) == 31002
    assert tok.convert_ids_to_tokens(list(range(6))) == list(BETO_SPECIAL_TOKENS)
    named = (tok.mask_token_id, tok.pad_token_id, tok.unk_token_id, tok.cls_token_id, tok.sep_token_id)
    assert named == (0, 1, 3, 4, 5)
    assert tok.model_max_length == 512
    pair = tok("Hola.", "Adiós.")
    assert pair["input_ids"][0] == 4 and pair["input_ids"].count(5) == 2 and pair["input_ids"][-1] == 5
    assert pair["token_type_ids"] == [0, 0, 0, 0, 1, 1, 1]


@pytest.mark.parametrize("variant", ["cased", "uncased"])
def test_published_vocab_tokenizes_like_transformers_bert_on_handwritten_text(variant):
    path, lowercase = _published(variant)
    tok = wordpiece_from_vocab(path, lowercase=lowercase)
    for ref in _reference(path, lowercase):
        for text in HANDWRITTEN:
            assert tok(text)["input_ids"] == ref(text)["input_ids"], (type(ref).__name__, text)
        ours = tok(HANDWRITTEN[0], HANDWRITTEN[1])
        theirs = ref(HANDWRITTEN[0], HANDWRITTEN[1], return_token_type_ids=True)
        assert ours["input_ids"] == theirs["input_ids"]
        assert ours["token_type_ids"] == theirs["token_type_ids"]


@pytest.mark.parametrize("variant", ["cased", "uncased"])
def test_published_vocab_tokenizes_like_transformers_bert_on_eltec(variant):
    path, lowercase = _published(variant)
    eltec = SHARED / "corpus/eltec-spa.jsonl.gz"
    if not eltec.is_file():
        pytest.skip(f"ELTeC-spa corpus not found at {eltec}")
    paragraphs = _paragraphs(eltec, "paragraphs", 200)
    assert len(paragraphs) == 200
    tok = wordpiece_from_vocab(path, lowercase=lowercase)
    ours = [tok(p, truncation=False)["input_ids"] for p in paragraphs]
    for ref in _reference(path, lowercase):
        theirs = [ref(p, truncation=False)["input_ids"] for p in paragraphs]
        bad = [i for i, (a, b) in enumerate(zip(ours, theirs)) if a != b]
        assert not bad, (type(ref).__name__, len(bad), paragraphs[bad[0]][:200] if bad else "")


@pytest.mark.parametrize("variant", ["cased", "uncased"])
def test_published_vocab_turns_missing_symbols_into_unk(variant):
    path, lowercase = _published(variant)
    tok = wordpiece_from_vocab(path, lowercase=lowercase)
    for char in MISSING_FROM_PUBLISHED:
        assert tok(char, add_special_tokens=False)["input_ids"] == [3], char


def test_published_uncased_lowercases_but_keeps_accents():
    path, lowercase = _published("uncased")
    tok = wordpiece_from_vocab(path, lowercase=lowercase)
    normalize = tok.backend_tokenizer.normalizer.normalize_str
    assert normalize("Canción ÁRBOL Ñandú") == "canción árbol ñandú"
    assert tok.tokenize("CANCIÓN") == tok.tokenize("canción")
    # The pair of dccuchile/beto issue 7: stripping accents would make them one word.
    assert tok("hacía")["input_ids"] != tok("hacia")["input_ids"]


def test_published_tables_mark_specials_unused_and_continuations():
    path, lowercase = _published("cased")
    tok = wordpiece_from_vocab(path, lowercase=lowercase)
    is_special, is_cont = wordpiece_tables(tok)
    assert is_special.shape == is_cont.shape == (31002,)
    vocab = tok.get_vocab()
    unused = [i for t, i in vocab.items() if re.fullmatch(r"\[unused\d+\]", t)]
    assert len(unused) > 900
    assert set(np.flatnonzero(is_special)) == {0, 1, 2, 4, 5} | set(unused)  # [UNK] is maskable, as in Google BERT
    assert is_cont.sum() == sum(t.startswith("##") for t in vocab)
    assert is_cont[vocab["##s"]] and not is_cont[vocab["casa"]] and not is_special[vocab["casa"]]


# --------------------------------------------------------------------------------------------------
# Training
# --------------------------------------------------------------------------------------------------


def test_trained_vocab_has_beto_special_ids_and_requested_size(trained):
    assert len(trained) == 800  # the corpus fills it: vocab_size counts every entry
    assert sorted(trained.get_vocab().values()) == list(range(800))
    assert trained.convert_ids_to_tokens(list(range(6))) == list(BETO_SPECIAL_TOKENS)
    named = (trained.mask_token_id, trained.pad_token_id, trained.unk_token_id)
    assert named + (trained.cls_token_id, trained.sep_token_id) == (0, 1, 3, 4, 5)


def test_trained_vocab_size_is_an_upper_bound():
    tok = train_wordpiece(["el perro y la casa"] * 10, vocab_size=400)
    assert len(tok) < 400  # tiny text: fewer pieces than asked, never more
    assert tok.tokenize("el perro y la casa") == ["el", "perro", "y", "la", "casa"]


@pytest.mark.parametrize("with_symbols", [True, False], ids=["symbols-in-text", "symbols-absent"])
def test_trained_vocab_never_unks_spanish_characters(corpus, with_symbols):
    texts = [p for p in corpus if not any(c in p for c in MISSING_FROM_PUBLISHED)]
    if with_symbols:
        texts += HANDWRITTEN
    tok = train_wordpiece(texts, vocab_size=600)
    for char in MISSING_FROM_PUBLISHED:
        assert tok(char, add_special_tokens=False)["input_ids"] != [3], char
    # Inside words too: "20€" or "PINGÜINO" must not be one [UNK] for lack of a "##" piece.
    words = list(SPANISH_ALPHABET) + ["a" + c for c in SPANISH_ALPHABET] + ["20€", "PINGÜINO", "1.º"]
    for text in HANDWRITTEN + words:
        assert tok.unk_token_id not in tok(text)["input_ids"], text


def test_trained_cased_decodes_back_to_the_text(trained):
    for text in filter(str.strip, HANDWRITTEN):
        decoded = trained.decode(trained(text)["input_ids"], skip_special_tokens=True)
        # The WordPiece decoder re-joins pieces; only spacing around punctuation may differ.
        assert "".join(decoded.split()) == "".join(text.split())


def test_trained_uncased_lowercases_but_keeps_accents(corpus):
    tok = train_wordpiece(corpus, vocab_size=600, lowercase=True)
    normalize = tok.backend_tokenizer.normalizer.normalize_str
    assert normalize("Canción ÁRBOL Ñandú") == "canción árbol ñandú"
    assert tok("CANCIÓN PINGÜINO")["input_ids"] == tok("canción pingüino")["input_ids"]
    assert tok("hacía")["input_ids"] != tok("hacia")["input_ids"]
    assert all(t == t.lower() for t in tok.get_vocab() if t not in BETO_SPECIAL_TOKENS)


def test_trained_strip_accents_removes_them(corpus):
    tok = train_wordpiece(corpus[:100], vocab_size=500, lowercase=True, strip_accents=True)
    assert tok("Canción")["input_ids"] == tok("cancion")["input_ids"]
    assert not any(c in t for t in tok.get_vocab() for c in "áéíóú")


def test_training_is_reproducible(corpus):
    # tokenizers' trainer alone is not (huggingface/tokenizers#1794); the ids must not move either.
    a = train_wordpiece(corpus[:300], vocab_size=700)
    b = train_wordpiece(corpus[:300], vocab_size=700)
    assert a.get_vocab() == b.get_vocab()


def test_vocab_size_too_small_for_the_alphabet_is_a_clear_error(corpus):
    with pytest.raises(EsZooError, match="vocab_size=150 is too small"):
        train_wordpiece(corpus[:50], vocab_size=150)


def test_empty_training_text_is_a_corpus_error():
    with pytest.raises(CorpusError, match="no text"):
        train_wordpiece(["", "   "], vocab_size=400)


# --------------------------------------------------------------------------------------------------
# build_tokenizer: saved folders load with plain transformers
# --------------------------------------------------------------------------------------------------


def test_build_tokenizer_saves_what_autotokenizer_reloads(corpus, tmp_path):
    from transformers import AutoTokenizer

    cfg = TokenizerConfig(vocab_size=700, lowercase=False)
    tok = build_tokenizer(cfg, lambda: iter(corpus), tmp_path / "tok", model_max_length=128)
    loaded = AutoTokenizer.from_pretrained(tmp_path / "tok")
    assert type(loaded).__name__ == "TokenizersBackend"  # tokenizer.json as saved, NFC included
    assert loaded.model_max_length == 128
    # decomposed accents ("e" + U+0301) are the same words as composed ones, never [UNK]
    decomposed = "e\u0301l cafe\u0301 esta\u0301 en la cancio\u0301n"
    assert loaded(decomposed)["input_ids"] == loaded("él café está en la canción")["input_ids"]
    assert loaded.unk_token_id not in loaded(decomposed)["input_ids"]
    assert loaded.get_vocab() == tok.get_vocab()
    assert loaded.all_special_tokens == tok.all_special_tokens
    for text in corpus[:50] + HANDWRITTEN:
        assert loaded(text, truncation=False)["input_ids"] == tok(text, truncation=False)["input_ids"]
    assert loaded(HANDWRITTEN[0], HANDWRITTEN[1]).data == tok(HANDWRITTEN[0], HANDWRITTEN[1]).data
    # AutoTokenizer rebuilds BERT's pipeline from tokenizer_config.json: it must be ours.
    ours = json.loads(tok.backend_tokenizer.to_str())
    theirs = json.loads(loaded.backend_tokenizer.to_str())
    for part in ("normalizer", "pre_tokenizer", "model", "post_processor", "decoder"):
        assert theirs[part] == ours[part], part
    # vocab.txt holds the same vocabulary in the BERT format.
    again = wordpiece_from_vocab(tmp_path / "tok" / "vocab.txt", lowercase=False)
    assert again.get_vocab() == tok.get_vocab()


def test_build_tokenizer_uncased_reloads_uncased(corpus, tmp_path):
    from transformers import AutoTokenizer

    build_tokenizer(TokenizerConfig(vocab_size=600, lowercase=True), lambda: corpus, tmp_path)
    loaded = AutoTokenizer.from_pretrained(tmp_path)
    assert loaded.tokenize("CANCIÓN") == loaded.tokenize("canción")
    assert loaded("hacía")["input_ids"] != loaded("hacia")["input_ids"]


def test_build_tokenizer_caps_training_text(tmp_path):
    texts = ["casa " * 300, "perro " * 300]
    cfg = TokenizerConfig(vocab_size=400, max_training_chars=1000)
    tok = build_tokenizer(cfg, lambda: texts, tmp_path)
    assert "casa" in tok.get_vocab() and "perro" not in tok.get_vocab()


def test_build_tokenizer_with_vocab_file_uses_it_as_is(tmp_path):
    from transformers import AutoTokenizer

    lines = _mini_vocab(tmp_path / "vocab.txt").read_text(encoding="utf-8").splitlines()

    def no_text():
        raise AssertionError("a published vocabulary needs no training text")

    cfg = TokenizerConfig(vocab_file=str(tmp_path / "vocab.txt"), lowercase=True)
    tok = build_tokenizer(cfg, no_text, tmp_path / "out")
    assert tok.convert_ids_to_tokens(list(range(len(lines)))) == lines
    assert tok.tokenize("El perros, CASAS") == ["el", "perro", "##s", ",", "casa", "##s"]
    ids = tok("El perros")["input_ids"]
    assert ids == [4, lines.index("el"), lines.index("perro"), lines.index("##s"), 5]
    assert AutoTokenizer.from_pretrained(tmp_path / "out")("El perros")["input_ids"] == ids


def test_missing_vocab_file_is_a_clear_error(tmp_path):
    missing = tmp_path / "beto" / "vocab.txt"
    with pytest.raises(EsZooError, match=re.escape(str(missing)) + ".* does not exist"):
        build_tokenizer(TokenizerConfig(vocab_file=str(missing)), lambda: [], tmp_path / "out")
    with pytest.raises(EsZooError, match="does not exist"):
        wordpiece_from_vocab(missing, lowercase=False)


def test_vocab_file_that_is_not_bert_wordpiece_is_rejected(tmp_path):
    with pytest.raises(EsZooError, match=r"lacks \[UNK\]"):
        wordpiece_from_vocab(_write_vocab(tmp_path / "plain.txt", ["hola", "mundo"]), lowercase=False)
    repeated = _write_vocab(tmp_path / "repeated.txt", list(BETO_SPECIAL_TOKENS) + ["hola", "hola"])
    with pytest.raises(EsZooError, match="line 8 repeats line 7"):
        wordpiece_from_vocab(repeated, lowercase=False)


# --------------------------------------------------------------------------------------------------
# Tables for the masking objective, batched encoding for the data pipeline
# --------------------------------------------------------------------------------------------------


def test_wordpiece_tables_on_a_beto_layout_vocab(tmp_path):
    tok = wordpiece_from_vocab(_mini_vocab(tmp_path / "vocab.txt"), lowercase=True)
    is_special, is_cont = wordpiece_tables(tok)
    assert is_special.dtype == is_cont.dtype == np.bool_
    assert is_special.shape == is_cont.shape == (len(tok),)
    assert np.flatnonzero(is_special).tolist() == [0, 1, 2, 4, 5, 6, 7]  # specials but [UNK], two [unused*]
    vocab = tok.get_vocab()
    assert {t for t, i in vocab.items() if is_cont[i]} == {"##s", "##a", "##o", "##ito"}


def test_wordpiece_tables_on_a_trained_vocab(trained):
    is_special, is_cont = wordpiece_tables(trained)
    assert is_special.shape == is_cont.shape == (len(trained),)
    assert np.flatnonzero(is_special).tolist() == [0, 1, 2, 4, 5]
    for token, i in trained.get_vocab().items():
        assert is_cont[i] == token.startswith("##"), token


def test_tokenize_documents_returns_long_documents_whole(trained, tmp_path):
    pool = " ".join(HANDWRITTEN).split()
    words = [pool[i] for i in np.random.default_rng(0).integers(0, len(pool), size=5000)]
    document = " ".join(words)
    expected = list(itertools.chain.from_iterable(
        trained.backend_tokenizer.encode(w, add_special_tokens=False).ids for w in words
    ))
    assert len(expected) > 10 * trained.model_max_length

    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append
    logger = logging.getLogger("transformers")
    logger.addHandler(handler)
    # Settings a caller may have left on the tokenizer must neither cut nor pad the documents.
    trained.backend_tokenizer.enable_truncation(max_length=trained.model_max_length)
    trained.backend_tokenizer.enable_padding(pad_id=1, pad_token="[PAD]", length=2048)
    try:
        out = list(tokenize_documents(trained, [document, "", "¿Qué tal?"], batch_size=2))
        ours = [r.getMessage() for r in records]
        assert trained.backend_tokenizer.truncation is not None  # left as the caller set it
        # The check can fail: the usual call path does warn about such a document.
        wordpiece_from_vocab(_vocab_txt(trained, tmp_path / "vocab.txt"), lowercase=False)(document)
    finally:
        logger.removeHandler(handler)
        trained.backend_tokenizer.no_truncation()
        trained.backend_tokenizer.no_padding()
    assert not ours
    assert any("longer than the specified maximum" in r.getMessage() for r in records)

    assert len(out) == 3
    assert out[0].dtype == np.int32
    assert out[0].tolist() == expected
    assert out[1].size == 0
    assert out[2].tolist() == trained("¿Qué tal?", add_special_tokens=False)["input_ids"]


def test_tokenize_documents_keeps_order_across_batches(trained):
    docs = [f"documento número {i}: {HANDWRITTEN[i % 7]}" for i in range(25)]
    out = list(tokenize_documents(trained, iter(docs), batch_size=4))
    assert [a.tolist() for a in out] == [trained(d, add_special_tokens=False)["input_ids"] for d in docs]


def test_tokenize_documents_rejects_bad_input(trained):
    with pytest.raises(EsZooError, match="batch_size"):
        list(tokenize_documents(trained, ["hola"], batch_size=0))
    with pytest.raises(CorpusError, match="not a str"):
        list(tokenize_documents(trained, ["hola", None]))
