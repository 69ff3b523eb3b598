"""Recipes: one flat YAML file per model, with complete presets inside (no inheritance).

A recipe file looks like::

    name: beto
    reproduces: beto-base-cased
    description: ...
    presets:
      tiny:   {tokenizer: ..., model: ..., objective: ..., corpus: ..., training: ..., evaluation: ...}
      paper:  {...}

Loading is strict: an unknown key, a wrong type or a broken cross-field rule raises
:class:`~es_zoo.errors.RecipeError` naming the file, the key path and what was expected. Command-line
overrides (``training.learning_rate=1e-4``) go through the same checks.

Example:
    >>> from es_zoo.recipes import load_recipe
    >>> cfg = load_recipe("beto", preset="tiny", overrides=["training.seed=3"])
    >>> cfg.training.seed
    3
"""

from __future__ import annotations

import dataclasses
import difflib
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Optional, Union

import yaml

from es_zoo.errors import RecipeError
from es_zoo.families import all_families, get_family
from es_zoo.resources import recipes_dir
from es_zoo.safeyaml import MAX_BYTES, YamlLimitError, load_yaml, short
# the converter (es_zoo.schema); existing callers may still import from_mapping from here
from es_zoo.schema import Mismatch, from_mapping, to_dataclass
from es_zoo.tasks.definitions import TaskError, list_tasks, load_task

# --------------------------------------------------------------------------------------------------
# Schema. Every field is documented; defaults are the ones a recipe may leave out.
# --------------------------------------------------------------------------------------------------


MAX_VOCAB = 2**22  # 4,194,304 entries: 3.2 B embedding parameters at width 768, far past any real model


@dataclass
class TokenizerConfig:
    """How the tokenizer is made.

    ``wordpiece`` is BETO's, ``byte_level_bpe`` BARTO's (BART's special tokens, ``<mask>`` last) and
    ``sentencepiece_unigram`` T5S's (T5's layout, ``extra_ids`` sentinels at the top of the vocabulary).
    """

    kind: Literal["wordpiece", "byte_level_bpe", "sentencepiece_unigram"] = "wordpiece"
    vocab_size: int = 31002  # total, special tokens (and sentinels) included
    lowercase: bool = False  # WordPiece only: BETO-uncased lower-cases
    strip_accents: bool = False  # WordPiece only: BETO keeps accents in both variants
    min_frequency: int = 2  # a merge/word must appear this often to enter the vocabulary
    vocab_file: Optional[str] = None  # WordPiece only: use this published vocabulary instead of training one
    # Size of the tokenizer's training sample, in characters: the training documents with the smallest
    # hash of their text, up to this budget, so the sample is spread over the whole corpus, the same on
    # every run, and bounded in memory (es-zoo prepare; the manifest and the card record it). None: all.
    max_training_chars: Optional[int] = None
    extra_ids: int = 0  # SentencePiece only: T5's sentinels <extra_id_0..N-1> (100 in T5 and T5S)

    def __post_init__(self) -> None:
        if self.vocab_file is None and self.vocab_size < 100:
            raise ValueError(f"vocab_size must be at least 100, got {self.vocab_size}")
        if self.vocab_size > MAX_VOCAB:
            raise ValueError(f"vocab_size must be at most {MAX_VOCAB:,} (mT5's is 250,112), got {self.vocab_size:,}")
        if self.min_frequency < 1:
            raise ValueError("min_frequency must be >= 1")
        if self.max_training_chars is not None and self.max_training_chars < 1000:
            raise ValueError(f"max_training_chars must be at least 1000 (or null for all), got {self.max_training_chars}")
        if self.kind != "wordpiece":
            for name in ("lowercase", "strip_accents"):
                if getattr(self, name):
                    raise ValueError(f"{name} applies to kind 'wordpiece' only, not '{self.kind}'")
            if self.vocab_file is not None:
                raise ValueError(f"vocab_file applies to kind 'wordpiece' only, not '{self.kind}'")
        if self.kind == "sentencepiece_unigram":
            if self.extra_ids < 1:
                raise ValueError("kind 'sentencepiece_unigram' needs extra_ids >= 1 (T5 uses 100 sentinels)")
        elif self.extra_ids:
            raise ValueError(f"extra_ids applies to kind 'sentencepiece_unigram' only, not '{self.kind}'")


