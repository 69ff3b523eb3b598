"""Fixture copies of the task datasets' Hub homes, for the local Hub server (tests/hub_server.py).

For every Hub repo a task source reads (recipes/tasks/*.yaml, ``hub:``), :data:`SCHEMAS` holds the real
dataset's features as its card's ``dataset_info`` gives them (column names, value types, ClassLabel names in
their published order, including labels the task does not use), and :func:`build` writes, from one set of
example rows per source, both the parquet files the Hub serves (that schema, at the paths of the pinned
revision) and the same rows in the source's published file format, so that a test can check that the two
routes give equal rows. The rows are real Spanish text from es-zoo's shipped fixtures.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

from es_zoo.resources import DATA_DIR

TASKS_DATA = DATA_DIR / "tasks"

CONLL2002_POS = ["AO", "AQ", "CC", "CS", "DA", "DE", "DD", "DI", "DN", "DP", "DT", "Faa", "Fat", "Fc", "Fd", "Fe",
                 "Fg", "Fh", "Fia", "Fit", "Fp", "Fpa", "Fpt", "Fs", "Ft", "Fx", "Fz", "I", "NC", "NP", "P0", "PD",
                 "PI", "PN", "PP", "PR", "PT", "PX", "RG", "RN", "SP", "VAI", "VAM", "VAN", "VAP", "VAS", "VMG", "VMI",
                 "VMM", "VMN", "VMP", "VMS", "VSG", "VSI", "VSM", "VSN", "VSP", "VSS", "Y", "Z"]
NER = ["O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC", "B-MISC", "I-MISC"]
UD_UPOS = ["NOUN", "PUNCT", "ADP", "NUM", "SYM", "SCONJ", "ADJ", "PART", "DET", "CCONJ", "PROPN", "PRON", "X", "_",
           "ADV", "INTJ", "VERB", "AUX"]
MIAM_ACTS = ["Afirmacion", "Apertura", "Cierre", "Confirmacion", "Espera", "Indefinida", "Negacion", "No_entendido",
             "Nueva_consulta", "Pregunta", "Respuesta"]


def _features(repo: str):
    """The features of ``repo``'s rows, copied from its card (see the module docstring)."""
    from datasets import ClassLabel, Features, List, Translation, Value

    s = Value("string")
    squad = {"text": List(s), "answer_start": List(Value("int32"))}
    mlqa = {"answer_start": List(Value("int32")), "text": List(s)}
    table = {
        "facebook/xnli": Features({"premise": s, "hypothesis": s,
                                   "label": ClassLabel(names=["entailment", "neutral", "contradiction"])}),
        "google-research-datasets/paws-x": Features({"id": Value("int32"), "sentence1": s, "sentence2": s,
                                                      "label": ClassLabel(names=["0", "1"])}),
        "eriktks/conll2002": Features({"id": s, "tokens": List(s), "pos_tags": List(ClassLabel(names=CONLL2002_POS)),
                                       "ner_tags": List(ClassLabel(names=NER))}),
        "universal-dependencies/universal_dependencies": Features({
            "idx": s, "text": s, "tokens": List(s), "lemmas": List(s), "upos": List(ClassLabel(names=UD_UPOS)),
            "xpos": List(s), "feats": List(s), "head": List(s), "deprel": List(s), "deps": List(s), "misc": List(s)}),
        "ccasimiro/squad_es": Features({"id": s, "title": s, "context": s, "question": s, "answers": squad}),
        "facebook/mlqa": Features({"context": s, "question": s, "answers": mlqa, "id": s}),
        "google/xquad": Features({"id": s, "context": s, "question": s, "answers": squad}),
        "reciTAL/mlsum": Features({k: s for k in ("text", "summary", "topic", "url", "title", "date")}),
        "GEM/wiki_lingua": Features({"gem_id": s, "gem_parent_id": s, "source_language": s, "target_language": s,
                                     "source": s, "target": s, "references": List(s)}),
        "csebuetnlp/xlsum": Features({k: s for k in ("id", "url", "title", "summary", "text")}),
        "vgaraujov/wmt13": Features({"translation": Translation(languages=["es", "en"])}),
        "Helsinki-NLP/tatoeba_mt": Features({"sourceLang": s, "targetlang": s, "sourceString": s, "targetString": s}),
        "vgaraujov/fapesp": Features({"translation": Translation(languages=["es", "pt"])}),
        "PierreColombo/miam": Features({"Speaker": s, "Utterance": s, "Dialogue_Act": s, "Dialogue_ID": s,
                                        "File_ID": s, "Label": ClassLabel(names=MIAM_ACTS), "Idx": Value("int32")}),
    }
    return table[repo]


