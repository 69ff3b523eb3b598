"""What every demo computes, without Gradio: input checks, model loading with readable errors, and one
prediction function per kind of task. The Gradio layer (:mod:`es_zoo.demos.ui`) only lays these out.

Every problem a visitor can cause (empty, too long or non-Latin input, a missing model, a model of the
wrong kind) raises :class:`DemoError`, whose message the UI shows instead of a traceback.
"""

from __future__ import annotations

import re
import threading
import unicodedata
from collections import Counter
from dataclasses import dataclass
from typing import Any, Callable

from es_zoo.errors import EsZooError, HubUnreachableError

WORD_RE = re.compile(r"\w+(?:[-'’]\w+)*|[^\w\s]", re.UNICODE)


class DemoError(EsZooError):
    """A message for the person using the demo (shown in the UI; the server keeps serving)."""


# ------------------------------------------------------------------------------------------- inputs
def check_text(text: Any, what: str = "text", max_chars: int = 1000) -> str:
    """``text`` stripped, or a :class:`DemoError` saying what is wrong with it: empty, longer than
    ``max_chars``, or mostly in a script other than Latin (the models read Spanish)."""
    if not isinstance(text, str) or not text.strip():
        raise DemoError(f"The {what} is empty: write some Spanish text (or pick an example).")
    text = text.strip()
    if len(text) > max_chars:
        raise DemoError(f"The {what} is {len(text):,} characters long; this demo takes at most {max_chars:,}. "
                        "Shorten it and try again.")
    letters = [c for c in text if c.isalpha()]
    if letters:
        scripts = Counter(unicodedata.name(c, "UNKNOWN ?").split(" ")[0] for c in letters)
        latin = scripts.get("LATIN", 0)
        if latin < 0.5 * len(letters):
            other = max((s for s in scripts if s != "LATIN"), key=scripts.get)
            raise DemoError(f"The {what} is mostly in {other if len(other) <= 3 else other.title()} script; these models read Spanish "
                            "(Latin script). Try one of the Spanish examples.")
    return text


def words(text: str) -> list[tuple[str, int, int]]:
    """Words and punctuation with their character offsets (the demos' word segmentation)."""
    return [(m.group(), m.start(), m.end()) for m in WORD_RE.finditer(text)]


_MULTIWORD: dict[str, list[str]] | None = None
_SINGLE: frozenset[str] = frozenset()


def multiword_table() -> dict[str, list[str]]:
    """Surface tokens that UD splits into several words ("del" -> "de" + "el", "dámelo" -> "da" + "me" +
    "lo"), lower-cased, read from the multiword-token lines of the UD Spanish data shipped with es-zoo
    (each form's most frequent split). A POS model scores UD words, so the demo tags those words. The
    lower-case forms the same data has as single words are kept too (:func:`_verb_with_clitics` never
    splits them)."""
    global _MULTIWORD, _SINGLE
    if _MULTIWORD is None:
        from collections import Counter

        from es_zoo.tasks.data import EMBEDDED_TASK_DIR  # lazy (so below): `es-zoo --help` imports this module

        seen: dict[str, Counter] = {}
        single: set[str] = set()
        for path in sorted(EMBEDDED_TASK_DIR.glob("ud-*.conllu")):
            lines = path.read_text(encoding="utf-8").splitlines()
            inside = 0  # the words of a multiword token are not single words
            for i, line in enumerate(lines):
                cols = line.split("\t")
                if len(cols) != 10:
                    continue
                if "-" in cols[0] and cols[0].replace("-", "").isdigit():
                    a, b = (int(x) for x in cols[0].split("-"))
                    parts = [c.split("\t")[1] for c in lines[i + 1:i + 2 + b - a]]
                    seen.setdefault(cols[1].lower(), Counter())[tuple(p.lower() for p in parts)] += 1
                    inside = b - a + 1
                elif cols[0].isdigit():
                    if inside:
                        inside -= 1
                    elif cols[1].islower():
                        single.add(cols[1])
        _MULTIWORD = {form: list(c.most_common(1)[0][0]) for form, c in seen.items()}
        _SINGLE = frozenset(single)
    return _MULTIWORD