# Sane bounds for model sizes: far beyond any published model, small enough that a typo (an extra zero
# run, 99999999999) is one clear line at validation instead of an out-of-memory crash after minutes.
_SIZE_LIMITS = {"hidden_size": 65536, "d_model": 65536, "d_kv": 4096, "intermediate_size": 262144,
                "encoder_ffn_dim": 262144, "decoder_ffn_dim": 262144, "d_ff": 262144,
                "num_hidden_layers": 1024, "encoder_layers": 1024, "decoder_layers": 1024, "num_layers": 1024,
                "num_decoder_layers": 1024, "num_attention_heads": 1024, "encoder_attention_heads": 1024,
                "decoder_attention_heads": 1024, "num_heads": 1024, "max_position_embeddings": 1 << 20,
                "type_vocab_size": 1024, "relative_attention_num_buckets": 4096,
                "relative_attention_max_distance": 1 << 20}


def check_model_sizes(cfg: Any) -> None:
    """A model section's sizes within :data:`_SIZE_LIMITS` (a family's model dataclass calls it)."""
    for f in dataclasses.fields(cfg):
        limit = _SIZE_LIMITS.get(f.name)
        value = getattr(cfg, f.name)
        if limit is not None and not 1 <= value <= limit:
            raise ValueError(f"{f.name} must be in [1, {limit:,}], got {value:,}")


class ModelSection:
    """The type of a preset's ``model:`` section: the model dataclass of the family its ``architecture``
    names (es_zoo.families: BertModelConfig, BartModelConfig, T5ModelConfig, ...)."""

    __schema_name__ = "a mapping (a model section with its architecture)"

    @staticmethod
    def __schema_choices__() -> list:
        return [f.model_config for f in all_families()]


@dataclass
class WholeWordMaskingConfig:
    """Google BERT's create_pretraining_data masking, re-drawn every time a sequence is seen."""

    kind: Literal["whole_word_masking"] = "whole_word_masking"
    mlm_probability: float = 0.15  # share of tokens to predict
    max_predictions: int = 20  # per sequence, as max_predictions_per_seq (80 at length 512)
    mask_replace_prob: float = 0.8  # [MASK]
    random_replace_prob: float = 0.1  # a random vocabulary token; the rest stay unchanged
    whole_word: bool = True  # False: plain token-level masking

    def __post_init__(self) -> None:
        if not 0.0 < self.mlm_probability < 1.0:
            raise ValueError("mlm_probability must be in (0, 1)")
        if self.max_predictions < 1:
            raise ValueError("max_predictions must be >= 1")
        if self.mask_replace_prob < 0 or self.random_replace_prob < 0:
            raise ValueError("replacement probabilities must be >= 0")
        if self.mask_replace_prob + self.random_replace_prob > 1.0 + 1e-9:
            raise ValueError("mask_replace_prob + random_replace_prob must be <= 1")


