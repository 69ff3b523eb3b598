"""Fine-tuning heads: one class per head a task YAML can name (``head: sequence | token | qa | parser |
seq2seq``), each with the same small protocol, so ``es_zoo.tasks.finetune`` reads like the pretraining
loop and a new head is one class here (registered in :data:`HEADS`) instead of a branch in every step.

The protocol (every method gets the task; ``ctx`` carries what a run learned before the step: the
parser's relation set, a seq2seq model's family and decoder start):

* ``before_model(task, data, model_name, revision)`` -> ctx entries, checks that must run before the
  model is loaded (a classifier fine-tuned for other labels);
* ``build_model(task, model_name, labels, hp, revision, **ctx)`` and ``after_model(model, hp, where, say)``
  -> (hp, ctx entries);
* ``prepare(task, tokenizer, split, hp, **ctx)`` -> a ``Prepared`` split (items to train on, the encoding);
* ``collate(items, windows, pad_id, **ctx)`` -> padded tensors; ``scored(items)`` -> how many items the
  summed loss is over;
* ``loss(model, hp)`` -> the loss module the loop differentiates (``es_zoo.tasks.heads``);
* ``predict(task, model, tokenizer, prepared, hp, batch_size, device)`` -> one prediction per example;
* ``check(task, split, predictions)`` and ``score(task, metric, predictions, split, prepared)`` -> the
  official metric;
* ``baselines(data, splits)`` -> trivial baselines beside the scores; ``save(model, path, hp)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch

from es_zoo import generation
from es_zoo import metrics as M
from es_zoo.generation import ready_for_generation
from es_zoo.loading import load_config, load_model, resolve
from es_zoo.modeling import save_model
from es_zoo.tasks import seq2seq
from es_zoo.tasks import features as feat
from es_zoo.tasks.checks import check_predictions
from es_zoo.tasks.data import LABEL_COLUMNS
from es_zoo.tasks.definitions import TaskError
from es_zoo.tasks.heads import BiaffineParser, ParserLoss, QALoss, SequenceLoss, TokenLoss, mst_heads, parser_meta
from es_zoo.tasks.seq2seq import Seq2SeqTaskLoss


def pad(rows: list[list[int]], value: int) -> torch.Tensor:
    width = max(len(r) for r in rows)
    out = torch.full((len(rows), width), value, dtype=torch.long)
    for i, r in enumerate(rows):
        out[i, : len(r)] = torch.tensor(r, dtype=torch.long)
    return out


def label_names(ds: Any, column: str) -> list[str]:
    f = ds.features[column]
    return list(getattr(f, "feature", f).names)


@dataclass
class Prepared:
    """One split, encoded for the task's head."""

    encoded: Any  # features.Encoded (seq2seq: its own report)
    items: list[dict]  # training items: windows (sequence, token, qa) or sentences (parser)
    lengths: np.ndarray  # tokens per item (for length grouping)
    split: Any  # the datasets.Dataset


def check_labels(config: Any, labels: list[str], where: str) -> bool:
    """True if the model already has this task's head; False if its head is untrained (default
    ``LABEL_i`` names); an error when it was fine-tuned for a different label set."""
    id2label = getattr(config, "id2label", None) or {}
    names = [id2label[i] for i in sorted(id2label, key=int)]
    if not names or all(n == f"LABEL_{i}" for i, n in enumerate(names)):
        return False
    if names != list(labels):
        raise TaskError(f"{where} was fine-tuned for labels {names}, but the task's label set is {list(labels)}; "
                        "fine-tune from the pretrained encoder instead (e.g. the run folder of `es-zoo reproduce`)")
    return True


def _prepared(enc: Any, items: list[dict], split: Any, lengths: np.ndarray | None = None) -> Any:
    if lengths is None:
        lengths = np.array([len(it["input_ids"]) for it in items])
    return Prepared(enc, items, lengths, split)