# Enclitic pronouns by their place in a cluster (se, then 2nd person, 1st, 3rd: "dándoselo", "decírtelo").
_CLITIC_RANK = {"se": 0, "te": 1, "os": 1, "me": 2, "nos": 2, "lo": 3, "la": 3, "los": 3, "las": 3, "le": 3, "les": 3}
_CLITICS = tuple(sorted(_CLITIC_RANK, key=len, reverse=True))
_SHORT_VERBS = ("dar", "ver", "ir", "ser", "oír")  # infinitives under four letters that take clitics
_VERB_CLITIC_RE = None


def _verb_with_clitics(word: str) -> list[str] | None:
    """An infinitive or gerund with enclitic pronouns, split as UD does ("comerlo" -> "comer" + "lo",
    "diciéndoselo" -> "diciendo" + "se" + "lo", "decírselo" -> "decir" + "se" + "lo"); None for anything
    else. Written without a verb lexicon, so it only splits what no other word looks like: the pronouns
    in their only possible order, each once; never a lone "os" ("primeros", "compañeros"); never after
    "-ier"/"-uer", which no infinitive ends in ("muerte", "fuerte", "gobiernos"); never a lower-case
    word the shipped UD data has as a single word. Imperatives ("dámelo") are split only when the
    shipped UD data has them (:func:`multiword_table`): without a lexicon their endings are not told
    apart from nouns' ("pétalo", "ángeles")."""
    import re
    import unicodedata

    global _VERB_CLITIC_RE
    if _VERB_CLITIC_RE is None:
        clitic = "|".join(_CLITICS)
        _VERB_CLITIC_RE = re.compile(rf"^(?P<verb>[a-zñáéíóú]*?(?:[aeií]r|[aá]ndo|i[eé]ndo|y[eé]ndo))"
                                     rf"(?P<clitics>(?:{clitic}){{1,3}})$")
    if not word.islower():
        return None  # a capitalised word is more often a name ("Carla") than a verb
    multiword_table()
    m = _VERB_CLITIC_RE.match(word)
    if m is None or word in _SINGLE:
        return None
    verb, rest, clitics = m.group("verb"), m.group("clitics"), []
    while rest:
        piece = next(c for c in _CLITICS if rest.startswith(c))
        clitics.append(piece)
        rest = rest[len(piece):]
    ranks = [_CLITIC_RANK[c] for c in clitics]
    if clitics == ["os"] or ranks != sorted(set(ranks)) or verb.endswith(("ier", "uer", "iér", "uér")):
        return None
    plain = unicodedata.normalize("NFC", unicodedata.normalize("NFD", verb).replace("\u0301", ""))  # keeps ñ
    if verb.endswith("ír") and verb[-3:-2] in ("o", "e"):  # oír, reír, freír keep their accent
        plain = verb
    elif unicodedata.normalize("NFD", verb).count("\u0301") > 1:
        return None  # two written accents: not a verb form
    if len(plain) < 4 and plain not in _SHORT_VERBS and verb not in _SHORT_VERBS:
        return None
    # the accent only marks the stress the clitics moved ("dándole", "decírselo"): UD's word has none
    return [plain, *clitics]


def ud_words(text: str) -> list[tuple[str, int, int, list[str]]]:
    """:func:`words`, each with the UD words it stands for: itself, or the parts of a contraction ("del",
    "al", and the verb + clitic forms of the shipped UD data or of :func:`_verb_with_clitics`)."""
    table = multiword_table()
    out = []
    for w, s, e in words(text):
        parts = table.get(w.lower()) or _verb_with_clitics(w) or [w]
        out.append((w, s, e, parts))
    return out


