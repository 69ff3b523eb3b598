"""Model families: one record per architecture a recipe can train, in one place.

A family says everything that differs between BETO (``bert``), MarIA's RoBERTa (``roberta``), BARTO
(``bart``), T5S (``t5``) and the warm-started BERT2BERT (``bert2bert``): the ``model:`` section of its
recipes (a dataclass whose ``architecture`` field names the family), the tokenizer kind and objective it
trains with, how it builds the model, the pretraining job (loss module, batch maker, held-out scorer),
the fine-tune suite that ends its reproduction, and its model card's text. Recipes
(:mod:`es_zoo.recipes`), ``es-zoo reproduce`` / ``prepare`` (:mod:`es_zoo.reproduce`,
:mod:`es_zoo.prepare`) and model cards (:mod:`es_zoo.cards`) read the registry instead of comparing
architecture names, so a new family is one module in this package (plus its recipe, catalogue record,
tests and docs); see docs/contributing.md.

Example:
    >>> from es_zoo.families import get_family, family_names
    >>> family_names()
    ['bert', 'roberta', 'bart', 't5', 'bert2bert']
    >>> f = get_family("roberta")
    >>> f.tokenizer_kind, f.objective_kind, f.finetune_suite
    ('byte_level_bpe', 'whole_word_masking', 'glues')
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar

# The families es-zoo ships, in the order `es-zoo recipes list` and the docs show them. Each module
# registers its record when imported (register(...) at the bottom of the module).
BUILTIN = ("bert", "roberta", "bart", "t5", "bert2bert")

_REGISTRY: dict[str, "Family"] = {}
_loaded = False


@dataclass
class PretrainJob:
    """What the pretraining loop runs for one family: the model, the loss module the loop differentiates
    (``loss``: DDP/FSDP wrap it), the batch maker (``batches(step)``), the held-out scorer, and what else
    the run's results hold (``extra(model)``: generation samples, the warm-start encoder)."""

    model: Any
    loss: Any
    batches: Any
    score: Callable[[Any], dict]
    score_before_training: bool = False  # also score the untrained model (step 0) for comparison
    extra: Callable[[Any], dict] = field(default=lambda model: {})


class Family:
    """One architecture es-zoo pretrains. Subclasses set the class attributes and implement :meth:`job`
    and :meth:`card_text`; the defaults below fit most families."""

    name: ClassVar[str]  # the recipes' model.architecture
    model_config: ClassVar[type]  # the recipes' model section (a dataclass, `architecture: Literal[name]`)
    tokenizer_kind: ClassVar[str | None]  # None: the warm-start checkpoint brings its tokenizer
    objective_kind: ClassVar[str]  # the recipes' objective.kind
    finetune_suite: ClassVar[str]  # "glues" (encoders) or "seq2seq" (encoder-decoders): the recipe's runs
    loss_label: ClassVar[str]  # the loss curve's label
    sentence_starts: ClassVar[bool] = False  # prepare records where sentences begin (BART's permutation)
    max_predictions: ClassVar[bool] = False  # phases may cap the masked tokens (masked LMs)
    needs_phases: ClassVar[bool] = True  # a recipe must train (bert2bert may only warm-start)
    fsdp_layers: ClassVar[tuple[str, ...]] = ()  # the model's layer classes: one FSDP unit each

    def check(self, preset: Any) -> None:
        """Family-specific checks of a preset (raise ``ValueError`` with the key path and what to do)."""

    def stream_tokens_per_sequence(self, cfg: Any, seq_len: int) -> int:
        """Training-stream tokens one sequence of ``seq_len`` consumes (the frame is not from the stream)."""
        return seq_len - 2

    def model_max_length(self, cfg: Any) -> int | None:
        """The longest input the trained tokenizer announces (``model_max_length``); None: prepare's default."""
        return getattr(cfg.model, "max_position_embeddings", None)

    def check_launch(self, cfg: Any, run_dir: Any, world: int) -> None:
        """Checks every process makes before a run starts (``world`` processes)."""

    def tokenizer_from(self, cfg: Any) -> str | None:
        """A local tokenizer folder the family takes instead of training one (bert2bert: its BETO's)."""
        return None

    def setup_run(self, cfg: Any, run_dir: Any, manifest: dict | None, data: Any) -> str | None:
        """First-process setup before the corpus is prepared (bert2bert: find its BETO, copy its
        tokenizer); returns the tokenizer folder prepare must use, or None to train one."""
        return None

    def job(self, cfg: Any, run_dir: Any, tokenizer: Any, streams: dict, accelerator: Any) -> PretrainJob:
        raise NotImplementedError

    def card_text(self, cfg: Any, results: dict) -> dict:
        raise NotImplementedError


def register(family: Family) -> Family:
    """Add ``family`` to the registry (a module in this package calls it once when imported)."""
    if family.name in _REGISTRY and type(_REGISTRY[family.name]) is not type(family):
        raise ValueError(f"family '{family.name}' is registered twice")
    _REGISTRY[family.name] = family
    return family


def _load() -> None:
    global _loaded
    if not _loaded:
        _loaded = True
        for name in BUILTIN:
            importlib.import_module(f"es_zoo.families.{name}")


def family_names() -> list[str]:
    """The registered families, built-in ones first."""
    _load()
    return list(_REGISTRY)


def all_families() -> list[Family]:
    _load()
    return list(_REGISTRY.values())


def get_family(name: str) -> Family:
    """The family whose recipes say ``model.architecture: NAME``."""
    _load()
    if name not in _REGISTRY:
        raise KeyError(f"no model family '{name}'; known: {', '.join(_REGISTRY)}")
    return _REGISTRY[name]