class TaskHead:
    name: ClassVar[str]

    def before_model(self, task: Any, data: Any, model_name: str, revision: str | None) -> dict:
        return {}

    def build_model(self, task: Any, model_name: str, labels: list[str], hp: Any, revision: str | None = None,
                    **ctx: Any) -> Any:
        raise NotImplementedError

    def after_model(self, model: Any, hp: Any, where: str, say: Any) -> tuple[Any, dict]:
        return hp, {}

    def prepare(self, task: Any, tokenizer: Any, split: Any, hp: Any, **ctx: Any) -> Any:
        raise NotImplementedError

    def collate(self, items: list[dict], windows: list[dict] | None, pad_id: int, **ctx: Any) -> dict:
        raise NotImplementedError

    def scored(self, items: list[dict]) -> int:
        """Items the loss is summed over, among ``items`` (this process's share of a global batch)."""
        return len(items)

    def loss(self, model: Any, hp: Any = None) -> Any:
        raise NotImplementedError

    def predict(self, task: Any, model: Any, tokenizer: Any, prepared: Any, hp: Any, batch_size: int = 64,
                device: Any = None) -> list[Any]:
        raise NotImplementedError

    def check(self, task: Any, split: Any, predictions: list[Any]) -> list[Any]:
        """``predictions`` checked against their gold examples (one per example, of the right shape)."""
        return check_predictions(task, split, predictions)

    def score(self, task: Any, metric: dict[str, str], predictions: list[Any], split: Any,
              prepared: Any = None) -> dict[str, Any]:
        raise NotImplementedError

    def baselines(self, data: Any, splits: dict[str, dict]) -> None:
        """Add trivial baselines to the scored ``splits`` (nothing by default)."""

    def save(self, model: Any, path: Any, hp: Any = None) -> None:
        model.save_pretrained(path)


# ------------------------------------------------------------------------------ windowed encoders
class _Windowed(TaskHead):
    """Heads over an encoder's windows (sequence, token, qa): a transformers Auto model, windows padded
    per micro-batch, predictions read window by window and merged back per example."""

    model_task: ClassVar[str]  # es_zoo.loading.load_model's task
    targets: ClassVar[tuple[str, ...]] = ()  # the item keys collate turns into target tensors

    def build_model(self, task: Any, model_name: str, labels: list[str], hp: Any, revision: str | None = None,
                    **ctx: Any) -> Any:
        return load_model(model_name, task=self.model_task, num_labels=len(labels),
                          id2label=dict(enumerate(labels)), label2id={n: i for i, n in enumerate(labels)},
                          revision=revision)

    def collate(self, items: list[dict], windows: list[dict] | None, pad_id: int, **ctx: Any) -> dict:
        out = {"input_ids": pad([it["input_ids"] for it in items], pad_id),
               "attention_mask": pad([[1] * len(it["input_ids"]) for it in items], 0)}
        if "token_type_ids" in items[0]:
            out["token_type_ids"] = pad([it["token_type_ids"] for it in items], 0)
        if self.targets and self.targets[0] in items[0]:
            out.update(self.target_tensors(items))
        return out

    def target_tensors(self, items: list[dict]) -> dict:
        return {}

    def window_output(self, res: Any, k: int, n: int) -> Any:
        return res.logits[k].float().cpu().numpy()

    @torch.no_grad()
    def window_outputs(self, model: Any, tokenizer: Any, windows: list[dict], batch_size: int, device: Any) -> list:
        """The model's output for every window, batched in length order."""
        lengths = np.array([len(w["input_ids"]) for w in windows])
        order = np.argsort(-lengths, kind="stable")
        out: list[Any] = [None] * len(windows)
        for lo in range(0, len(order), batch_size):
            idx = order[lo: lo + batch_size]
            rows = [{k: windows[i][k] for k in ("input_ids", "token_type_ids") if k in windows[i]} for i in idx]
            b = {k: v.to(device) for k, v in self.collate(rows, None, tokenizer.pad_token_id).items()}
            res = model(**b)
            for k, i in enumerate(idx):
                out[i] = self.window_output(res, k, lengths[i])
        return out

    def predict(self, task: Any, model: Any, tokenizer: Any, prepared: Any, hp: Any, batch_size: int = 64,
                device: Any = None) -> list[Any]:
        device = device or next(model.parameters()).device
        model.eval()
        outputs = self.window_outputs(model, tokenizer, prepared.encoded.windows, batch_size, device)
        return self.merge(task, model, prepared, outputs, hp)

    def merge(self, task: Any, model: Any, prepared: Any, outputs: list, hp: Any) -> list[Any]:
        raise NotImplementedError

    def before_model(self, task: Any, data: Any, model_name: str, revision: str | None) -> dict:
        # a classifier fine-tuned for other labels: said before loading (transformers would fail on the
        # head's size first)
        check_labels(load_config(model_name, revision=revision), data.labels, str(model_name))
        return {}


