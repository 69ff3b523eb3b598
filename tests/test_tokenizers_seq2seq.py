"""BARTO's byte-level BPE and T5S's SentencePiece unigram, and the tables the objectives need."""

from __future__ import annotations

import itertools
import json
import types

import numpy as np
import pytest

from es_zoo.corpus import open_corpus
from es_zoo.errors import CorpusError, EsZooError, ObjectiveError
from es_zoo.recipes import CorpusConfig, TokenizerConfig
from es_zoo.sentences import sentence_starts
from es_zoo.tokenization import (
    BART_SPECIAL_TOKENS,
    T5_SPECIAL_TOKENS,
    build_tokenizer,
    mask_token_id,
    ordinary_token_ids,
    sentinel_ids,
    tokenize_documents,
    train_byte_level_bpe,
    train_sentencepiece_unigram,
    train_wordpiece,
    word_start_table,
    wordpiece_tables,
)

BPE_SIZE = 1200
UNIGRAM_SIZE = 1500

SPANISH = [
    "¿Dónde está el niño? ¡Aquí, en la montaña!",
    "El señor Núñez pagó 3,5 € por el 20 % de 1.000.000 de acciones; era el 1.º y la 2.ª vez.",
    "«No lo sé», dijo ella —y se fue— a las 10:30. “Comillas” y ‘simples’, d'Artagnan y l'àvia.",
    "CANCIÓN, Canción, PINGÜINO, pingüino, Ñandú, ÁRBOL… ¡¿Cómo?! 😀 漢字 ß ½",
    "Línea uno.\nLínea dos.\n\nTras una línea en blanco, dos  espacios, un\ttabulador y 3 . 5 .",
    "Símbolos: # $ & @ / ; ' \" < > [ ] { } | \\ ^ _ ` ~ <0x41> <extra_id_x> </b>",
]


@pytest.fixture(scope="module")
def corpus() -> list[str]:
    """~250 k characters of the embedded ELTeC novels, as documents of 25 paragraphs."""
    novels = open_corpus(CorpusConfig(source="embedded")).documents("train")
    paragraphs = itertools.islice((p for novel in novels for p in novel.split("\n")), 2000)
    docs, chunk, total = [], [], 0
    for paragraph in paragraphs:
        chunk.append(paragraph)
        total += len(paragraph) + 1
        if len(chunk) == 25:
            docs.append("\n".join(chunk))
            chunk = []
        if total > 250_000:
            break
    return docs + (["\n".join(chunk)] if chunk else [])


@pytest.fixture(scope="module")
def heldout() -> list[str]:
    novel = next(iter(open_corpus(CorpusConfig(source="embedded")).documents("heldout")))
    paragraphs = novel.split("\n")
    return ["\n".join(paragraphs[i : i + 10]) for i in range(0, 60, 10)]


@pytest.fixture(scope="module")
def bpe(corpus):
    return train_byte_level_bpe(corpus, vocab_size=BPE_SIZE)


@pytest.fixture(scope="module")
def unigram(corpus):
    return train_sentencepiece_unigram(corpus, vocab_size=UNIGRAM_SIZE)


@pytest.fixture(scope="module")
def wordpiece(corpus):
    return train_wordpiece(corpus, vocab_size=800)


def _plain_cfg(**fields):
    """Every field build_tokenizer reads, as a plain object (build_tokenizer checks it with the recipe schema)."""
    base = dict(kind="wordpiece", vocab_size=600, lowercase=False, strip_accents=False, min_frequency=2,
                vocab_file=None, max_training_chars=None, extra_ids=0)
    return types.SimpleNamespace(**{**base, **fields})


def _never_called():
    raise AssertionError("the error must come before any text is read")


def _ids(tok, text):
    return tok(text, add_special_tokens=False)["input_ids"]


# --------------------------------------------------------------------------------------------------
# Layout and framing
# --------------------------------------------------------------------------------------------------


