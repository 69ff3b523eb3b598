"""Strict readers for the published formats of the GLUES tasks.

One reader per format, each returning plain records (lists of dicts) that ``es_zoo.tasks.datasets``
turns into a typed ``datasets.DatasetDict``. Strict means: a line that does not have the expected
shape raises :class:`FormatError` naming the file, the line number and what was expected; a label
outside the declared set is an error, not a warning; nothing is dropped silently. A byte-order mark at
the very start of a file is accepted (editors write one); anywhere else in a line-based file it is an
error, because it means two files were concatenated or a field was pasted with one.

Formats:

- CoNLL-2002 (``esp.train``, ``esp.testa``, ``esp.testb``): ``token POS IOB2`` separated by single
  spaces, a blank line between sentences, optional ``-DOCSTART-`` lines (skipped, as conlleval does).
- CoNLL-U (Universal Dependencies): comments, multiword-token ranges (``3-4``) and empty nodes
  (``5.1``) handled as UD specifies; the *words* (integer ids) are what is scored.
- TSV: XNLI 1.0 (``xnli.{dev,test}.tsv``, a ``language`` column; Spanish rows kept), XNLI-MT
  (``multinli.train.es.tsv``: ``premise hypo label``, "contradictory" meaning contradiction), the
  5-column XNLI file (``pairID gold_label sentence1 sentence2 genre``), PAWS-X
  (``id sentence1 sentence2 label``) and its 3-column XTREME copy, MLDoc (``label<TAB>text``).
- SQuAD v1.1 / v2.0 JSON (MLQA, TAR/SQuAD-es, XQuAD): every answer's ``answer_start`` must point at its
  text in the context.

Example:
    >>> sents = read_conll2002("esp.testa", labels=NER_LABELS)  # doctest: +SKIP
    >>> sents[0]["tokens"][:3], sents[0]["ner_tags"][:3]  # doctest: +SKIP
    (['Sao', 'Paulo', '('], ['B-LOC', 'I-LOC', 'O'])
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping, Sequence

from es_zoo.errors import EsZooError
from es_zoo.safeyaml import short

BOM = "\ufeff"

NER_LABELS = ("O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC", "B-MISC", "I-MISC")
UPOS = ("ADJ", "ADP", "ADV", "AUX", "CCONJ", "DET", "INTJ", "NOUN", "NUM", "PART", "PRON", "PROPN",
        "PUNCT", "SCONJ", "SYM", "VERB", "X")
# UD v1 (the v1.4 treebanks GLUES tags with) had CONJ where v2 has CCONJ.
UPOS_V1 = tuple("CONJ" if t == "CCONJ" else t for t in UPOS)
# The 37 universal relations of UD v2 (v1 had 40, three of which v2 renamed); language subtypes such
# as ``obl:arg`` are accepted when their universal part is listed.
UD_RELATIONS = ("acl", "advcl", "advmod", "amod", "appos", "aux", "case", "cc", "ccomp", "clf", "compound",
                "conj", "cop", "csubj", "dep", "det", "discourse", "dislocated", "expl", "fixed", "flat",
                "goeswith", "iobj", "list", "mark", "nmod", "nsubj", "nummod", "obj", "obl", "orphan",
                "parataxis", "punct", "reparandum", "root", "vocative", "xcomp",
                # UD v1 names (v1.4 treebanks): dobj -> obj, neg -> advmod, mwe -> fixed, name -> flat,
                # auxpass, csubjpass, nsubjpass -> :pass subtypes.
                "dobj", "neg", "mwe", "name", "auxpass", "csubjpass", "nsubjpass", "foreign", "remnant")
XNLI_LABELS = ("entailment", "neutral", "contradiction")
PAWSX_LABELS = ("0", "1")
MLDOC_LABELS = ("CCAT", "ECAT", "GCAT", "MCAT")


class FormatError(EsZooError):
    """A task file that does not have the shape of its published format."""

    def __init__(self, path: str | Path, line: int | None, message: str) -> None:
        where = f"{path}:{line}" if line is not None else str(path)
        super().__init__(f"{where}: {message}")
        self.path, self.line = str(path), line


# Longest line a line format may have: a CoNLL token line or a JSON-lines record is at most a few
# hundred KB in any real file; a file without newlines (a binary, a minified dump) stops here instead
# of being read into memory whole.
MAX_LINE_BYTES = 16 * 1024 * 1024
# C0 control characters (tab, line feed and carriage return aside) and DEL: never part of a token or a
# text field, a sign of a binary or corrupted file.
_CONTROL = re.compile("[\x00-\x08\x0b-\x0c\x0e-\x1f\x7f]")


def _lines(path: str | Path) -> Iterator[tuple[int, str]]:
    """(line number, line without its newline), UTF-8, a leading BOM accepted, any other BOM refused;
    read line by line (bounded memory), control characters and overlong lines refused. Like
    ``text.split("\n")``, a file that ends with a newline yields one last empty line."""
    p = Path(path)
    if not p.is_file():
        raise FormatError(p, None, "no such file")
    number, ended = 0, True
    with p.open("rb") as f:
        while True:
            raw = f.readline(MAX_LINE_BYTES + 1)
            if not raw:
                break
            number += 1
            if len(raw) > MAX_LINE_BYTES:
                raise FormatError(p, number, f"a line longer than {MAX_LINE_BYTES:,} bytes; expected a text file "
                                             "with one record per line")
            ended = raw.endswith(b"\n")
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as e:
                raise FormatError(p, number, f"not UTF-8 ({e.reason} at byte {f.tell() - len(raw) + e.start}); "
                                             "convert the file to UTF-8 (the original CoNLL-2002 distribution is "
                                             "Latin-1)") from None
            line = line.removesuffix("\n").removesuffix("\r")
            if number == 1 and line.startswith(BOM):
                line = line[1:]
            if BOM in line:
                raise FormatError(p, number, "a byte-order mark (U+FEFF) inside the file; was a second file "
                                             "appended to this one?")
            bad = _CONTROL.search(line)
            if bad:
                raise FormatError(p, number, f"a control character (U+{ord(bad.group()):04X}) at column "
                                             f"{bad.start() + 1}; expected plain text")
            yield number, line
    if ended:
        yield number + 1, ""


def _check_label(path: Path | str, line: int, label: str, allowed: Sequence[str], what: str) -> str:
    if label not in allowed:
        raise FormatError(path, line, f"{what} {short(label)} is not in the task's label set {list(allowed)}")
    return label


# --------------------------------------------------------------------------------------------- CoNLL-2002
def read_conll2002(path: str | Path, labels: Sequence[str] = NER_LABELS) -> list[dict]:
    """Sentences of a CoNLL-2002 file: ``{"id", "tokens", "pos_tags", "ner_tags"}`` (tags as strings).

    Each line is ``token POS TAG`` separated by single spaces; a blank line ends a sentence. Tags must be
    in ``labels``. An ``I-X`` that does not continue an ``X`` entity is kept as it is: each of the three
    published files has one (an entity running across a sentence break), and conlleval scores it as the
    start of a new entity.
    """
    sentences: list[dict] = []
    tokens: list[str] = []
    pos: list[str] = []
    tags: list[str] = []
    start = 0

    def flush() -> None:
        if tokens:
            sentences.append({"id": f"{Path(path).name}:{start}", "tokens": list(tokens),
                              "pos_tags": list(pos), "ner_tags": list(tags)})
            tokens.clear(), pos.clear(), tags.clear()

    for number, line in _lines(path):
        if not line.strip():
            flush()
            continue
        if "\t" in line:
            raise FormatError(path, number, "a tab; CoNLL-2002 separates `token POS IOB2` by single spaces")
        fields = line.split(" ")
        if len(fields) != 3 or not all(fields):
            raise FormatError(path, number, f"expected 3 space-separated fields `token POS IOB2`, "
                                            f"got {len([f for f in fields if f])}: {short(line)}")
        if fields[0] == "-DOCSTART-":
            flush()
            continue
        tag = _check_label(path, number, fields[2], labels, "tag")
        if not tokens:
            start = number
        tokens.append(fields[0]), pos.append(fields[1]), tags.append(tag)
    flush()
    if not sentences:
        raise FormatError(path, None, "no sentences")
    return sentences


# ------------------------------------------------------------------------------------------------ CoNLL-U
# The tree checks of the UD validator (validate.py, level 2) on what UAS/LAS read: integer ids in order,
# heads within the sentence, exactly one root, no cycles; written here rather than taken from the
# `conllu` package, which parses the format but leaves trees unchecked, so that each error names its line.
def _digits(text: str) -> bool:
    """ASCII digits only ("²" and "٣" are str.isdigit() but not CoNLL-U ids)."""
    return text.isascii() and text.isdigit() and len(text) < 10


def _cycle(heads: list[int]) -> list[int]:
    """The first cycle among 1-based ``heads`` (0 = root), as word ids; [] for a tree."""
    state = [0] * (len(heads) + 1)  # 0 unseen, 1 on the current path, 2 reaches the root
    state[0] = 2
    for w in range(1, len(heads) + 1):
        path, v = [], w
        while state[v] == 0:
            state[v] = 1
            path.append(v)
            v = heads[v - 1]
        if state[v] == 1:
            return path[path.index(v):] + [v]
        for u in path:
            state[u] = 2
    return []


def tree_problem(heads: Sequence[int]) -> tuple[int | None, str] | None:
    """What keeps 1-based ``heads`` (0 = root) from being a dependency tree: ``(0-based word index or
    None for the whole sentence, message)``, or None for a tree. Shared by the CoNLL-U reader and the
    Hub copies of UD, so both refuse the same sentences."""
    n = len(heads)
    for i, h in enumerate(heads):
        if h > n or h < 0:
            return i, f"word {i + 1} has HEAD {h} but the sentence has {n} words"
        if h == i + 1:
            return i, f"word {i + 1} is its own HEAD"
    roots = sum(h == 0 for h in heads)
    if roots != 1:
        return None, f"expected exactly one word with HEAD 0, found {roots}"
    cycle = _cycle(list(heads))
    if cycle:
        return cycle[0] - 1, (f"words {' -> '.join(map(str, cycle))} form a cycle (HEADs that never reach the "
                              "root); expected a tree")
    return None


def read_conllu(path: str | Path, upos: Sequence[str] = UPOS, relations: Sequence[str] = UD_RELATIONS) -> list[dict]:
    """Sentences of a CoNLL-U file, words only (what UD scores), with the tokens they came from.

    Returns ``{"id", "text", "tokens", "upos", "xpos", "feats", "lemmas", "head", "deprel", "multiword"}``
    where ``tokens`` are the word forms, ``head`` 0 is the root, and ``multiword`` lists the surface
    tokens that span several words as ``(first word index, last word index, form)`` (0-based). Empty
    nodes (``5.1``, enhanced dependencies only) are validated and skipped, as the CoNLL 2018 evaluation
    skips them for UAS/LAS.
    """
    sentences: list[dict] = []
    sent: dict | None = None
    start = 0

    def new() -> dict:
        return {"sent_id": None, "text": None, "tokens": [], "upos": [], "xpos": [], "feats": [], "lemmas": [],
                "head": [], "deprel": [], "multiword": [], "_ranges": [], "_lines": []}

    def finish() -> None:
        nonlocal sent
        if sent is None:
            return
        if not sent["tokens"]:
            raise FormatError(path, start, "a sentence with no words (comments only)")
        n = len(sent["tokens"])
        lines = sent.pop("_lines")
        problem = tree_problem(sent["head"])
        if problem is not None:
            word, message = problem
            raise FormatError(path, start if word is None else lines[word], message)
        for first, last, form, line in sent.pop("_ranges"):
            if last > n:
                raise FormatError(path, line, f"multiword token {first}-{last} goes past the last word ({n})")
            sent["multiword"].append([first - 1, last - 1, form])
        sent["id"] = sent.pop("sent_id") or f"{Path(path).name}:{start}"
        sentences.append(sent)
        sent = None

    expected = 1
    for number, line in _lines(path):
        if not line.strip():
            if line:
                raise FormatError(path, number, "a line of spaces; CoNLL-U sentences end with an empty line")
            finish()
            expected = 1
            continue
        if sent is None:
            sent, start = new(), number
        if line.startswith("#"):
            key, _, value = line[1:].partition("=")
            if key.strip() == "sent_id":
                sent["sent_id"] = value.strip()
            elif key.strip() == "text":
                sent["text"] = value.strip()
            continue
        cols = line.split("\t")
        _need(path, number, cols, 10, "ID FORM LEMMA UPOS XPOS FEATS HEAD DEPREL DEPS MISC")
        ident = cols[0]
        if "-" in ident:
            a, _, b = ident.partition("-")
            if not (_digits(a) and _digits(b)) or int(a) != expected or int(b) <= int(a):
                raise FormatError(path, number, f"multiword token range {short(ident)}: expected {expected}-N with N > {expected}")
            sent["_ranges"].append((int(a), int(b), cols[1], number))
            continue
        if "." in ident:
            a, _, b = ident.partition(".")
            if not (_digits(a) and _digits(b)) or int(a) != expected - 1:
                raise FormatError(path, number, f"empty node {short(ident)}: expected {expected - 1}.N")
            continue
        if not _digits(ident) or int(ident) != expected:
            raise FormatError(path, number, f"word id {short(ident)}: expected {expected}")
        expected += 1
        form, lemma, tag, xpos, feats, head, rel = cols[1], cols[2], cols[3], cols[4], cols[5], cols[6], cols[7]
        if not form:
            raise FormatError(path, number, "an empty FORM")
        _check_label(path, number, tag, upos, "UPOS")
        if not _digits(head):
            raise FormatError(path, number, f"HEAD {short(head)}: expected a word id (0 for the root)")
        if int(head) == int(ident):
            raise FormatError(path, number, f"word {ident} is its own HEAD")
        _check_label(path, number, rel.split(":")[0], relations, "DEPREL")
        if (int(head) == 0) != (rel == "root"):
            raise FormatError(path, number, f"HEAD {head} with DEPREL {short(rel)}: the root (HEAD 0) and only it "
                                            "has DEPREL root")
        for key, value in (("tokens", form), ("upos", tag), ("xpos", xpos), ("feats", feats), ("lemmas", lemma),
                           ("head", int(head)), ("deprel", rel), ("_lines", number)):
            sent[key].append(value)
    if sent is not None:
        finish()
    if not sentences:
        raise FormatError(path, None, "no sentences")
    return sentences


# --------------------------------------------------------------------------------------------------- TSV
def _tsv(path: str | Path) -> Iterator[tuple[int, list[str]]]:
    for number, line in _lines(path):
        if line == "":
            continue
        yield number, line.split("\t")


def _unique_header(path, number: int, header: list[str]) -> None:
    seen = set()
    for name in header:
        if name in seen:
            raise FormatError(path, number, f"the header names column {short(name)} twice; expected each column once")
        seen.add(name)


def _need(path, number: int, cols: list[str], n: int, shape: str) -> None:
    if len(cols) != n:
        hint = " (spaces instead of tabs?)" if len(cols) == 1 and " " in cols[0] else ""
        raise FormatError(path, number, f"expected {n} tab-separated columns `{shape}`, got {len(cols)}{hint}")


def _text(path, number: int, value: str, name: str) -> str:
    if not value.strip():
        raise FormatError(path, number, f"an empty {name}")
    return value


def read_xnli(path: str | Path, language: str = "es", labels: Sequence[str] = XNLI_LABELS) -> list[dict]:
    """XNLI pairs ``{"id", "sentence1", "sentence2", "label", "genre"}`` from any of its published files.

    Recognised by the header: XNLI 1.0 (``language gold_label ... sentence1 sentence2 promptID pairID
    genre ...``; rows of ``language`` only), the 5-column file (``pairID gold_label sentence1 sentence2
    genre``) and XNLI-MT (``premise hypo label``, whose "contradictory" is XNLI's "contradiction").
    """
    rows = _tsv(path)
    try:
        number, header = next(rows)
    except StopIteration:
        raise FormatError(path, None, "an empty file") from None
    out = []
    if header == ["premise", "hypo", "label"]:
        for number, cols in rows:
            _need(path, number, cols, 3, "premise hypo label")
            label = "contradiction" if cols[2] == "contradictory" else cols[2]
            out.append({"id": f"{Path(path).name}:{number}", "sentence1": _text(path, number, cols[0], "premise"),
                        "sentence2": _text(path, number, cols[1], "hypothesis"),
                        "label": _check_label(path, number, label, labels, "label"), "genre": ""})
    elif {"gold_label", "sentence1", "sentence2", "pairID"} <= set(header):
        _unique_header(path, number, header)
        col = {name: i for i, name in enumerate(header)}
        lang = col.get("language")
        for number, cols in rows:
            _need(path, number, cols, len(header), " ".join(header))
            if lang is not None and cols[lang] != language:
                continue
            out.append({"id": cols[col["pairID"]], "sentence1": _text(path, number, cols[col["sentence1"]], "sentence1"),
                        "sentence2": _text(path, number, cols[col["sentence2"]], "sentence2"),
                        "label": _check_label(path, number, cols[col["gold_label"]], labels, "gold_label"),
                        "genre": cols[col["genre"]] if "genre" in col else ""})
    else:
        raise FormatError(path, number, "not an XNLI header: expected `premise hypo label` (XNLI-MT), "
                                        "`pairID gold_label sentence1 sentence2 genre` or XNLI 1.0's columns")
    if not out:
        raise FormatError(path, None, f"no rows{' in language ' + language if header[:1] == ['language'] else ''}")
    return out


def read_pawsx(path: str | Path, labels: Sequence[str] = PAWSX_LABELS) -> list[dict]:
    """PAWS-X pairs ``{"id", "sentence1", "sentence2", "label"}``: the published ``id sentence1 sentence2
    label`` files (with their header) or XTREME's 3-column copy (no header, no id)."""
    out = []
    for number, cols in _tsv(path):
        if number == 1 and cols == ["id", "sentence1", "sentence2", "label"]:
            continue
        if len(cols) == 4:
            ident, s1, s2, label = cols
        elif len(cols) == 3:
            (s1, s2, label), ident = cols, f"{Path(path).name}:{number}"
        else:
            raise FormatError(path, number, f"expected 4 tab-separated columns `id sentence1 sentence2 label` "
                                            f"or 3 (XTREME's `sentence1 sentence2 label`), got {len(cols)}")
        out.append({"id": ident, "sentence1": _text(path, number, s1, "sentence1"),
                    "sentence2": _text(path, number, s2, "sentence2"),
                    "label": _check_label(path, number, label, labels, "label")})
    if not out:
        raise FormatError(path, None, "no rows")
    return out


def read_mldoc(path: str | Path, labels: Sequence[str] = MLDOC_LABELS) -> list[dict]:
    """MLDoc documents ``{"id", "text", "label"}`` from ``label<TAB>text`` lines."""
    out = []
    for number, cols in _tsv(path):
        _need(path, number, cols, 2, "label text")
        out.append({"id": f"{Path(path).name}:{number}", "label": _check_label(path, number, cols[0], labels, "label"),
                    "text": _text(path, number, cols[1], "text")})
    if not out:
        raise FormatError(path, None, "no rows")
    return out


# -------------------------------------------------------------------------------------------- SQuAD JSON
# The shape of a SQuAD v1.1 / v2.0 file (MLQA, XQuAD and TAR use it too), checked with jsonschema so
# that any wrong type at any level is one error with its JSON path. Extra keys (plausible_answers, ...)
# are allowed, as the official evaluation script ignores them.
_STRING = {"type": "string"}
_TEXT = {"type": "string", "minLength": 1}
SQUAD_SCHEMA = {
    "type": "object", "required": ["data"],
    "properties": {"data": {"type": "array", "items": {
        "type": "object", "required": ["paragraphs"],
        "properties": {"title": _STRING, "paragraphs": {"type": "array", "items": {
            "type": "object", "required": ["context", "qas"],
            "properties": {"context": _TEXT, "qas": {"type": "array", "items": {
                "type": "object", "required": ["id", "question"],
                "properties": {"id": _TEXT, "question": _TEXT, "is_impossible": {"type": "boolean"},
                               "answers": {"type": "array", "items": {
                                   "type": "object", "required": ["text", "answer_start"],
                                   "properties": {"text": _STRING,
                                                  "answer_start": {"type": "integer", "minimum": -1}}}}}}}}}}}}}},
}
MAX_JSON_BYTES = 2 << 30  # the largest SQuAD-style file (SQuAD 2.0 train) is ~40 MB


def _json_path(parts: Iterable) -> str:
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(the top level)"


def load_json_checked(p: Path, schema: dict, what: str) -> Any:
    """A JSON file checked against ``schema`` (jsonschema, draft 2020-12): the first problem is one
    FormatError with the JSON path of the value and what was expected there."""
    import jsonschema

    if not p.is_file():
        raise FormatError(p, None, "no such file")
    size = p.stat().st_size
    if size > MAX_JSON_BYTES:
        raise FormatError(p, None, f"{size:,} bytes; expected {what} under {MAX_JSON_BYTES:,} bytes")
    data = p.read_bytes()
    if data[:2] in (b"\xff\xfe", b"\xfe\xff"):
        raise FormatError(p, None, f"UTF-16 text; expected {what} in UTF-8 (convert it, e.g. with iconv)")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        raise FormatError(p, line, f"not UTF-8 ({e.reason} at byte {e.start}); expected {what}") from None
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as e:
        raise FormatError(p, e.lineno, f"not valid JSON ({e.msg}, column {e.colno}); expected {what}") from None
    except RecursionError:
        raise FormatError(p, None, f"JSON nested too deeply; expected {what}") from None
    error = next(iter(jsonschema.Draft202012Validator(schema).iter_errors(raw)), None)
    if error is not None:
        where = _json_path(error.absolute_path)
        value = error.instance
        if error.validator == "required":
            missing = [k for k in error.validator_value if k not in value]
            message = f"missing {', '.join(map(repr, missing))}"
        elif error.validator == "type":
            message = f"expected {'an' if error.validator_value[0] in 'aeiou' else 'a'} {error.validator_value}, got {short(value)}"
        elif error.validator == "minimum":
            message = f"expected a number >= {error.validator_value}, got {short(value)}"
        elif error.validator == "minLength":
            message = "expected a non-empty string"
        else:
            message = short(error.message, 200)
        raise FormatError(p, None, f"{where}: {message} ({what})")
    return raw


def answer_problem(context: str, text: str, start: int) -> str | None:
    """Why an answer does not sit at ``start`` of ``context`` (None when it does); shared by the SQuAD
    reader and the Hub copies of SQuAD-style datasets."""
    if start < 0 and text:  # SQuAD-es marks the answers its translation lost as "" at -1
        return (f"answer {short(text)} has answer_start {start}; expected a position in the context (-1 only for "
                "an empty answer)")
    if context[start:start + len(text)] != text:
        found = context[start:start + len(text)]
        return f"answer {short(text)} is not at answer_start {start} of its context (found {short(found)} there)"
    return None


def read_squad(path: str | Path, allow_unanswerable: bool | None = None) -> list[dict]:
    """Questions of a SQuAD v1.1/v2.0 JSON file: ``{"id", "title", "context", "question", "answers":
    {"text": [...], "answer_start": [...]}, "is_impossible"}``.

    Every answer must sit at its ``answer_start`` in the context (an error names the question id
    otherwise). Unanswerable questions (v2.0 ``is_impossible``) are kept with no answers; with
    ``allow_unanswerable=False`` they are an error.
    """
    p = Path(path)
    raw = load_json_checked(p, SQUAD_SCHEMA, "SQuAD JSON")
    out, seen = [], set()
    for a, article in enumerate(raw["data"]):
        for g, para in enumerate(article.get("paragraphs", [])):
            where = f"data[{a}].paragraphs[{g}]"
            context = para["context"]
            if not context.strip():
                raise FormatError(p, None, f"{where}.context: expected text, got only spaces")
            for k, q in enumerate(para["qas"]):
                qid = q["id"]
                if not q["question"].strip():
                    raise FormatError(p, None, f"{where}.qas[{k}].question: expected text, got only spaces")
                if qid in seen:
                    raise FormatError(p, None, f"question {short(qid)} appears twice")
                seen.add(qid)
                impossible = bool(q.get("is_impossible", False))
                answers = q.get("answers", [])
                if impossible:
                    if allow_unanswerable is False:
                        raise FormatError(p, None, f"question {short(qid)} is unanswerable, which this task does not allow")
                    answers = []
                elif not answers:
                    raise FormatError(p, None, f"question {short(qid)} has no answers and is not marked is_impossible")
                texts, starts = [], []
                for ans in answers:
                    text, start = ans.get("text"), ans.get("answer_start")
                    if not isinstance(text, str) or not isinstance(start, int):
                        raise FormatError(p, None, f"question {short(qid)}: an answer needs `text` and an integer `answer_start`")
                    problem = answer_problem(context, text, start)
                    if problem:
                        raise FormatError(p, None, f"question {short(qid)}: {problem}")
                    texts.append(text), starts.append(start)
                out.append({"id": qid, "title": article.get("title", ""), "context": context, "question": q["question"],
                            "answers": {"text": texts, "answer_start": starts}, "is_impossible": impossible})
    if not out:
        raise FormatError(p, None, "no questions")
    return out


# ------------------------------------------------------------------------------- seq2seq: JSONL, parallel
def json_lines(path: str | Path, expected: str) -> Iterator[tuple[int, dict]]:
    """(line number, object) of a JSON-lines file; blank lines skipped, anything but one JSON object
    per line an error saying what each object should hold (``expected``)."""
    for number, line in _lines(path):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except ValueError as exc:
            raise FormatError(path, number, f"not JSON ({exc}); expected one object per line with {expected}") from None
        if not isinstance(obj, dict):
            raise FormatError(path, number, f"expected a JSON object with {expected}")
        yield number, obj


def read_jsonl(path: str | Path, fields: Mapping[str, str], optional: Sequence[str] = ()) -> list[dict]:
    """One JSON object per line (MLSUM ``es_*.jsonl``, XL-Sum ``spanish_*.jsonl``, GEM WikiLingua,
    EUR-Lex-Sum exports): ``fields`` maps each column of the task to the field that holds it in the
    file (e.g. ``{"text": "text", "summary": "summary"}`` for MLSUM, ``{"text": "reference", ...}`` for
    EUR-Lex-Sum). Every listed field must be a non-empty string (a list of strings for a list column);
    ``id`` is taken from the file's ``id`` (or ``gem_id``) field when there is one, else ``FILE:LINE``."""
    out = []
    for number, obj in json_lines(path, "fields " + ", ".join(fields.values())):
        row = {}
        for column, name in fields.items():
            if name not in obj:
                if column in optional:
                    continue
                raise FormatError(path, number, f"no field {short(name)} (the task's {column}); fields found: "
                                                f"{short(', '.join(sorted(obj)), 200)}")
            value = obj[name]
            if isinstance(value, list):
                if not value or not all(isinstance(v, str) and v.strip() for v in value):
                    raise FormatError(path, number, f"field {short(name)}: expected non-empty strings")
            elif not isinstance(value, str) or not value.strip():
                raise FormatError(path, number, f"field {short(name)} (the task's {column}) is empty or not text")
            row[column] = value
        ident = obj.get("id", obj.get("gem_id"))
        row["id"] = str(ident) if ident not in (None, "") else f"{Path(path).name}:{number}"
        out.append(row)
    if not out:
        raise FormatError(path, None, "no rows")
    return out


def _text_lines(path: str | Path) -> list[tuple[int, str]]:
    lines = list(_lines(path))
    if lines and lines[-1][1] == "":
        lines.pop()  # the newline that ends the file
    return lines


def read_parallel(source_path: str | Path, target_path: str | Path) -> list[dict]:
    """Line-aligned parallel text (WMT ``newstest2013.es`` / ``.en``, FLORES-200 ``spa_Latn.devtest``,
    Tatoeba ``*.spa`` / ``*.eng``, FAPESP, BiSECT ``.src`` / ``.dst``): ``{"id", "source", "target"}``
    per line pair. Both files must have the same number of lines, and no line may be empty (an empty
    line is how misaligned files usually show)."""
    src, tgt = _text_lines(source_path), _text_lines(target_path)
    if len(src) != len(tgt):
        raise FormatError(target_path, None, f"{len(tgt)} lines, but its source side {source_path} has {len(src)}; "
                                             "parallel files must be line-aligned")
    out = []
    for (number, a), (_, b) in zip(src, tgt):
        out.append({"id": f"{Path(source_path).name}:{number}",
                    "source": _text(source_path, number, a, "source line"),
                    "target": _text(target_path, number, b, "target line")})
    if not out:
        raise FormatError(source_path, None, "no lines")
    return out


MIAM_COLUMNS = ("Speaker", "Utterance", "Dialogue_ID")


def read_miam(path: str | Path, fields: Mapping[str, str] | None = None) -> list[dict]:
    """MIAM (``dihana/{train,dev,test}.csv``: ``Speaker, Utterance, Dialogue_Act, Dialogue_ID,
    File_ID``) as next-turn generation, the way the seq2seq paper's dialogue script builds it:
    consecutive rows of one speaker in a dialogue are one turn (joined by a space); every turn after the
    first is a target, the turns before it its history ``{"id", "history": [...], "response"}``.
    ``fields`` renames the three columns used when a copy names them differently."""
    import csv
    import io

    names = {c: (fields or {}).get(c, c) for c in MIAM_COLUMNS}
    text = "\n".join(line for _, line in _lines(path))
    reader = csv.reader(io.StringIO(text))
    try:
        header = next(reader)
    except StopIteration:
        raise FormatError(path, None, "an empty file") from None
    _unique_header(path, 1, header)
    missing = [n for n in names.values() if n not in header]
    if missing:
        raise FormatError(path, 1, f"expected a CSV header with {', '.join(names.values())}; missing "
                                   f"{', '.join(missing)} (found {', '.join(header)})")
    col = {c: header.index(n) for c, n in names.items()}

    def utterances() -> Iterator[tuple[str, str, str]]:
        for row in reader:
            number = reader.line_num
            if not row:
                continue
            if len(row) != len(header):
                raise FormatError(path, number, f"expected {len(header)} comma-separated columns, got {len(row)}")
            speaker, utterance, dialogue = (row[col[c]] for c in MIAM_COLUMNS)
            _text(path, number, utterance, "utterance")
            yield speaker, utterance, dialogue

    out = dialogue_turns(utterances())
    if not out:
        raise FormatError(path, None, "no dialogue with two turns")
    return out


def dialogue_turns(utterances: Iterable[tuple[str, str, str]]) -> list[dict]:
    """``(speaker, utterance, dialogue id)`` in order -> next-turn rows ``{"id", "history", "response"}``:
    consecutive utterances of one speaker are one turn (joined by a space); shared by the MIAM CSV reader
    and the Hub copy of MIAM."""
    dialogues: dict[str, list[list[str]]] = {}
    for speaker, utterance, dialogue in utterances:
        turns = dialogues.setdefault(dialogue, [])
        if turns and turns[-1][0] == speaker:
            turns[-1][1] += " " + utterance.strip()
        else:
            turns.append([speaker, utterance.strip()])
    out = []
    for dialogue, turns in dialogues.items():
        for t in range(1, len(turns)):
            out.append({"id": f"{dialogue}:{t}", "history": [u for _, u in turns[:t]], "response": turns[t][1]})
    return out


def concatenate(*parts: Iterable[dict]) -> list[dict]:
    """Several files of one split as one list (GLUES concatenates AnCora and GSD)."""
    out: list[dict] = []
    for part in parts:
        out.extend(part)
    return out