class SequenceHead(_Windowed):
    """A label per example (XNLI, PAWS-X, MLDoc): the mean of its windows' logits."""

    name, model_task, targets = "sequence", "sequence-classification", ("labels",)

    def prepare(self, task: Any, tokenizer: Any, split: Any, hp: Any, **ctx: Any) -> Any:
        pairs = split["sentence2"] if task.kind == "pair" else None
        texts = split["sentence1"] if task.kind == "pair" else split["text"]
        enc = feat.encode_sequences(tokenizer, texts, pairs, hp.max_length, hp.stride)
        labels = split["label"]
        return _prepared(enc, [{**w, "labels": labels[e]} for w, e in zip(enc.windows, enc.example_of)], split)

    def target_tensors(self, items: list[dict]) -> dict:
        return {"labels": torch.tensor([it["labels"] for it in items], dtype=torch.long)}

    def loss(self, model: Any, hp: Any = None) -> Any:
        return SequenceLoss(model)

    def merge(self, task: Any, model: Any, prepared: Any, outputs: list, hp: Any) -> list[Any]:
        enc = prepared.encoded
        names = [model.config.id2label[i] for i in range(model.config.num_labels)]
        sums = np.zeros((enc.n_examples, len(names)))
        counts = np.zeros(enc.n_examples)
        for i, e in enumerate(enc.example_of):
            sums[e] += outputs[i]
            counts[e] += 1
        return [names[j] for j in (sums / counts[:, None]).argmax(1)]

    def score(self, task: Any, metric: dict[str, str], predictions: list[Any], split: Any,
              prepared: Any = None) -> dict[str, Any]:
        return M.accuracy(predictions, [split.features["label"].int2str(x) for x in split["label"]])

    def baselines(self, data: Any, splits: dict[str, dict]) -> None:
        # what always answering the training set's most frequent label scores
        train_labels = np.bincount(data.dataset["train"]["label"], minlength=len(data.labels))
        for name, part in splits.items():
            part["majority_baseline"] = float(100 * np.mean(np.array(data.dataset[name]["label"]) == train_labels.argmax()))


class TokenHead(_Windowed):
    """A label per word (NER, POS) on its first sub-token, read from the word's max-context window."""

    name, model_task, targets = "token", "token-classification", ("labels",)

    def prepare(self, task: Any, tokenizer: Any, split: Any, hp: Any, **ctx: Any) -> Any:
        enc = feat.encode_words(tokenizer, split["tokens"], hp.max_length, hp.stride)
        tags = split[LABEL_COLUMNS[task.kind]]
        items = []
        for w, e, first in zip(enc.windows, enc.example_of, enc.first_subtokens):
            lab = [-100] * len(w["input_ids"])
            for pos, word in first.items():
                lab[pos] = tags[e][word]
            items.append({**w, "labels": lab})
        return _prepared(enc, items, split)

    def target_tensors(self, items: list[dict]) -> dict:
        return {"labels": pad([it["labels"] for it in items], -100)}

    def scored(self, items: list[dict]) -> int:
        return sum(sum(1 for x in it["labels"] if x != -100) for it in items)

    def loss(self, model: Any, hp: Any = None) -> Any:
        return TokenLoss(model)

    def window_output(self, res: Any, k: int, n: int) -> Any:
        return res.logits[k, :n].float().cpu().numpy()

    def merge(self, task: Any, model: Any, prepared: Any, outputs: list, hp: Any) -> list[Any]:
        names = [model.config.id2label[i] for i in range(model.config.num_labels)]
        return [[names[int(outputs[w][p].argmax())] for w, p in slots] for slots in prepared.encoded.word_slots]

    def score(self, task: Any, metric: dict[str, str], predictions: list[Any], split: Any,
              prepared: Any = None) -> dict[str, Any]:
        if task.kind == "ner":
            names = label_names(split, "ner_tags")
            return M.ner_f1(predictions, [[names[t] for t in s] for s in split["ner_tags"]])
        names = label_names(split, "upos")
        gold = [names[t] for s in split["upos"] for t in s]
        return M.accuracy([t for s in predictions for t in s], gold)