def test_bpe_has_bart_layout(bpe):
    from tokenizers.pre_tokenizers import ByteLevel

    assert len(bpe) == BPE_SIZE  # the corpus fills it: vocab_size counts every entry
    assert sorted(bpe.get_vocab().values()) == list(range(BPE_SIZE))
    assert bpe.convert_ids_to_tokens([0, 1, 2, 3]) == list(BART_SPECIAL_TOKENS)
    assert bpe.convert_ids_to_tokens(BPE_SIZE - 1) == "<mask>"
    named = (bpe.bos_token_id, bpe.pad_token_id, bpe.eos_token_id, bpe.unk_token_id, bpe.mask_token_id)
    assert named == (0, 1, 2, 3, BPE_SIZE - 1)
    assert (bpe.cls_token_id, bpe.sep_token_id) == (0, 2)
    # The 256 byte images follow the special tokens, so no byte is ever <unk>.
    assert set(bpe.convert_ids_to_tokens(list(range(4, 260)))) == set(ByteLevel.alphabet())
    assert bpe.model_max_length == 1024


def test_bpe_frames_like_bart(bpe):
    a, b = _ids(bpe, "Hola."), _ids(bpe, "¿Qué tal?")
    assert bpe("Hola.")["input_ids"] == [0] + a + [2]
    assert bpe("Hola.", "¿Qué tal?")["input_ids"] == [0] + a + [2, 2] + b + [2]
    assert bpe.decode(bpe("Hola.")["input_ids"]) == "<s>Hola.</s>"


def test_bpe_mask_takes_the_space_before_it_like_bart(bpe):
    assert bpe.added_tokens_decoder[BPE_SIZE - 1].lstrip
    ids = _ids(bpe, "un <mask> día")
    assert ids == _ids(bpe, "un") + [BPE_SIZE - 1] + _ids(bpe, " día")
    assert _ids(bpe, "un<mask> día") == ids


def test_unigram_has_t5_layout(unigram):
    size = UNIGRAM_SIZE
    assert len(unigram) == size
    assert sorted(unigram.get_vocab().values()) == list(range(size))
    assert unigram.convert_ids_to_tokens([0, 1, 2]) == list(T5_SPECIAL_TOKENS)
    assert (unigram.pad_token_id, unigram.eos_token_id, unigram.unk_token_id) == (0, 1, 2)
    assert unigram.bos_token_id is None and unigram.mask_token_id is None
    assert unigram.convert_ids_to_tokens(list(range(3, 259))) == [f"<0x{b:02X}>" for b in range(256)]
    assert unigram.convert_tokens_to_ids("<extra_id_0>") == size - 1
    assert unigram.convert_tokens_to_ids("<extra_id_99>") == size - 100
    assert all(unigram.convert_tokens_to_ids(f"<extra_id_{k}>") == size - 1 - k for k in range(100))
    assert {f"<extra_id_{k}>" for k in range(100)} <= set(unigram.all_special_tokens)
    # Learned pieces sit between the byte pieces and the sentinels, most used (highest score) first.
    vocab = json.loads(unigram.backend_tokenizer.to_str())["model"]["vocab"]
    scores = [score for _, score in vocab[259 : size - 100]]
    assert scores == sorted(scores, reverse=True)
    assert unigram.model_max_length == 512


def test_unigram_frames_like_t5(unigram):
    a, b = _ids(unigram, "Hola."), _ids(unigram, "¿Qué tal?")
    assert unigram("Hola.")["input_ids"] == a + [1]
    assert unigram("Hola.", "¿Qué tal?")["input_ids"] == a + [1] + b + [1]
    # Sentinels in text are one special token each, dropped by skip_special_tokens.
    ids = unigram("Hola <extra_id_0> mundo <extra_id_1>.")["input_ids"]
    assert ids.count(UNIGRAM_SIZE - 1) == 1 and ids.count(UNIGRAM_SIZE - 2) == 1
    assert unigram.decode(ids, skip_special_tokens=True) == "Hola  mundo ."


# --------------------------------------------------------------------------------------------------
# Text round trips
# --------------------------------------------------------------------------------------------------


def test_bpe_round_trips_any_text_exactly(bpe, heldout):
    for text in SPANISH + heldout + ["  espacio inicial", "tab\tfinal\n"]:
        ids = bpe(text)["input_ids"]
        assert bpe.unk_token_id not in ids, text
        assert bpe.decode(ids, skip_special_tokens=True) == text


