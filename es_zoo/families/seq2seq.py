"""What every encoder-decoder family shares (BARTO's BART, T5S's T5, the warm-started BERT2BERT): the
objective's token tables, the loss on every target token (:class:`es_zoo.modeling.Seq2SeqLoss`), held-out
scores beside the untrained model's (step 0), generation samples, seq2seq fine-tunes at the end, and a
text2text model card."""

from __future__ import annotations

from typing import Any

from es_zoo.families import Family, PretrainJob
from es_zoo.families.masked_lm import pct

SEQ2SEQ_BIB = """@inproceedings{araujo-etal-2024-sequence,
  title     = {Sequence-to-Sequence {S}panish Pre-trained Language Models},
  author    = {Araujo, Vladimir and Trusca, Maria Mihaela and Tufi{\\~n}o, Rodrigo and Moens, Marie-Francine},
  booktitle = {Proceedings of LREC-COLING 2024},
  year      = {2024}
}"""


class Seq2SeqFamily(Family):
    finetune_suite = "seq2seq"
    # The card's usage line after loading the model.
    usage = ("inputs = tokenizer(\"El <mask> de la casa era blanco.\", return_tensors=\"pt\")\n"
             "print(tokenizer.decode(model.generate(**inputs, max_new_tokens=32)[0], skip_special_tokens=True))")
    corrupted = "noised (infilled and permuted)"  # how the card says the held-out inputs were corrupted

    def objective_data(self, cfg: Any, tokenizer: Any, streams: dict) -> Any:
        """The objective's ids and tables for this tokenizer (:class:`es_zoo.seq2seq_batches.Seq2SeqData`)."""
        raise NotImplementedError

    def build_model(self, cfg: Any, tokenizer: Any, run_dir: Any) -> Any:
        raise NotImplementedError

    def run_record(self, run_dir: Any) -> dict:
        """What results.json records about the run's starting point (bert2bert: its encoder)."""
        return {}

    def job(self, cfg: Any, run_dir: Any, tokenizer: Any, streams: dict, accelerator: Any) -> PretrainJob:
        import torch

        # lazy (as below): the family registry loads without torch
        from es_zoo.evaluation import evaluate_seq2seq, generation_samples
        from es_zoo.modeling import Seq2SeqLoss
        from es_zoo.seq2seq_batches import Seq2SeqBatchMaker

        data = self.objective_data(cfg, tokenizer, streams)
        data.unigram_counts = streams["unigram_counts"]  # the evaluation's baseline, without reading the stream
        torch.manual_seed(cfg.training.seed)  # identical initial weights on every process and every run
        model = self.build_model(cfg, tokenizer, run_dir)
        ev = cfg.evaluation

        def score(m: Any) -> dict:
            return evaluate_seq2seq(
                m, data, cfg.objective, streams["heldout"], streams.get("heldout_starts"), seq_len=ev.seq_len,
                max_sequences=ev.max_sequences, batch_size=ev.batch_size, seed=ev.seed,
            )

        def extra(m: Any) -> dict:
            return {"samples": generation_samples(m, tokenizer, data, cfg.objective, streams["heldout"],
                                                  streams.get("heldout_starts"), seq_len=ev.seq_len, seed=ev.seed),
                    **self.run_record(run_dir)}

        return PretrainJob(model=model, loss=Seq2SeqLoss(model),
                           batches=Seq2SeqBatchMaker(cfg, data, accelerator.process_index, accelerator.num_processes),
                           score=score, score_before_training=True, extra=extra)

    def texts(self, cfg: Any, results: dict, params: str) -> tuple[str, str, list[str]]:
        """(architecture, objective, citations) lines of the card."""
        raise NotImplementedError

    def card_text(self, cfg: Any, results: dict) -> dict:
        h = results["heldout"]
        h0 = results.get("heldout_step0", {})
        rows = [("loss (nats per target token)", f"{h['loss']:.3f}", f"{h0['loss']:.3f}" if h0 else "-"),
                ("target-token accuracy (teacher forcing)", pct(h["accuracy"]), pct(h0["accuracy"]) if h0 else "-")]
        if "span_accuracy" in h:
            rows.append(("span accuracy (whole noise spans right)", pct(h["span_accuracy"]),
                         pct(h0["span_accuracy"]) if h0 else "-"))
        rows.append(("unigram baseline accuracy (same targets)", pct(h["unigram_accuracy"]), ""))
        if "span_token_accuracy" in h:
            rows.append(("accuracy on the tokens inside spans (sentinels and </s> excluded)",
                         pct(h["span_token_accuracy"]),
                         pct(h0["span_token_accuracy"]) if "span_token_accuracy" in h0 else "-"))
            rows.append(("unigram baseline on the same span tokens", pct(h["span_token_unigram_accuracy"]), ""))
        architecture, objective, cites = self.texts(cfg, results, f"{results['training']['parameters']:,} parameters")
        return dict(
            summary="A Spanish encoder-decoder (sequence-to-sequence) model, pretrained only: fine-tune it for a task.",
            pipeline="text2text-generation", tags=["seq2seq", self.name],
            model_class="AutoModelForSeq2SeqLM", usage_extra=self.usage,
            architecture=architecture, objective=objective,
            eval_intro=(f"{h['sequences']} held-out blocks (input length {h['seq_len']}) that training never saw, "
                        f"{self.corrupted} once with seed {h['seed']} and scored with teacher forcing on "
                        f"{h['target_tokens']:,} target tokens; the same inputs scored by the model before training "
                        "(step 0) for comparison."),
            eval_baseline_header="step 0 (before training)",
            eval_rows=rows, citations=cites,
        )


def denoising_text(o: Any) -> str:
    """The card's line for BART's text infilling + sentence permutation with these settings."""
    return (f"BART text infilling: {o.mask_ratio:.0%} of the words in Poisson({o.poisson_lambda:g}) spans, "
            f"each span one <mask> ({o.random_ratio:.0%} random token), sentence permutation "
            f"{o.permute_sentence_ratio:.0%}; the decoder reconstructs the original text")


def denoising_data(cfg: Any, tokenizer: Any, streams: dict, family: str, bos: int, eos: int, start: int) -> Any:
    """Seq2SeqData for BART's denoising with this frame (``bos`` ... ``eos``, decoder start ``start``)."""
    from es_zoo.seq2seq_batches import Seq2SeqData
    from es_zoo.tokenization import mask_token_id, ordinary_token_ids, word_start_table

    return Seq2SeqData(
        family=family, stream=streams["train"], sentence_starts=streams["train_starts"],
        pad_id=tokenizer.pad_token_id, eos_id=eos, bos_id=bos, decoder_start_id=start,
        word_start=word_start_table(tokenizer), random_ids=ordinary_token_ids(tokenizer),
        mask_id=mask_token_id(tokenizer),
    )
