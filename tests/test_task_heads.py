"""The fine-tuning head registry (es_zoo.tasks.task_heads): every task names a registered head, every
head implements the protocol, and each encoder head's batches count exactly the targets its loss sums
over, on the shipped fixtures (parametrized from the registry: a new head is checked for free)."""

from __future__ import annotations

from pathlib import Path

import pytest

from es_zoo.tasks.definitions import list_tasks, load_task
from es_zoo.tasks.task_heads import HEADS, TaskHead, get_head

TASKS = [load_task(n) for n in list_tasks()]
REQUIRED = ("build_model", "prepare", "collate", "loss", "predict", "score")


def test_every_task_names_a_registered_head_and_every_head_is_used() -> None:
    used = {t.head for t in TASKS}
    assert used <= set(HEADS) and set(HEADS) <= used
    with pytest.raises(Exception, match="unknown head nope; known: sequence, token, qa, parser, seq2seq"):
        get_head("nope")


@pytest.mark.parametrize("name", list(HEADS))
def test_every_head_implements_the_protocol(name: str) -> None:
    head = HEADS[name]
    for method in REQUIRED:
        assert getattr(type(head), method) is not getattr(TaskHead, method), f"{name} lacks {method}"


ENCODER_TASKS = [t for t in TASKS if t.head != "seq2seq" and "shipped" in t.sources]


@pytest.mark.parametrize("task", ENCODER_TASKS, ids=[t.name for t in ENCODER_TASKS])
def test_a_batch_counts_exactly_the_targets_its_loss_sums(task, micro_beto: Path) -> None:
    from es_zoo.loading import load_tokenizer
    from es_zoo.tasks.data import load_task_data

    head = get_head(task.head)
    tok = load_tokenizer(str(micro_beto))
    data = load_task_data(task, source="shipped")
    ctx = head.before_model(task, data, str(micro_beto), None) if task.head == "parser" else {}
    hp = task.hparams.replace(max_length=128, stride=32)
    prepared = head.prepare(task, tok, data.dataset["train"], hp, **ctx)
    items = prepared.items[:8]
    batch = head.collate(items, getattr(prepared.encoded, "windows", None), tok.pad_token_id, **ctx)
    assert batch["input_ids"].shape[0] >= len(items)
    targets = {"token": lambda b: int((b["labels"] != -100).sum()), "sequence": lambda b: len(b["labels"]),
               "qa": lambda b: len(b["start_positions"]), "parser": lambda b: int(b["word_mask"].sum())}[task.head]
    assert head.scored(items) == targets(batch) > 0
    # prediction input: the same items without targets collate without them
    bare = [{k: v for k, v in it.items() if k not in ("labels", "start_positions", "end_positions", "heads", "rels")}
            for it in items]
    plain = head.collate(bare, getattr(prepared.encoded, "windows", None), tok.pad_token_id, **ctx)
    assert not {"labels", "start_positions", "heads"} & set(plain)