class QAHead(_Windowed):
    """An answer span (MLQA, XQuAD, SQAC): the best span over the context's windows."""

    name, model_task, targets = "qa", "question-answering", ("start_positions",)

    def before_model(self, task: Any, data: Any, model_name: str, revision: str | None) -> dict:
        return {}  # an answer span has no label set to check

    def build_model(self, task: Any, model_name: str, labels: list[str], hp: Any, revision: str | None = None,
                    **ctx: Any) -> Any:
        return load_model(model_name, task=self.model_task, revision=revision)

    def prepare(self, task: Any, tokenizer: Any, split: Any, hp: Any, **ctx: Any) -> Any:
        enc = feat.encode_qa(tokenizer, split["question"], split["context"], hp.max_length, hp.stride)
        answers = split["answers"]
        items = []
        for w, e in zip(enc.windows, enc.example_of):
            a = answers[e]
            first = (a["answer_start"][0], a["text"][0]) if a["text"] else (None, None)
            s, t = feat.qa_targets(w, *first)
            items.append({"input_ids": w["input_ids"], **({"token_type_ids": w["token_type_ids"]}
                                                          if "token_type_ids" in w else {}),
                          "start_positions": s, "end_positions": t})
        return _prepared(enc, items, split)

    def target_tensors(self, items: list[dict]) -> dict:
        return {"start_positions": torch.tensor([it["start_positions"] for it in items], dtype=torch.long),
                "end_positions": torch.tensor([it["end_positions"] for it in items], dtype=torch.long)}

    def loss(self, model: Any, hp: Any = None) -> Any:
        return QALoss(model)

    def window_output(self, res: Any, k: int, n: int) -> Any:
        return res.start_logits[k, :n].float().cpu().numpy(), res.end_logits[k, :n].float().cpu().numpy()

    def merge(self, task: Any, model: Any, prepared: Any, outputs: list, hp: Any) -> list[Any]:
        enc, split = prepared.encoded, prepared.split
        by_example: list[list[int]] = [[] for _ in range(enc.n_examples)]
        for i, e in enumerate(enc.example_of):
            by_example[e].append(i)
        allow_null = bool(any(split["is_impossible"]))
        windows = enc.windows
        return [feat.best_span([windows[i] for i in wins], [outputs[i][0] for i in wins], [outputs[i][1] for i in wins],
                               split[e]["context"], hp.n_best, hp.max_answer_length, allow_null)[0]
                for e, wins in enumerate(by_example)]

    def score(self, task: Any, metric: dict[str, str], predictions: list[Any], split: Any,
              prepared: Any = None) -> dict[str, Any]:
        refs = {r["id"]: list(r["answers"]["text"]) or [""] for r in split}
        preds = {r["id"]: p for r, p in zip(split, predictions)}
        if metric["name"] == "mlqa":
            return M.mlqa(preds, refs, lang="es")
        return M.squad_v1(preds, refs)