def test_unigram_round_trips_spanish_exactly(unigram, heldout):
    for text in SPANISH + heldout:
        ids = unigram(text)["input_ids"]
        assert unigram.unk_token_id not in ids, text
        assert unigram.decode(ids, skip_special_tokens=True) == text
    # As in SentencePiece, a space at the very start of a text is lost.
    assert unigram.decode(_ids(unigram, " hola")) == "hola"


def test_unigram_keeps_spanish_characters_and_newlines(unigram):
    normalize = unigram.backend_tokenizer.normalizer.normalize_str
    assert normalize("1.º 2.ª … ¿¡«»“”") == "1.º 2.ª … ¿¡«»“”"  # no NFKC: º is not o, … is not ...
    assert normalize("cancio\u0301n") == "canción"  # NFC
    assert _ids(unigram, "cancio\u0301n") == _ids(unigram, "canción")
    tokens = unigram.tokenize("uno.\ndos\n\ntres")
    assert tokens.count("\n") == 3  # each newline a token of its own
    assert tokens[tokens.index("\n") + 1 :][:2] == ["dos", "\n"] or "dos" not in tokens
    assert unigram.tokenize("º")[-1] == "º" and unigram.tokenize("ª")[-1] == "ª"


def test_bpe_is_bart_pipeline_behind_nfc(bpe, tmp_path):
    """BART's own pipeline (transformers' BART class) with Unicode NFC in front, kept on reload."""
    from transformers import AutoTokenizer, RobertaTokenizer

    model = json.loads(bpe.backend_tokenizer.to_str())["model"]
    bart = RobertaTokenizer(vocab=model["vocab"], merges=[tuple(m) for m in model["merges"]],
                            add_prefix_space=False, trim_offsets=True, mask_token="<mask>")
    ours, theirs = json.loads(bpe.backend_tokenizer.to_str()), json.loads(bart.backend_tokenizer.to_str())
    for part in ("pre_tokenizer", "post_processor", "decoder"):
        assert ours[part] == theirs[part], part
    assert ours["normalizer"] == {"type": "NFC"} and theirs["normalizer"] is None
    bpe.save_pretrained(tmp_path)
    loaded = AutoTokenizer.from_pretrained(tmp_path)
    decomposed, composed = "e\u0301l cafe\u0301 esta\u0301 en la cancio\u0301n", "él café está en la canción"
    assert decomposed != composed
    assert _ids(loaded, decomposed) == _ids(loaded, composed) == _ids(bpe, composed)
    assert "token_type_ids" not in loaded("a", "b")  # BART has no segment ids


def test_unigram_falls_back_to_bytes(unigram):
    assert unigram.tokenize("😀") == ["▁", "<0xF0>", "<0x9F>", "<0x98>", "<0x80>"]
    assert unigram.decode(_ids(unigram, "漢字 y 😀")) == "漢字 y 😀"
    # Byte pieces (and sentinel names) are never matched in text: "<0x41>" is not "A".
    ids = _ids(unigram, "<0x41>")
    assert unigram.convert_tokens_to_ids("<0x41>") not in ids
    assert unigram.decode(ids) == "<0x41>"


# --------------------------------------------------------------------------------------------------
# Saved folders load with plain transformers
# --------------------------------------------------------------------------------------------------


def _same_backend(a, b):
    ours, theirs = json.loads(a.backend_tokenizer.to_str()), json.loads(b.backend_tokenizer.to_str())
    for part in ("added_tokens", "normalizer", "pre_tokenizer", "model", "post_processor", "decoder"):
        assert theirs[part] == ours[part], part


