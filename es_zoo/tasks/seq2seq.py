"""Seq2seq fine-tuning pieces: rows -> model input and target text, batches, the loss, generation and
scoring. The loop itself is :func:`es_zoo.tasks.finetune.finetune` (the shared training loop), so
checkpoints, exact resume and logging are the pretraining loop's.

- **Input**: the task's template (``recipes/tasks/<task>.yaml``, ``input.template``) filled with the
  row's columns, after the model family's prefix (none by default: the seq2seq paper used no T5
  prefix; ``--set prefix="resumir: "`` sets one). The target is ``input.target`` (a list column: its
  first item; all of them are references); a text-to-text classifier generates its label's word
  (``input.verbalizer``).
- **Lengths**: a source longer than ``max_length`` or a target longer than ``max_target_length`` is an
  error unless the task switches truncation on (``truncate_source`` / ``truncate_target``); every
  truncation is counted in the results.
- **Teacher forcing**: the decoder reads the target shifted right behind the family's decoder start
  token; cross-entropy (optionally label-smoothed) is summed over target tokens and the loop divides by
  the target tokens of the whole global batch.
- **Evaluation** generates with beam search, batched and sorted by length (:mod:`es_zoo.generation`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from es_zoo.generation import GenerationError, decode, encode, generate_ids, pad
from es_zoo.generation import Encoded as EncodedTexts
from es_zoo.metrics import generation as G
from es_zoo.metrics.sari import sari
from es_zoo.tasks.definitions import Hyperparameters, InputSpec, TaskDef, TaskError


@dataclass
class Texts:
    """One split as model-ready text."""

    ids: list[str]
    inputs: list[str]
    targets: list[str]
    references: list[list[str]]
    sources: list[str] = field(default_factory=list)  # the original source sentence (SARI)


def _target_text(spec: InputSpec, row: dict, label_names: list[str] | None) -> tuple[str, list[str]]:
    value = row[spec.target]
    if spec.verbalizer is not None:
        name = label_names[value] if label_names is not None and isinstance(value, int) else str(value)
        word = spec.verbalizer[name]
        return word, [word]
    if isinstance(value, list):
        return value[0], list(value)
    return value, [value]


def separator(tokenizer: Any) -> str:
    """What joins the parts of an input (dialogue turns, sentence pairs): the tokenizer's separator
    token (``</s>`` for BART and T5, ``[SEP]`` for BERT2BERT), as the seq2seq paper's scripts did."""
    return tokenizer.sep_token or tokenizer.eos_token or " "


def _fill(task: TaskDef, spec: Any, row: dict, sep: str) -> str:
    try:
        return spec.template.format(sep=sep, **{k: (sep.join(v) if isinstance(v, list) and k != spec.target else v)
                                                for k, v in row.items()})
    except KeyError as exc:
        raise TaskError(f"task '{task.name}': the input template {spec.template!r} names column {exc}, which the "
                        f"data does not have (columns: {', '.join(row)})") from None


def source_text(task: TaskDef, source: str | None, row: dict, hp: Hyperparameters, family: str, sep: str = " ") -> str:
    """The model input for one row (the columns the task's template names; no target needed): the
    family's prefix and the filled template, exactly as fine-tuning and evaluation build it."""
    spec = task.input_for(source)
    prefix = hp.prefix if hp.prefix is not None else spec.prefix_for(family)
    return prefix + _fill(task, spec, row, sep)


def texts_for(task: TaskDef, source: str | None, split: Any, hp: Hyperparameters, family: str,
              sep: str = " ") -> Texts:
    """Input, target and reference texts of every row of ``split`` (a ``datasets.Dataset``). In the
    template, ``{sep}`` is the separator token and a list column (dialogue history) is joined by it."""
    spec = task.input_for(source)
    prefix = hp.prefix if hp.prefix is not None else spec.prefix_for(family)
    label_names = None
    if spec.verbalizer is not None:
        feature = split.features[spec.target]
        label_names = list(getattr(feature, "names", []) or []) or None
    out = Texts([], [], [], [], [])
    for row in split:
        text = _fill(task, spec, row, sep)
        target, refs = _target_text(spec, row, label_names)
        out.ids.append(str(row["id"]))
        out.inputs.append(prefix + text)
        out.targets.append(target)
        out.references.append(refs)
        out.sources.append(str(row.get("source", text)))
    return out


