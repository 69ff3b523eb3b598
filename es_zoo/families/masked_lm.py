"""What every masked-LM family shares (BETO's BERT, MarIA's RoBERTa): dynamic masking from the
objective section (whole words or single tokens), the MLM head run at the masked positions only
(:class:`es_zoo.modeling.SparseMLM`, told where the family's head is), held-out masked-token accuracy
against the unigram baseline, GLUES fine-tunes at the end, and a fill-mask model card."""

from __future__ import annotations

from typing import Any, ClassVar

from es_zoo.families import Family, PretrainJob


def pct(v: float) -> str:
    return f"{100 * v:.2f}%"


class MaskedLMFamily(Family):
    objective_kind = "whole_word_masking"
    finetune_suite = "glues"
    loss_label = "training loss (masked LM)"
    max_predictions = True
    head: ClassVar[str]  # the attribute of the *ForMaskedLM model that holds its MLM head
    display: ClassVar[str]  # "BERT", "RoBERTa": the card's architecture line
    citations: ClassVar[list[str]] = []

    def build_model(self, cfg: Any, tokenizer: Any) -> Any:
        raise NotImplementedError

    def tables(self, tokenizer: Any) -> tuple[Any, Any]:
        """(is_special, is_continuation) per id: what masking may pick and where words continue."""
        # lazy (as below): the family registry loads without torch
        from es_zoo.tokenization import word_start_table, wordpiece_tables

        is_special, _ = wordpiece_tables(tokenizer)
        return is_special, ~word_start_table(tokenizer) & ~is_special

    def job(self, cfg: Any, run_dir: Any, tokenizer: Any, streams: dict, accelerator: Any) -> PretrainJob:
        import torch

        from es_zoo.evaluation import evaluate_mlm
        from es_zoo.modeling import SparseMLM
        from es_zoo.batching import BatchMaker, MLMData

        is_special, is_continuation = self.tables(tokenizer)
        data = MLMData(
            stream=streams["train"], is_special=is_special, is_continuation=is_continuation,
            vocab_size=len(tokenizer), mask_id=tokenizer.mask_token_id, pad_id=tokenizer.pad_token_id,
            cls_id=tokenizer.cls_token_id, sep_id=tokenizer.sep_token_id,
        )
        data.unigram_counts = streams["unigram_counts"]  # the evaluation's baseline, without reading the stream
        torch.manual_seed(cfg.training.seed)  # identical initial weights on every process and every run
        model = self.build_model(cfg, tokenizer)
        ev, obj = cfg.evaluation, cfg.objective

        def score(m: Any) -> dict:
            return evaluate_mlm(m, streams["heldout"], data, seq_len=ev.seq_len, max_sequences=ev.max_sequences,
                                batch_size=ev.batch_size, seed=ev.seed, mlm_probability=obj.mlm_probability,
                                max_predictions=obj.max_predictions, whole_word=obj.whole_word, head=self.head)

        return PretrainJob(model=model, loss=SparseMLM(model, head=self.head),
                           batches=BatchMaker(cfg, data, accelerator.process_index, accelerator.num_processes),
                           score=score)

    def architecture_text(self, cfg: Any, params: str) -> str:
        m = cfg.config.model
        return (f"{self.display} {m.num_hidden_layers} layers x {m.hidden_size} hidden x "
                f"{m.num_attention_heads} heads, {params}")

    def card_text(self, cfg: Any, results: dict) -> dict:
        c, h = cfg.config, results["heldout"]
        params = f"{results['training']['parameters']:,} parameters"
        unit = "whole-word" if c.objective.whole_word else "token-level"
        return dict(
            summary=f"A Spanish {self.display} masked language model.", pipeline="fill-mask", tags=["masked-lm"],
            model_class="AutoModelForMaskedLM",
            usage_extra=("from transformers import pipeline\n\n"
                         "fill = pipeline(\"fill-mask\", model=model, tokenizer=tokenizer)\n"
                         "print(fill(f\"Madrid es la {tokenizer.mask_token} de España.\"))"),
            architecture=self.architecture_text(cfg, params),
            objective=f"{unit} masking, {c.objective.mlm_probability:.0%} of tokens, dynamic",
            eval_intro=(f"Masked tokens chosen with {unit} masking (seed {h['seed']}) on {h['sequences']} "
                        f"held-out sequences of {h['seq_len']} tokens ({h['masked_tokens']} masked tokens) that "
                        "training never saw."),
            eval_baseline_header="unigram baseline",
            eval_rows=[("masked-token accuracy", pct(h["masked_accuracy"]), pct(h["unigram_accuracy"])),
                       ("perplexity (masked tokens)", f"{h['perplexity']:.1f}", f"{h['unigram_perplexity']:.1f}")],
            citations=list(self.citations),
        )
