"""BERT2BERT: an encoder-decoder warm-started from a BETO (Rothe et al. 2020; BETO2BETO and BETOShare in
Araujo et al. 2024), optionally adapted with BART's denoising, ``model.architecture: bert2bert``."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Optional

from es_zoo.errors import EsZooError, RunDirError
from es_zoo.families import register
from es_zoo.families.bert import BETO_BIB
from es_zoo.families.seq2seq import SEQ2SEQ_BIB, Seq2SeqFamily, denoising_data, denoising_text
from es_zoo.loading import _hub_probe, resolve
from es_zoo.reproduce import reproduce
from es_zoo.runinfo import atomic_write, replace_folder, scratch_folder

ROTHE_BIB = """@article{rothe-etal-2020-leveraging,
  title   = {Leveraging Pre-trained Checkpoints for Sequence Generation Tasks},
  author  = {Rothe, Sascha and Narayan, Shashi and Severyn, Aliaksei},
  journal = {Transactions of the Association for Computational Linguistics},
  volume  = {8},
  year    = {2020}
}"""


@dataclass
class Bert2BertModelConfig:
    """An ``EncoderDecoderModel`` warm-started from a BERT (Rothe et al., 2020) such as BETO."""

    architecture: Literal["bert2bert"] = "bert2bert"
    # Catalogue name, Hub id, local model folder, or an es-zoo run folder (its model/ is used).
    encoder: str = "beto-base-cased"
    share_weights: bool = False  # False: BETO2BETO (separate weights); True: BETOShare (tied)
    # When ``encoder`` cannot be reached (offline, no such folder), reproduce this recipe/preset first
    # and warm-start from its model; null: fail instead.
    fallback_recipe: Optional[str] = "beto"
    fallback_preset: str = "tiny"


def _echo(line: str) -> None:
    print(line, flush=True)


class Bert2Bert(Seq2SeqFamily):
    name = "bert2bert"
    model_config = Bert2BertModelConfig
    tokenizer_kind = None  # the BETO's
    objective_kind = "bart_denoising"
    loss_label = "training loss (denoising adaptation)"
    sentence_starts = True
    needs_phases = False  # a warm start alone is a model
    usage = ("# generation settings (decoder start [CLS], end [SEP]) are in generation_config.json\n"
             "inputs = tokenizer(\"La casa era blanca.\", return_tensors=\"pt\")\n"
             "print(tokenizer.decode(model.generate(**inputs, max_new_tokens=32)[0], skip_special_tokens=True))")

    def check_launch(self, cfg: Any, run_dir: Path, world: int) -> None:
        if world > 1 and not (run_dir / "encoder.json").is_file() and not resolve(cfg.model.encoder)[1]:
            raise RunDirError(
                "bert2bert with several processes needs its BETO as a local folder (model.encoder=PATH): "
                "a BETO cannot be fetched or reproduced while other processes wait"
            )

    def tokenizer_from(self, cfg: Any) -> str | None:
        where, is_local = resolve(cfg.model.encoder)
        if not is_local:
            raise EsZooError("bert2bert takes its BETO's tokenizer: point model.encoder at a local BETO folder "
                             "or run folder (es-zoo prepare bert2bert model.encoder=PATH ...)")
        return where

    def setup_run(self, cfg: Any, run_dir: Path, manifest: dict | None, data: Any) -> str | None:
        tok_dir = warm_start_tokenizer(cfg, run_dir)
        if manifest is not None:
            _check_warm_start_tokenizer(manifest, tok_dir, str(data))
        return str(tok_dir)

    def objective_data(self, cfg: Any, tokenizer: Any, streams: dict) -> Any:
        cls = tokenizer.cls_token_id  # BERT's frame; the decoder starts from [CLS]
        return denoising_data(cfg, tokenizer, streams, "bert2bert", bos=cls, eos=tokenizer.sep_token_id, start=cls)

    def run_record(self, run_dir: Any) -> dict:
        return {"encoder": json.loads((Path(run_dir) / "encoder.json").read_text())}

    def job(self, cfg: Any, run_dir: Any, tokenizer: Any, streams: dict, accelerator: Any) -> Any:
        encoder = self.run_record(run_dir)["encoder"]
        accelerator.print(f"warm-starting from {encoder['path']} ({encoder['source']})")
        return super().job(cfg, run_dir, tokenizer, streams, accelerator)

    def build_model(self, cfg: Any, tokenizer: Any, run_dir: Any) -> Any:
        from es_zoo.modeling import warm_start_bert2bert  # lazy (as below): the family registry loads without torch

        encoder = self.run_record(run_dir)["encoder"]
        return warm_start_bert2bert(encoder["path"], share_weights=cfg.model.share_weights, tokenizer=tokenizer)

    def texts(self, cfg: Any, results: dict, params: str) -> tuple[str, str, list[str]]:
        c = cfg.config
        enc = results.get("encoder", {})
        kind = "BETOShare (encoder and decoder share their weights)" if c.model.share_weights else \
            "BETO2BETO (separate encoder and decoder weights)"
        objective = ("warm start" + (f", then a denoising adaptation: {denoising_text(c.objective)}"
                                     if results["training"]["steps"] else " only (no further training)"))
        return (f"{kind}, warm-started from {enc.get('requested', c.model.encoder)}; {params}", objective,
                [SEQ2SEQ_BIB, ROTHE_BIB, BETO_BIB])


def warm_start_tokenizer(cfg: Any, run_dir: Path) -> Path:
    """Find the BETO to warm-start from (the catalogue's, a local folder or run, or a tiny BETO reproduced
    first), copy its tokenizer into ``tokenizer/`` and record the choice in ``encoder.json``; returns the
    tokenizer folder. Runs on the first process before the process group."""
    from transformers import AutoTokenizer

    m = cfg.model
    record_path = run_dir / "encoder.json"
    if not record_path.is_file():
        record = _resolve_encoder(m.encoder)
        if record is None:
            if not m.fallback_recipe:
                raise EsZooError(
                    f"the encoder '{m.encoder}' cannot be reached and the recipe has no fallback; point "
                    "model.encoder at a local BETO folder or an `es-zoo reproduce beto` run folder"
                )
            beto_dir = run_dir / "beto"
            _echo(f"BETO '{m.encoder}' is not reachable (offline or not found): reproducing a "
                  f"{m.fallback_recipe}/{m.fallback_preset} BETO first in {beto_dir}")
            resume = (beto_dir / "recipe.yaml").is_file()
            if not (beto_dir / "model" / "config.json").is_file():
                # only the pretrained encoder is needed: the fallback's GLUES fine-tunes are skipped
                reproduce(m.fallback_recipe, preset=m.fallback_preset, output_dir=beto_dir, resume=resume,
                          overrides=["glues.runs=[]"],
                          command=f"(bert2bert fallback) es-zoo reproduce {m.fallback_recipe} --preset "
                                  f"{m.fallback_preset} glues.runs=[]")
            record = {"requested": m.encoder, "path": str(beto_dir / "model"),
                      "source": f"reproduced here: es-zoo reproduce {m.fallback_recipe} --preset {m.fallback_preset}"}
        from es_zoo.modeling import check_is_bert

        check_is_bert(record["path"])
        tok = AutoTokenizer.from_pretrained(record["path"])
        tmp = scratch_folder(run_dir / ".tmp-tokenizer")
        tok.save_pretrained(tmp)
        replace_folder(tmp, run_dir / "tokenizer", complete=True)
        atomic_write(record_path, json.dumps(record, indent=2))
    return run_dir / "tokenizer"


def _resolve_encoder(name: str) -> dict | None:
    """Where the BETO ``name`` lives locally, or None if it cannot be reached (the fallback applies)."""
    where, is_local = resolve(name)  # local folder, es-zoo run folder, catalogue name or Hub id
    if is_local:
        return {"requested": name, "path": where, "source": f"local folder {where}"}
    problem = _hub_probe(where, None)
    try:
        if problem is not None:
            raise problem
        from huggingface_hub import snapshot_download

        # Offline (HF_HUB_OFFLINE=1) this serves a copy from the local cache, or fails at once.
        path = snapshot_download(where, allow_patterns=["*.json", "*.txt", "*.safetensors"])
    except Exception as exc:  # noqa: BLE001 - offline, DNS, timeout, proxy: all mean "not reachable"
        _echo(f"note: '{where}' cannot be reached ({type(exc).__name__}: {str(exc).splitlines()[0][:160]})")
        return None
    how = "from the catalogue" if where != name else "Hub id"
    return {"requested": name, "path": path, "hub_id": where, "source": f"the Hub, {where} ({how})"}


def _check_warm_start_tokenizer(manifest: dict, tok_dir: Path, where: str) -> None:
    """bert2bert with --data: the folder must have been prepared with this BETO's tokenizer."""
    from es_zoo.prepare import _tokenizer_hash

    prepared = (manifest["fingerprint_of"].get("tokenizer") or {}).get("sha256")
    if prepared != _tokenizer_hash(str(tok_dir)):
        raise RunDirError(
            f"--data {where} was tokenized with another tokenizer than the BETO this bert2bert warm-starts "
            f"from ({tok_dir}); prepare with `es-zoo prepare bert2bert model.encoder=... --output NEW_DIR`"
        )


register(Bert2Bert())