@dataclass
class DenoisingConfig:
    """BART's text infilling + sentence permutation (fairseq DenoisingDataset, BART-large arguments)."""

    kind: Literal["bart_denoising"] = "bart_denoising"
    mask_ratio: float = 0.3  # share of the words inside masked spans
    random_ratio: float = 0.1  # a span becomes a random token instead of <mask> with this probability
    poisson_lambda: float = 3.5  # span lengths in words ~ Poisson(lambda), 0-length spans are insertions
    permute_sentence_ratio: float = 1.0  # share of the sentences shuffled (1.0: all of them)
    insert_ratio: float = 0.0  # extra random insertions (BART used none)
    # es-zoo's own aid for tiny models, not part of BART (0 = off, as in the paper preset): the first
    # ``copy_warmup_steps`` steps reconstruct blocks of ``copy_warmup_length`` random tokens, uncorrupted.
    # A 2-layer model then learns to read its encoder within ~150 steps; on natural text alone it learns a
    # decoder-only language model first and never starts copying within a CPU budget (docs/seq2seq-pretraining.md).
    copy_warmup_steps: int = 0
    copy_warmup_length: int = 32

    def __post_init__(self) -> None:
        for name in ("mask_ratio", "random_ratio", "permute_sentence_ratio", "insert_ratio"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be in [0, 1]")
        if self.poisson_lambda <= 0:
            raise ValueError("poisson_lambda must be > 0")
        if self.copy_warmup_steps < 0:
            raise ValueError("copy_warmup_steps must be >= 0")
        if self.copy_warmup_length < 3:
            raise ValueError("copy_warmup_length must be >= 3 (a start token, one token, an end token)")


@dataclass
class SpanCorruptionConfig:
    """T5's span corruption (random_spans_noise_mask, sentinels counting down from <extra_id_0>)."""

    kind: Literal["span_corruption"] = "span_corruption"
    noise_density: float = 0.15
    mean_noise_span_length: float = 3.0

    def __post_init__(self) -> None:
        if not 0.0 < self.noise_density < 1.0:
            raise ValueError("noise_density must be in (0, 1)")
        if self.mean_noise_span_length < 1.0:
            raise ValueError("mean_noise_span_length must be >= 1")


@dataclass
class CorpusConfig:
    """Pretraining text. ``source`` is ``embedded``, a local file/folder, or a Hub dataset id."""

    source: str = "embedded"
    text_field: str = "text"  # JSONL/parquet/arrow/Hub column holding the text
    split: str = "train"  # Hub/local dataset split
    config_name: Optional[str] = None  # Hub dataset configuration, e.g. "20231101.es" for wikimedia/wikipedia
    heldout_fraction: float = 0.01  # documents kept for evaluation (the embedded corpus has its own)
    dedup: bool = False  # drop exact duplicate documents (after cleaning)
    min_chars: int = 1  # drop documents shorter than this after cleaning
    max_documents: Optional[int] = None  # stop after this many documents (None: all)
    streaming: Optional[bool] = None  # Hub datasets: None = stream
    # The most passes the schedule may make over the prepared training tokens. `es-zoo prepare` then
    # tokenizes only what the schedule needs (its tokens / max_epochs, plus a margin), drawn by hash across
    # the corpus, and fails early if the corpus is too small; `reproduce --data` refuses a folder with too
    # few tokens. None: the whole corpus, as many passes as the schedule makes (BETO repeats its corpus).
    max_epochs: Optional[float] = None
    # A document longer than this (after cleaning) is cut into pieces of at most this many characters,
    # at line breaks (else spaces): a whole book or a crawl page without breaks trains and tokenizes in
    # bounded memory. A novel is ~0.5 M characters. None: never cut.
    max_document_chars: Optional[int] = 1_000_000

    def __post_init__(self) -> None:
        if not 0.0 <= self.heldout_fraction < 1.0:
            raise ValueError("heldout_fraction must be in [0, 1)")
        if self.max_document_chars is not None and self.max_document_chars < 1000:
            raise ValueError(f"max_document_chars must be at least 1000 (or null), got {self.max_document_chars}")
        if self.max_epochs is not None and not 0.0 < self.max_epochs <= 1e6:
            raise ValueError(f"max_epochs must be > 0 (or null for no limit), got {self.max_epochs}")


@dataclass
class Phase:
    """A stretch of training at one sequence length and global batch size."""

    max_steps: int
    # Tokens per training sequence: BERT [CLS] ... [SEP] and BART <s> ... </s> count the frame; for T5
    # it is the encoder input length after corruption (</s> included), e.g. 512 from 568 raw tokens.
    seq_len: int
    global_batch_size: int  # sequences per optimizer step, over all processes
    max_predictions: Optional[int] = None  # override of objective.max_predictions for this phase
    micro_batch_size: Optional[int] = None  # override of training.micro_batch_size for this phase

    def __post_init__(self) -> None:
        if self.max_steps < 1 or self.seq_len < 8 or self.global_batch_size < 1:
            raise ValueError("max_steps >= 1, seq_len >= 8 and global_batch_size >= 1 are required")
        for name, limit in (("max_steps", 10**10), ("seq_len", 1 << 20), ("global_batch_size", 1 << 24)):
            if getattr(self, name) > limit:
                raise ValueError(f"{name} must be at most {limit:,}, got {getattr(self, name):,}")


# accelerate's experiment trackers (accelerate.utils.LoggerType, less "all", which would depend on what
# happens to be installed); kept here so that a recipe is checked without importing accelerate.
TRACKERS = ("tensorboard", "wandb", "trackio", "mlflow", "comet_ml", "aim", "clearml", "dvclive", "swanlab")


@dataclass
class TrainingConfig:
    """The optimisation loop. The global batch is the invariant; accumulation is derived from it."""

    phases: list[Phase]
    micro_batch_size: int  # sequences per process per forward pass
    learning_rate: float
    warmup_steps: int
    # adamw_scale: AdamW whose step is scaled by each tensor's RMS, as nanoT5 trains T5 (lr 2e-2).
    optimizer: Literal["adamw", "adamw_scale"] = "adamw"
    lr_schedule: Literal["linear", "cosine", "constant"] = "linear"  # after warmup
    warmup_start_fraction: float = 0.0  # warmup starts at this share of learning_rate (nanoT5: 0.5)
    min_learning_rate: float = 0.0  # where the cosine schedule ends (nanoT5: 1e-5)
    weight_decay: float = 0.01
    adam_beta1: float = 0.9
    adam_beta2: float = 0.999
    adam_epsilon: float = 1e-6
    max_grad_norm: Optional[float] = 1.0  # None: no clipping
    mixed_precision: Literal["no", "fp16", "bf16"] = "no"
    seed: int = 42
    log_every: int = 10
    save_every: int = 500
    keep_checkpoints: int = 2  # complete checkpoints kept (the newest last)
    dataloader_workers: int = 0  # background processes building batches (0: in the main process)
    # How long a process may wait in a collective (a barrier, an all-reduce) for the others. The first
    # process alone scores the held-out text, exports the model and writes the card while the others
    # wait; data preparation never happens inside the process group (es-zoo prepare, before launch).
    process_group_timeout_s: int = 1800
    # GPU step options (docs/install-gpu-tpu.md, "GPU step options"). None of them changes what is
    # computed, only how fast; every default keeps the CPU loop exactly as it was.
    # torch.compile the loss module (the model's forward and the loss), in place: saved weights,
    # unwrap and export see the plain transformers model. Shapes that vary between slices (BART pads
    # each slice to its longest input) make dynamo compile once more with dynamic sizes, then no more.
    compile: bool = False
    # torch.compile mode; None: torch's default. reduce-overhead uses CUDA graphs (one per shape).
    compile_mode: Optional[Literal["default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs"]] = None
    compile_backend: str = "inductor"  # torch.compile backend (aot_eager: no code generation, for tests)
    # How the optimizer updates the tensors: auto = the per-tensor loop on CPU (as es-zoo always did),
    # on CUDA torch's fused AdamW or the foreach AdamWScale; loop, foreach (torch._foreach_* kernels
    # over all tensors at once) or fused (torch AdamW only; not available for adamw_scale).
    optimizer_impl: Literal["auto", "loop", "foreach", "fused"] = "auto"
    # CUDA only: fp32 matmuls and convolutions may use TF32 tensor cores (10-bit mantissa inputs);
    # faster on Ampere and newer, slightly less exact. Ignored on other devices.
    allow_tf32: bool = False
    # CUDA only: batches are copied into pinned (page-locked) host memory by the batch thread and sent
    # to the GPU with non_blocking copies, so the copy overlaps the computation. Ignored on CPU.
    pin_memory: bool = True
    # Experiment trackers that get what logs/train.jsonl gets (accelerate's names: tensorboard, wandb,
    # trackio, mlflow, comet_ml, aim, clearml, dvclive, swanlab); files under RUN_DIR/tracking.
    # `es-zoo reproduce ... --report-to NAME` sets it. Each tracker's own package must be installed.
    trackers: list[str] = field(default_factory=list)
    # Dense bf16 peak TFLOP/s of one device, for the model FLOPs utilisation (mfu) in the log; None:
    # looked up by CUDA device name (es_zoo.flops.PEAK_TFLOPS), absent from the log when unknown.
    peak_tflops: Optional[float] = None

    def __post_init__(self) -> None:
        if not 1 <= self.micro_batch_size <= 1 << 20:
            raise ValueError(f"micro_batch_size must be in [1, {1 << 20:,}], got {self.micro_batch_size:,}")
        if not 0 <= self.dataloader_workers <= 256:
            raise ValueError(f"dataloader_workers must be in [0, 256], got {self.dataloader_workers:,}")
        for i, ph in enumerate(self.phases):
            if ph.global_batch_size % self.micro_batch(i):
                raise ValueError(
                    f"phases[{i}].global_batch_size ({ph.global_batch_size}) must be a multiple of "
                    f"micro_batch_size ({self.micro_batch(i)})"
                )
        if self.warmup_steps < 0 or self.warmup_steps > self.total_steps:
            raise ValueError(f"warmup_steps must be in [0, total steps = {self.total_steps}]")
        if self.learning_rate <= 0:
            raise ValueError("learning_rate must be > 0")
        if not 0.0 <= self.warmup_start_fraction <= 1.0:
            raise ValueError("warmup_start_fraction must be in [0, 1]")
        if not 0.0 <= self.min_learning_rate <= self.learning_rate:
            raise ValueError("min_learning_rate must be in [0, learning_rate]")
        if self.keep_checkpoints < 1:
            raise ValueError("keep_checkpoints must be >= 1")
        if self.log_every < 1 or self.save_every < 1:
            raise ValueError("log_every and save_every must be >= 1")
        if not 60 <= self.process_group_timeout_s <= 7 * 24 * 3600:
            raise ValueError(f"process_group_timeout_s must be in [60, 604800] seconds, got {self.process_group_timeout_s}")
        if self.optimizer_impl == "fused" and self.optimizer == "adamw_scale":
            raise ValueError("optimizer_impl 'fused' is not available for optimizer 'adamw_scale' (PyTorch has no "
                             "fused kernel for it); use foreach, loop or auto")
        if self.compile_mode is not None and not self.compile:
            raise ValueError(f"compile_mode {self.compile_mode!r} needs compile: true")
        if not self.compile_backend.strip():
            raise ValueError("compile_backend must name a torch.compile backend, e.g. inductor")
        unknown = [name for name in self.trackers if name not in TRACKERS]
        if unknown:
            raise ValueError(f"trackers: unknown tracker {unknown[0]!r}; expected some of: {', '.join(TRACKERS)}")
        if len(set(self.trackers)) != len(self.trackers):
            raise ValueError("trackers: a tracker is named twice")
        if self.peak_tflops is not None and not self.peak_tflops > 0:
            raise ValueError("peak_tflops must be > 0 (or null: looked up by device name)")

    def micro_batch(self, phase: int) -> int:
        """Sequences per process per forward pass in ``phase``."""
        return self.phases[phase].micro_batch_size or self.micro_batch_size

    @property
    def total_steps(self) -> int:
        return sum(p.max_steps for p in self.phases)


@dataclass
class EvaluationConfig:
    """Held-out evaluation of the pretrained model."""

    seq_len: int = 128
    max_sequences: int = 512  # held-out sequences scored (None-like caps keep it fast)
    batch_size: int = 32
    seed: int = 1234  # fixed masking seed, so two models are scored on the same positions


@dataclass
class FinetuneRun:
    """One fine-tune that ends a reproduction (``es_zoo.tasks``; see ``es-zoo tasks``)."""

    task: str  # a task of recipes/tasks
    source: str = "shipped"  # the task's data source; "shipped" = the redistributable fixtures in es_zoo/data/tasks
    hparams: dict[str, Any] = field(default_factory=dict)  # over the task's defaults


@dataclass
class FinetuneConfig:
    """Fine-tunes and scores after pretraining: ``glues`` for BERT recipes, ``seq2seq`` for the
    encoder-decoders. Empty: none (the paper presets; run ``es-zoo evaluate RUN --suite ...`` on the
    real data instead)."""

    runs: list[FinetuneRun] = field(default_factory=list)


GluesRun, GluesConfig = FinetuneRun, FinetuneConfig  # the names of es-zoo 0.x


@dataclass
class PresetConfig:
    """One complete, self-contained configuration."""

    description: str
    tokenizer: Optional[TokenizerConfig]  # null for bert2bert: the warm-start checkpoint brings its own
    model: ModelSection  # one of the registered families' model dataclasses (es_zoo.families)
    objective: Union[WholeWordMaskingConfig, DenoisingConfig, SpanCorruptionConfig]
    corpus: CorpusConfig
    training: TrainingConfig
    evaluation: EvaluationConfig = field(default_factory=EvaluationConfig)
    glues: FinetuneConfig = field(default_factory=FinetuneConfig)
    seq2seq: FinetuneConfig = field(default_factory=FinetuneConfig)
    hardware: str = ""  # what the preset was planned for
    expected_wall_clock: str = ""
    sources: list[str] = field(default_factory=list)  # where the settings come from
    unknown: list[str] = field(default_factory=list)  # what the sources leave unknown

    def __post_init__(self) -> None:
        arch = self.model.architecture
        family = get_family(arch)
        tokenizer, objective = family.tokenizer_kind, family.objective_kind
        have = self.tokenizer.kind if self.tokenizer is not None else None
        if have != tokenizer:
            want = f"tokenizer.kind '{tokenizer}'" if tokenizer else "no tokenizer section (tokenizer: null)"
            why = " (the warm-start checkpoint brings its tokenizer)" if tokenizer is None else ""
            raise ValueError(f"model.architecture '{arch}' needs {want}{why}, got {have!r}")
        if self.objective.kind != objective:
            raise ValueError(f"model.architecture '{arch}' needs objective.kind '{objective}', got '{self.objective.kind}'")
        if not self.training.phases and family.needs_phases:
            raise ValueError("training.phases: at least one phase is required")
        family.check(self)
        if self.glues.runs and family.finetune_suite != "glues":
            raise ValueError("glues.runs: GLUES fine-tunes need an encoder (bert, roberta recipes); encoder-decoders "
                             "have seq2seq.runs")
        if self.seq2seq.runs and family.finetune_suite != "seq2seq":
            raise ValueError("seq2seq.runs: seq2seq fine-tunes need an encoder-decoder (barto, t5s, bert2bert); "
                             "encoder recipes have glues.runs")
        for suite, config in (("glues", self.glues), ("seq2seq", self.seq2seq)):
            for i, run in enumerate(config.runs):
                if run.task not in list_tasks():
                    raise ValueError(f"{suite}.runs[{i}].task '{run.task}' is not one of {', '.join(list_tasks())}")
                task = load_task(run.task)
                if task.suite != suite:
                    raise ValueError(f"{suite}.runs[{i}].task '{run.task}' is a {task.suite} task")
                try:
                    task.source(run.source)
                except TaskError as exc:
                    raise Mismatch(f"{suite}.runs[{i}].source", str(exc)) from None
                # the run's settings over the task's defaults, checked as the task file's are (key path named)
                task.hparams.updated(run.hparams, f"{suite}.runs[{i}].hparams")
        if any(p.max_predictions is not None for p in self.training.phases) and not family.max_predictions:
            raise ValueError("training.phases[*].max_predictions applies to masked-LM (BERT, RoBERTa) recipes only")
        limit = getattr(self.model, "max_position_embeddings", None)
        if limit is not None:
            longest = max((p.seq_len for p in self.training.phases), default=0)
            if longest > limit:
                raise ValueError(
                    f"a phase uses seq_len {longest} but model.max_position_embeddings is {limit}"
                )
            if self.evaluation.seq_len > limit:
                raise ValueError("evaluation.seq_len exceeds model.max_position_embeddings")
        warmup = getattr(self.objective, "copy_warmup_steps", 0)
        if warmup:
            first = self.training.phases[0] if self.training.phases else None
            if first is None or warmup >= first.max_steps:
                have = f"{first.max_steps} steps" if first else "no phase"
                raise ValueError(
                    f"objective.copy_warmup_steps ({warmup}) must be shorter than the first training phase "
                    f"({have}); lower it, e.g. objective.copy_warmup_steps=0 to train without the warm-up"
                )
            if self.objective.copy_warmup_length > first.seq_len:
                raise ValueError(
                    f"objective.copy_warmup_length ({self.objective.copy_warmup_length}) must not exceed the "
                    f"first phase's seq_len ({first.seq_len})"
                )


@dataclass
class Recipe:
    """A recipe file: what it reproduces and its presets."""

    name: str
    description: str
    reproduces: Optional[str]  # catalogue name of the published model
    command: str  # the exact command that runs the paper preset
    presets: dict[str, PresetConfig]


@dataclass
class ResolvedRecipe:
    """A preset with its recipe's name, ready to run (what a run folder stores as recipe.yaml)."""

    recipe: str
    preset: str
    reproduces: Optional[str]
    config: PresetConfig
    overrides: list[str] = field(default_factory=list)
    schedule_note: Optional[str] = None  # how --max-steps changed the preset's schedule (said, recorded, carded)

    # Convenience access: cfg.training, cfg.model, ...
    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        return getattr(self.config, name)

    def to_dict(self) -> dict:
        return {
            "recipe": self.recipe,
            "preset": self.preset,
            "reproduces": self.reproduces,
            "overrides": list(self.overrides),
            **({"schedule_note": self.schedule_note} if self.schedule_note else {}),
            "config": dataclasses.asdict(self.config),
        }

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False, allow_unicode=True)