# ---------------------------------------------------------------------------------------- parser
class ParserHead(TaskHead):
    """Dependency trees (UD): the biaffine parser of ``es_zoo.tasks.heads`` over an encoder, one item per
    sentence (its windows), heads decoded as a maximum spanning tree."""

    name = "parser"

    def before_model(self, task: Any, data: Any, model_name: str, revision: str | None) -> dict:
        return {"relations": sorted({r for part in data.dataset.values() for r in label_names(part, "deprel")})}

    def build_model(self, task: Any, model_name: str, labels: list[str], hp: Any, revision: str | None = None,
                    relations: list[str] | None = None, **ctx: Any) -> Any:
        where, local = resolve(model_name)
        meta = parser_meta(where) if local else None
        if meta is not None:
            if relations is not None and meta["relations"] != relations:
                raise TaskError(f"{where} parses with relations {meta['relations']}, the task data has {relations}")
            return BiaffineParser.load(where)
        bert = load_config(model_name, revision=revision).model_type == "bert"
        encoder = load_model(model_name, task="base", **({"add_pooling_layer": False} if bert else {}),
                             revision=revision)
        scale = (hp.head_learning_rate or hp.learning_rate) / hp.learning_rate
        return BiaffineParser(encoder, relations or [], hp.arc_dim, hp.rel_dim, hp.head_dropout, scale)

    def prepare(self, task: Any, tokenizer: Any, split: Any, hp: Any, relations: list[str] | None = None,
                **ctx: Any) -> Any:
        enc = feat.encode_words(tokenizer, split["tokens"], hp.max_length, hp.stride)
        names = label_names(split, "deprel")
        remap = np.array([relations.index(n) for n in names]) if relations is not None else None
        by_example: list[list[int]] = [[] for _ in range(enc.n_examples)]
        for wi, e in enumerate(enc.example_of):
            by_example[e].append(wi)
        items = []
        for e, wins in enumerate(by_example):
            rels = split[e]["deprel"]
            items.append({"windows": wins, "slots": enc.word_slots[e], "heads": split[e]["head"],
                          "rels": list(remap[rels]) if remap is not None else rels})
        lengths = np.array([sum(len(enc.windows[w]["input_ids"]) for w in it["windows"]) for it in items])
        return _prepared(enc, items, split, lengths)

    def collate(self, items: list[dict], windows: list[dict] | None, pad_id: int, **ctx: Any) -> dict:
        rows: list[dict] = []
        word_row, word_pos, root_row = [], [], []
        for it in items:
            base = len(rows)
            local = {w: base + k for k, w in enumerate(it["windows"])}
            rows.extend(windows[w] for w in it["windows"])  # type: ignore[index]
            root_row.append(base)
            word_row.append([local[w] for w, _ in it["slots"]])
            word_pos.append([p for _, p in it["slots"]])
        out = {"input_ids": pad([r["input_ids"] for r in rows], pad_id),
               "attention_mask": pad([[1] * len(r["input_ids"]) for r in rows], 0)}
        if "token_type_ids" in rows[0]:
            out["token_type_ids"] = pad([r["token_type_ids"] for r in rows], 0)
        out["word_row"] = pad(word_row, 0)
        out["word_pos"] = pad(word_pos, 0)
        out["word_mask"] = pad([[1] * len(r) for r in word_row], 0).bool()
        out["root_row"] = torch.tensor(root_row, dtype=torch.long)
        if "heads" in items[0]:
            out["heads"] = pad([it["heads"] for it in items], 0)
            out["rels"] = pad([it["rels"] for it in items], 0)
        return out

    def scored(self, items: list[dict]) -> int:
        return sum(len(it["heads"]) for it in items)

    def loss(self, model: Any, hp: Any = None) -> Any:
        return ParserLoss(model)

    @torch.no_grad()
    def predict(self, task: Any, model: Any, tokenizer: Any, prepared: Any, hp: Any, batch_size: int = 64,
                device: Any = None) -> list[Any]:
        device = device or next(model.parameters()).device
        model.eval()
        enc = prepared.encoded
        order = np.argsort(-prepared.lengths, kind="stable")
        out: list[Any] = [None] * len(prepared.items)
        for lo in range(0, len(order), batch_size):
            idx = order[lo: lo + batch_size]
            items = [{k: v for k, v in prepared.items[i].items() if k not in ("heads", "rels")} for i in idx]
            b = {k: v.to(device) for k, v in self.collate(items, enc.windows, tokenizer.pad_token_id).items()}
            arcs, rdep, rhead = model(**b)
            arcs = arcs.float().cpu().numpy()
            heads_batch = []
            for k, i in enumerate(idx):
                n = len(prepared.items[i]["slots"])
                s = np.full((n + 1, n + 1), -np.inf)
                s[1:, :] = arcs[k, :n, : n + 1]
                heads_batch.append(mst_heads(s)[1:])
            pred_heads = pad([list(h) for h in heads_batch], 0).to(device)
            rels = model.relation_logits(rdep, rhead, pred_heads).argmax(-1).cpu().numpy()
            for k, i in enumerate(idx):
                n = len(heads_batch[k])
                out[i] = ([int(h) for h in heads_batch[k]], [model.relations[r] for r in rels[k, :n]])
        return out

    def score(self, task: Any, metric: dict[str, str], predictions: list[Any], split: Any,
              prepared: Any = None) -> dict[str, Any]:
        names = label_names(split, "deprel")
        gold_rel = [[names[r] for r in s] for s in split["deprel"]]
        return M.attachment_scores([p[0] for p in predictions], [p[1] for p in predictions],
                                   list(split["head"]), gold_rel)

    def save(self, model: Any, path: Any, hp: Any = None) -> None:
        model.save(path)