@dataclass
class Report:
    """What encoding did to a split (recorded per split in results.json)."""

    examples: int
    truncated_sources: int
    truncated_targets: int
    source_limit: int
    target_limit: int

    def report(self) -> dict[str, int]:
        return {"examples": self.examples, "truncated_sources": self.truncated_sources,
                "truncated_targets": self.truncated_targets, "source_limit": self.source_limit,
                "target_limit": self.target_limit}


@dataclass
class Prepared:
    """One split, encoded for teacher forcing and generation."""

    encoded: Report
    items: list[dict]  # {"input_ids", "labels"}
    lengths: np.ndarray  # source + target tokens (length grouping)
    split: Any
    texts: Texts
    sources: EncodedTexts


def fit_limit(hp: Hyperparameters, limit: int | None, where: str, say: Any = print) -> Hyperparameters:
    """``hp`` with ``max_length`` within what the encoder can read. A task that truncates its sources
    anyway (summarization: 1024 tokens for BART and T5, 512 for BERT2BERT, as the paper's scripts) is
    cut at the encoder's limit, said aloud and recorded (``source_limit`` per split); otherwise a
    longer ``max_length`` is an error."""
    if limit is None or hp.max_length <= limit:
        return hp
    if not hp.truncate_source:
        raise TaskError(f"max_length {hp.max_length} is longer than {where} can read ({limit} positions); "
                        f"use --max-length {limit} or less")
    say(f"note: sources are cut at {limit} tokens, the most {where} can read (the task asks for {hp.max_length})")
    return hp.replace(max_length=limit)


def prepare(task: TaskDef, tokenizer: Any, split: Any, hp: Hyperparameters, family: str,
            source: str | None, with_targets: bool = True) -> Prepared:
    texts = texts_for(task, source, split, hp, family, separator(tokenizer))
    try:
        src = encode(tokenizer, texts.inputs, hp.max_length, hp.truncate_source, "source", texts.ids,
                     side=hp.truncation_side)
        tgt = encode(tokenizer, texts.targets, hp.max_target_length, hp.truncate_target, "target", texts.ids)
    except GenerationError as exc:
        raise TaskError(f"task '{task.name}': {exc}") from None
    items = [{"input_ids": s, "labels": t} for s, t in zip(src.ids, tgt.ids)]
    lengths = np.array([len(s) + len(t) for s, t in zip(src.ids, tgt.ids)]) if items else np.zeros(0, int)
    report = Report(len(items), src.truncated, tgt.truncated, hp.max_length, hp.max_target_length)
    return Prepared(report, items, lengths, split, texts, src)


def collate(items: list[dict], pad_id: int, start_id: int) -> dict[str, torch.Tensor]:
    """Dynamically padded encoder input, decoder input (the target shifted right behind the decoder
    start token) and labels (-100 on padding)."""
    out = {"input_ids": pad([it["input_ids"] for it in items], pad_id),
           "attention_mask": pad([[1] * len(it["input_ids"]) for it in items], 0)}
    if "labels" in items[0]:
        out["labels"] = pad([it["labels"] for it in items], -100)
        out["decoder_input_ids"] = pad([[start_id] + it["labels"][:-1] for it in items], pad_id)
    return out


class Seq2SeqTaskLoss(nn.Module):
    """Summed (optionally label-smoothed) cross-entropy over target tokens, and the tokens predicted
    right (teacher forcing)."""

    def __init__(self, model: nn.Module, label_smoothing: float = 0.0) -> None:
        super().__init__()
        self.model = model
        self.label_smoothing = label_smoothing

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, decoder_input_ids: torch.Tensor,
                labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logits = self.model(input_ids=input_ids, attention_mask=attention_mask,
                            decoder_input_ids=decoder_input_ids).logits
        flat = logits.reshape(-1, logits.shape[-1]).float()
        loss = F.cross_entropy(flat, labels.reshape(-1), ignore_index=-100, reduction="sum",
                               label_smoothing=self.label_smoothing)
        return loss, (flat.detach().argmax(-1) == labels.reshape(-1)).sum()


def predict(model: Any, tokenizer: Any, prepared: Prepared, hp: Hyperparameters, device: Any = None) -> list[str]:
    """Generated text per example (beam search, batched and sorted by length)."""
    outputs = generate_ids(model, prepared.sources.ids, tokenizer.pad_token_id, batch_size=hp.eval_batch_size,
                           num_beams=hp.num_beams, max_new_tokens=hp.max_new_tokens,
                           length_penalty=hp.length_penalty, device=device, min_new_tokens=hp.min_new_tokens,
                           **({"no_repeat_ngram_size": hp.no_repeat_ngram_size} if hp.no_repeat_ngram_size else {}))
    return decode(tokenizer, outputs)


