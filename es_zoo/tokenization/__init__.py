"""Tokenizers for the zoo: BETO's WordPiece, BARTO's byte-level BPE and T5S's SentencePiece unigram.

Every tokenizer made here is a plain transformers tokenizer: ``save_pretrained`` writes it and
``transformers.AutoTokenizer.from_pretrained`` loads it back, with nothing from es-zoo installed.

BETO's layout is kept in both ways of getting a WordPiece tokenizer:

- :func:`wordpiece_from_vocab` loads a published ``vocab.txt`` (ids exactly as published);
- :func:`train_wordpiece` trains a new vocabulary with the ``tokenizers`` library, special tokens
  first in BETO's order (``[MASK]`` = 0 ... ``[SEP]`` = 5).

The published BETO vocabularies lack ``% / ; $ € & @ # '`` (dccuchile/beto issue 11), so those
characters are [UNK] for the published models. Trained tokenizers seed their alphabet with them and
with the Spanish alphabet (:data:`SPANISH_ALPHABET`), so they never become [UNK].

The published tokenizers (Hub ``tokenizer_config.json`` of ``dccuchile/bert-base-spanish-wwm-cased``
and ``-uncased``): cased has ``do_lower_case: false``; uncased has ``do_lower_case: true`` and
``strip_accents: false``; both ``tokenize_chinese_chars: true`` and ``model_max_length: 512``.
So the uncased model lower-cases but keeps accents ("Canción" -> "canción").

The saved tokenizer applies Unicode NFC before BERT's normalizer, as the slow Python BertTokenizer
of transformers did for the published BETO: decomposed text ("o" + U+0301) becomes "ó", not [UNK],
for anyone who loads the folder. It is saved as the generic ``TokenizersBackend`` class (as T5S's),
which ``AutoTokenizer`` loads from ``tokenizer.json`` as it is; transformers 5's ``BertTokenizer``
would rebuild the normalizer from ``tokenizer_config.json`` and drop the NFC.

BARTO (:func:`train_byte_level_bpe`) is BART's byte-level BPE: ``<s>`` ``<pad>`` ``</s>`` ``<unk>``
= 0..3, ``<mask>`` the last id, sequences framed ``<s> A </s>``. Every byte has a token, so no text
is ever ``<unk>`` and decoding gives the text back exactly.

T5S (:func:`train_sentencepiece_unigram`) is T5's SentencePiece unigram: ``<pad>`` ``</s>`` ``<unk>``
= 0..2, the pieces, then the sentinels with ``<extra_id_0>`` the highest id; ``</s>`` ends every
sequence. Unlike T5 it keeps the text as it is (NFC only, no NFKC; spaces and newlines survive) and
falls back to UTF-8 bytes for characters it has no piece for, so it never gives ``<unk>`` either.

The objectives need per-id tables (:func:`word_start_table`, :func:`ordinary_token_ids`,
:func:`sentinel_ids`, :func:`mask_token_id`); BART's sentence permutation needs where sentences
begin (``tokenize_documents(..., with_sentences=True)``, from :func:`es_zoo.sentences.sentence_starts`,
re-exported here).

One module per concern; everything is importable from ``es_zoo.tokenization`` itself:

- ``common``: tokenizer kinds, special tokens, :data:`SPANISH_ALPHABET`, training-text checks;
- ``bert``: BETO's BERT pipeline and its transformers wrapper;
- ``wordpiece_vocab``: :func:`wordpiece_from_vocab`;
- ``wordpiece_training``: :func:`train_wordpiece`;
- ``byte_level_bpe``: :func:`train_byte_level_bpe`;
- ``unigram``: :func:`train_sentencepiece_unigram`;
- ``build``: :func:`build_tokenizer` (a recipe's ``tokenizer`` section);
- ``tables``: :func:`wordpiece_tables`, :func:`word_start_table`, :func:`ordinary_token_ids`,
  :func:`sentinel_ids`, :func:`mask_token_id`;
- ``documents``: :func:`tokenize_documents` and the sentence-start flags of its tokens.

Example:
    >>> from es_zoo.tokenization import wordpiece_from_vocab, tokenize_documents
    >>> tok = wordpiece_from_vocab("beto/cased_2M/vocab.txt", lowercase=False)  # doctest: +SKIP
    >>> tok.convert_ids_to_tokens([0, 1, 2, 3, 4, 5])  # doctest: +SKIP
    ['[MASK]', '[PAD]', '[EOS]', '[UNK]', '[CLS]', '[SEP]']
    >>> [ids] = tokenize_documents(tok, ["¿Dónde está el niño?"])  # doctest: +SKIP
"""

from __future__ import annotations

from es_zoo.sentences import sentence_starts
from es_zoo.tokenization.build import build_tokenizer
from es_zoo.tokenization.byte_level_bpe import train_byte_level_bpe
from es_zoo.tokenization.common import (
    BART_MASK_TOKEN,
    BART_SPECIAL_TOKENS,
    BETO_SPECIAL_TOKENS,
    SPANISH_ALPHABET,
    T5_SPECIAL_TOKENS,
    TOKENIZER_KINDS,
)
from es_zoo.tokenization.documents import tokenize_documents
from es_zoo.tokenization.tables import (
    mask_token_id,
    ordinary_token_ids,
    sentinel_ids,
    word_start_table,
    wordpiece_tables,
)
from es_zoo.tokenization.unigram import train_sentencepiece_unigram
from es_zoo.tokenization.wordpiece_training import train_wordpiece
from es_zoo.tokenization.wordpiece_vocab import wordpiece_from_vocab

__all__ = [
    "BART_MASK_TOKEN",
    "BART_SPECIAL_TOKENS",
    "BETO_SPECIAL_TOKENS",
    "SPANISH_ALPHABET",
    "T5_SPECIAL_TOKENS",
    "TOKENIZER_KINDS",
    "build_tokenizer",
    "mask_token_id",
    "ordinary_token_ids",
    "sentence_starts",
    "sentinel_ids",
    "tokenize_documents",
    "train_byte_level_bpe",
    "train_sentencepiece_unigram",
    "train_wordpiece",
    "word_start_table",
    "wordpiece_from_vocab",
    "wordpiece_tables",
]