# --------------------------------------------------------------------------------------------------
# Files, presets and overrides.
# --------------------------------------------------------------------------------------------------


def list_recipes() -> list[str]:
    """Names of the shipped recipes (``recipes/*.yaml``)."""
    return sorted(p.stem for p in recipes_dir().glob("*.yaml"))


def recipe_path(name_or_path: str | Path) -> Path:
    """The file of a shipped recipe name, or the given path if it is a file."""
    p = Path(name_or_path)
    if p.suffix in (".yaml", ".yml"):
        if not p.is_file():
            raise RecipeError(f"{p}: no such recipe file")
        return p
    shipped = recipes_dir() / f"{name_or_path}.yaml"
    if shipped.is_file():
        return shipped
    names = list_recipes()
    close = difflib.get_close_matches(str(name_or_path), names, n=3)
    hint = f" Did you mean: {', '.join(close)}?" if close else ""
    raise RecipeError(f"unknown recipe '{name_or_path}'. Known recipes: {', '.join(names)}.{hint}")


def read_yaml(path: Path) -> Any:
    """A user's YAML file (recipe, run folder's recipe.yaml), bounded (es_zoo.safeyaml); RecipeError naming
    the file and line otherwise."""
    try:
        size = path.stat().st_size
        if size > MAX_BYTES:
            raise RecipeError(f"{path}: {size:,} bytes; expected a YAML recipe under {MAX_BYTES:,} bytes")
        raw = path.read_bytes()
    except OSError as exc:
        raise RecipeError(f"{path}: cannot read: {exc.strerror or exc}") from None
    try:
        return load_yaml(raw, str(path))
    except YamlLimitError as exc:
        raise RecipeError(str(exc)) from None