# ------------------------------------------------------------------------------------------- models
# The model class each kind needs, and how to recognise a config of that kind.
KIND_CHECKS: dict[str, tuple[str, Callable[[Any], bool]]] = {
    "fill-mask": ("a masked language model (BETO, RoBERTa-BNE, e.g. `es-zoo reproduce beto` or `roberta`)",
                  lambda c: any(a.endswith(("ForMaskedLM", "ForPreTraining")) for a in c.architectures or [])),
    "sequence": ("a sequence classifier (`es-zoo finetune MODEL --task xnli|pawsx|mldoc`)",
                 lambda c: any(a.endswith("ForSequenceClassification") for a in c.architectures or [])),
    "token": ("a token classifier (`es-zoo finetune MODEL --task ner|pos`)",
              lambda c: any(a.endswith("ForTokenClassification") for a in c.architectures or [])),
    "qa": ("an extractive QA model (`es-zoo finetune MODEL --task qa`)",
           lambda c: any(a.endswith("ForQuestionAnswering") for a in c.architectures or [])),
    "parser": ("a biaffine parser (`es-zoo finetune MODEL --task parsing`)",
               lambda c: isinstance(getattr(c, "es_zoo_parser", None), dict)),
    "seq2seq": ("an encoder-decoder (BARTO, T5S or BERT2BERT fine-tuned with `es-zoo finetune MODEL --task ...`)",
                lambda c: bool(getattr(c, "is_encoder_decoder", False))),
}


@dataclass
class Loaded:
    """A model ready to serve, or the reason it is not (shown in the UI)."""

    name: str | None
    model: Any = None
    tokenizer: Any = None
    problem: str | None = None

    def require(self) -> "Loaded":
        if self.problem:
            raise DemoError(self.problem)
        return self


def load(kind: str, name: str | None, task_label: str, labels: list[str] | None = None) -> Loaded:
    """Load ``name`` (a local folder, a run folder, a catalogue name or a Hub id) as a ``kind`` model. A
    missing model, an unreachable Hub, a model of another kind, or a classifier or tagger whose labels
    are not the task's (``labels``: a POS tagger in the NER demo) gives a :class:`Loaded` with the reason
    instead of raising, so the demo still starts and says what to do."""
    what, ok = KIND_CHECKS[kind]
    if not name:
        return Loaded(None, problem=(f"No model for {task_label}: the catalogue has no fine-tuned checkpoint for it. "
                                     f"Start the demo with --model pointing at {what}."))
    try:
        from es_zoo.loading import load_config, load_tokenizer

        config = load_config(name)
        if config.architectures and not ok(config):
            raise DemoError(f"'{name}' is {', '.join(config.architectures)}, not {what}. Start the demo with "
                            f"--model pointing at such a model.")
        if kind == "parser" and not ok(config):
            raise DemoError(f"'{name}' is not {what}.")
        if labels is not None and kind in ("sequence", "token"):
            check_demo_labels(config, labels, str(name), task_label)
        tokenizer = load_tokenizer(name)
        model = _load_model(kind, name)
        model.eval()
        return Loaded(str(name), model, tokenizer)
    except EsZooError as exc:
        hint = (f" Or point --model (or ES_ZOO_DEMO_MODEL) at a local folder holding {what}."
                if isinstance(exc, HubUnreachableError) else "")
        return Loaded(str(name), problem=str(exc).strip() + hint)
    except (OSError, ValueError) as exc:
        return Loaded(str(name), problem=f"Could not load '{name}' as {what}: {str(exc).splitlines()[0][:300]}")


def check_demo_labels(config: Any, labels: list[str], name: str, task_label: str) -> None:
    """A classifier or tagger must predict the task's labels (all of them named, none foreign)."""
    own = [str(v) for _, v in sorted((getattr(config, "id2label", None) or {}).items())]
    foreign = [x for x in own if x not in labels]
    if not own or foreign:
        shown = ", ".join(own[:12]) + (" ..." if len(own) > 12 else "")
        raise DemoError(f"'{name}' predicts the labels [{shown}], not those of {task_label} "
                        f"[{', '.join(labels)}]" + (f" ({', '.join(foreign[:5])} is not one of them)" if foreign else "")
                        + ". Start the demo with --model pointing at a model fine-tuned for this task.")