def score(task: TaskDef, metric: dict[str, str], predictions: list[str], texts: Texts) -> dict[str, Any]:
    """The task's metrics on generated text (percentages; sacreBLEU's signature kept beside its score)."""
    refs = texts.references
    if len(predictions) != len(refs):
        raise TaskError(f"{len(predictions)} predictions for {len(refs)} examples")
    name = metric["name"]
    if name == "accuracy":
        spec = task.input
        allowed = set((spec.verbalizer or {}).values()) if spec else set()
        norm = [p.strip().lower() for p in predictions]
        correct = sum(p == r[0].lower() for p, r in zip(norm, refs))
        return {"accuracy": 100.0 * correct / max(1, len(refs)), "correct": correct, "total": len(refs),
                "invalid": sum(p not in {a.lower() for a in allowed} for p in norm)}
    if name not in ("rouge", "generative_qa", "dialogue", "sari", "translation"):
        raise TaskError(f"task '{task.name}': metric {name!r} does not score generated text")
    out: dict[str, Any] = {}
    if name in ("rouge", "generative_qa"):
        spanish = G.rouge(predictions, refs, variant="spanish")
        paper = G.rouge(predictions, refs, variant="paper", use_stemmer=True)  # the paper's scripts stem
        out.update({k: spanish[k] for k in ("rouge1", "rouge2", "rougeL", "rougeLsum")})
        out.update({f"paper_{k}": paper[k] for k in ("rouge1", "rouge2", "rougeL", "rougeLsum")})
        out["rouge_variants"] = {"rouge*": spanish["tokenizer"], "paper_rouge*": paper["tokenizer"]}
    elif name == "sari":
        s = sari(texts.sources, predictions, refs)
        out.update({"sari": s["sari"], "sari_add": s["add"], "sari_keep": s["keep"], "sari_delete": s["delete"]})
        b = G.bleu(predictions, refs)
        out.update({"bleu": b["bleu"], "bleu_signature": b["signature"]})
        out["exact_match"] = 100.0 * sum(p.strip() == r[0].strip() for p, r in zip(predictions, refs)) / max(1, len(refs))
    elif name == "translation":
        b, c = G.bleu(predictions, refs), G.chrf(predictions, refs)
        out.update({"bleu": b["bleu"], "bleu_signature": b["signature"], "chrf": c["chrf"],
                    "chrf_signature": c["signature"]})
    if name in ("generative_qa", "dialogue"):
        f = G.token_f1(predictions, refs, normalize="mlqa")
        out.update({"f1": f["f1"], "exact_match": f["exact_match"]})
        if name == "dialogue":
            out["paper_f1"] = paper_unigram_f1(predictions, [r[0] for r in refs])
            out.update(_meteor(predictions, refs))
            out["bleu"] = G.bleu(predictions, refs)["bleu"]
    return out


def paper_unigram_f1(predictions: list[str], references: list[str]) -> float:
    """The dialogue F1 of the seq2seq paper's script (x100): whitespace tokens; precision is the share
    of the prediction's tokens that occur in the reference, recall the share of the reference's tokens
    that occur in the prediction (membership, not clipped counts); F1 per example (0 when either side
    is empty or nothing matches), averaged. Written from the script's description; SQuAD-style token F1
    (clipped counts, normalised text) is reported beside it as ``f1``."""
    scores = []
    for p, r in zip(predictions, references):
        pt, rt = p.split(), r.split()
        if not pt or not rt:
            scores.append(0.0)
            continue
        precision = sum(t in rt for t in pt) / len(pt)
        recall = sum(t in pt for t in rt) / len(rt)
        scores.append(0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall))
    return 100.0 * sum(scores) / max(1, len(scores))


def _meteor(predictions: list[str], refs: list[list[str]]) -> dict[str, Any]:
    """METEOR as evaluate computes it, or why it could not be computed (nltk data missing)."""
    try:
        return {"meteor": G.meteor(predictions, refs)["meteor"]}
    except G.MetricUnavailable as exc:
        return {"meteor": None, "meteor_unavailable": str(exc)}
