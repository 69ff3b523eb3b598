"""Task heads and their loss modules for the shared training loop (``es_zoo.training.train_loop``).

A loss module holds the model as ``.model`` and maps one micro-batch to ``(summed loss, correct
predictions)``; the loop divides by the number of scored items of the whole global batch (examples,
words or answers), exactly as it does for masked-LM pretraining.

Sequence classification, token classification and extractive QA use the transformers heads
(``AutoModelFor*``), so a fine-tuned model loads with plain transformers. Dependency parsing uses a
biaffine parser (Dozat & Manning 2017, "Deep Biaffine Attention for Neural Dependency Parsing") on the
encoder: transformers has no such head, so it is written here from the paper: the first sub-token of
each word, an ``[CLS]`` vector as ROOT, two MLPs (arc-dependent / arc-head, 500 units) and a biaffine
arc scorer with a head bias, two more MLPs (100 units) and a bilinear relation classifier, dropout 0.33
on the MLPs, cross-entropy over heads and over relations (at the gold head in training, at the
predicted head when decoding). Decoding finds the maximum spanning tree with exactly one root
(Chu-Liu/Edmonds), so every output is a well-formed tree.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from es_zoo.tasks.definitions import TaskError

PARSER_WEIGHTS = "parser_head.safetensors"


class SequenceLoss(nn.Module):
    """Cross-entropy of a ``*ForSequenceClassification`` model, summed over windows."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, labels: torch.Tensor, **inputs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logits = self.model(**inputs).logits
        loss = F.cross_entropy(logits.float(), labels, reduction="sum")
        return loss, (logits.argmax(-1) == labels).sum()


class TokenLoss(nn.Module):
    """Cross-entropy of a ``*ForTokenClassification`` model on first sub-tokens (others are -100)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, labels: torch.Tensor, **inputs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logits = self.model(**inputs).logits
        loss = F.cross_entropy(logits.flatten(0, 1).float(), labels.flatten(), reduction="sum", ignore_index=-100)
        valid = labels != -100
        return loss, ((logits.argmax(-1) == labels) & valid).sum()


class QALoss(nn.Module):
    """Start and end cross-entropy of a ``*ForQuestionAnswering`` model (their mean, summed over windows)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, start_positions: torch.Tensor, end_positions: torch.Tensor,
                **inputs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out = self.model(**inputs)
        loss = (F.cross_entropy(out.start_logits.float(), start_positions, reduction="sum")
                + F.cross_entropy(out.end_logits.float(), end_positions, reduction="sum")) / 2
        hit = (out.start_logits.argmax(-1) == start_positions) & (out.end_logits.argmax(-1) == end_positions)
        return loss, hit.sum()


class _MLP(nn.Module):
    def __init__(self, d_in: int, d_out: int, dropout: float) -> None:
        super().__init__()
        self.linear = nn.Linear(d_in, d_out)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(F.leaky_relu(self.linear(x), 0.1))