def _load_model(kind: str, name: str) -> Any:
    from es_zoo.loading import load_model, resolve

    if kind == "parser":
        from es_zoo.tasks.heads import BiaffineParser

        return BiaffineParser.load(resolve(name)[0])
    if kind == "seq2seq":
        from es_zoo.generation import load_generator

        return load_generator(name)[0]
    task = {"fill-mask": "fill-mask", "sequence": "sequence-classification", "token": "token-classification",
            "qa": "question-answering"}[kind]
    return load_model(name, task=task)


_LOCK = threading.Lock()  # one forward pass at a time per process: torch already uses every core


# ------------------------------------------------------------------------------------ predictions
def fill_mask(m: Loaded, text: str, top_k: int = 5) -> dict[str, float]:
    """The ``top_k`` words for the (first) ``[MASK]`` with their probabilities."""
    import torch

    m.require()
    text = check_text(text)
    mask = m.tokenizer.mask_token
    text = text.replace("[MASK]", mask).replace("<mask>", mask)
    if mask not in text:
        raise DemoError(f"Write {mask} where the missing word goes, e.g. 'Me gusta comer {mask} con tomate.'")
    enc = m.tokenizer(text, return_tensors="pt", truncation=True, max_length=_limit(m))
    pos = (enc["input_ids"][0] == m.tokenizer.mask_token_id).nonzero()
    if not len(pos):
        raise DemoError("The text is too long: its [MASK] falls beyond what the model reads. Shorten it.")
    with _LOCK, torch.no_grad():
        logits = m.model(**enc).logits[0, pos[0, 0]]
    probs = logits.softmax(-1)
    top = probs.topk(top_k)
    return {m.tokenizer.decode([int(i)]).strip(): round(float(p), 4) for p, i in zip(top.values, top.indices)}


def classify(m: Loaded, text: str, pair: str | None = None) -> dict[str, float]:
    """Label probabilities of a text (or a sentence pair) from a sequence classifier."""
    import torch

    m.require()
    text = check_text(text, "first sentence" if pair is not None else "text", 2000)
    if pair is not None:
        pair = check_text(pair, "second sentence", 2000)
    enc = m.tokenizer(text, pair, return_tensors="pt", truncation=True, max_length=_limit(m))
    with _LOCK, torch.no_grad():
        probs = m.model(**enc).logits[0].softmax(-1)
    labels = m.model.config.id2label
    return {str(labels[i]): round(float(p), 4) for i, p in enumerate(probs)}


def tag(m: Loaded, text: str, entities: bool) -> dict:
    """Word labels as Gradio ``HighlightedText`` data: ``{"text", "entities": [{"entity", "start", "end"}]}``.
    ``entities``: BIO tags merged into spans (NER); otherwise one label per word (POS)."""
    import torch

    m.require()
    text = check_text(text)
    # POS tags UD words: a contraction ("del") is tagged as its parts ("de" ADP + "el" DET, shown ADP+DET)
    ws = [(w, s, e, [w]) for w, s, e in words(text)] if entities else ud_words(text)
    flat = [part for *_, parts in ws for part in parts]
    owner = [i for i, (*_, parts) in enumerate(ws) for _ in parts]
    from es_zoo.tasks.features import word_level

    # each word as in running text, as the evaluation reads it (a byte-level BPE's words keep their space)
    enc = word_level(m.tokenizer)(flat, is_split_into_words=True, return_tensors="pt", truncation=True,
                                  max_length=_limit(m))
    with _LOCK, torch.no_grad():
        pred = m.model(**enc).logits[0].argmax(-1).tolist()
    labels = m.model.config.id2label
    part_label: dict[int, str] = {}
    for pos, wid in enumerate(enc.word_ids()):
        if wid is not None and wid not in part_label:
            part_label[wid] = str(labels[pred[pos]])
    groups: dict[int, list[int]] = {}
    for j, i in enumerate(owner):
        groups.setdefault(i, []).append(j)
    # a word's label, or none when any of its parts lay beyond the model's length
    first = {i: "+".join(part_label[j] for j in js) for i, js in groups.items() if all(j in part_label for j in js)}
    out = []
    for i, (w, s, e, _) in enumerate(ws):
        label = first.get(i)
        if label is None:  # beyond the model's length: said, not guessed
            out.append({"entity": "(not read: too long)", "start": s, "end": e})
            continue
        if entities:
            if label == "O":
                continue
            kind = label.split("-", 1)[-1]
            if label.startswith("I-") and out and out[-1]["entity"] == kind and out[-1]["end"] >= s - 1:
                out[-1]["end"] = e
            else:
                out.append({"entity": kind, "start": s, "end": e})
        else:
            out.append({"entity": label, "start": s, "end": e})
    return {"text": text, "entities": out}