def load_recipe_file(name_or_path: str | Path) -> Recipe:
    """Load and validate a whole recipe file (every preset)."""
    path = recipe_path(name_or_path)
    data = read_yaml(path)
    return from_mapping(Recipe, data, str(path))


def parse_override(text: str) -> tuple[list[str], Any]:
    """``a.b.0.c=value`` -> (["a", "b", "0", "c"], parsed YAML value)."""
    if "=" not in text:
        raise RecipeError(f"override '{text}': expected KEY=VALUE, e.g. training.learning_rate=1e-4")
    key, raw = text.split("=", 1)
    key = key.strip()
    if not key:
        raise RecipeError(f"override '{text}': empty key")

    try:
        value = load_yaml(raw, f"override '{key}'") if raw.strip() else ""
    except YamlLimitError as exc:
        if "not valid YAML" not in str(exc):
            raise RecipeError(str(exc)) from None
        value = raw
    # YAML 1.1 reads "1e-4" as a string; accept scientific notation as a number.
    if isinstance(value, str):
        try:
            value = float(value) if any(c in value for c in "eE.") else value
        except ValueError:
            pass
    return key.split("."), value


def _apply_override(data: dict, keys: list[str], value: Any, text: str) -> None:
    node: Any = data
    for i, k in enumerate(keys[:-1]):
        if isinstance(node, list):
            if not k.isdigit() or int(k) >= len(node):
                raise RecipeError(f"override '{text}': '{'.'.join(keys[: i + 1])}' is not a valid list index")
            node = node[int(k)]
        elif isinstance(node, dict):
            if k not in node:
                node[k] = {}
            node = node[k]
        else:
            raise RecipeError(f"override '{text}': '{'.'.join(keys[:i])}' is not a mapping")
    last = keys[-1]
    if isinstance(node, list):
        if not last.isdigit() or int(last) >= len(node):
            raise RecipeError(f"override '{text}': '{last}' is not a valid list index")
        node[int(last)] = value
    elif isinstance(node, dict):
        node[last] = value
    else:
        raise RecipeError(f"override '{text}': '{'.'.join(keys[:-1])}' is not a mapping")


