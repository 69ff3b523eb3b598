"""MarIA's RoBERTa (Gutiérrez-Fandiño et al. 2022, ``PlanTL-GOB-ES/roberta-base-bne``): a RoBERTa encoder
with a byte-level BPE vocabulary, dynamic token-level masking and no next-sentence prediction, trained on
full-length sequences packed across document boundaries (RoBERTa's FULL-SENTENCES: ``<s> ... </s>``,
documents separated by ``</s>``). ``model.architecture: roberta``.

Everything the family needs is here and in :mod:`es_zoo.families.masked_lm`: the tokenizer is es-zoo's
byte-level BPE (BART's and RoBERTa's pipeline and special-token layout are the same), the objective is the
masked-LM objective with ``whole_word: false``, and the GLUES fine-tunes read the model through
transformers' Auto classes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from es_zoo.families import register
from es_zoo.families.bert import BertModelConfig
from es_zoo.families.masked_lm import MaskedLMFamily

MARIA_BIB = """@article{gutierrezfandino2022maria,
  title   = {MarIA: Spanish Language Models},
  author  = {Guti{\\'e}rrez-Fandi{\\~n}o, Asier and Armengol-Estap{\\'e}, Jordi and P{\\`a}mies, Marc and Llop-Palao, Joan and Silveira-Ocampo, Joaqu{\\'i}n and Carrino, Casimiro Pio and Armentano-Oller, Carme and Rodriguez-Penagos, Carlos and Gonzalez-Agirre, Aitor and Villegas, Marta},
  journal = {Procesamiento del Lenguaje Natural},
  volume  = {68},
  pages   = {39--60},
  year    = {2022}
}"""
ROBERTA_BIB = """@article{liu2019roberta,
  title   = {{RoBERTa}: A Robustly Optimized {BERT} Pretraining Approach},
  author  = {Liu, Yinhan and Ott, Myle and Goyal, Naman and Du, Jingfei and Joshi, Mandar and Chen, Danqi and Levy, Omer and Lewis, Mike and Zettlemoyer, Luke and Stoyanov, Veselin},
  journal = {arXiv preprint arXiv:1907.11692},
  year    = {2019}
}"""

# RoBERTa numbers positions from padding_idx + 1 (2 for <pad> = 1): max_position_embeddings 514 holds
# sequences of 512 tokens.
POSITION_OFFSET = 2


@dataclass
class RobertaModelConfig(BertModelConfig):
    """RoBERTa encoder numbers (names as in transformers' RobertaConfig): BERT's fields, with RoBERTa's
    defaults where they differ. ``max_position_embeddings`` is transformers' (and MarIA's config.json's):
    514 for sequences of up to 512 tokens."""

    architecture: Literal["roberta"] = "roberta"  # type: ignore[assignment]
    max_position_embeddings: int = 514
    type_vocab_size: int = 1
    layer_norm_eps: float = 1e-5

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.max_position_embeddings <= POSITION_OFFSET:
            raise ValueError(f"max_position_embeddings must exceed {POSITION_OFFSET} (RoBERTa's position offset)")


class Roberta(MaskedLMFamily):
    name = "roberta"
    model_config = RobertaModelConfig
    tokenizer_kind = "byte_level_bpe"
    head = "lm_head"  # RobertaForMaskedLM.lm_head
    display = "RoBERTa"
    citations = [MARIA_BIB, ROBERTA_BIB]
    fsdp_layers = ("RobertaLayer",)

    def check(self, preset: Any) -> None:
        longest = max([p.seq_len for p in preset.training.phases] + [preset.evaluation.seq_len])
        usable = preset.model.max_position_embeddings - POSITION_OFFSET
        if longest > usable:
            raise ValueError(f"a sequence of {longest} tokens needs model.max_position_embeddings >= "
                             f"{longest + POSITION_OFFSET} (RoBERTa's positions start at {POSITION_OFFSET})")

    def model_max_length(self, cfg: Any) -> int:
        return cfg.model.max_position_embeddings - POSITION_OFFSET

    def build_model(self, cfg: Any, tokenizer: Any) -> Any:
        from transformers import RobertaConfig, RobertaForMaskedLM

        from es_zoo.modeling import _fields  # the recipe's numbers as config keywords, as BERT's builder reads them

        config = RobertaConfig(vocab_size=len(tokenizer), pad_token_id=tokenizer.pad_token_id,
                               bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                               attn_implementation=cfg.model.attn_implementation, **_fields(cfg.model))
        config.architectures = ["RobertaForMaskedLM"]
        return RobertaForMaskedLM(config)


register(Roberta())
