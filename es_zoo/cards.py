"""Model cards: metadata through ``huggingface_hub.ModelCardData`` (never hand-built YAML), body from
the Jinja template in ``model_cards/``.

Only hyperparameters that differ from the recipe schema's defaults are listed; facts nobody measured
stay HTML comments in the template.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from es_zoo.catalog import find_model
from es_zoo.errors import EsZooError
from es_zoo.families import get_family
from es_zoo.recipes import PresetConfig, ResolvedRecipe, read_yaml
from es_zoo.resources import model_cards_dir
from es_zoo.runinfo import library_versions
from es_zoo.tasks.definitions import load_task


def _flatten(obj: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(obj, dict):
        out: dict[str, Any] = {}
        for k, v in obj.items():
            out.update(_flatten(v, f"{prefix}.{k}" if prefix else str(k)))
        return out
    return {prefix: obj}


# How a run was executed, not what was trained: never a hyperparameter of the model a card describes.
RUN_MECHANICS = frozenset({
    "training.compile", "training.compile_mode", "training.compile_backend", "training.optimizer_impl",
    "training.pin_memory", "training.trackers", "training.peak_tflops", "training.process_group_timeout_s",
    "training.dataloader_workers", "model.attn_implementation",
})


def non_default_hyperparameters(config: PresetConfig) -> list[tuple[str, Any]]:
    """Settings of ``config`` whose value differs from the schema default (phases always listed);
    how the run was executed (compilation, optimizer kernels, trackers: :data:`RUN_MECHANICS`) is left out."""
    rows = []
    for section in ("tokenizer", "model", "objective", "training"):
        obj = getattr(config, section)
        if obj is None:
            continue
        for f in dataclasses.fields(obj):
            if f"{section}.{f.name}" in RUN_MECHANICS:
                continue
            value = getattr(obj, f.name)
            if f.default is not dataclasses.MISSING and value == f.default:
                continue
            if f.default_factory is not dataclasses.MISSING and value == f.default_factory():  # type: ignore[misc]
                continue
            if dataclasses.is_dataclass(value) or isinstance(value, list):
                value = json.dumps(_jsonable(value))
            rows.append((f"{section}.{f.name}", value))
    return rows


def _jsonable(v: Any) -> Any:
    if dataclasses.is_dataclass(v):
        return dataclasses.asdict(v)
    if isinstance(v, list):
        return [_jsonable(x) for x in v]
    return v


def _is_hub_dataset(source: str) -> bool:
    """A corpus given as a Hub dataset id (not ``embedded``, not a local file or folder)."""
    import re

    return bool(re.match(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$", source)) and not Path(source).expanduser().exists()


def _corpus_shown(source: str) -> str:
    """The corpus as a card may show it: never a machine-specific path."""
    if source == "embedded":
        return "embedded (ELTeC-spa novels shipped with es-zoo)"
    if _is_hub_dataset(source):
        return f"[{source}](https://huggingface.co/datasets/{source})"
    return f"a local corpus ({Path(source).name})"


def write_model_card(path: str | Path, cfg: ResolvedRecipe, results: dict, repo_id: str | None = None) -> None:
    """Render ``README.md`` for an exported model folder (signed: see :func:`card_state`)."""
    Path(path).write_text(model_card_text(cfg, results, repo_id), encoding="utf-8")


def model_card_text(cfg: ResolvedRecipe, results: dict, repo_id: str | None = None) -> str:
    """The model card of a reproduced model: ``model-index`` from the GLUES and seq2seq fine-tunes the
    run measured, the published numbers of the reproduced checkpoint beside them."""
    from huggingface_hub import ModelCard, ModelCardData

    rec = find_model(cfg.reproduces) if cfg.reproduces else None
    c = cfg.config
    fam = get_family(cfg.config.model.architecture).card_text(cfg, results)
    data = ModelCardData(
        language="es",
        license=None,  # the weights are the user's to license; never copied from the reproduced model
        library_name="transformers",
        pipeline_tag=fam["pipeline"],
        tags=["es-zoo", cfg.recipe, *fam["tags"], "spanish"],
        base_model=(results.get("encoder") or {}).get("hub_id"),  # bert2bert: the BETO it was warm-started from
        datasets=[c.corpus.source] if _is_hub_dataset(c.corpus.source) else None,
        model_name=repo_id or f"{cfg.recipe}-{cfg.preset}",
        eval_results=run_eval_results(results) or None,
    )
    phases = ", ".join(
        f"{p.max_steps} steps x {p.global_batch_size} sequences of {p.seq_len}" for p in c.training.phases
    ) or "no training steps"
    if c.tokenizer is not None:
        tokenizer = f"{c.tokenizer.kind}, {results['training']['vocab_size']:,} entries" + (
            f", {'uncased' if c.tokenizer.lowercase else 'cased'}" if c.tokenizer.kind == "wordpiece" else "")
    else:
        tokenizer = f"the warm-start checkpoint's, {results['training']['vocab_size']:,} entries"
    sample = (results.get("data") or {}).get("tokenizer_sample") or {}
    if c.tokenizer is not None and sample.get("characters"):
        share = sample.get("share_of_training_text")
        tokenizer += (f"; trained on {sample['characters']:,} characters of text ("
                      + (f"{100 * share:.1f}% of the training text, " if share is not None else "")
                      + "the documents with the smallest hash of their text, so spread over the whole corpus)")
    card = ModelCard.from_template(
        data,
        template_path=str(model_cards_dir() / "model_card.md"),
        model_title=f"{cfg.recipe} ({cfg.preset} preset), trained with es-zoo",
        model_summary=f"{fam['summary']} {c.description}"
        + (f" **Schedule shortened**: {cfg.schedule_note}; what the description says of the schedule does not "
           "hold for this run." if getattr(cfg, "schedule_note", None) else ""),
        recipe=cfg.recipe, preset=cfg.preset, reproduces=cfg.reproduces,
        reproduces_hub_id=rec.hub_id if rec else None,
        reproduces_license=rec.license if rec else None,
        repo_id_or_path=repo_id or "PATH_TO_THIS_FOLDER",
        model_class=fam["model_class"], usage_extra=fam["usage_extra"],
        eval_intro=fam["eval_intro"], eval_baseline_header=fam["eval_baseline_header"], eval_rows=fam["eval_rows"],
        samples=results.get("samples", [])[:3], glues=results.get("glues") or {},
        seq2seq=results.get("seq2seq") or {},
        heldout=results["heldout"], training=results["training"],
        published=_published_beside_measured(rec, results) if rec else [],
        corpus=_corpus_shown(c.corpus.source),
        tokenizer=tokenizer, architecture=fam["architecture"], objective=fam["objective"],
        schedule=f"{phases}; {c.training.optimizer}, lr {c.training.learning_rate:g}, warmup "
                 f"{c.training.warmup_steps}, {c.training.lr_schedule} decay",
        non_default=non_default_hyperparameters(c),
        versions=", ".join(f"{k} {v}" for k, v in library_versions().items()),
        citations=fam["citations"],
    )
    return sign_card(str(card))


_USAGE = {
    "sequence": ('from transformers import pipeline\n\nclassifier = pipeline("text-classification", model="{p}")\n'
                 '{example}'),
    "token": ('from transformers import pipeline\n\ntagger = pipeline("token-classification", model="{p}"'
              '{agg})\nprint(tagger("El presidente visitó Madrid y Buenos Aires en junio."))'),
    "qa": ('from transformers import pipeline\n\nqa = pipeline("question-answering", model="{p}")\n'
           'print(qa(question="¿Dónde vive Ana?", context="Ana vive en Sevilla desde 2010."))'),
    "parser": ('from es_zoo.tasks.heads import BiaffineParser\n\n'
               '# the encoder alone loads with transformers.AutoModel; the biaffine head is es-zoo\'s\n'
               'parser = BiaffineParser.load("{p}")\n'
               'from es_zoo.tasks.parse import parse\nprint(parse(parser, "{p}", [["El", "perro", "ladra", "."]]))'),
    "seq2seq": ('from transformers import AutoModelForSeq2SeqLM, AutoTokenizer\n\n'
                'tokenizer = AutoTokenizer.from_pretrained("{p}")\nmodel = AutoModelForSeq2SeqLM.from_pretrained("{p}")\n'
                '# generation_config.json holds the task\'s beam size, length penalty and output length\n'
                'inputs = tokenizer(["{example}"], return_tensors="pt")\n'
                'print(tokenizer.batch_decode(model.generate(**inputs), skip_special_tokens=True))\n\n'
                '# or, batched and sorted by length for many inputs:\n'
                'from es_zoo.generation import generate\nprint(generate(model, tokenizer, ["{example}"]))'),
}
# Pipeline tags of the seq2seq kinds (the Hub's task names).
_SEQ2SEQ_PIPELINE = {"summarization": "summarization", "translation": "translation"}
_SEQ2SEQ_EXAMPLE = {
    "summarization": "El Gobierno aprobó ayer un plan de inversiones de 2.000 millones de euros para modernizar los trenes de cercanías.",
    "translation": "El tren sale de la estación a las ocho de la mañana.",
    "generative_qa": "question: ¿Dónde vive Ana? context: Ana vive en Sevilla desde 2010.",
    "split_rephrase": "Ana, que vive en Sevilla desde 2010, trabaja en un hospital.",
    "dialogue": "Quería saber el horario de trenes a Valencia.",
}

# The values of a metric's result that are scores (the others are counts).
SCORE_KEYS = ("accuracy", "precision", "recall", "f1", "exact_match", "uas", "las", "clas",
              "rouge1", "rouge2", "rougeL", "rougeLsum", "sari", "bleu", "chrf", "meteor")

_METRIC_NOTE = {
    "accuracy": "accuracy in percent",
    "ner_f1": "entity precision, recall and F1 in percent as conlleval computes them (seqeval, default mode)",
    "attachment": "UAS and LAS in percent as the CoNLL 2018 evaluation script computes them (gold tokenization)",
    "squad_v1": "exact match and F1 in percent as SQuAD v1.1's evaluate-v1.1.py computes them",
    "mlqa": "exact match and F1 in percent as MLQA's mlqa_evaluation_v1.py computes them for Spanish",
    "rouge": ("ROUGE F-measures in percent. The `rouge*` columns use es-zoo's Spanish-aware tokenization "
              "(Unicode words, accents kept, no stemmer); `paper_rouge*` in results.json are the paper-compatible "
              "variant (rouge-score's default tokenizer, which HF evaluate uses and which turns \"canción\" into "
              "\"canci n\")"),
    "sari": "SARI (Xu et al. 2016, as evaluate's sari computes it), sacreBLEU (signature in results.json) and exact match",
    "translation": "sacreBLEU and chrF through the sacrebleu library (signatures in results.json)",
    "generative_qa": "ROUGE (Spanish-aware tokenization), token F1 and exact match with MLQA's Spanish normalisation",
    "dialogue": "token F1 (MLQA's Spanish normalisation), the paper's unigram F1, METEOR as evaluate computes it "
                "(when nltk's wordnet data is installed) and sacreBLEU",
}


def write_finetune_card(path: str | Path, task: Any, results: dict, repo_id: str | None = None) -> None:
    """``README.md`` for a fine-tuned model folder (signed: see :func:`card_state`)."""
    Path(path).write_text(finetune_card_text(task, results, repo_id), encoding="utf-8")


def finetune_card_text(task: Any, results: dict, repo_id: str | None = None) -> str:
    """The card of a fine-tuned model: metadata through ``ModelCardData`` (with a ``model-index`` of the
    measured scores), the body from ``model_cards/finetuned_card.md``."""
    from huggingface_hub import ModelCard, ModelCardData

    base = results["model"]
    local = Path(base).exists()
    rec = None if local else find_model(base)
    base_model = (rec.hub_id if rec else base) if not local else None  # a local folder has no Hub id to cite
    published_rec = rec
    if local:
        run_results = Path(base) / "results.json"
        reproduces = json.loads(run_results.read_text()).get("reproduces") if run_results.is_file() else None
        published_rec = find_model(reproduces) if reproduces else None
        base_shown = f"a local model folder `{Path(base).name}`"
        recipe_file = next((d / "recipe.yaml" for d in (Path(base), Path(base).parent) if (d / "recipe.yaml").is_file()), None)
        if recipe_file is not None:
            try:
                stored = read_yaml(recipe_file)
                base_shown = (f"an es-zoo run of the `{stored.get('recipe')}` recipe ({stored.get('preset')} preset, "
                              f"folder `{recipe_file.parent.name}`)")
            except (EsZooError, OSError, ValueError, AttributeError):
                pass  # the card names the folder only
    else:
        base_shown = f"`{base_model}`"
    metric = results["metric"]
    data = results["data"]
    title = f"{task.name} fine-tune"
    pipeline = {"sequence": "text-classification", "token": "token-classification", "qa": "question-answering",
                "parser": None, "seq2seq": _SEQ2SEQ_PIPELINE.get(task.kind, "text2text-generation")}[task.head]
    hub = data.get("hub") or {}
    evals = eval_results(task, data["source"], {name: part["metrics"] for name, part in results["splits"].items()},
                         hub_splits=hub)
    origin = data.get("origin", "")
    if hub:
        hub_ids = sorted({h["id"] for h in hub.values()})
    else:
        hub_ids = [origin.split(":", 1)[1]] if origin.startswith("hub:") else None
    card_data = ModelCardData(
        language="es", license=None, library_name="transformers", pipeline_tag=pipeline,
        tags=["es-zoo", task.suite, task.name, "spanish"], base_model=base_model,
        datasets=hub_ids,
        model_name=repo_id or title, eval_results=evals or None,
    )
    published = published_rec.scores_for(task.published["task"]) if published_rec and task.published else []
    src = task.sources.get(data["source"])
    p = repo_id or "PATH_TO_THIS_FOLDER"
    keys = [k for k in results["metrics"] if k in SCORE_KEYS]
    example = 'print(classifier({"text": "El gato duerme.", "text_pair": "Un gato está durmiendo."}))' \
        if task.kind == "pair" else 'print(classifier("La bolsa de Madrid cerró con pérdidas."))'
    if task.head == "seq2seq":
        example = _SEQ2SEQ_EXAMPLE.get(task.kind, "La bolsa de Madrid cerró con pérdidas.")
    card = ModelCard.from_template(
        card_data, template_path=str(model_cards_dir() / "finetuned_card.md"),
        model_title=title, task=task.name, head=task.head,
        description=task.description if data["source"] == task.default_source or src is None else
        f"{task.description.split(' (')[0]}, on its `{data['source']}` data ({src.note or src.url or src.license})",
        summary=f"A Spanish {task.head} model for {task.name}.", base_model_shown=base_shown,
        usage=_USAGE[task.head].format(p=p, example=example,
                                       agg=', aggregation_strategy="first"' if task.kind == "ner" else ""),
        split=results["split"], examples=results["examples"], source=data["source"],
        metric_note=_METRIC_NOTE[metric["name"]], metric_keys=keys,
        splits=list(results["splits"].items()),
        split_examples=sum(s.get("split_examples", 0) for s in results["splits"].values()),
        truncated=sum(s.get("truncated_sources", 0) + s.get("truncated_targets", 0) for s in results["splits"].values()),
        hp=results["hyperparameters"], training=results["training"],
        published=[{**dataclasses.asdict(s), "other_metric": s.metric.lower() != task.published["metric"].lower()}
                   for s in published], published_model=published_rec.name if published_rec else None,
        data_license=data.get("license") or "unknown", data_note=src.note if src else None,
        citation=src.citation if src else None,
        files=[(k, v) for k, v in data.get("files", {}).items()], sizes=list(data.get("sizes", {}).items()),
        hub_rows=list(hub.items()), changed=list((data.get("changed") or {}).items()),
        comparable=task.comparable(data["source"], data.get("changed")),
        fixture=bool(src and src.embedded),
        versions=", ".join(f"{k} {v}" for k, v in library_versions().items()),
    )
    return sign_card(str(card))


# --------------------------------------------------------------------------------------------------
# model-index: the Hub's task, dataset and metric names
# --------------------------------------------------------------------------------------------------

# es-zoo metric key -> (Hub metric type, display name). The Hub's model-index has no per-result
# "variant" field; the ROUGE variant goes into metric_config.
_HUB_METRICS = {
    "accuracy": ("accuracy", "Accuracy"), "precision": ("precision", "Precision"), "recall": ("recall", "Recall"),
    "f1": ("f1", "F1"), "exact_match": ("exact_match", "Exact Match"), "uas": ("uas", "UAS"), "las": ("las", "LAS"),
    "clas": ("clas", "CLAS"), "rouge1": ("rouge", "ROUGE-1"), "rouge2": ("rouge", "ROUGE-2"),
    "rougeL": ("rouge", "ROUGE-L"), "rougeLsum": ("rouge", "ROUGE-Lsum"), "sari": ("sari", "SARI"),
    "bleu": ("sacrebleu", "sacreBLEU"), "chrf": ("chrf", "chrF"), "meteor": ("meteor", "METEOR"),
}
# es-zoo task kind -> the Hub's task type (pipeline tag); parsing has none and is tagged token-classification
_HUB_TASK = {"pair": "text-classification", "document": "text-classification", "ner": "token-classification",
             "pos": "token-classification", "parsing": "token-classification", "qa": "question-answering",
             "summarization": "summarization", "translation": "translation", "split_rephrase": "text2text-generation",
             "generative_qa": "text2text-generation", "dialogue": "text2text-generation"}


def eval_results(task: Any, source: str, splits: dict[str, dict], hub_splits: dict | None = None) -> list:
    """``EvalResult`` rows for every score of every split (counts, signatures and variant notes left out).

    A split read from the Hub is named by its Hub dataset, config and revision (``hub_splits``: split -> id,
    config, revision); one read from the source's published files by the source's Hub home when it has one
    (no revision: the files were the user's), else by the source's name. Scores on es-zoo's shipped
    fixtures are left out: they are samples, not a benchmark's split, and the Hub would list them under
    the benchmark (the card's body shows them, marked)."""
    from huggingface_hub import EvalResult

    src = task.sources.get(source)
    if src is None or src.embedded:
        return []
    home = src.hub if src.hub is not None and not src.hub.unavailable else None
    rows = []
    for split, metrics in splits.items():
        for key, value in metrics.items():
            paper = key.startswith("paper_")
            hub = _HUB_METRICS.get(key[len("paper_"):] if paper else key)
            if hub is None or not isinstance(value, (int, float)) or isinstance(value, bool):
                continue
            config = None
            if hub[0] == "rouge":
                config = "paper (rouge-score default tokenizer, stemmer)" if paper else "spanish (es-zoo tokenizer)"
            where = (hub_splits or {}).get(split)
            if where is None and home is not None and split in home.splits:
                part = home.splits[split]
                where = {"id": part.repo, "config": part.config or home.config, "revision": None}
            rows.append(EvalResult(
                task_type=_HUB_TASK.get(task.kind, "text2text-generation" if task.head == "seq2seq" else "text-classification"),
                task_name=task.name, dataset_type=where["id"] if where else source,
                dataset_name=f"{task.name} ({source})", dataset_revision=where["revision"] if where else None,
                dataset_config=(where["config"] or None) if where else None, dataset_split=split,
                metric_type=hub[0], metric_name=hub[1] + (" (paper variant)" if paper else ""),
                metric_config=config, metric_value=round(float(value), 4)))
    return rows


def run_eval_results(results: dict) -> list:
    """``EvalResult`` rows of the fine-tunes a reproduce run measured (its ``glues`` and ``seq2seq``)."""
    rows = []
    for suite in ("glues", "seq2seq"):
        for name, r in (results.get(suite) or {}).items():
            task = load_task(name)
            splits = {r["split"]: r["metrics"]}
            main = r["metric"]["main"]
            for split, other in (r.get("other_splits") or {}).items():
                splits[split] = {main: other["main"]}
            rows += eval_results(task, r["source"], splits, hub_splits=(r.get("data") or {}).get("hub"))
    return rows


def _published_beside_measured(rec: Any, results: dict) -> list[dict]:
    """The reproduced checkpoint's published scores, each with what this run measured for the same task
    and metric (on es-zoo's fixtures, so beside, not comparable)."""
    measured = {**(results.get("glues") or {}), **(results.get("seq2seq") or {})}
    rows = []
    for s in rec.scores_for():
        row = dataclasses.asdict(s)
        m = measured.get(s.task)
        value = None
        if m is not None:
            key = s.metric.lower().replace("-", "").replace(" ", "")
            for k, v in m["metrics"].items():
                if k.lower() == key and isinstance(v, (int, float)):
                    value = f"{v:.2f} ({m['source']} {m['split']})"
        row["measured"] = value
        rows.append(row)
    return rows


# --------------------------------------------------------------------------------------------------
# Signed cards: tell a card es-zoo rendered from one a person edited
# --------------------------------------------------------------------------------------------------

_SIGNATURE = "<!-- es-zoo card sha256:"


def sign_card(text: str) -> str:
    """``text`` with a last line carrying the SHA-256 of everything above it: a later edit (on the Hub or
    on disk) breaks the match, so es-zoo can tell an untouched card from one a person changed."""
    import hashlib

    body = text.rstrip("\n") + "\n"
    return f"{body}\n{_SIGNATURE}{hashlib.sha256(body.encode('utf-8')).hexdigest()} -->\n"


def card_state(text: str) -> str:
    """``"es-zoo"`` for a card es-zoo rendered and nobody changed since, ``"edited"`` for a signed card
    changed afterwards, ``"foreign"`` for a card without es-zoo's signature (written by hand or another
    tool). Only ``"es-zoo"`` cards are replaced without ``--overwrite-card``."""
    import hashlib

    head, sep, tail = text.rstrip("\n").rpartition("\n" + _SIGNATURE)
    if not sep:
        return "foreign"
    digest, end, after = tail.partition(" -->")
    if not end or after.strip():
        return "edited"  # text added after the signature line is an edit like any other
    body = head.rstrip("\n") + "\n"
    return "es-zoo" if hashlib.sha256(body.encode("utf-8")).hexdigest() == digest.strip() else "edited"