def truncate_phases(phases: list[dict], max_steps: int) -> list[dict]:
    """Keep the phases in order until ``max_steps`` optimizer steps in total."""
    out, left = [], max_steps
    for ph in phases:
        if left <= 0:
            break
        ph = dict(ph)
        ph["max_steps"] = min(int(ph["max_steps"]), left)
        left -= ph["max_steps"]
        out.append(ph)
    return out


def load_recipe(
    name_or_path: str | Path,
    preset: str = "tiny",
    overrides: list[str] | tuple[str, ...] = (),
    max_steps: int | None = None,
) -> ResolvedRecipe:
    """Load one preset of a recipe, apply ``key=value`` overrides and validate everything.

    ``max_steps`` caps the total number of optimizer steps (phases are kept in order and cut).
    Warmup is capped to the new total so a short smoke run stays valid.
    """
    path = recipe_path(name_or_path)
    recipe = load_recipe_file(path)  # the whole file must be valid, not just the chosen preset
    if preset not in recipe.presets:
        raise RecipeError(
            f"{path}: no preset '{preset}'; available presets: {', '.join(recipe.presets)}"
        )
    raw = read_yaml(path)["presets"][preset]
    for text in overrides:
        keys, value = parse_override(text)
        _apply_override(raw, keys, value, text)
    schedule_note = None
    if max_steps is not None:
        if max_steps < 1:
            raise RecipeError(f"--max-steps must be >= 1, got {max_steps}")
        before = [dict(p) for p in raw["training"]["phases"]]
        raw["training"]["phases"] = truncate_phases(before, max_steps)
        total, old_total = (sum(int(p["max_steps"]) for p in ps) for ps in (raw["training"]["phases"], before))
        warmup = int(raw["training"].get("warmup_steps", 0) or 0)
        # the same warmup fraction of the shorter schedule, so it still warms up and then decays
        new_warmup = min(max(1, round(warmup * total / old_total)) if warmup else 0, max(total - 1, 0))
        raw["training"]["warmup_steps"] = new_warmup
        if total != old_total:
            dropped = before[len(raw["training"]["phases"]):]
            schedule_note = (f"--max-steps {max_steps}: {total:,} optimizer steps instead of {old_total:,}"
                             + (f"; phase(s) {', '.join(str(len(before) - len(dropped) + i + 1) for i in range(len(dropped)))}"
                                f" (sequence length {', '.join(str(p.get('seq_len')) for p in dropped)}) dropped"
                                if dropped else "")
                             + f"; warmup {warmup:,} -> {new_warmup:,} steps (the same fraction)")
    where = f"{path} (preset '{preset}'" + (f", overrides {short(list(overrides), 200)}" if overrides else "") + ")"
    config = from_mapping(PresetConfig, raw, where)
    return ResolvedRecipe(
        recipe=recipe.name, preset=preset, reproduces=recipe.reproduces, config=config,
        overrides=list(overrides), schedule_note=schedule_note,
    )


def resolved_from_dict(data: dict, where: str = "recipe.yaml") -> ResolvedRecipe:
    """Rebuild a :class:`ResolvedRecipe` from :meth:`ResolvedRecipe.to_dict` (a run folder's recipe)."""
    try:
        config = to_dataclass(PresetConfig, data["config"], "config")
    except Mismatch as exc:
        raise RecipeError(exc.line(where)) from None
    except (KeyError, TypeError):
        raise RecipeError(f"{where}: not a resolved es-zoo recipe") from None
    return ResolvedRecipe(
        recipe=data.get("recipe", "?"), preset=data.get("preset", "?"),
        reproduces=data.get("reproduces"), config=config, overrides=list(data.get("overrides", [])),
        schedule_note=data.get("schedule_note") if isinstance(data.get("schedule_note"), str) else None,
    )


def copy_recipe(name: str, destination: str | Path, overwrite: bool = False) -> Path:
    """Copy a shipped recipe to ``destination`` (a file or a folder) for editing."""
    src = recipe_path(name)
    dest = Path(destination)
    if dest.is_dir():
        dest = dest / src.name
    if dest.exists() and not overwrite:
        raise RecipeError(f"{dest} already exists; pass --overwrite to replace it")
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src, dest)
    return dest