class BiaffineParser(nn.Module):
    """An encoder (any ``AutoModel``) with Dozat & Manning's biaffine arc and relation scorers."""

    def __init__(self, encoder: nn.Module, relations: list[str], arc_dim: int = 500, rel_dim: int = 100,
                 dropout: float = 0.33, head_lr_scale: float = 1.0) -> None:
        super().__init__()
        self.encoder = encoder
        self.relations = list(relations)
        self.arc_dim, self.rel_dim, self.dropout_p = arc_dim, rel_dim, dropout
        self.head_lr_scale = head_lr_scale
        d = encoder.config.hidden_size
        self.arc_dep, self.arc_head = _MLP(d, arc_dim, dropout), _MLP(d, arc_dim, dropout)
        self.rel_dep, self.rel_head = _MLP(d, rel_dim, dropout), _MLP(d, rel_dim, dropout)
        self.arc_u = nn.Parameter(torch.zeros(arc_dim, arc_dim))  # zero init, as the paper's code does
        self.arc_b = nn.Parameter(torch.zeros(arc_dim))
        n = len(relations)
        self.rel_u = nn.Parameter(torch.zeros(n, rel_dim, rel_dim))
        self.rel_w = nn.Linear(2 * rel_dim, n)

    @property
    def config(self) -> Any:
        return self.encoder.config

    def lr_scale(self, name: str) -> float:
        """Learning-rate multiplier of a parameter: the randomly initialised head learns faster."""
        return 1.0 if name.startswith("encoder.") or ".encoder." in name else self.head_lr_scale

    def word_states(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, word_row: torch.Tensor,
                    word_pos: torch.Tensor, root_row: torch.Tensor, token_type_ids: torch.Tensor | None = None
                    ) -> torch.Tensor:
        """(sentences, 1 + words, hidden): ROOT (the [CLS] of the sentence's first window), then each
        word's first sub-token, gathered from the window chosen for it."""
        kw = {"token_type_ids": token_type_ids} if token_type_ids is not None else {}
        h = self.encoder(input_ids=input_ids, attention_mask=attention_mask, **kw).last_hidden_state
        words = h[word_row, word_pos]
        root = h[root_row, 0].unsqueeze(1)
        return torch.cat([root, words], dim=1)

    def scores(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Arc scores (S, N, N+1): word i's head is j (0 = ROOT); relation features of dependents and heads."""
        dep, head = self.arc_dep(x[:, 1:]), self.arc_head(x)
        arcs = torch.einsum("sid,de,sje->sij", dep, self.arc_u, head) + (head @ self.arc_b).unsqueeze(1)
        return arcs, self.rel_dep(x[:, 1:]), self.rel_head(x)

    def relation_logits(self, rdep: torch.Tensor, rhead: torch.Tensor, heads: torch.Tensor) -> torch.Tensor:
        """(S, N, R) relation scores of each word with the given head."""
        h = torch.gather(rhead, 1, heads.clamp(min=0).unsqueeze(-1).expand(-1, -1, rhead.size(-1)))
        bil = torch.einsum("snd,rde,sne->snr", rdep, self.rel_u, h)
        return bil + self.rel_w(torch.cat([rdep, h], dim=-1))

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, word_row: torch.Tensor,
                word_pos: torch.Tensor, word_mask: torch.Tensor, root_row: torch.Tensor,
                token_type_ids: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x = self.word_states(input_ids, attention_mask, word_row, word_pos, root_row, token_type_ids)
        arcs, rdep, rhead = self.scores(x)
        cand = torch.cat([torch.ones_like(word_mask[:, :1]), word_mask], dim=1)  # ROOT + real words
        arcs = arcs.masked_fill(~cand.unsqueeze(1), float("-inf"))
        return arcs, rdep, rhead

    # ------------------------------------------------------------------ saving (Hub-ready folder)
    def save(self, folder: str | Path) -> None:
        """The encoder as a plain transformers model, the head as ``parser_head.safetensors``; the
        head's sizes and relation labels go into ``config.json`` (``es_zoo_parser``)."""
        from safetensors.torch import save_file

        folder = Path(folder)
        self.encoder.config.es_zoo_parser = {"relations": self.relations, "arc_dim": self.arc_dim,
                                             "rel_dim": self.rel_dim, "dropout": self.dropout_p}
        self.encoder.save_pretrained(folder)
        head = {k: v.detach().contiguous() for k, v in self.state_dict().items() if not k.startswith("encoder.")}
        save_file(head, str(folder / PARSER_WEIGHTS), metadata={"format": "pt", "es_zoo": "biaffine-parser"})

    @classmethod
    def load(cls, folder: str | Path) -> "BiaffineParser":
        """A parser saved by :meth:`save` (the encoder loads with ``AutoModel.from_pretrained`` alone)."""
        from safetensors.torch import load_file
        from transformers import AutoModel

        folder = Path(folder)
        if not (folder / PARSER_WEIGHTS).is_file():
            raise TaskError(f"{folder}: no {PARSER_WEIGHTS}; this is not a parser saved by es-zoo")
        encoder = AutoModel.from_pretrained(folder, use_safetensors=True)
        meta = getattr(encoder.config, "es_zoo_parser", None)
        if not isinstance(meta, dict):
            raise TaskError(f"{folder}/config.json has no es_zoo_parser entry")
        parser = cls(encoder, meta["relations"], meta["arc_dim"], meta["rel_dim"], meta["dropout"])
        missing, unexpected = parser.load_state_dict(load_file(str(folder / PARSER_WEIGHTS)), strict=False)
        missing = [k for k in missing if not k.startswith("encoder.")]
        if missing or unexpected:
            raise TaskError(f"{folder}/{PARSER_WEIGHTS}: missing {missing}, unexpected {unexpected}")
        return parser


class ParserLoss(nn.Module):
    """Head and relation cross-entropy of a :class:`BiaffineParser`, summed over words; correct = heads."""

    def __init__(self, model: BiaffineParser) -> None:
        super().__init__()
        self.model = model

    def lr_scale(self, name: str) -> float:
        return self.model.lr_scale(name.removeprefix("model."))

    def forward(self, heads: torch.Tensor, rels: torch.Tensor, word_mask: torch.Tensor,
                **inputs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        arcs, rdep, rhead = self.model(word_mask=word_mask, **inputs)
        target = heads.masked_fill(~word_mask, -100)
        arc_loss = F.cross_entropy(arcs.flatten(0, 1).float(), target.flatten(), reduction="sum", ignore_index=-100)
        rel_logits = self.model.relation_logits(rdep, rhead, heads)
        rel_loss = F.cross_entropy(rel_logits.flatten(0, 1).float(), rels.masked_fill(~word_mask, -100).flatten(),
                                   reduction="sum", ignore_index=-100)
        correct = ((arcs.argmax(-1) == heads) & word_mask).sum()
        return arc_loss + rel_loss, correct


def mst_heads(scores: np.ndarray) -> np.ndarray:
    """Heads of the maximum spanning arborescence rooted at 0 with exactly one child of the root.

    ``scores[i, j]`` (shape (n+1, n+1), row 0 unused) is the score of word ``i`` taking head ``j``.
    Chu-Liu/Edmonds is run once per candidate root child (the single-root constraint of UD), keeping
    the best tree; written here because no maintained Python library exposes it with this constraint.
    """
    n = scores.shape[0] - 1
    if n == 1:
        return np.array([-1, 0])
    best, best_score = None, -np.inf
    root_scores = scores[1:, 0]
    # Trying every root child is exact; the 8 best-scoring candidates are enough in practice.
    for r in np.argsort(root_scores)[::-1][: min(n, 8)] + 1:
        s = scores.copy()
        s[1:, 0] = -np.inf
        s[r, :] = -np.inf
        s[r, 0] = 0.0
        heads = _chu_liu_edmonds(s)
        total = sum(scores[i, heads[i]] for i in range(1, n + 1))
        if total > best_score:
            best, best_score = heads, total
    return best


def _chu_liu_edmonds(scores: np.ndarray) -> np.ndarray:
    """Maximum spanning arborescence rooted at node 0; ``scores[dep, head]``, -inf for forbidden arcs."""
    n = scores.shape[0]
    s = scores.copy()
    np.fill_diagonal(s, -np.inf)
    s[0, :] = -np.inf
    heads = s.argmax(1)
    heads[0] = -1
    cycle = _find_cycle(heads)
    if cycle is None:
        return heads
    # Contract the cycle into one node c, solve, expand.
    in_cycle = np.zeros(n, bool)
    in_cycle[cycle] = True
    rest = [i for i in range(n) if not in_cycle[i]]
    c = len(rest)  # index of the contracted node in the small graph
    index = {old: new for new, old in enumerate(rest)}
    cycle_score = sum(s[i, heads[i]] for i in cycle)
    small = np.full((c + 1, c + 1), -np.inf)
    enter_from: dict[int, tuple[int, int]] = {}  # head (small idx) -> (dependent in cycle, head old)
    leave_to: dict[int, int] = {}  # dependent (small idx) -> head in cycle
    for dep in rest:
        for head in rest:
            small[index[dep], index[head]] = s[dep, head]
        vals = s[dep, cycle]
        k = int(np.argmax(vals))
        small[index[dep], c] = vals[k]
        leave_to[index[dep]] = cycle[k]
    for head in rest:
        # entering the cycle at dependent d breaks d's cycle arc
        gains = [s[d, head] - s[d, heads[d]] + cycle_score for d in cycle]
        k = int(np.argmax(gains))
        small[c, index[head]] = gains[k]
        enter_from[index[head]] = (cycle[k], head)
    sub = _chu_liu_edmonds(small)
    out = heads.copy()
    for dep in rest:
        h = sub[index[dep]]
        out[dep] = leave_to[index[dep]] if h == c else rest[h]
    d, h = enter_from[sub[c]]
    out[d] = h
    out[0] = -1
    return out


def _find_cycle(heads: np.ndarray) -> list[int] | None:
    n = len(heads)
    color = np.zeros(n, int)  # 0 unvisited, 1 on the current path, 2 done
    for start in range(1, n):
        path = []
        v = start
        while v > 0 and color[v] == 0:
            color[v] = 1
            path.append(v)
            v = heads[v]
        if v > 0 and color[v] == 1:
            return path[path.index(v):]
        for p in path:
            color[p] = 2
    return None


def parser_meta(folder: str | Path) -> dict | None:
    """The ``es_zoo_parser`` entry of a model folder's config, if it is an es-zoo parser."""
    cfg = Path(folder) / "config.json"
    if not cfg.is_file():
        return None
    return json.loads(cfg.read_text()).get("es_zoo_parser")
