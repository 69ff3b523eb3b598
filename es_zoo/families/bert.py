"""BETO's family: BERT with whole-word masking (Cañete et al. 2020), ``model.architecture: bert``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from es_zoo.families import register
from es_zoo.families.masked_lm import MaskedLMFamily
from es_zoo.recipes import check_model_sizes

BETO_BIB = """@inproceedings{CaneteCFP2020,
  title     = {Spanish Pre-Trained BERT Model and Evaluation Data},
  author    = {Ca{\\~n}ete, Jos{\\'e} and Chaperon, Gabriel and Fuentes, Rodrigo and Ho, Jou-Hui and Kang, Hojin and P{\\'e}rez, Jorge},
  booktitle = {PML4DC at ICLR 2020},
  year      = {2020}
}"""


@dataclass
class BertModelConfig:
    """BERT encoder numbers (names as in transformers' BertConfig)."""

    architecture: Literal["bert"] = "bert"
    hidden_size: int = 768
    num_hidden_layers: int = 12
    num_attention_heads: int = 12
    intermediate_size: int = 3072
    max_position_embeddings: int = 512
    type_vocab_size: int = 2
    hidden_act: Literal["gelu", "relu", "gelu_new"] = "gelu"
    hidden_dropout_prob: float = 0.1
    attention_probs_dropout_prob: float = 0.1
    initializer_range: float = 0.02
    layer_norm_eps: float = 1e-12
    # Attention kernel, passed to transformers (``attn_implementation``): sdpa (PyTorch's fused
    # scaled-dot-product attention, transformers 5's default for this model), eager (the reference
    # matmul + softmax), flex_attention (torch>=2.5) or flash_attention_2 (needs the flash-attn package
    # and a CUDA GPU). Not saved in config.json: a published model loads with transformers' default.
    attn_implementation: Literal["sdpa", "eager", "flex_attention", "flash_attention_2"] = "sdpa"

    def __post_init__(self) -> None:
        check_model_sizes(self)
        if self.hidden_size % self.num_attention_heads:
            raise ValueError(
                f"hidden_size ({self.hidden_size}) must be divisible by num_attention_heads "
                f"({self.num_attention_heads})"
            )
        for name in ("hidden_dropout_prob", "attention_probs_dropout_prob"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ValueError(f"{name} must be in [0, 1)")


class Bert(MaskedLMFamily):
    name = "bert"
    model_config = BertModelConfig
    tokenizer_kind = "wordpiece"
    head = "cls"  # BertForMaskedLM.cls
    display = "BERT"
    citations = [BETO_BIB]
    fsdp_layers = ("BertLayer",)

    def tables(self, tokenizer: Any) -> tuple[Any, Any]:
        from es_zoo.tokenization import wordpiece_tables  # lazy (as below): the family registry loads without torch

        return wordpiece_tables(tokenizer)  # BETO's [unused*] placeholders and ## pieces

    def build_model(self, cfg: Any, tokenizer: Any) -> Any:
        from es_zoo.modeling import build_bert_mlm

        return build_bert_mlm(cfg.model, vocab_size=len(tokenizer), pad_token_id=tokenizer.pad_token_id)


register(Bert())
