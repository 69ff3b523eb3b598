"""Spanish sentence splitting: one set of rules for BART's sentence permutation and for ROUGE-Lsum.

:func:`sentence_starts` gives the character offsets where sentences begin (``es-zoo prepare``
records them, through :func:`es_zoo.tokenization.tokenize_documents`, for BART's sentence
permutation); :func:`split_sentences` cuts a text at those offsets (ROUGE-Lsum's one sentence per
line, in :mod:`es_zoo.metrics.generation`). Deterministic rules, no model and no data files. This
module imports nothing else from es-zoo.

Example:
    >>> split_sentences("Llegó el Sr. Pérez. ¿Quién era? —Nadie lo sabía… En 1990 murió.")
    ['Llegó el Sr. Pérez.', '¿Quién era?', '—Nadie lo sabía…', 'En 1990 murió.']
"""

from __future__ import annotations

import re

__all__ = ["ABBREVIATIONS", "RULES_VERSION", "sentence_starts", "split_sentences"]

# Bump when a rule changes where a sentence begins: prepared BART data records it (es_zoo.prepare's
# fingerprint), so a folder prepared with other rules is refused instead of silently reused.
RULES_VERSION = 2

ABBREVIATIONS = frozenset(
    """
    sr sra sres sras srs srta srtas d dña dn dr dra drs dras dres ud uds vd vds lic licda ing arq prof profa
    mr mrs ms mme mlle st sto sta excmo excma ilmo ilma rvdo rvda mons fr gral cnel tte sgto
    pág págs p pp núm núms nro art arts cap caps vol vols fig figs ed eds col cols fol fols tel tfno
    ej aprox av avda pza ctra cía hnos dpto depto admón apdo cód cf cfr op cit ib ibíd íd sig sigs ss ee
    """.split()
)
"""Abbreviations after which a "." does not end a sentence, lower-cased, without the period.

Single letters (initials such as "J. R. R. Tolkien", "a. C.", "p. ej.") and doubled capitals
(plurals such as "EE. UU.", "RR. HH.", "FF. AA.", but not the numerals "II" and "XX") are
recognised without the list. "etc." is not here: followed by a capital, it ends a sentence."""

# A stop ("." "!" "?" "…", repeated or mixed: "...", "?!"), closing quotes or brackets, whitespace.
_SENTENCE_END = re.compile(r"([.!?…]+)([»”’\"')\]}]*)(\s+)")
_PARAGRAPH = re.compile(r"\n\s*")
_LETTERS_BEFORE = re.compile(r"[^\W\d_]+\Z")
_OPENERS = "«“‘\"'([{"
_DASHES = "—–-"
_ROMAN = ("II", "XX")  # "Felipe II.", "siglo XX." end sentences; "EE." "RR." "CC." "SS." do not


def _is_abbreviation(text: str, dot: int) -> bool:
    """Whether the "." at ``dot`` closes an abbreviation ("Sr.", "pág.", "EE.", "J.")."""
    match = _LETTERS_BEFORE.search(text, max(0, dot - 12), dot)
    if match is None:
        return False  # "1999.", "»." ...
    word = match.group()
    if match.start() > 0 and text[match.start() - 1].isdigit():
        return False  # a numeral: "1º.", "2a."
    if len(word) == 1 or (len(word) == 2 and word.isupper() and word[0] == word[1] and word not in _ROMAN):
        return True
    return word.lower() in ABBREVIATIONS


def _opens_sentence(text: str, pos: int) -> bool:
    char = text[pos]
    if char.isupper() or char.isdigit() or char in "¿¡":
        return True
    if char in _OPENERS or char in _DASHES:
        # Dialogue: "—¿Vienes? —preguntó." The narrator's words after a dash in lower case
        # continue the sentence; "—¿Vienes? —Sí." starts a new one. Likewise "(gruñó)" after
        # "¡No voy!" continues it, and "«Sí»" or "(Ver)" start one.
        rest = text[pos : pos + 64].lstrip(_OPENERS + _DASHES + " ")  # a window: no copy of the rest
        return not rest[:1].islower()
    return False


def sentence_starts(text: str) -> list[int]:
    """Character offsets where the sentences of ``text`` begin, ascending; 0 always.

    A rule-based splitter for Spanish. A new sentence begins after a line break (the first
    non-blank character of the next line) and after ".", "!", "?" or "…" (repeated or mixed, and
    followed by any closing quotes or brackets, "»" ")" "”"...) followed by whitespace and then a
    capital letter, a digit, "¿" or "¡"; or by opening quotes or brackets ("«" "“" "‘" '"' "'"
    "(" "[" "{") or a dialogue dash ("—" "–" "-") whose text does not go on in lower case
    ("—¿Vienes? —preguntó." and "¡No voy! (gruñó)." are one sentence each). A lone "." (no
    closing quote after it) does not end a sentence after an abbreviation of
    :data:`ABBREVIATIONS` ("Sr.", "Dña.", "Ud.", "pág.", "núm.", "p. ej."...), doubled capitals
    ("EE. UU.") or a single letter (initials, "J. R. R. Tolkien"); it does after a numeral
    ("Felipe II.", "el 1º."). Numbers such as "3.5", "1.º" and "1.000.000" do not end sentences
    (no space follows the "."), but "en 1999. Después" does.

    Example:
        >>> text = "—¿Vienes? —preguntó el Sr. Pérez. —Sí. Llego el 1.º de mayo."
        >>> [text[i:i + 6] for i in sentence_starts(text)]
        ['—¿Vien', '—Sí. L', 'Llego ']
        >>> sentence_starts("Uno.\\n\\n   Dos. Vino el Dr. Ruiz. Tres")
        [0, 9, 14, 32]
    """
    starts = {0}
    size = len(text)
    for match in _PARAGRAPH.finditer(text):
        if match.end() < size:
            starts.add(match.end())
    for match in _SENTENCE_END.finditer(text):
        pos = match.end()
        if pos >= size or "\n" in match.group(3) or not _opens_sentence(text, pos):
            continue
        if match.group(1) == "." and not match.group(2) and _is_abbreviation(text, match.start(1)):
            continue
        starts.add(pos)
    return sorted(starts)


def split_sentences(text: str) -> list[str]:
    """The sentences of ``text`` (cut at :func:`sentence_starts`), stripped, empty ones dropped.

    Example:
        >>> split_sentences("Llegó el Sr. Pérez. ¿Quién era? —Nadie lo sabía… —dijo. En 1990 murió.")
        ['Llegó el Sr. Pérez.', '¿Quién era?', '—Nadie lo sabía… —dijo.', 'En 1990 murió.']
        >>> split_sentences("  ")
        []
    """
    starts = sentence_starts(text)
    pieces = (text[a:b].strip() for a, b in zip(starts, starts[1:] + [len(text)]))
    return [p for p in pieces if p]
