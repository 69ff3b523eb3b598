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
from es_zoo.recipes import PresetConfig, ResolvedRecipe
from es_zoo.resources import model_cards_dir


def _flatten(obj: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(obj, dict):
        out: dict[str, Any] = {}
        for k, v in obj.items():
            out.update(_flatten(v, f"{prefix}.{k}" if prefix else str(k)))
        return out
    return {prefix: obj}


def non_default_hyperparameters(config: PresetConfig) -> list[tuple[str, Any]]:
    """Settings of ``config`` whose value differs from the schema default (phases always listed)."""
    rows = []
    for section in ("tokenizer", "model", "objective", "training"):
        obj = getattr(config, section)
        for f in dataclasses.fields(obj):
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


def write_model_card(path: str | Path, cfg: ResolvedRecipe, results: dict, repo_id: str | None = None) -> None:
    """Render ``README.md`` for an exported model folder."""
    from huggingface_hub import ModelCard, ModelCardData

    from es_zoo.reproduce import library_versions

    rec = find_model(cfg.reproduces) if cfg.reproduces else None
    c = cfg.config
    data = ModelCardData(
        language="es",
        license=None,  # the weights are the user's to license; never copied from the reproduced model
        library_name="transformers",
        pipeline_tag="fill-mask",
        tags=["es-zoo", cfg.recipe, "masked-lm", "spanish"],
        base_model=None,
    )
    phases = ", ".join(
        f"{p.max_steps} steps x {p.global_batch_size} sequences of {p.seq_len}" for p in c.training.phases
    )
    card = ModelCard.from_template(
        data,
        template_path=str(model_cards_dir() / "model_card.md"),
        model_title=f"{cfg.recipe} ({cfg.preset} preset), trained with es-zoo",
        model_summary=f"A Spanish BERT masked language model. {c.description}",
        recipe=cfg.recipe, preset=cfg.preset, reproduces=cfg.reproduces,
        reproduces_hub_id=rec.hub_id if rec else None,
        reproduces_license=rec.license if rec else None,
        repo_id_or_path=repo_id or "PATH_TO_THIS_FOLDER",
        heldout=results["heldout"], training=results["training"],
        published=[dataclasses.asdict(s) for s in rec.scores] if rec else [],
        corpus=c.corpus.source + (" (ELTeC-spa novels shipped with es-zoo)" if c.corpus.source == "embedded" else ""),
        tokenizer=f"{c.tokenizer.kind}, {results['training']['vocab_size']:,} entries, "
                  f"{'uncased' if c.tokenizer.lowercase else 'cased'}",
        architecture=f"BERT {c.model.num_hidden_layers} layers x {c.model.hidden_size} hidden x "
                     f"{c.model.num_attention_heads} heads, {results['training']['parameters']:,} parameters",
        objective=f"whole-word masking, {c.objective.mlm_probability:.0%} of tokens, dynamic",
        schedule=f"{phases}; lr {c.training.learning_rate:g}, warmup {c.training.warmup_steps}, "
                 f"{c.training.lr_schedule} decay",
        non_default=non_default_hyperparameters(c),
        versions=", ".join(f"{k} {v}" for k, v in library_versions().items()),
    )
    Path(path).write_text(str(card), encoding="utf-8")
