"""``es-zoo prepare``: a corpus -> a trained tokenizer and sharded, memory-mapped token files, on datatrove.

Preparing paper-scale data is a job of its own, run before training and never inside a training process
group: it reads tens or hundreds of gigabytes, trains a tokenizer and tokenizes billions of tokens. es-zoo
runs it as a pipeline of HF datatrove (https://github.com/huggingface/datatrove), the engine the Hugging
Face data teams use for this: its local executor spreads tasks over the cores of one machine, its Slurm
and Ray executors over a cluster, and it records finished tasks so that a killed preparation resumes
where it stopped. es-zoo contributes the pipeline steps (reading its corpus formats exactly as training
does, the tokenizer sample, the token shards) and reuses datatrove's exact deduplication.

Stages (each a datatrove executor run; ``OUT/logs/<stage>/`` holds its task logs and completion markers)::

    scan       one task per unit of the corpus (a byte range, row groups or a shard): read and clean the
               documents, record each one's split, length and selection hash, keep the tokenizer-sample
               candidates, and write dedup signatures (datatrove ExactDedupSignature)
    dedup      datatrove ExactFindDedups: which documents repeat an earlier one (``corpus.dedup``)
    tokenizer  one task: draw the tokenizer sample (the documents with the smallest hash values up to
               ``tokenizer.max_training_chars``: a deterministic sample spread over the whole corpus),
               train the tokenizer, estimate tokens per character and choose which training documents
               the schedule needs (``corpus.max_epochs``)
    tokenize   one task per unit again: drop duplicates (datatrove ExactDedupFilter), keep the chosen
               documents, tokenize them into ``train/NNNNN.bin`` and ``heldout/NNNNN.bin`` shards
    manifest   one task: check every shard, add up the unigram counts, write ``manifest.json`` last

The result (``OUT/``)::

    manifest.json          written last: fingerprint, corpus, tokenizer sample, selection, shards, versions
    tokenizer/             AutoTokenizer.from_pretrained(OUT / "tokenizer")
    train/NNNNN.bin        token shards (uint16 below 65,536 entries, else uint32) + .json sidecars
                           (+ .starts, one bit per token, for the BART-style objectives)
    heldout/NNNNN.bin      the held-out documents, the same way
    train.counts.npy       how often each id occurs in the training shards (the unigram baseline)
    plan.json              the settings and units the tasks read (a rerun checks it and resumes)
    logs/<stage>/          datatrove's task logs, stats and completion markers

Example:
    >>> from es_zoo.recipes import load_recipe
    >>> manifest = prepare(load_recipe("beto"), "data/beto-tiny")  # doctest: +SKIP
    >>> manifest["splits"]["train"]["tokens"] > 1_000_000  # doctest: +SKIP
    True
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as _dt
import hashlib
import json
import math
import os
import pickle
import shutil
import sys
import time
from array import array
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np

from es_zoo.corpus import Corpus, Unit
from es_zoo.errors import CorpusError, EsZooError
from es_zoo.families import get_family
from es_zoo.locking import FolderLock
from es_zoo.packing import ShardWriter, open_stream, shard_problem, token_dtype
from es_zoo.recipes import ResolvedRecipe, resolved_from_dict
from es_zoo.runinfo import atomic_write, library_versions, replace_folder, scratch_folder
from es_zoo.sentences import RULES_VERSION
from es_zoo.tokenization import build_tokenizer

FORMAT = "es-zoo-prepared/1"
SAMPLE_METHOD = (
    "the training documents with the smallest blake2b hash of their cleaned text, in corpus order, up to "
    "tokenizer.max_training_chars characters (every training document when null): a deterministic sample "
    "spread over the whole corpus"
)
SELECTION_METHOD = (
    "training documents whose hash bucket (16 bits of blake2b of the cleaned text, independent of the sample's) "
    "is below a threshold chosen so that their estimated tokens cover the schedule's needs plus the margin"
)
STAGES = ("scan", "dedup", "tokenizer", "tokenize", "manifest")
BUCKETS = 1 << 16
MAX_TASKS = 65534  # datatrove's exact dedup keeps the earliest task's copy through a 16-bit priority
CLEANING_VERSION = 2  # es_zoo.corpus.clean_text + split_long; bump when cleaning changes what a document becomes


# --------------------------------------------------------------------------------------------------
# What the schedule needs, and the fingerprint
# --------------------------------------------------------------------------------------------------


def with_sentences(cfg: ResolvedRecipe) -> bool:
    """Whether the family's objective needs where sentences begin (BART's sentence permutation)."""
    return get_family(cfg.model.architecture).sentence_starts


def stream_tokens_per_sequence(cfg: ResolvedRecipe, seq_len: int) -> int:
    """Stream tokens one training sequence of ``seq_len`` consumes (the frame is not from the stream)."""
    return get_family(cfg.model.architecture).stream_tokens_per_sequence(cfg, seq_len)


def schedule_tokens(cfg: ResolvedRecipe) -> int:
    """Training-stream tokens the whole schedule consumes: steps x global batch x tokens per sequence.

    Example:
        >>> from es_zoo.recipes import load_recipe
        >>> schedule_tokens(load_recipe("t5s", "paper")) / 1e9  # 130k x 320 x 1,137 raw tokens
        47.2992
    """
    return sum(p.max_steps * p.global_batch_size * stream_tokens_per_sequence(cfg, p.seq_len)
               for p in cfg.training.phases)


def needed_tokens(cfg: ResolvedRecipe) -> int | None:
    """Training tokens to prepare: the schedule's divided by ``corpus.max_epochs`` (None: all of them)."""
    epochs = cfg.corpus.max_epochs
    return None if epochs is None else math.ceil(schedule_tokens(cfg) / epochs)


def _model_max_length(cfg: ResolvedRecipe) -> int:
    # T5 has relative positions and no hard limit; its tokenizers say 512 (or the longest phase).
    return get_family(cfg.model.architecture).model_max_length(cfg) or max(
        [512, cfg.evaluation.seq_len] + [p.seq_len for p in cfg.training.phases])


def fingerprint_spec(cfg: ResolvedRecipe, tokenizer_identity: dict | None = None) -> dict:
    """What a prepared folder is a function of: the corpus and its cleaning, the tokenizer (its settings,
    or the identity of the warm-start tokenizer for bert2bert) and the tokenizer sample."""
    corpus = {k: v for k, v in dataclasses.asdict(cfg.corpus).items() if k not in ("max_epochs", "streaming")}
    tokenizer = dataclasses.asdict(cfg.tokenizer) if cfg.tokenizer is not None else tokenizer_identity
    return {
        "format": FORMAT,
        "corpus": corpus,
        "cleaning": CLEANING_VERSION,
        "tokenizer": tokenizer,
        "model_max_length": _model_max_length(cfg) if cfg.tokenizer is not None else None,
        # the splitter's rules version where the objective reads sentence starts (False otherwise)
        "sentence_starts": f"es_zoo.sentences v{RULES_VERSION}" if with_sentences(cfg) else False,
        "sample": SAMPLE_METHOD,
    }


def fingerprint(spec: dict) -> str:
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode("utf-8")).hexdigest()