# --------------------------------------------------------------------------------------- seq2seq
class Seq2SeqHead(TaskHead):
    """Text to text (summarization, translation, ...): teacher-forced training, beam-search generation
    (``es_zoo.tasks.seq2seq``)."""

    name = "seq2seq"

    def build_model(self, task: Any, model_name: str, labels: list[str], hp: Any, revision: str | None = None,
                    **ctx: Any) -> Any:
        return ready_for_generation(load_model(model_name, task="seq2seq", revision=revision))

    def after_model(self, model: Any, hp: Any, where: str, say: Any) -> tuple[Any, dict]:
        hp = seq2seq.fit_limit(hp, generation.source_limit(model), where, say)
        return hp, {"family": generation.family(model), "start_id": generation.decoder_start_id(model)}

    def prepare(self, task: Any, tokenizer: Any, split: Any, hp: Any, family: str = "bart", source: str | None = None,
                **ctx: Any) -> Any:
        return seq2seq.prepare(task, tokenizer, split, hp, family, source)

    def collate(self, items: list[dict], windows: list[dict] | None, pad_id: int, start_id: int = 0,
                **ctx: Any) -> dict:
        return seq2seq.collate(items, pad_id, start_id)

    def scored(self, items: list[dict]) -> int:
        return sum(len(it["labels"]) for it in items)  # target tokens

    def check(self, task: Any, split: Any, predictions: list[Any]) -> list[Any]:
        return predictions  # generated for exactly the prepared examples

    def loss(self, model: Any, hp: Any = None) -> Any:
        return Seq2SeqTaskLoss(model, hp.label_smoothing if hp is not None else 0.0)

    def predict(self, task: Any, model: Any, tokenizer: Any, prepared: Any, hp: Any, batch_size: int = 64,
                device: Any = None) -> list[Any]:
        return seq2seq.predict(model, tokenizer, prepared, hp, device=device)

    def score(self, task: Any, metric: dict[str, str], predictions: list[Any], split: Any,
              prepared: Any = None) -> dict[str, Any]:
        if prepared is None:
            raise TaskError(f"task '{task.name}': seq2seq scores need the prepared split (its reference texts)")
        return seq2seq.score(task, metric, predictions, prepared.texts)

    def save(self, model: Any, path: Any, hp: Any = None) -> None:
        if hp is not None:  # model.generate() then decodes as the evaluation did
            g = model.generation_config
            g.num_beams, g.length_penalty, g.max_new_tokens = hp.num_beams, hp.length_penalty, hp.max_new_tokens
            g.min_new_tokens = hp.min_new_tokens or None
            g.no_repeat_ngram_size = hp.no_repeat_ngram_size or None
            g.early_stopping = hp.num_beams > 1
        save_model(model, path)


HEADS: dict[str, TaskHead] = {h.name: h for h in (SequenceHead(), TokenHead(), QAHead(), ParserHead(), Seq2SeqHead())}


def get_head(name: str) -> TaskHead:
    """The head a task YAML names (``head:``)."""
    if name not in HEADS:
        raise TaskError(f"unknown head {name}; known: {', '.join(HEADS)}")
    return HEADS[name]