@pytest.mark.parametrize(
    "kind, size, extra_ids, cls",
    [
        ("byte_level_bpe", BPE_SIZE, 0, "TokenizersBackend"),
        ("sentencepiece_unigram", UNIGRAM_SIZE, 100, "TokenizersBackend"),
    ],
)
def test_autotokenizer_reloads_the_same_tokenizer(corpus, heldout, tmp_path, kind, size, extra_ids, cls):
    from transformers import AutoTokenizer

    cfg = TokenizerConfig(kind=kind, vocab_size=size, extra_ids=extra_ids)
    tok = build_tokenizer(cfg, lambda: iter(corpus), tmp_path, model_max_length=256)
    assert not (tmp_path / "vocab.txt").exists()  # the BERT file is for WordPiece only
    loaded = AutoTokenizer.from_pretrained(tmp_path)
    assert type(loaded).__name__ == type(tok).__name__ == cls
    assert len(loaded) == len(tok) == size and loaded.model_max_length == 256
    assert loaded.get_vocab() == tok.get_vocab()
    assert loaded.all_special_tokens == tok.all_special_tokens
    _same_backend(tok, loaded)
    texts = SPANISH + heldout + ["un <mask> día", "hola <extra_id_0> y <extra_id_7>"]
    for text in texts:
        ids = tok(text)["input_ids"]
        assert loaded(text)["input_ids"] == ids, text
        assert loaded.decode(ids) == tok.decode(ids)
    assert loaded(SPANISH[0], SPANISH[1]).data == tok(SPANISH[0], SPANISH[1]).data
    if kind == "byte_level_bpe":
        assert loaded.mask_token_id == size - 1 and loaded.added_tokens_decoder[size - 1].lstrip
    else:
        assert loaded.convert_tokens_to_ids("<extra_id_0>") == size - 1
        assert sentinel_ids(loaded) == (size - 1, 100)