def parse_text(m: Loaded, text: str) -> list[dict]:
    """The dependency tree of one sentence: ``[{"id", "form", "head", "deprel"}]`` (heads 1-based, 0 = root)."""
    from es_zoo.tasks.parse import parse

    m.require()
    text = check_text(text, "sentence", 500)
    ws = [w for w, _, _ in words(text)]
    if len(ws) > 80:
        raise DemoError(f"The sentence has {len(ws)} words; the parser demo draws at most 80. Shorten it.")
    with _LOCK:
        return parse(m.model, m.tokenizer, [ws])[0]


def answer(m: Loaded, question: str, context: str) -> dict:
    """The answer span of ``question`` in ``context`` (es-zoo's windowed QA decoding, as in evaluation),
    as ``{"answer", "highlighted": HighlightedText data}``."""
    from datasets import Dataset

    from es_zoo.tasks.definitions import load_task
    from es_zoo.tasks.finetune import predict, prepare

    m.require()
    question = check_text(question, "question", 300)
    context = check_text(context, "context", 5000)
    task = load_task("qa")
    hp = task.hparams.replace(max_length=min(384, _limit(m)), stride=128)
    split = Dataset.from_list([{"id": "q", "title": "", "question": question, "context": context,
                                "answers": {"text": [], "answer_start": []}, "is_impossible": False}])
    with _LOCK:
        text = predict(task, m.model, m.tokenizer, prepare(task, m.tokenizer, split, hp), hp)[0]
    start = context.find(text) if text else -1
    entities = [{"entity": "answer", "start": start, "end": start + len(text)}] if start >= 0 else []
    return {"answer": text or "(no answer found)", "highlighted": {"text": context, "entities": entities}}


def generate_text(m: Loaded, task_name: str, fields: dict[str, Any], max_chars: int = 4000) -> str:
    """Generated text for one input of a seq2seq task, built from the task definition's input template
    and the model family's prefix, decoded with the model's saved generation settings (batched helper)."""
    from es_zoo.generation import family, generate
    from es_zoo.tasks.definitions import load_task
    from es_zoo.tasks.seq2seq import separator, source_text

    m.require()
    task = load_task(task_name)
    row = {k: ([check_text(t, k, max_chars) for t in v] if isinstance(v, list) else check_text(v, k, max_chars))
           for k, v in fields.items()}
    source = source_text(task, None, row, task.hparams, family(m.model), sep=separator(m.tokenizer))
    g = m.model.generation_config
    with _LOCK:
        out = generate(m.model, m.tokenizer, [source], num_beams=g.num_beams or task.hparams.num_beams,
                       max_new_tokens=g.max_new_tokens or task.hparams.max_new_tokens,
                       length_penalty=g.length_penalty or 1.0, truncate=True)[0]
    return out or "(the model generated nothing)"


def _limit(m: Loaded) -> int:
    n = getattr(m.model.config, "max_position_embeddings", None) or 512
    return int(min(n, 512))