def parquet_bytes(repo: str, rows: list[dict]) -> bytes:
    from datasets import Dataset
    from datasets.utils.logging import disable_progress_bar

    disable_progress_bar()

    buf = io.BytesIO()
    Dataset.from_list(rows, features=_features(repo)).to_parquet(buf)
    return buf.getvalue()


# --------------------------------------------------------------------------------------- example rows
def _lines(name: str, n: int, skip: int = 0) -> list[str]:
    return (TASKS_DATA / name).read_text(encoding="utf-8").splitlines()[skip:skip + n]


def _pairs(n: int, skip: int = 0) -> list[tuple[str, str]]:
    return list(zip(_lines("tatoeba-test.spa", n, skip), _lines("tatoeba-test.eng", n, skip)))


def _conllu_sentences(n: int, skip: int = 0) -> list[str]:
    blocks = (TASKS_DATA / "ud-gsd-test.conllu").read_text(encoding="utf-8").strip().split("\n\n")
    return blocks[skip:skip + n]


def _ud_row(block: str) -> dict:
    """A CoNLL-U sentence as the universal_dependencies loading script stored it: multiword tokens kept as
    tokens with UPOS "_" and HEAD "None", every field a string."""
    row = {k: [] for k in ("tokens", "lemmas", "upos", "xpos", "feats", "head", "deprel", "deps", "misc")}
    row["idx"], row["text"] = "", ""
    for line in block.splitlines():
        if line.startswith("# sent_id"):
            row["idx"] = line.split("=", 1)[1].strip()
        elif line.startswith("# text"):
            row["text"] = line.split("=", 1)[1].strip()
        elif line and not line.startswith("#"):
            c = line.split("\t")
            if "." in c[0]:
                continue
            mwt = "-" in c[0]
            row["tokens"].append(c[1]), row["lemmas"].append(c[2]), row["upos"].append("_" if mwt else c[3])
            row["xpos"].append("None" if c[4] == "_" else c[4]), row["feats"].append("None")
            row["head"].append("None" if mwt else c[6]), row["deprel"].append("None" if mwt else c[7])
            row["deps"].append("None"), row["misc"].append("None")
    return row


def _squad_questions(n: int, skip: int = 0) -> list[dict]:
    data = json.loads((TASKS_DATA / "squad-es-test.json").read_text(encoding="utf-8"))["data"]
    out = []
    for article in data:
        for para in article["paragraphs"]:
            for q in para["qas"]:
                if q["answers"] and all(a["text"] and a["answer_start"] >= 0 for a in q["answers"]):
                    out.append({"id": q["id"], "title": article.get("title", ""), "context": para["context"],
                                "question": q["question"],
                                "answers": {"text": [a["text"] for a in q["answers"]],
                                            "answer_start": [a["answer_start"] for a in q["answers"]]}})
    return out[skip:skip + n]


def _squad_json(questions: list[dict]) -> str:
    data = []
    for q in questions:
        data.append({"title": q["title"], "paragraphs": [{"context": q["context"], "qas": [{
            "id": q["id"], "question": q["question"],
            "answers": [{"text": t, "answer_start": s} for t, s in zip(q["answers"]["text"], q["answers"]["answer_start"])]}]}]})
    return json.dumps({"version": "1.1", "data": data}, ensure_ascii=False)