def test_trained_bpe_is_the_trainer_output_unchanged(corpus, bpe):
    """The saved wrapper encodes exactly as the raw trained byte-level BPE."""
    from tokenizers import Tokenizer, normalizers, pre_tokenizers
    from tokenizers.models import BPE
    from tokenizers.trainers import BpeTrainer

    raw = Tokenizer(BPE())
    raw.normalizer = normalizers.NFC()
    raw.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    trainer = BpeTrainer(vocab_size=BPE_SIZE - 1, min_frequency=2, show_progress=False,
                         special_tokens=list(BART_SPECIAL_TOKENS), initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    raw.train_from_iterator(corpus, trainer=trainer)
    for text in SPANISH + corpus[:5]:
        assert _ids(bpe, text) == raw.encode(text, add_special_tokens=False).ids


# --------------------------------------------------------------------------------------------------
# Reproducibility, errors
# --------------------------------------------------------------------------------------------------


def test_bpe_training_is_reproducible(corpus):
    a = train_byte_level_bpe(corpus[:4], vocab_size=600)
    b = train_byte_level_bpe(corpus[:4], vocab_size=600)
    assert a.backend_tokenizer.to_str() == b.backend_tokenizer.to_str()  # vocabulary and merges


def test_unigram_training_is_reproducible(corpus):
    # The raw tokenizers trainer gives different scores (and so ids) on each call, even in one
    # process; train_sentencepiece_unigram recomputes them from integer counts.
    a = train_sentencepiece_unigram(corpus[:3], vocab_size=900)
    b = train_sentencepiece_unigram(corpus[:3], vocab_size=900)
    assert a.backend_tokenizer.to_str() == b.backend_tokenizer.to_str()


def test_vocab_size_too_small_is_a_clear_error(corpus):
    with pytest.raises(EsZooError, match=r"vocab_size=261 is too small.*256 bytes"):
        train_byte_level_bpe(corpus[:1], vocab_size=261)
    with pytest.raises(EsZooError, match=r"vocab_size=470 is too small.*100 sentinels.*of the alphabet"):
        train_sentencepiece_unigram(corpus[:1], vocab_size=470)
    # The training text's own characters count too: here 20 Greek letters on top of the alphabet.
    greek = "".join(chr(c) for c in range(0x3B1, 0x3C5))
    with pytest.raises(EsZooError, match=r"vocab_size=500 is too small.*alphabet and the training text"):
        train_sentencepiece_unigram(["hola " + greek], vocab_size=500)
    with pytest.raises(EsZooError, match="too small"):
        build_tokenizer(
            _plain_cfg(kind="sentencepiece_unigram", vocab_size=300, extra_ids=100), lambda: corpus[:1], "/nonexistent"
        )


@pytest.mark.parametrize("train", [train_byte_level_bpe, train_sentencepiece_unigram])
def test_empty_or_bad_training_text_is_a_corpus_error(train):
    with pytest.raises(CorpusError, match="no text"):
        train(["", "  "], vocab_size=2000)
    with pytest.raises(CorpusError, match="not a str"):
        train(["hola", b"bytes"], vocab_size=2000)


@pytest.mark.parametrize(
    "fields, message",
    [
        (dict(kind="byte_level_bpe", vocab_file="beto/vocab.txt"), "vocab_file applies to kind 'wordpiece' only"),
        (dict(kind="sentencepiece_unigram", vocab_file="x.txt"), "vocab_file applies to kind 'wordpiece' only"),
        (dict(kind="sentencepiece_unigram", strip_accents=True), "strip_accents applies to kind 'wordpiece'"),
        (dict(kind="byte_level_bpe", lowercase=True), "lowercase applies to kind 'wordpiece' only"),
        (dict(kind="sentencepiece_unigram", lowercase=True), "lowercase applies to kind 'wordpiece' only"),
        (dict(kind="byte_level_bpe", extra_ids=100), "extra_ids applies to kind 'sentencepiece_unigram' only"),
        (dict(kind="wordpiece", extra_ids=10), "extra_ids applies to kind 'sentencepiece_unigram' only"),
        (dict(kind="bpe"), "tokenizer kind 'bpe' is not one of"),
    ],
)
def test_fields_that_do_not_apply_are_rejected(tmp_path, fields, message):
    with pytest.raises(EsZooError, match=message):
        build_tokenizer(_plain_cfg(**fields), _never_called, tmp_path)
    assert not any(tmp_path.iterdir())


def test_unigram_without_sentinels(corpus):
    tok = train_sentencepiece_unigram(corpus[:2], vocab_size=700, extra_ids=0)
    assert len(tok) == 700 and not any("extra_id" in t for t in tok.get_vocab())
    assert ordinary_token_ids(tok).tolist() == list(range(259, 700))
    with pytest.raises(ObjectiveError, match="has none"):
        sentinel_ids(tok)


# --------------------------------------------------------------------------------------------------
# Tables for the objectives
# --------------------------------------------------------------------------------------------------


def test_word_start_table_bpe(bpe):
    table = word_start_table(bpe)
    assert table.dtype == np.bool_ and table.shape == (len(bpe),)
    spaces = {"Ġ", "Ċ", "ĉ", "č", "ċ", "Č"}  # images of " \n\t\r\v\f"
    for token, i in bpe.get_vocab().items():
        expected = i in (0, 1, 2, 3, BPE_SIZE - 1) or token[0] in spaces
        assert table[i] == expected, token
    assert 0 < table.sum() < len(bpe) / 2 + 5
    # "Ġperro" begins a word, and so does a newline; the first word of a text, and of a paragraph,
    # has no "Ġ" and continues the token before it.
    tokens = bpe.tokenize("el que\nde")
    starts = [bool(table[i]) for i in bpe.convert_tokens_to_ids(tokens)]
    assert tokens == ["el", "Ġque", "Ċ", "de"] and starts == [False, True, True, False]


def test_word_start_table_unigram(unigram):
    table = word_start_table(unigram)
    assert table.shape == (len(unigram),)
    byte_spaces = {"<0x09>", "<0x0A>", "<0x0B>", "<0x0C>", "<0x0D>", "<0x20>"}
    for token, i in unigram.get_vocab().items():
        special = i < 3 or i >= UNIGRAM_SIZE - 100
        expected = special or token.startswith("▁") or token.isspace() or token in byte_spaces
        assert table[i] == expected, token
    assert not table[unigram.convert_tokens_to_ids("<0xC3>")]
    ids = _ids(unigram, "el perro")
    assert table[ids[0]] and table[ids[len(_ids(unigram, "el"))]]


def test_word_start_table_wordpiece(wordpiece):
    table = word_start_table(wordpiece)
    _, is_continuation = wordpiece_tables(wordpiece)
    assert np.array_equal(table, ~is_continuation)
    assert not table[wordpiece.convert_tokens_to_ids("##s")]


def test_word_start_table_reads_the_backend_not_the_class(bpe, unigram):
    from tokenizers import Tokenizer, pre_tokenizers
    from tokenizers.models import WordLevel
    from transformers import PreTrainedTokenizerFast

    generic = PreTrainedTokenizerFast(tokenizer_object=bpe.backend_tokenizer)
    assert np.array_equal(word_start_table(generic), word_start_table(bpe))
    other = Tokenizer(WordLevel({"[UNK]": 0, "hola": 1}, unk_token="[UNK]"))
    other.pre_tokenizer = pre_tokenizers.Whitespace()
    with pytest.raises(EsZooError, match="cannot tell where words begin"):
        word_start_table(PreTrainedTokenizerFast(tokenizer_object=other))


def test_ordinary_token_ids(bpe, unigram, wordpiece, tmp_path):
    assert ordinary_token_ids(bpe).tolist() == list(range(4, BPE_SIZE - 1))
    # Not the special tokens, the byte pieces, nor the sentinels.
    assert ordinary_token_ids(unigram).tolist() == list(range(259, UNIGRAM_SIZE - 100))
    assert ordinary_token_ids(wordpiece).tolist() == list(range(6, len(wordpiece)))  # BETO's 0..5 out
    assert ordinary_token_ids(bpe).dtype == np.int64
    # Added tokens are not drawn either.
    bpe.save_pretrained(tmp_path)
    from transformers import AutoTokenizer

    extended = AutoTokenizer.from_pretrained(tmp_path)
    extended.add_tokens(["superpalabra"])
    assert ordinary_token_ids(extended).tolist() == list(range(4, BPE_SIZE - 1))


def test_sentinel_ids_and_mask_token_id(bpe, unigram, wordpiece, tmp_path):
    assert sentinel_ids(unigram) == (UNIGRAM_SIZE - 1, 100)
    for tok in (bpe, wordpiece):
        with pytest.raises(ObjectiveError, match=r"sentinel tokens <extra_id_0>.*has none"):
            sentinel_ids(tok)
    assert mask_token_id(bpe) == BPE_SIZE - 1
    assert mask_token_id(wordpiece) == 0
    with pytest.raises(ObjectiveError, match="needs a mask token"):
        mask_token_id(unigram)
    # Sentinels that count up instead of down are refused.
    from transformers import AutoTokenizer

    bpe.save_pretrained(tmp_path)
    upward = AutoTokenizer.from_pretrained(tmp_path)
    upward.add_tokens(["<extra_id_0>", "<extra_id_1>"], special_tokens=True)
    with pytest.raises(ObjectiveError, match="do not count down contiguously"):
        sentinel_ids(upward)


# --------------------------------------------------------------------------------------------------
# Sentences
# --------------------------------------------------------------------------------------------------


def _starting_with(text: str) -> list[str]:
    starts = sentence_starts(text)
    return [text[a:b].strip() for a, b in zip(starts, starts[1:] + [len(text)])]


def test_sentence_starts_on_spanish_dialogue_and_abbreviations():
    text = (
        "—¿Vienes mañana? —preguntó el Sr. García.\n"
        "—Sí. Llegaré a las 3.5 horas, ¿sabes? El tren sale el 1.º de mayo a las 10:30. Después, nada.\n"
        "La Dra. Pérez y D. Juan vinieron de EE. UU. con J. R. R. Tolkien. ¡Qué sorpresa! "
        "«Nadie lo esperaba.» Luego trajeron pan, vino, etc. Todo costó 1.000.000 de pesos… "
        "Al final, ¿quién pagó? Nadie (ni siquiera Ud. Martínez). (Fin.)\n\n"
        "Capítulo 2. El regreso a la pág. 7 del vol. 3 del 20 % restante. ¿¡Cómo?! No puede ser. "
        "Vino a las 5 p. m. y se fue. Él dijo: «Hola.» —Adiós —respondió ella.\n"
    )
    assert _starting_with(text) == [
        "—¿Vienes mañana? —preguntó el Sr. García.",
        "—Sí.",
        "Llegaré a las 3.5 horas, ¿sabes?",
        "El tren sale el 1.º de mayo a las 10:30.",
        "Después, nada.",
        "La Dra. Pérez y D. Juan vinieron de EE. UU. con J. R. R. Tolkien.",
        "¡Qué sorpresa!",
        "«Nadie lo esperaba.»",
        "Luego trajeron pan, vino, etc.",
        "Todo costó 1.000.000 de pesos…",
        "Al final, ¿quién pagó?",
        "Nadie (ni siquiera Ud. Martínez).",
        "(Fin.)",
        "Capítulo 2.",
        "El regreso a la pág. 7 del vol. 3 del 20 % restante.",
        "¿¡Cómo?!",
        "No puede ser.",
        "Vino a las 5 p. m. y se fue.",
        "Él dijo: «Hola.»",
        "—Adiós —respondió ella.",
    ]


def test_sentence_starts_edges():
    assert sentence_starts("") == [0]
    assert sentence_starts("   ") == [0]
    assert sentence_starts("hola. adiós. fin") == [0]  # no capital after the stop
    assert sentence_starts("Uno.\n\n   Dos.\n") == [0, 9]  # a paragraph starts at its first letter
    assert sentence_starts("Sí.Ya") == [0]  # no space after the stop


# --------------------------------------------------------------------------------------------------
# Batched encoding with sentence starts
# --------------------------------------------------------------------------------------------------

DOCUMENT = (
    "¿Qué tal? Muy bien, gracias.  Ωmega llegó el 1.º de mayo con el Sr. Núñez.\n"
    "Otro párrafo aquí. —Sí —dijo él—. ¡Vale! «Empieza.» 😀 Adiós. Fin"
)


@pytest.fixture(params=["wordpiece", "bpe", "unigram"])
def kind_and_tokenizer(request):
    return request.param, request.getfixturevalue(request.param)


def test_tokenize_documents_flags_sentence_starts(kind_and_tokenizer):
    kind, tok = kind_and_tokenizer
    docs = [DOCUMENT, "", "Una sola frase", SPANISH[4]]
    plain = list(tokenize_documents(tok, docs, batch_size=3))
    flagged = list(tokenize_documents(tok, docs, batch_size=3, with_sentences=True))
    assert [ids.tolist() for ids, _ in flagged] == [ids.tolist() for ids in plain]
    assert flagged[1][1].size == 0
    assert flagged[2][1].tolist() == [True] + [False] * (len(plain[2]) - 1)

    word_starts = word_start_table(tok)
    for doc, (ids, starts) in zip(docs, flagged):
        if not doc:
            continue
        assert starts.dtype == np.bool_ and starts.shape == ids.shape and starts[0]
        offsets = sentence_starts(doc)
        assert starts.sum() == len(offsets) > 1 or doc == docs[2]
        # Cutting the ids at the flags gives the sentences back.
        cuts = list(np.flatnonzero(starts)) + [len(ids)]
        sentences = [doc[a:b] for a, b in zip(offsets, offsets[1:] + [len(doc)])]
        for a, b, sentence in zip(cuts, cuts[1:], sentences):
            if kind == "wordpiece":  # decoding re-spaces punctuation and gives [UNK] for "Ω"
                assert ids[a:b].tolist() == _ids(tok, sentence)
            else:  # the space between two sentences may go with either
                assert tok.decode(ids[a:b].tolist()).strip() == sentence.strip()
        # A sentence after a space starts on the token that carries the space ("Ġ", "▁"), even when
        # the space is a token of its own (before "Ωmega", which has no piece), not on the next one.
        for cut, offset in zip(cuts[1:], offsets[1:]):
            if doc[offset - 1] == " ":
                assert word_starts[ids[cut]], (doc[offset : offset + 10], tok.convert_ids_to_tokens(int(ids[cut])))
        # A newline stays with the paragraph it ends.
        if kind != "wordpiece" and "\n" in doc:
            cut = cuts[offsets.index(doc.index("\n") + 1)]
            assert tok.decode([int(ids[cut - 1])]) == "\n"