def _diff(a: Any, b: Any, path: str = "") -> list[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        out: list[str] = []
        for k in sorted(set(a) | set(b)):
            out += _diff(a.get(k), b.get(k), f"{path}.{k}" if path else k)
        return out
    return [] if a == b else [f"{path}: {_short(a)} (prepared) vs {_short(b)} (this recipe)"]


def _short(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 80 else text[:77] + "..."


# --------------------------------------------------------------------------------------------------
# datatrove pipeline steps. Everything they need is read from OUT/plan.json and OUT/work/ at run time,
# so the same objects run in local worker processes, Slurm jobs and Ray tasks.
# --------------------------------------------------------------------------------------------------


def _pipeline_step_base() -> type:
    try:
        from datatrove.pipeline.base import PipelineStep
    except ImportError:  # pragma: no cover - datatrove is a dependency of es-zoo
        raise EsZooError("es-zoo prepare needs datatrove: pip install 'datatrove>=0.10.1,<0.11'") from None
    return PipelineStep


_Step = _pipeline_step_base()


def _read_json(path: Path) -> Any:
    return json.loads(Path(path).read_text(encoding="utf-8"))


def _write_json_atomic(path: Path, data: Any) -> None:
    atomic_write(path, json.dumps(data, indent=2, ensure_ascii=False))


def _hashes(text: str) -> tuple[int, int]:
    """(sample key, selection bucket) of a cleaned document: two independent parts of one blake2b."""
    digest = hashlib.blake2b(text.encode("utf-8"), digest_size=16).digest()
    return int.from_bytes(digest[:8], "little"), int.from_bytes(digest[8:10], "little")


def _plan_corpus(out: Path):
    plan = _read_json(out / "plan.json")
    cfg = resolved_from_dict(plan["recipe"], str(out / "plan.json"))
    corpus = Corpus(cfg.corpus)
    now = [{k: p.get(k) for k in ("kind", "path", "bytes", "where", "rows")} for p in corpus.parts()]
    then = [{k: p.get(k) for k in ("kind", "path", "bytes", "where", "rows")} for p in plan["corpus_parts"]]
    if now != then:
        changed = next((f"{b.get('path') or b.get('where')}" for a, b in zip(then, now) if a != b), "its file list")
        raise CorpusError(
            f"the corpus changed since this preparation started ({changed} differs from {out / 'plan.json'}); "
            "prepare into a new --output folder (or pass --overwrite)"
        )
    return plan, cfg, corpus


class _OutStep(_Step):
    """A step of the preparation: it knows the output folder and reads its settings from there."""

    def __init__(self, out: str) -> None:
        super().__init__()
        self.out = out


class ReadUnits(_OutStep):
    """Reads the units of this task (``plan.json``), yields cleaned documents with their split."""

    name = "es-zoo corpus units"
    type = "📖 - READER"

    def run(self, data: Any = None, rank: int = 0, world_size: int = 1) -> Iterator[Any]:
        from datatrove.data import Document

        plan, _, corpus = _plan_corpus(Path(self.out))
        stats: dict = {}
        index = 0
        for unit in plan["tasks"][rank]:
            for text, split in corpus.cleaned(Unit.from_dict(unit), stats):
                yield Document(text=text, id=f"{rank}/{index}", metadata={"split": split, "rank": rank})
                index += 1
                self.stat_update("documents")
        self.stat_update("too_short", value=stats.get("too_short", 0))


def _priority(doc: Any) -> int:
    """datatrove keeps the copy with the highest priority: the earliest task's, i.e. the first in corpus order."""
    return MAX_TASKS + 1 - int(doc.metadata["rank"])


def _text(doc: Any) -> str:
    return doc.text


def dedup_config() -> Any:
    from datatrove.pipeline.dedup.exact_dedup import ExactDedupConfig
    from datatrove.utils.hashing import HashConfig

    # sha1 (hashlib) rather than datatrove's default xxhash: no extra dependency; 64 bits as datatrove's.
    return ExactDedupConfig(content_getter=_text, document_priority=_priority,
                            hash_config=HashConfig(precision=64, hash_fc="sha1"))


class ScanRecords(_OutStep):
    """Per document (in the order the dedup steps see them): split, characters and selection bucket;
    and the tokenizer-sample candidates, on disk, their threshold halved whenever they exceed twice the
    budget (so the final sample never needs more than that, whatever the corpus size)."""

    name = "es-zoo scan"
    type = "🔢 - STATS"

    def run(self, data: Any = None, rank: int = 0, world_size: int = 1) -> Iterator[Any]:
        out = Path(self.out)
        plan = _read_json(out / "plan.json")
        budget = plan["sample_budget_chars"]
        cap = None if budget is None else 2 * budget
        threshold = int(plan["sample_start_threshold"])
        splits, chars, buckets = array("B"), array("I"), array("H")
        sample_dir = out / "work" / "sample"
        sample_dir.mkdir(parents=True, exist_ok=True)
        cand_path = sample_dir / f"{rank:05d}.jsonl.tmp"
        fh = open(cand_path, "w", encoding="utf-8")
        kept_chars = 0
        try:
            for index, doc in enumerate(data):
                key, bucket = _hashes(doc.text)
                train = doc.metadata["split"] == "train"
                splits.append(0 if train else 1)
                chars.append(min(len(doc.text), 2**32 - 1))
                buckets.append(bucket)
                if train and key < threshold:
                    fh.write(json.dumps({"i": index, "k": key, "text": doc.text}, ensure_ascii=False) + "\n")
                    kept_chars += len(doc.text)
                    if cap is not None and kept_chars > cap:
                        fh.close()
                        threshold, kept_chars = _halve_candidates(cand_path, threshold, cap)
                        fh = open(cand_path, "a", encoding="utf-8")
                yield doc
        finally:
            fh.close()
        np.savez(out / "work" / "scan" / f"{rank:05d}.tmp.npz",
                 split=np.frombuffer(splits, dtype=np.uint8), chars=np.frombuffer(chars, dtype=np.uint32),
                 bucket=np.frombuffer(buckets, dtype=np.uint16))
        os.replace(cand_path, sample_dir / f"{rank:05d}.jsonl")
        _write_json_atomic(sample_dir / f"{rank:05d}.json", {"threshold": threshold, "chars": kept_chars})
        os.replace(out / "work" / "scan" / f"{rank:05d}.tmp.npz", out / "work" / "scan" / f"{rank:05d}.npz")


def _halve_candidates(path: Path, threshold: int, cap: int) -> tuple[int, int]:
    """Lower the candidate threshold until the candidates fit ``cap`` characters, rewriting the file one
    line at a time (never holding the candidates in memory)."""
    total = cap + 1
    while total > cap and threshold > 1:
        threshold //= 2
        total = 0
        tmp = path.with_name(path.name + ".halved")
        with open(path, encoding="utf-8") as src, open(tmp, "w", encoding="utf-8") as dst:
            for line in src:
                row = json.loads(line)
                if row["k"] < threshold:
                    dst.write(line)
                    total += len(row["text"])
        os.replace(tmp, path)
    return threshold, total


def _duplicates(out: Path, rank: int) -> np.ndarray:
    """Indices (within scan task ``rank``) of the documents datatrove found to repeat an earlier one."""
    from datatrove.utils.typeshelper import ExtensionHelperSD

    found = [np.fromfile(p, dtype="<u4") for p in sorted((out / "work" / "dedup" / "duplicates").glob(
        f"*/{rank:05d}{ExtensionHelperSD.stage_2_duplicates}"))]
    return np.unique(np.concatenate(found)) if found else np.zeros(0, dtype=np.uint32)


class TrainTokenizer(_OutStep):
    """One task: the tokenizer sample, the tokenizer, and the choice of training documents."""

    name = "es-zoo tokenizer"
    type = "🔢 - TOKENIZER"

    def run(self, data: Any = None, rank: int = 0, world_size: int = 1) -> Iterator[Any]:
        out = Path(self.out)
        plan = _read_json(out / "plan.json")
        cfg = resolved_from_dict(plan["recipe"], str(out / "plan.json"))
        tasks = len(plan["tasks"])
        # 1. The kept documents of every task (duplicates and max_documents applied), by split.
        caps = {"train": cfg.corpus.max_documents, "heldout": cfg.corpus.max_documents}
        hist_chars = np.zeros(BUCKETS, dtype=np.int64)
        hist_docs = np.zeros(BUCKETS, dtype=np.int64)
        per_task, dropped = [], {"duplicates": 0, "over_max_documents": 0}
        totals = {"train": {"documents": 0, "characters": 0}, "heldout": {"documents": 0, "characters": 0}}
        for r in range(tasks):
            rec = np.load(out / "work" / "scan" / f"{r:05d}.npz")
            keep = np.ones(len(rec["split"]), dtype=bool)
            dups = _duplicates(out, r)
            keep[dups[dups < len(keep)]] = False
            dropped["duplicates"] += int(len(dups))
            limits, train_cut = {}, None
            for code, split in ((0, "train"), (1, "heldout")):
                mine = keep & (rec["split"] == code)
                if caps[split] is not None:
                    room = max(0, caps[split] - totals[split]["documents"])
                    positions = np.flatnonzero(mine)
                    if len(positions) > room:
                        dropped["over_max_documents"] += len(positions) - room
                        mine[positions[room:]] = False
                        keep[positions[room:]] = False
                        if split == "train":
                            train_cut = int(positions[room])
                    limits[split] = int(mine.sum())
                totals[split]["documents"] += int(mine.sum())
                totals[split]["characters"] += int(rec["chars"][mine].sum(dtype=np.int64))
            train = keep & (rec["split"] == 0)
            hist_chars += np.bincount(rec["bucket"][train], weights=rec["chars"][train], minlength=BUCKETS).astype(np.int64)
            hist_docs += np.bincount(rec["bucket"][train], minlength=BUCKETS)
            per_task.append({"max_train": limits.get("train"), "max_heldout": limits.get("heldout"),
                             "dups": dups, "train_cut": train_cut})
        where = plan["corpus_description"]
        n_train, n_held = totals["train"]["documents"], totals["heldout"]["documents"]
        for split in ("train", "heldout"):
            if totals[split]["documents"] == 0:
                counts = (f"{n_train + n_held:,} document(s) left after cleaning (corpus.min_chars "
                          f"{cfg.corpus.min_chars}){' and dedup' if cfg.corpus.dedup else ''}: {n_train:,} for training, "
                          f"{n_held:,} held out")
                hint = (f"a document is held out when a hash of its text falls below corpus.heldout_fraction (now "
                        f"{cfg.corpus.heldout_fraction}), so a corpus of a few documents may hold none out whatever the "
                        "fraction: add documents (hundreds at least; documents are separated by blank lines in .txt)"
                        if split == "heldout" else
                        "add documents, or lower corpus.heldout_fraction, or check corpus.min_chars")
                raise CorpusError(f"corpus {where}: the '{split}' split is empty ({counts}); {hint}")
        # 2. The tokenizer sample and the tokenizer.
        sample = self._sample(out, plan, per_task)
        tok_dir = out / "tokenizer"
        if plan.get("tokenizer_from"):
            tokenizer = _copy_tokenizer(plan["tokenizer_from"], tok_dir)
        else:
            tokenizer = _train_tokenizer(cfg, out, sample, tok_dir)
        # 3. Tokens per character on the sample, and the training documents the schedule needs.
        tpc = _tokens_per_char(tokenizer, out, sample)
        estimated = hist_chars * tpc + hist_docs  # + one separator per document
        total_estimate = float(estimated.sum())
        needed = plan["needed_tokens"]
        threshold = BUCKETS
        if needed is not None:
            want = needed * (1.0 + plan["margin"])
            if total_estimate < needed:
                missing = needed - total_estimate
                raise CorpusError(
                    f"corpus {where}: about {total_estimate / 1e6:,.1f}M training tokens after cleaning"
                    f"{' and dedup' if cfg.corpus.dedup else ''}, but the schedule needs {needed / 1e6:,.1f}M "
                    f"({plan['schedule_tokens'] / 1e6:,.1f}M consumed at most {cfg.corpus.max_epochs:g} times): "
                    f"about {missing / 1e6:,.1f}M tokens missing. Add text, shorten training.phases, or allow "
                    f"more passes (corpus.max_epochs)."
                )
            if total_estimate > want:
                threshold = int(np.searchsorted(np.cumsum(estimated), want, side="left")) + 1
        # What the tokenize workers need, so that they load only the `tokenizers` library (not transformers
        # and torch: hundreds of MB and seconds per worker process): the very backend AutoTokenizer builds
        # from the saved folder (for some classes transformers rebuilds parts of the pipeline on load, so
        # tokenizer.json alone is not guaranteed to be it), the separator and the vocabulary size.
        (out / "work" / "tokenizer-backend.json").write_text(tokenizer.backend_tokenizer.to_str(), encoding="utf-8")
        separator = tokenizer.sep_token_id if tokenizer.sep_token_id is not None else tokenizer.eos_token_id
        selection = {
            "separator_id": int(separator), "vocab_size": len(tokenizer),
            "method": SELECTION_METHOD, "needed_tokens": needed, "margin": plan["margin"],
            "bucket_threshold": min(threshold, BUCKETS), "buckets": BUCKETS,
            "tokens_per_char": tpc, "estimated_tokens": float(estimated[:threshold].sum()),
            "estimated_corpus_tokens": total_estimate,
            "fraction_of_corpus": float(estimated[:threshold].sum() / max(1.0, total_estimate)),
            "corpus": totals, "dropped": dropped,
            "tasks": [{"max_train": t["max_train"], "max_heldout": t["max_heldout"]} for t in per_task],
        }
        _write_json_atomic(out / "work" / "selection.json", {"sample": sample["record"], "selection": selection})
        return
        yield  # a generator like every step

    def _sample(self, out: Path, plan: dict, per_task: list[dict]) -> dict:
        """The candidates kept by every task, minus duplicates, cut at the budget by hash order."""
        budget = plan["sample_budget_chars"]
        thresholds = [int(_read_json(out / "work" / "sample" / f"{r:05d}.json")["threshold"])
                      for r in range(len(per_task))]
        common = min(thresholds) if thresholds else 0
        keys, lengths = array("Q"), array("Q")
        for r, task in enumerate(per_task):
            for row in _candidates(out, r, common, task):
                keys.append(row["k"])
                lengths.append(len(row["text"]))
        k = np.frombuffer(keys, dtype=np.uint64) if keys else np.zeros(0, dtype=np.uint64)
        n = np.frombuffer(lengths, dtype=np.uint64).astype(np.int64) if lengths else np.zeros(0, np.int64)
        if budget is not None:  # a document longer than the whole budget can never be part of the sample
            k, n = k[n <= budget], n[n <= budget]
        order = np.argsort(k, kind="stable")
        ranked = k[order]
        cum = np.cumsum(n[order])

        def cut_at(chars: int | None) -> tuple[int, int, int]:
            """(key threshold, characters, documents) of the smallest-key candidates within ``chars``."""
            if chars is None or not len(cum) or cum[-1] <= chars:
                return common, (int(cum[-1]) if len(cum) else 0), len(cum)
            n = int(np.searchsorted(cum, chars, side="right"))
            return (int(ranked[n - 1]) + 1, int(cum[n - 1]), n) if n else (0, 0, 0)

        measured_only = plan.get("tokenizer_from") is not None
        cut, chars, docs = cut_at(budget)
        tpc_cut = cut_at(min(TPC_SAMPLE_CHARS, budget) if budget else TPC_SAMPLE_CHARS)[0]
        record = {"method": SAMPLE_METHOD, "budget_chars": None if measured_only else budget,
                  "characters": 0 if measured_only else chars, "documents": 0 if measured_only else docs,
                  "key_threshold": str(cut)}
        if measured_only:
            record["note"] = "the tokenizer comes from the warm-start model; the sample only measured tokens per character"
        return {"cut": cut, "tpc_cut": min(tpc_cut, cut), "record": record, "per_task": per_task, "longest": budget}


TPC_SAMPLE_CHARS = 5_000_000  # characters of the sample tokenized to measure tokens per character


def _kept(task: dict, index: int) -> bool:
    """Whether document ``index`` of a scan task survived dedup and corpus.max_documents."""
    if task["train_cut"] is not None and index >= task["train_cut"]:
        return False
    dups = task["dups"]
    pos = int(np.searchsorted(dups, index))
    return not (pos < len(dups) and int(dups[pos]) == index)


def _candidates(out: Path, rank: int, below: int, task: dict) -> Iterator[dict]:
    with open(out / "work" / "sample" / f"{rank:05d}.jsonl", encoding="utf-8") as fh:
        for line in fh:
            row = json.loads(line)
            if row["k"] < below and _kept(task, row["i"]):
                yield row


def _sample_texts(out: Path, sample: dict, cut: int | None = None) -> Iterator[str]:
    """The tokenizer sample (keys below ``cut``, default the sample's), in corpus order."""
    cut = sample["cut"] if cut is None else cut
    longest = sample["longest"]
    for r, task in enumerate(sample["per_task"]):
        for row in _candidates(out, r, cut, task):
            if longest is None or len(row["text"]) <= longest:
                yield row["text"]


def _train_tokenizer(cfg: ResolvedRecipe, out: Path, sample: dict, tok_dir: Path) -> Any:
    from transformers import AutoTokenizer

    if (tok_dir / "COMPLETE").is_file():
        return AutoTokenizer.from_pretrained(tok_dir)
    tmp = scratch_folder(out / ".tmp-tokenizer")
    build_tokenizer(cfg.tokenizer, lambda: _sample_texts(out, sample), tmp, model_max_length=_model_max_length(cfg))
    replace_folder(tmp, tok_dir, complete=True)
    return AutoTokenizer.from_pretrained(tok_dir)


def _copy_tokenizer(source: str, tok_dir: Path) -> Any:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(source)
    if not (tok_dir / "COMPLETE").is_file():
        tmp = scratch_folder(tok_dir.with_name(".tmp-tokenizer"))
        tok.save_pretrained(tmp)
        replace_folder(tmp, tok_dir, complete=True)
    return AutoTokenizer.from_pretrained(tok_dir)


def _tokens_per_char(tokenizer: Any, out: Path, sample: dict) -> float:
    """Tokens per character of cleaned text, measured on the ~5 M characters of the sample with the
    smallest keys (a random subset, spread over the corpus like the sample)."""
    # lazy (as in _write): looked up per call, so a test can swap es_zoo.tokenization.tokenize_documents
    from es_zoo.tokenization import tokenize_documents

    texts = list(_sample_texts(out, sample, sample["tpc_cut"]))
    chars = sum(len(t) for t in texts)
    tokens = sum(len(ids) for ids in tokenize_documents(tokenizer, texts))
    if not chars:
        raise CorpusError("no training text to measure the tokenizer on (the sample is empty)")
    return tokens / chars


class TokenizeShards(_OutStep):
    """Tokenizes the chosen documents of this task into ``train/NNNNN.bin`` and ``heldout/NNNNN.bin``."""

    name = "es-zoo token shards"
    type = "🔢 - TOKENIZER"

    def run(self, data: Any = None, rank: int = 0, world_size: int = 1) -> Iterator[Any]:
        from tokenizers import Tokenizer

        out = Path(self.out)
        plan = _read_json(out / "plan.json")
        chosen = _read_json(out / "work" / "selection.json")["selection"]
        limits = chosen["tasks"][rank]
        threshold = chosen["bucket_threshold"]
        tokenizer = Tokenizer.from_str((out / "work" / "tokenizer-backend.json").read_text(encoding="utf-8"))
        vocab = chosen["vocab_size"]
        dtype = token_dtype(vocab)
        starts = plan["sentence_starts"]
        writers = {}
        for split in ("train", "heldout"):
            (out / split).mkdir(exist_ok=True)
            writers[split] = ShardWriter(out / split / f"{rank:05d}.bin", chosen["separator_id"], dtype,
                                         with_starts=starts, vocab_size=vocab if split == "train" else None)
        counts = {"train": 0, "heldout": 0}

        def chosen_texts(split_wanted: str, docs: list) -> list[str]:
            return [d.text for d in docs if d.metadata["split"] == split_wanted]

        try:
            batch: list = []
            for doc in data:
                split = doc.metadata["split"]
                limit = limits["max_train" if split == "train" else "max_heldout"]
                if limit is not None and counts[split] >= limit:
                    continue
                counts[split] += 1
                if split == "train" and _hashes(doc.text)[1] >= threshold:
                    continue
                batch.append(doc)
                if len(batch) >= 1000:
                    self._write(batch, tokenizer, writers, starts, chosen_texts)
                    batch = []
            if batch:
                self._write(batch, tokenizer, writers, starts, chosen_texts)
            for split, w in writers.items():
                meta = w.close()
                self.stat_update(f"{split}_tokens", value=meta["tokens"])
        except BaseException:
            for w in writers.values():
                w.abort()
            raise
        return
        yield

    @staticmethod
    def _write(batch: list, tokenizer: Any, writers: dict, starts: bool, texts_of: Callable) -> None:
        from es_zoo.tokenization import tokenize_documents

        for split in ("train", "heldout"):
            texts = texts_of(split, batch)
            for item in tokenize_documents(tokenizer, texts, with_sentences=starts):
                if starts:
                    writers[split].add(item[0], item[1])
                else:
                    writers[split].add(item)


class WriteManifest(_OutStep):
    """One task: check every shard, add up the unigram counts, write manifest.json last."""

    name = "es-zoo manifest"
    type = "💽 - WRITER"

    def run(self, data: Any = None, rank: int = 0, world_size: int = 1) -> Iterator[Any]:
        write_manifest(Path(self.out))
        return
        yield


def write_manifest(out: Path) -> dict:
    plan = _read_json(out / "plan.json")
    chosen = _read_json(out / "work" / "selection.json")
    vocab_size = chosen["selection"]["vocab_size"]
    tasks = len(plan["tasks"])
    splits: dict = {}
    counts = np.zeros(vocab_size, dtype=np.int64)
    for split in ("train", "heldout"):
        shards, tokens, docs = [], 0, 0
        for r in range(tasks):
            path = out / split / f"{r:05d}.bin"
            problem = shard_problem(path)
            if problem is not None:
                raise CorpusError(f"{problem}; run the same `es-zoo prepare` command again to redo that task")
            meta = _read_json(Path(str(path) + ".json"))
            shards.append({"file": f"{split}/{r:05d}.bin", "tokens": meta["tokens"], "documents": meta["documents"],
                           "dtype": meta["dtype"]})
            tokens += meta["tokens"]
            docs += meta["documents"]
            if split == "train":
                counts += np.load(Path(str(path) + ".counts.npy"))
        splits[split] = {"tokens": tokens, "documents": docs, "shards": shards}
    cfg = resolved_from_dict(plan["recipe"], str(out / "plan.json"))
    train_tokens = splits["train"]["tokens"]
    needed = plan["needed_tokens"]
    if needed is not None and train_tokens < needed:
        raise CorpusError(
            f"{out}: the prepared training split holds {train_tokens:,} tokens, {needed - train_tokens:,} fewer than "
            f"the schedule needs ({needed:,}); the estimate of tokens per character was off: prepare again "
            "with a larger --margin into a new folder"
        )
    tmp = out / "train.counts.tmp.npy"
    np.save(tmp, counts)
    os.replace(tmp, out / "train.counts.npy")
    sample = dict(chosen["sample"])
    if sample.get("characters") is not None and chosen["selection"]["corpus"]["train"]["characters"]:
        sample["share_of_training_text"] = sample["characters"] / chosen["selection"]["corpus"]["train"]["characters"]
    manifest = {
        "format": FORMAT,
        "fingerprint": plan["fingerprint"],
        "fingerprint_of": plan["fingerprint_of"],
        "recipe": cfg.recipe, "preset": cfg.preset,
        "corpus": dataclasses.asdict(cfg.corpus),
        "corpus_description": plan["corpus_description"],
        "corpus_parts": plan["corpus_parts"],
        "tokenizer": {"path": "tokenizer", "vocab_size": vocab_size, "kind": cfg.tokenizer.kind if cfg.tokenizer else None,
                      "from": plan.get("tokenizer_from")},
        "dtype": splits["train"]["shards"][0]["dtype"] if splits["train"]["shards"] else None,
        "sentence_starts": plan["sentence_starts"],
        "sample": sample,
        "selection": chosen["selection"],
        "schedule_tokens": plan["schedule_tokens"],
        "splits": splits,
        "tasks": tasks,
        "executor": plan["executor"],
        "started": plan["started"],
        "finished": _dt.datetime.now(_dt.timezone.utc).isoformat(),
        "versions": plan["versions"],
        "command": plan["command"],
    }
    _write_json_atomic(out / "manifest.json", manifest)
    return manifest


# --------------------------------------------------------------------------------------------------
# Executors
# --------------------------------------------------------------------------------------------------


def _file_only_task_logger(logging_dir: Any, rank: int, local_rank: int = 0, node_rank: int = -1) -> Any:
    """datatrove's per-task logger without its console sink: the task's log file gets everything,
    the terminal stays es-zoo's (a failing task is reported in one line that names this file)."""
    from datatrove.utils.logging import logger

    logger.remove()
    logfile = logging_dir.open(f"logs/task_{rank:05d}.log", "w")
    logger.add(logfile, colorize=False, level="DEBUG",
               format="{time:YYYY-MM-DD HH:mm:ss.SSS} | {level: <8} | {name}:{function}:{line} - {message}")
    logger.info(f"Launching pipeline for {rank=}")
    return logfile


def _close_file_only_task_logger(logfile: Any) -> None:
    from datatrove.utils.logging import logger

    logger.complete()
    logger.remove()
    logfile.close()


def _quiet_datatrove() -> None:
    """Route datatrove's logs to its task files only (es-zoo prints its own progress lines)."""
    import datatrove.executor.base as base
    from datatrove.utils.logging import logger

    base.add_task_logger = _file_only_task_logger
    base.close_task_logger = _close_file_only_task_logger
    logger.remove()


from datatrove.executor.local import LocalPipelineExecutor as _LocalPipelineExecutor  # noqa: E402


class WorkerDied(EsZooError):
    """A preparation worker process ended without finishing its task (killed, out of memory)."""


_SLOT = 0  # which worker slot this process is (its datatrove local_rank: only slot 0 logs to a console)


def _take_slot(slots: Any) -> None:
    global _SLOT
    _SLOT = slots.get()
    # One core per worker process: the workers are the parallelism (with one worker, in-process, the
    # tokenizers library encodes each batch on every core instead).
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def _run_task(executor: "QuietLocalExecutor", rank: int) -> Any:
    try:
        return executor._run_for_rank(rank, _SLOT)
    except Exception as exc:
        # An exception that does not survive pickling would break the pool: send its text instead.
        try:
            pickle.loads(pickle.dumps(exc))
        except Exception:  # noqa: BLE001
            raise RuntimeError(f"{type(exc).__name__}: {exc}") from None
        raise


class QuietLocalExecutor(_LocalPipelineExecutor):
    """datatrove's local executor, with two changes.

    - Task logs go to files only (see _file_only_task_logger); what a task prints on stderr (progress bars
      of datatrove's steps, library warnings) goes to a file beside its log.
    - The worker pool is the standard library's ProcessPoolExecutor (forkserver) instead of datatrove's
      multiprocess Pool, which waits forever when a worker is killed (SIGKILL, the out-of-memory killer):
      here a dead worker raises at once, and a failing task stops new tasks from starting while those
      already running finish (their shards are kept for the rerun).
    """

    def _run_for_rank(self, rank: int, local_rank: int = 0, node_rank: int = -1) -> Any:
        _quiet_datatrove()
        logs = Path(self.logging_dir.path) / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        with open(logs / f"task_{rank:05d}.stderr", "a", encoding="utf-8") as err, contextlib.redirect_stderr(err):
            return super()._run_for_rank(rank, local_rank, node_rank)

    def run(self) -> Any:
        import multiprocessing
        from concurrent.futures import FIRST_EXCEPTION, ProcessPoolExecutor, wait
        from concurrent.futures.process import BrokenProcessPool

        from datatrove.utils.stats import PipelineStats

        ranks = self.get_incomplete_ranks(range(self.tasks))
        if not ranks:
            return None
        self.save_executor_as_json()
        if self.workers == 1:  # in this process, one task after the other (as datatrove does)
            stats = [self._run_for_rank(r) for r in ranks]
            return sum(stats, start=PipelineStats())
        ctx = multiprocessing.get_context("forkserver")
        slots = ctx.Queue()
        workers = min(self.workers, len(ranks))
        for i in range(workers):
            slots.put(i)
        stats, errors, died = [], {}, None
        with ProcessPoolExecutor(workers, mp_context=ctx, initializer=_take_slot, initargs=(slots,)) as pool:
            futures = {pool.submit(_run_task, self, r): r for r in ranks}
            pending = set(futures)
            while pending:
                done, pending = wait(pending, return_when=FIRST_EXCEPTION)
                for f in done:
                    try:
                        stats.append(f.result())
                    except BrokenProcessPool as exc:
                        died = died or exc
                    except Exception as exc:  # noqa: BLE001 - a task failed; the pool is healthy
                        errors.setdefault(futures[f], exc)
                if died or errors:
                    for f in pending:
                        f.cancel()  # not started yet: never started; running ones finish
        failed = [r for r in ranks if not self.logging_dir.isfile(f"completions/{r:05d}")]
        if died is not None:
            raise WorkerDied(f"a worker process died (killed, or out of memory) before finishing task(s) "
                             f"{failed[:10]}{' ...' if len(failed) > 10 else ''}")
        if errors:
            raise errors[min(errors)]
        return sum(stats, start=PipelineStats())


def _stage_pipelines(out: Path, dedup: bool, finder_tasks: int) -> dict[str, tuple[list, int | None]]:
    """Each stage's pipeline and its number of tasks (None: one per scan task)."""
    o = str(out)
    cfg = dedup_config() if dedup else None
    stages: dict[str, tuple[list, int | None]] = {}
    scan: list = [ReadUnits(o), ScanRecords(o)]
    tokenize: list = [ReadUnits(o)]
    if dedup:
        from datatrove.pipeline.dedup.exact_dedup import ExactDedupFilter, ExactDedupSignature, ExactFindDedups

        scan.append(ExactDedupSignature(str(out / "work" / "dedup" / "signatures"), cfg, finder_workers=finder_tasks))
        stages["scan"] = (scan, None)
        stages["dedup"] = ([ExactFindDedups(str(out / "work" / "dedup" / "signatures"),
                                            str(out / "work" / "dedup" / "duplicates"), cfg)], finder_tasks)
        tokenize.append(ExactDedupFilter(str(out / "work" / "dedup" / "duplicates"), cfg))
    else:
        scan.append(_Drain())
        stages["scan"] = (scan, None)
    stages["tokenizer"] = ([TrainTokenizer(o)], 1)
    tokenize.append(TokenizeShards(o))
    stages["tokenize"] = (tokenize, None)
    stages["manifest"] = ([WriteManifest(o)], 1)
    return stages


class _Drain(_Step):
    """Consumes what reaches it (the end of a scan without dedup)."""

    name = "es-zoo drain"
    type = "🔻 - SINK"

    def run(self, data: Any = None, rank: int = 0, world_size: int = 1) -> Iterator[Any]:
        for _ in data or ():
            pass
        return
        yield


# --------------------------------------------------------------------------------------------------
# The command
# --------------------------------------------------------------------------------------------------


@dataclasses.dataclass
class SlurmOptions:
    """What `--executor slurm` passes to datatrove's SlurmPipelineExecutor (one job array per stage,
    each stage depending on the previous one)."""

    partition: str | None = None
    time: str = "24:00:00"
    cpus_per_task: int = 1
    mem_per_cpu_gb: int = 2
    qos: str | None = None
    job_name: str = "es-zoo-prepare"
    venv_path: str | None = None
    sbatch_args: dict = dataclasses.field(default_factory=dict)


def _versions() -> dict:
    out = library_versions()
    try:
        from importlib.metadata import version

        out["datatrove"] = version("datatrove")
    except Exception:  # noqa: BLE001 - informational only
        pass
    return out


def _group(units: list, tasks: int) -> list[list]:
    """``units`` (in order) into ``tasks`` contiguous groups of about equal size."""
    sizes = np.array([max(1, u.size) for u in units], dtype=np.float64)
    bounds = np.searchsorted(np.cumsum(sizes), np.arange(1, tasks) * sizes.sum() / tasks, side="left") + 1
    bounds = np.unique(np.clip(bounds, 1, len(units) - 1)) if len(units) > 1 else np.array([], dtype=int)
    cuts = [0, *bounds.tolist(), len(units)]
    return [units[a:b] for a, b in zip(cuts, cuts[1:]) if b > a]


def plan_preparation(cfg: ResolvedRecipe, out: Path, *, tasks: int | None, chunk_bytes: int, margin: float,
                     executor: str, tokenizer_from: str | None = None, command: str = "") -> dict:
    """What every stage will do: the corpus units grouped into tasks, the sample budget, the needs."""
    if cfg.tokenizer is None and tokenizer_from is None:
        raise EsZooError(f"recipe '{cfg.recipe}' has no tokenizer section: say which tokenizer to use")
    corpus = Corpus(cfg.corpus)  # a missing or unreadable corpus fails here, before anything is written
    units = corpus.units(chunk_bytes)
    if not units:
        raise CorpusError(f"corpus {corpus.source_description}: nothing to read")
    n = len(units) if tasks is None else max(1, min(tasks, len(units)))
    if n > MAX_TASKS:
        raise EsZooError(f"{n} tasks are too many (at most {MAX_TASKS}); raise --chunk-mb or pass --tasks")
    groups = _group(units, n)
    # bert2bert brings its tokenizer: the sample only measures tokens per character
    budget = cfg.tokenizer.max_training_chars if cfg.tokenizer is not None else TPC_SAMPLE_CHARS
    total_bytes = sum(u.size for u in units)
    if budget is None or not total_bytes:
        start = 2**64 - 1
    else:  # candidates for about 4x the budget, if the size estimate is right (halving covers the rest)
        start = min(2**64 - 1, int(2**64 * min(1.0, 4.0 * budget / total_bytes)))
    identity = None
    if tokenizer_from is not None:
        identity = {"from": tokenizer_from, "sha256": _tokenizer_hash(tokenizer_from)}
    spec = fingerprint_spec(cfg, identity)
    return {
        "format": FORMAT,
        "fingerprint": fingerprint(spec),
        "fingerprint_of": spec,
        "recipe": cfg.to_dict(),
        "corpus_description": corpus.source_description,
        "corpus_parts": corpus.parts(),
        "tasks": [[u.to_dict() for u in g] for g in groups],
        "sample_budget_chars": budget,
        "sample_start_threshold": str(start),
        "schedule_tokens": schedule_tokens(cfg),
        "needed_tokens": needed_tokens(cfg),
        "margin": margin,
        "sentence_starts": with_sentences(cfg),
        "tokenizer_from": tokenizer_from,
        "executor": executor,
        "started": _dt.datetime.now(_dt.timezone.utc).isoformat(),
        "versions": _versions(),
        "command": command,
    }


def _tokenizer_hash(path: str) -> str:
    """The identity of a tokenizer folder: the SHA-256 of the pipeline AutoTokenizer builds from it
    (so a re-saved copy of the same tokenizer has the same identity, whatever files it was saved as)."""
    from transformers import AutoTokenizer

    backend = AutoTokenizer.from_pretrained(path).backend_tokenizer.to_str()
    return hashlib.sha256(backend.encode("utf-8")).hexdigest()


def _same_plan(old: dict, new: dict) -> list[str]:
    """Why an existing plan cannot be resumed by the new one (empty: it can)."""
    problems = _diff(old["fingerprint_of"], new["fingerprint_of"])
    if old["tasks"] != new["tasks"]:
        problems.append("the corpus units or --tasks/--chunk-mb differ")
    for key in ("needed_tokens", "margin", "sample_budget_chars"):
        if old.get(key) != new.get(key):
            problems.append(f"{key}: {old.get(key)} vs {new.get(key)}")
    if [{k: p.get(k) for k in ("path", "bytes", "where")} for p in old["corpus_parts"]] != \
            [{k: p.get(k) for k in ("path", "bytes", "where")} for p in new["corpus_parts"]]:
        problems.append("the corpus files changed")
    return problems


def prepare(cfg: ResolvedRecipe, output: str | Path, *, executor: str = "local", workers: int | None = None,
            tasks: int | None = None, chunk_bytes: int = 128 << 20, margin: float = 0.05,
            overwrite: bool = False, tokenizer_from: str | None = None, slurm: SlurmOptions | None = None,
            ray_options: dict | None = None, echo: Callable[[str], None] = print, command: str = "") -> dict:
    """Prepare ``cfg``'s corpus into ``output`` (see the module doc); returns the manifest.

    A folder that already holds this preparation (same fingerprint, corpus and tasks) is resumed: finished
    tasks are kept and only the rest run; a complete one is returned as it is. A folder holding anything
    else is refused unless ``overwrite``. With ``executor="slurm"`` the stages are submitted as dependent
    job arrays and the function returns at once with the job ids (the manifest appears when the last job
    ends).
    """
    out = Path(output).expanduser().resolve()
    if executor not in ("local", "slurm", "ray"):
        raise EsZooError(f"--executor {executor!r}: expected local, slurm or ray")
    if not 0.0 <= margin <= 10.0:
        raise EsZooError(f"--margin must be in [0, 10], got {margin}")
    _check_executor_available(executor)
    with _datatrove_quietly():
        return _prepare(cfg, out, executor=executor, workers=workers, tasks=tasks, chunk_bytes=chunk_bytes,
                        margin=margin, overwrite=overwrite, tokenizer_from=tokenizer_from, slurm=slurm,
                        ray_options=ray_options, echo=echo, command=command)


def _prepare(cfg: ResolvedRecipe, out: Path, *, executor: str, workers: int | None, tasks: int | None,
             chunk_bytes: int, margin: float, overwrite: bool, tokenizer_from: str | None,
             slurm: SlurmOptions | None, ray_options: dict | None, echo: Callable[[str], None], command: str) -> dict:
    plan = plan_preparation(cfg, out, tasks=tasks, chunk_bytes=chunk_bytes, margin=margin, executor=executor,
                            tokenizer_from=tokenizer_from, command=command)
    if out.exists() and not out.is_dir():
        raise EsZooError(f"{out} exists and is not a folder")
    if out.is_dir() and any(p.name != ".lock" for p in out.iterdir()) and not (out / "plan.json").is_file():
        raise EsZooError(f"{out} is not empty and is not an es-zoo prepared folder; nothing was changed. "
                         "Choose a new or empty --output.")
    # Held until this preparation ends: two preparations never write one folder at the same time.
    if not out.is_dir():
        out.mkdir(parents=True)
        created = True
    else:
        created = False
    lock = _lock(out)
    try:
        return _prepare_locked(cfg, out, plan, executor=executor, workers=workers, overwrite=overwrite,
                               slurm=slurm, ray_options=ray_options, echo=echo, command=command)
    except BaseException as exc:
        # Nothing prepared, or a corpus that must be fixed first (which changes the plan, so nothing here
        # could be resumed): a folder this command created is removed, leaving the disk as it was.
        if created and (isinstance(exc, CorpusError) or not any(p.name != ".lock" for p in out.iterdir())):
            lock.release()
            shutil.rmtree(out, ignore_errors=True)
        raise
    finally:
        lock.release()


def _prepare_locked(cfg: ResolvedRecipe, out: Path, plan: dict, *, executor: str, workers: int | None,
                    overwrite: bool, slurm: SlurmOptions | None, ray_options: dict | None,
                    echo: Callable[[str], None], command: str) -> dict:
    if out.is_dir() and any(p.name != ".lock" for p in out.iterdir()):
        old_plan = out / "plan.json"
        if not old_plan.is_file():
            raise EsZooError(f"{out} is not empty and is not an es-zoo prepared folder; nothing was changed. "
                             "Choose a new or empty --output.")
        problems = _same_plan(_read_json(old_plan), plan)
        if problems and not overwrite:
            raise EsZooError(
                f"{out} holds a different preparation ({'; '.join(problems[:4])}); nothing was changed. "
                "Use another --output, or --overwrite to replace it."
            )
        if problems:
            _clear(out)
        elif (out / "manifest.json").is_file():
            manifest = _read_json(out / "manifest.json")
            if manifest.get("fingerprint") == plan["fingerprint"]:
                echo(f"{out} is already prepared ({manifest['splits']['train']['tokens']:,} training tokens); "
                     "nothing to do")
                return manifest
        else:
            plan = {**_read_json(old_plan), "command": command}
            echo(f"resuming the preparation in {out}")
    out.mkdir(parents=True, exist_ok=True)
    for sub in ("work/scan", "work/sample", "logs"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    _write_json_atomic(out / "plan.json", plan)
    n_tasks = len(plan["tasks"])
    workers = max(1, min(workers or _cpu_count(), n_tasks))
    echo(f"preparing {plan['corpus_description']} for {cfg.recipe}/{cfg.preset} in {out}: {n_tasks} task(s), "
         f"{executor} executor" + (f", {workers} worker(s)" if executor == "local" else ""))
    finder = max(1, min(n_tasks, 8))
    stages = _stage_pipelines(out, cfg.corpus.dedup, finder)
    _forget_lost_outputs(out, n_tasks, finder, cfg.corpus.dedup)
    if executor == "slurm":
        return _submit_slurm(out, stages, n_tasks, slurm or SlurmOptions(), echo)
    started = time.perf_counter()
    for name, (pipeline, stage_tasks) in stages.items():
        t = n_tasks if stage_tasks is None else stage_tasks
        t0 = time.perf_counter()
        _run_stage(out, name, pipeline, t, workers, executor, ray_options)
        echo(f"  {name:<9} {t} task(s) done in {time.perf_counter() - t0:,.1f} s")
    manifest = _read_json(out / "manifest.json")
    shutil.rmtree(out / "work" / "sample", ignore_errors=True)  # the sample can be large; its record stays
    tr = manifest["splits"]["train"]
    echo(f"prepared {tr['tokens']:,} training tokens ({tr['documents']:,} documents, {len(tr['shards'])} shards, "
         f"{manifest['dtype']}) and {manifest['splits']['heldout']['tokens']:,} held-out tokens in "
         f"{time.perf_counter() - started:,.1f} s; fingerprint {manifest['fingerprint'][:12]}")
    return manifest


@contextlib.contextmanager
def _datatrove_quietly() -> Iterator[None]:
    """datatrove's console logs off while the stages run (its default logger back afterwards)."""
    from datatrove.utils.logging import setup_default_logger

    _quiet_datatrove()
    try:
        yield
    finally:
        setup_default_logger()


def _lock(out: Path) -> Any:
    """An exclusive lock on ``OUT/.lock`` (released when the preparation ends or its process dies)."""
    return FolderLock(out, "this `es-zoo prepare` (it resumes)")


def _cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def _clear(out: Path) -> None:
    """Remove what a preparation writes (only its own entries)."""
    for name in ("manifest.json", "plan.json", "tokenizer", "train", "heldout", "train.counts.npy", "work",
                 "logs", ".tmp-tokenizer"):
        p = out / name
        if p.is_dir():
            shutil.rmtree(p)
        elif p.exists():
            p.unlink()


def _forget_lost_outputs(out: Path, n_tasks: int, finder: int, dedup: bool) -> None:
    """A task marked complete whose output is gone (deleted, or lost with a node) is run again."""
    def forget(stage: str, rank: int) -> None:
        (out / "logs" / stage / "completions" / f"{rank:05d}").unlink(missing_ok=True)

    for r in range(n_tasks):
        if not (out / "work" / "scan" / f"{r:05d}.npz").is_file() or not (
                out / "work" / "sample" / f"{r:05d}.jsonl").is_file():
            if not (out / "manifest.json").is_file():
                forget("scan", r)
                forget("tokenizer", 0)
                for f in range(finder):  # its signatures are written again: find the duplicates again
                    forget("dedup", f)
        if any(shard_problem(out / split / f"{r:05d}.bin") for split in ("train", "heldout")):
            forget("tokenize", r)
            forget("manifest", 0)
    if not (out / "tokenizer" / "COMPLETE").is_file() or not (out / "work" / "selection.json").is_file() or not (
            out / "work" / "tokenizer-backend.json").is_file():
        forget("tokenizer", 0)
    if not (out / "manifest.json").is_file():
        forget("manifest", 0)


def _check_executor_available(executor: str) -> None:
    if executor == "ray":
        try:
            import ray  # noqa: F401
        except ImportError:
            raise EsZooError("--executor ray needs Ray: pip install 'es-zoo[ray]' (or pip install 'datatrove[ray]')") from None
    if executor == "slurm" and shutil.which("sbatch") is None:
        raise EsZooError("--executor slurm needs Slurm's sbatch on PATH: run `es-zoo prepare` on a Slurm login node "
                         "(or use --executor local / ray)")


def _run_stage(out: Path, name: str, pipeline: list, tasks: int, workers: int, executor: str,
               ray_options: dict | None) -> None:
    logs = out / "logs" / name
    if executor == "ray":
        from datatrove.executor.ray import RayPipelineExecutor

        _start_ray(workers, (ray_options or {}).get("address"))
        ex = RayPipelineExecutor(pipeline=pipeline, tasks=tasks, workers=workers, logging_dir=str(logs))
    else:
        ex = QuietLocalExecutor(pipeline=pipeline, tasks=tasks, workers=min(workers, tasks),
                                     logging_dir=str(logs))
    try:
        ex.run()
    except WorkerDied as exc:
        raise WorkerDied(f"prepare stage '{name}': {exc}; see {logs / 'logs'}. Finished tasks are kept: run the "
                         "same command again to resume.") from None
    except EsZooError:
        raise
    except Exception as exc:  # noqa: BLE001 - a task failed: one line with where its log is
        failed = [r for r in range(tasks) if not (logs / "completions" / f"{r:05d}").is_file()]
        where = f"task {failed[0]}" if failed else "a task"
        log = logs / "logs" / f"task_{failed[0]:05d}.log" if failed else logs / "logs"
        first = str(exc).splitlines()[0][:300] if str(exc) else ""
        raise EsZooError(
            f"prepare stage '{name}': {where} failed ({type(exc).__name__}: {first}); its log is {log}. "
            "Finished tasks are kept: run the same command again to resume."
        ) from None
    missing = [r for r in range(tasks) if not (logs / "completions" / f"{r:05d}").is_file()]
    if missing:
        raise EsZooError(f"prepare stage '{name}': {len(missing)} task(s) did not finish (first: {missing[0]}); "
                         f"see {logs / 'logs'}. Run the same command again to resume.")


def _start_ray(workers: int, address: str | None) -> None:
    """Connect to the Ray cluster at ``address``, or start a local one with ``workers`` CPUs (datatrove's
    Ray executor expects ``ray.init`` to have been called)."""
    import ray

    if ray.is_initialized():
        return
    if address:
        ray.init(address=address, log_to_driver=False)
    else:
        os.environ.setdefault("RAY_AUTH_MODE", "disabled")  # a local, private cluster: no token files
        ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False)


def _submit_slurm(out: Path, stages: dict, n_tasks: int, opts: SlurmOptions, echo: Callable[[str], None]) -> dict:
    from datatrove.executor.slurm import SlurmPipelineExecutor

    record = out / "logs" / "slurm-jobs.json"
    if record.is_file():  # a rerun while the first submission still runs would run every task twice
        ids = [str(i) for i in _read_json(record).values() if i not in (None, -1)]
        if ids and shutil.which("squeue"):
            import subprocess

            queued = subprocess.run(["squeue", "-h", "-o", "%i", "-j", ",".join(ids)], capture_output=True,
                                    text=True, timeout=60).stdout.split()
            if queued:
                raise EsZooError(f"the Slurm jobs of the previous submission are still queued or running "
                                 f"({', '.join(sorted(set(queued))[:5])}); wait for them (or scancel them) "
                                 "before running this command again")
    previous = None
    jobs = {}
    for name, (pipeline, stage_tasks) in stages.items():
        t = n_tasks if stage_tasks is None else stage_tasks
        venv = opts.venv_path
        if venv and Path(venv).is_dir():  # datatrove sources the path it is given: the activate script
            venv = str(Path(venv) / "bin" / "activate")
        previous = SlurmPipelineExecutor(
            pipeline=pipeline, tasks=t, time=opts.time, partition=opts.partition, cpus_per_task=opts.cpus_per_task,
            mem_per_cpu_gb=opts.mem_per_cpu_gb, job_name=f"{opts.job_name}-{name}",
            logging_dir=str(out / "logs" / name), slurm_logs_folder=str(out / "logs" / name / "slurm"),
            depends=previous, sbatch_args=dict(opts.sbatch_args), qos=opts.qos, venv_path=venv,
        )
        jobs[name] = previous
    previous.run()
    ids = {name: getattr(ex, "job_id", None) for name, ex in jobs.items()}
    _write_json_atomic(record, ids)
    echo(f"submitted {len(ids)} Slurm job arrays: " + ", ".join(f"{k}={v}" for k, v in ids.items()))
    echo(f"when the last one ends, {out / 'manifest.json'} exists; run the same command again to resume "
         "failed tasks")
    return {"submitted": ids, "output": str(out)}


# --------------------------------------------------------------------------------------------------
# Reading a prepared folder
# --------------------------------------------------------------------------------------------------


@dataclasses.dataclass
class Prepared:
    """A prepared folder opened for training: tokenizer path, streams (memory-mapped) and counts."""

    path: Path
    manifest: dict
    train: Any  # es_zoo.packing.TokenStream
    heldout: Any
    train_starts: Any | None
    heldout_starts: Any | None
    unigram_counts: np.ndarray

    @property
    def tokenizer_dir(self) -> Path:
        return self.path / "tokenizer"


def read_manifest(path: str | Path) -> dict:
    """The manifest of a prepared folder, or a clear error if it is not (yet) one."""
    p = Path(path).expanduser()
    if not p.is_dir():
        raise EsZooError(f"--data {p}: no such folder; make it with `es-zoo prepare RECIPE --output {p}`")
    m = p / "manifest.json"
    if not m.is_file():
        hint = ("its preparation has not finished: run the same `es-zoo prepare` command again to resume it"
                if (p / "plan.json").is_file() else "make it with `es-zoo prepare RECIPE --output DIR`")
        raise EsZooError(f"--data {p}: not a complete prepared folder (no manifest.json); {hint}")
    try:
        manifest = _read_json(m)
        if manifest.get("format") != FORMAT:
            raise ValueError(f"format {manifest.get('format')!r}, expected {FORMAT!r}")
        manifest["splits"]["train"]["shards"]  # noqa: B018 - shape check
    except (ValueError, KeyError, TypeError) as exc:
        raise EsZooError(f"{m}: not an es-zoo manifest ({exc})") from None
    return manifest


def check_compatible(manifest: dict, cfg: ResolvedRecipe, where: str) -> None:
    """Refuse a prepared folder whose fingerprint disagrees with ``cfg`` (naming what differs), or whose
    training tokens are too few for the schedule."""
    spec = fingerprint_spec(cfg, manifest["fingerprint_of"].get("tokenizer") if cfg.tokenizer is None else None)
    if fingerprint(spec) != manifest["fingerprint"]:
        diff = _diff(manifest["fingerprint_of"], spec)
        raise EsZooError(
            f"--data {where} was prepared for other settings ({'; '.join(diff[:4]) or 'fingerprint differs'}); "
            f"it is not used and nothing is re-tokenized. Prepare for this recipe: es-zoo prepare {cfg.recipe} "
            f"--preset {cfg.preset} ... --output NEW_DIR"
        )
    have = manifest["splits"]["train"]["tokens"]
    needs = schedule_tokens(cfg)
    epochs = cfg.corpus.max_epochs
    if epochs is not None and needs > have * epochs * (1 + 1e-9):
        raise EsZooError(
            f"--data {where} holds {have:,} training tokens; this schedule consumes {needs:,}, more than "
            f"corpus.max_epochs={epochs:g} passes: {math.ceil(needs / epochs) - have:,} tokens missing. Prepare "
            "with this recipe (es-zoo prepare takes what the schedule needs) or allow more passes."
        )


def open_prepared(path: str | Path, cfg: ResolvedRecipe | None = None) -> Prepared:
    """Open a prepared folder: manifest, every shard checked against it, streams memory-mapped.

    With ``cfg``, refuse a folder prepared for other settings (see :func:`check_compatible`).
    """
    root = Path(path).expanduser().resolve()
    manifest = read_manifest(root)
    if cfg is not None:
        check_compatible(manifest, cfg, str(root))
    if not (root / "tokenizer" / "COMPLETE").is_file():
        raise EsZooError(f"{root / 'tokenizer'}: missing or incomplete; prepare the folder again")
    streams = {}
    for split in ("train", "heldout"):
        paths = []
        for shard in manifest["splits"][split]["shards"]:
            p = root / shard["file"]
            problem = shard_problem(p, {"tokens": shard["tokens"], "dtype": shard["dtype"]})
            if problem is not None:
                raise CorpusError(f"{problem}. The prepared folder {root} is damaged: prepare it again (a new "
                                  "folder, or the same command after deleting that shard)")
            paths.append(p)
        streams[split] = open_stream(paths)
    counts_path = root / "train.counts.npy"
    try:
        counts = np.load(counts_path)
    except (OSError, ValueError) as exc:
        raise CorpusError(f"{counts_path}: unreadable ({exc}); prepare the folder again") from None
    return Prepared(root, manifest, streams["train"][0], streams["heldout"][0], streams["train"][1],
                    streams["heldout"][1], counts)


def cfg_with_prepared_corpus(cfg: ResolvedRecipe, manifest: dict, explicit_source: bool) -> ResolvedRecipe:
    """``cfg`` with the corpus the folder was prepared from (a run from --data records where its text
    came from); an explicitly given, different corpus is refused."""
    prepared = manifest["corpus"]
    if explicit_source and cfg.corpus.source != prepared["source"]:
        raise EsZooError(
            f"--corpus {cfg.corpus.source} differs from the corpus the --data folder was prepared from "
            f"({prepared['source']}); drop --corpus (the prepared folder says where its text came from)"
        )
    data = cfg.to_dict()
    data["config"]["corpus"]["source"] = prepared["source"]
    return resolved_from_dict(data, "recipe")


if __name__ == "__main__":  # pragma: no cover
    sys.exit("use `es-zoo prepare`")