# ------------------------------------------------------------------------------------------ per source
class Fixture:
    """What one task source needs: Hub files per (repo, revision) and the raw files per split."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.hub: dict[tuple[str, str], dict[str, bytes]] = {}
        self.raw: dict[str, list[str]] = {}

    def put(self, repo: str, revision: str, path: str, rows: list[dict]) -> None:
        self.hub.setdefault((repo, revision), {})[path] = parquet_bytes(repo, rows)

    def put_bytes(self, repo: str, revision: str, path: str, data: bytes) -> None:
        self.hub.setdefault((repo, revision), {})[path] = data

    def write(self, split: str, name: str, text: str) -> Path:
        p = self.root / "raw" / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text, encoding="utf-8")
        self.raw.setdefault(split, []).append(str(p))
        return p


SPLITS3 = ("train", "validation", "test")


def _xnli(fx: Fixture, src: Any) -> None:
    names = ["entailment", "neutral", "contradiction"]
    for k, split in enumerate(SPLITS3):
        pairs = _pairs(4, 10 * k)
        rows = [{"premise": a, "hypothesis": b, "label": i % 3} for i, (a, b) in enumerate(pairs)]
        fx.put("facebook/xnli", src.hub.revision, f"es/{split}-00000-of-00001.parquet", rows)
        fx.write(split, f"xnli/{split}.tsv", "premise\thypo\tlabel\n"
                 + "".join(f"{r['premise']}\t{r['hypothesis']}\t{names[r['label']]}\n" for r in rows))


def _pawsx(fx: Fixture, src: Any) -> None:
    lines = _lines("pawsx-test.tsv", 12)
    for k, split in enumerate(SPLITS3):
        rows = []
        for i, line in enumerate(lines[4 * k:4 * k + 4]):
            s1, s2, label = line.split("\t")
            rows.append({"id": 100 * k + i + 1, "sentence1": s1, "sentence2": s2, "label": int(label)})
        fx.put("google-research-datasets/paws-x", src.hub.revision, f"es/{split}/0000.parquet", rows)
        fx.write(split, f"pawsx/{split}.tsv", "id\tsentence1\tsentence2\tlabel\n"
                 + "".join(f"{r['id']}\t{r['sentence1']}\t{r['sentence2']}\t{r['label']}\n" for r in rows))


def _conll2002(fx: Fixture, src: Any) -> None:
    for k, split in enumerate(SPLITS3):
        rows, text = [], ""
        for i, (es, _) in enumerate(_pairs(3, 20 + 5 * k)):
            tokens = es.split()
            tags = [NER.index("B-PER") if j == 0 else NER.index("I-PER") if j == 1 else 0 for j in range(len(tokens))]
            pos = [CONLL2002_POS.index("NP") if j < 2 else CONLL2002_POS.index("NC") for j in range(len(tokens))]
            rows.append({"id": str(i), "tokens": tokens, "pos_tags": pos, "ner_tags": tags})
            text += "".join(f"{t} {CONLL2002_POS[p]} {NER[g]}\n" for t, p, g in zip(tokens, pos, tags)) + "\n"
        fx.put("eriktks/conll2002", src.hub.revision, f"es/{split}/0000.parquet", rows)
        fx.write(split, f"conll2002/esp.{split}", text)


def _ud(fx: Fixture, src: Any) -> None:
    for k, split in enumerate(SPLITS3):
        for t, bank in enumerate(("es_ancora", "es_gsd")):
            blocks = _conllu_sentences(2, 4 * k + 2 * t)
            rows = [_ud_row(b) for b in blocks]
            for r in rows:
                r["upos"] = [UD_UPOS.index(u) for u in r["upos"]]
            fx.put("universal-dependencies/universal_dependencies", src.hub.revision, f"{bank}/{split}/0000.parquet", rows)
            fx.write(split, f"ud/{bank}-{split}.conllu", "\n\n".join(blocks) + "\n\n")


def _squad_family(fx: Fixture, src: Any, task: Any) -> None:
    layout = {"ccasimiro/squad_es": "v1.1.0/{split}/0000.parquet", "facebook/mlqa": "mlqa.es.es/{split}/0000.parquet",
              "google/xquad": "xquad.es/validation-00000-of-00001.parquet"}
    for k, (split, spec) in enumerate(src.hub.splits.items()):
        qs = _squad_questions(3, 3 * k)
        hub_split = "validation" if spec.repo == "google/xquad" else ("train" if split == "train" else split)
        rows = [dict(q) for q in qs]
        if spec.repo == "facebook/mlqa":
            rows = [{"context": q["context"], "question": q["question"], "id": q["id"],
                     "answers": {"answer_start": q["answers"]["answer_start"], "text": q["answers"]["text"]}} for q in qs]
        elif spec.repo == "google/xquad":
            rows = [{k2: q[k2] for k2 in ("id", "context", "question", "answers")} for q in qs]
        fx.put(spec.repo, spec.revision, layout[spec.repo].format(split=hub_split), rows)
        if spec.repo != "ccasimiro/squad_es":  # MLQA and XQuAD have no titles
            qs = [dict(q, title="") for q in qs]
        fx.write(split, f"squad/{src.name}-{split}.json", _squad_json(qs))


def _sqac(fx: Fixture, src: Any) -> None:
    names = {"train": "train.json", "validation": "dev.json", "test": "test.json"}
    for k, split in enumerate(SPLITS3):
        text = _squad_json(_squad_questions(3, 3 * k))
        fx.put_bytes(src.hub.repo, src.hub.revision, names[split], text.encode())
        fx.write(split, f"sqac/{names[split]}", text)


def _summaries(fx: Fixture, src: Any) -> None:
    hub = src.hub
    for k, split in enumerate(SPLITS3):
        docs = [(" ".join(a for a, _ in _pairs(4, 30 * k + 4 * i)), _pairs(1, 30 * k + 4 * i)[0][0]) for i in range(3)]
        if hub.repo == "reciTAL/mlsum":
            rows = [{"text": d, "summary": s, "topic": "actualidad", "url": f"https://elpais.com/{k}/{i}",
                     "title": s[:20], "date": "00/01/2019"} for i, (d, s) in enumerate(docs)]
            raw = [{"text": r["text"], "summary": r["summary"], "topic": r["topic"], "url": r["url"], "title": r["title"],
                    "date": r["date"]} for r in rows]
            path = f"es/{split}/0000.parquet"
        elif hub.repo == "GEM/wiki_lingua":
            rows = [{"gem_id": f"wikilingua_multilingual-es-{split}-{i}", "gem_parent_id": f"p{i}",
                     "source_language": "es", "target_language": "es", "source": d, "target": s, "references": [s]}
                    for i, (d, s) in enumerate(docs)]
            raw = [{"gem_id": r["gem_id"], "source": r["source"], "target": r["target"]} for r in rows]
            path = f"es/{split}/0000.parquet"
        elif hub.repo == "csebuetnlp/xlsum":
            rows = [{"id": f"news-{k}-{i}", "url": f"https://bbc.com/mundo/{k}{i}", "title": s[:20], "summary": s,
                     "text": d} for i, (d, s) in enumerate(docs)]
            raw = rows
            path = f"spanish/{split}/0000.parquet"
        else:  # EUR-Lex-Sum: its own JSON-lines files
            raw = [{"celex_id": f"3201{k}R000{i}", "reference": d, "summary": s} for i, (d, s) in enumerate(docs)]
            text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in raw)
            fx.put_bytes(hub.repo, hub.revision, f"data/spanish/{split}.json", text.encode())
            fx.write(split, f"eurlexsum/{split}.json", text)
            continue
        fx.put(hub.repo, hub.revision, path, rows)
        fx.write(split, f"{src.name}/{split}.jsonl", "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in raw))


def _translation(fx: Fixture, src: Any) -> None:
    hub = src.hub
    forward = "es-en" in src.name or "es-pt" in src.name  # Spanish is the source side
    for k, (split, spec) in enumerate(hub.splits.items()):
        pairs = _pairs(4, 40 + 4 * k)
        if spec.repo == "Helsinki-NLP/tatoeba_mt":
            rows = [{"sourceLang": "eng", "targetlang": "spa", "sourceString": en, "targetString": es} for es, en in pairs]
            path = "eng-spa/test/0000.parquet"
        elif spec.repo == "vgaraujov/fapesp":
            rows = [{"translation": {"es": es, "pt": en}} for es, en in pairs]
            path = f"es-pt/{split}-00000-of-00001.parquet"
        else:
            rows = [{"translation": {"es": es, "en": en}} for es, en in pairs]
            path = f"es-en/partial-{split}/0000.parquet"
        fx.put(spec.repo, spec.revision, path, rows)
        src_side = [es if forward else en for es, en in pairs]
        tgt_side = [en if forward else es for es, en in pairs]
        fx.write(split, f"{src.name}/{split}.src", "\n".join(src_side) + "\n")
        fx.write(split, f"{src.name}/{split}.tgt", "\n".join(tgt_side) + "\n")


def _miam(fx: Fixture, src: Any) -> None:
    import csv

    for k, split in enumerate(SPLITS3):
        rows = []
        for d in range(2):
            for t, (es, _) in enumerate(_pairs(3, 50 + 6 * k + 3 * d)):
                rows.append({"Speaker": "U" if t % 2 else "M", "Utterance": es, "Dialogue_Act": "Pregunta",
                             "Dialogue_ID": f"d{k}{d}", "File_ID": f"f{k}{d}", "Label": MIAM_ACTS.index("Pregunta"),
                             "Idx": len(rows)})
        fx.put(src.hub.repo, src.hub.revision, f"dihana/{split}/0000.parquet", rows)
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(["Speaker", "Utterance", "Dialogue_Act", "Dialogue_ID", "File_ID"])
        for r in rows:
            w.writerow([r["Speaker"], r["Utterance"], r["Dialogue_Act"], r["Dialogue_ID"], r["File_ID"]])
        fx.write(split, f"miam/{split}.csv", buf.getvalue())


def build(task: Any, source: str, root: Path) -> Fixture:
    """The Hub files and raw files of ``task``'s ``source`` (which must have a Hub home)."""
    src = task.source(source)
    fx = Fixture(root / f"{task.name}-{source}")
    repo = next(iter(src.hub.splits.values())).repo if src.hub.splits else src.hub.repo
    repos = {s.repo for s in src.hub.splits.values()}
    if repo == "facebook/xnli":
        _xnli(fx, src)
    elif repo == "google-research-datasets/paws-x":
        _pawsx(fx, src)
    elif repo == "eriktks/conll2002":
        _conll2002(fx, src)
    elif repo == "universal-dependencies/universal_dependencies":
        _ud(fx, src)
    elif repo == "PlanTL-GOB-ES/SQAC":
        _sqac(fx, src)
    elif repos & {"ccasimiro/squad_es", "facebook/mlqa", "google/xquad"}:
        _squad_family(fx, src, task)
    elif repo in ("reciTAL/mlsum", "GEM/wiki_lingua", "csebuetnlp/xlsum", "dennlinger/eur-lex-sum"):
        _summaries(fx, src)
    elif repos & {"vgaraujov/wmt13", "vgaraujov/fapesp"}:
        _translation(fx, src)
    elif repo == "PierreColombo/miam":
        _miam(fx, src)
    else:
        raise KeyError(f"no fixture for {task.name}/{source} ({repo}); add its schema and rows here")
    return fx


def hub_sources() -> list[tuple[str, str]]:
    """Every (task, source) with a Hub home."""
    from es_zoo.tasks.definitions import list_tasks, load_task

    out = []
    for name in list_tasks():
        for sname, src in load_task(name).sources.items():
            if src.hub is not None and not src.hub.unavailable:
                out.append((name, sname))
    return out
