"""The seq2seq suite: task definitions, strict readers, generation helpers, fine-tuning on the shared loop,
scores, the evaluate/score CLI and the fine-tunes that end `es-zoo reproduce` for the encoder-decoders.

Models are micro BART and T5 runs made by `es-zoo reproduce` in this module (seconds on a CPU)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from es_zoo.generation import GenerationError, encode, generate
from es_zoo.tasks.data import load_task_data
from es_zoo.tasks.definitions import TaskError, load_task
from es_zoo.tasks.finetune import finetune
from es_zoo.tasks.readers import FormatError, read_jsonl, read_miam, read_parallel
from es_zoo.tasks.suite import SEQ2SEQ_TASKS

FIX = Path(__file__).parent / "fixtures" / "seq2seq"
NO_FINETUNES = ["seq2seq.runs=[]"]
FAST = {"epochs": 1, "batch_size": 8, "learning_rate": 1e-3, "max_length": 128, "max_target_length": 64,
        "num_beams": 1, "max_new_tokens": 8, "eval_batch_size": 16}


@pytest.fixture
def micro(micro_seq2seq: dict[str, Path]) -> dict[str, Path]:
    """The session's micro T5S and BARTO runs (tests/conftest.py), read only."""
    return micro_seq2seq


# ------------------------------------------------------------------------------------ definitions
def test_every_seq2seq_task_is_defined_with_an_explicit_input_and_prefix() -> None:
    for name in SEQ2SEQ_TASKS:
        task = load_task(name)
        assert task.suite == "seq2seq" and task.head == "seq2seq"
        spec = task.input
        assert spec is not None and spec.template and spec.target
        # the paper used no prefix, T5 included: it is written out, not implied
        assert spec.prefix == {"bart": "", "t5": "", "bert2bert": ""}, name
        assert task.hparams.num_beams >= 1 and task.hparams.max_new_tokens >= 1
    assert load_task("dialogue").hparams.truncation_side == "left"
    assert load_task("summarization").hparams.truncate_source  # explicit in the definition


def test_a_text_to_text_classifier_needs_one_word_per_label(tmp_path: Path) -> None:
    text = (Path(load_task("xnli_t2t").path).read_text()
            .replace("contradiction: contradiction}", "}"))
    p = tmp_path / "bad.yaml"
    p.write_text(text)
    with pytest.raises(TaskError, match="verbalizer"):
        load_task(p)


def test_hyperparameters_from_the_command_line_are_typed() -> None:
    hp = load_task("translation").hparams.replace(learning_rate="2e-3", truncate_source="true", num_beams="2")
    assert hp.learning_rate == 2e-3 and hp.truncate_source is True and hp.num_beams == 2
    with pytest.raises(TaskError, match="expected a number"):
        hp.replace(learning_rate="fast")
    with pytest.raises(TaskError, match="truncation_side"):
        hp.replace(truncation_side="middle")


# ---------------------------------------------------------------------------------------- readers
def test_jsonl_reader_names_the_file_line_and_field(tmp_path: Path) -> None:
    rows = read_jsonl(FIX / "es_train.jsonl", {"text": "text", "summary": "summary"})
    assert len(rows) == 16 and rows[0]["id"] == "mlsum-0" and "ayuntamiento" in rows[0]["text"]
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "Hola.", "summary": "Hola"}\n{"text": "Adiós.", "resumen": "x"}\n')
    with pytest.raises(FormatError, match=r"bad.jsonl:2: no field 'summary'"):
        read_jsonl(bad, {"text": "text", "summary": "summary"})
    bad.write_text('{"text": "Hola.", "summary": "  "}\n')
    with pytest.raises(FormatError, match=r"bad.jsonl:1: field 'summary' .* is empty"):
        read_jsonl(bad, {"text": "text", "summary": "summary"})
    bad.write_text('{"text": "Hola."\n')
    with pytest.raises(FormatError, match=r"bad.jsonl:1: not JSON"):
        read_jsonl(bad, {"text": "text"})


def test_parallel_reader_refuses_misaligned_or_empty_lines(tmp_path: Path) -> None:
    rows = read_parallel(FIX / "train.es", FIX / "train.en")
    assert len(rows) == 40 and rows[0]["source"].startswith("En ") and rows[0]["target"].startswith("In ")
    (tmp_path / "a.es").write_text("Uno.\nDos.\nTres.\n")
    (tmp_path / "a.en").write_text("One.\nTwo.\n")
    with pytest.raises(FormatError, match=r"a.en: 2 lines, but its source side .* has 3"):
        read_parallel(tmp_path / "a.es", tmp_path / "a.en")
    (tmp_path / "a.en").write_text("One.\n\nThree.\n")
    with pytest.raises(FormatError, match=r"a.en:2: an empty target line"):
        read_parallel(tmp_path / "a.es", tmp_path / "a.en")


def test_miam_rows_become_next_turn_examples_with_merged_speakers(tmp_path: Path) -> None:
    rows = read_miam(FIX / "dihana_train.csv")
    first = [r for r in rows if r["id"].startswith("train0:")]
    # M, M (merged), U, M, U -> 4 turns -> 3 examples
    assert [len(r["history"]) for r in first] == [1, 2, 3]
    assert first[0]["history"][0] == "Bienvenido al servicio de información de trenes. ¿En qué puedo ayudarle?"
    assert first[0]["response"].startswith("Quería saber el horario")
    bad = tmp_path / "dev.csv"
    bad.write_text("Speaker,Text,Dialogue_ID\nU,Hola,1\n")
    with pytest.raises(FormatError, match=r"dev.csv:1: expected a CSV header with Speaker, Utterance, Dialogue_ID"):
        read_miam(bad)


def test_a_parallel_split_needs_pairs_and_a_hub_id_offline_fails_fast(tmp_path: Path) -> None:
    task = load_task("translation")
    with pytest.raises(TaskError, match="pairs"):
        load_task_data(task, "shipped", files={"train": [str(FIX / "train.es")]})
    with pytest.raises(TaskError, match="hf download"):
        load_task_data(task, "shipped", data_dir="no-such-org/no-such-dataset")


def test_generative_qa_uses_every_nonempty_answer_as_a_reference(tmp_path: Path) -> None:
    squad = {"data": [{"title": "t", "paragraphs": [{"context": "Ana vive en Sevilla desde 2010.", "qas": [
        {"id": "q1", "question": "¿Dónde vive Ana?", "answers": [{"text": "Sevilla", "answer_start": 12},
                                                               {"text": "", "answer_start": -1},
                                                               {"text": "en Sevilla", "answer_start": 9}]}]}]}]}
    p = tmp_path / "qa.json"
    p.write_text(json.dumps(squad, ensure_ascii=False))
    data = load_task_data(load_task("generative_qa"), "shipped", files={"train": [str(p)]})
    assert data.dataset["train"][0]["answers"] == ["Sevilla", "en Sevilla"]
    assert any("1 empty answer strings" in n for n in data.notes)


# ------------------------------------------------------------------------------------- generation
def test_truncation_is_an_error_unless_asked_for_and_then_counted(micro: dict[str, Path]) -> None:
    from es_zoo.loading import load_tokenizer

    tok = load_tokenizer(micro["barto"])
    texts = ["corto.", "una frase bastante más larga que la anterior, con muchas palabras más."]
    with pytest.raises(GenerationError, match=r"source 1 \(b\) is \d+ tokens, longer than the limit of 8"):
        encode(tok, texts, 8, truncate=False, what="source", ids=["a", "b"])
    right = encode(tok, texts, 8, truncate=True)
    left = encode(tok, texts, 8, truncate=True, side="left")
    full = encode(tok, texts).ids[1]
    assert right.truncated == left.truncated == 1
    assert right.ids[1] == full[:7] + full[-1:]  # start, the first words, </s>
    assert left.ids[1] == full[:1] + full[-7:]  # <s>, the last words and </s>
    with pytest.raises(GenerationError, match="input 0 is empty"):
        encode(tok, ["  "])


@pytest.mark.parametrize("name", ["t5s", "barto"])
def test_batched_sorted_generation_equals_one_at_a_time(micro: dict[str, Path], name: str) -> None:
    from es_zoo.generation import load_generator

    model, tok = load_generator(micro[name])
    texts = (FIX / "test.es").read_text().splitlines()[:4] + ["Hola.", "¿Qué hora es en Granada ahora?"]
    for beams in (1, 3):
        batched = generate(model, tok, texts, batch_size=4, num_beams=beams, max_new_tokens=6)
        single = [generate(model, tok, [t], batch_size=1, num_beams=beams, max_new_tokens=6)[0] for t in texts]
        assert batched == single


def test_a_model_without_a_decoder_start_token_is_refused(micro: dict[str, Path]) -> None:
    from es_zoo.generation import load_generator

    model, tok = load_generator(micro["t5s"])
    model.config.decoder_start_token_id = None
    model.generation_config.decoder_start_token_id = None
    with pytest.raises(GenerationError, match="no decoder_start_token_id"):
        generate(model, tok, ["Hola."])


# ------------------------------------------------------------------------------------- fine-tuning
def test_translation_finetune_scores_every_test_set_and_saves_a_hub_ready_model(micro: dict[str, Path],
                                                                                tmp_path: Path) -> None:
    import torch
    from huggingface_hub import ModelCard
    from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

    files = {"train": [str(FIX / "train.es"), str(FIX / "train.en")],
             "test": [str(FIX / "test.es"), str(FIX / "test.en")],
             "test_more": [str(FIX / "train.es"), str(FIX / "train.en")]}
    out = tmp_path / "mt"
    r = finetune(str(micro["t5s"]), "translation", out, source="wmt13-es-en", files=files,
                 hparams={**FAST, "epochs": 2, "label_smoothing": 0.1})
    assert r["split"] == "test" and set(r["splits"]) == {"test", "test_more"}
    m = r["metrics"]
    assert 0 <= m["bleu"] <= 100 and 0 <= m["chrf"] <= 100
    assert m["bleu_signature"].startswith("nrefs:1|case:mixed|eff:no|tok:13a")
    assert r["splits"]["test"]["truncated_sources"] == 0 and r["family"] == "t5"
    preds = [json.loads(x) for x in (out / "predictions" / "test.jsonl").read_text().splitlines()]
    assert len(preds) == 8 and all(isinstance(p["prediction"], str) for p in preds)
    model = AutoModelForSeq2SeqLM.from_pretrained(out / "model")
    assert model.generation_config.num_beams == 1 and model.generation_config.max_new_tokens == 8
    tok = AutoTokenizer.from_pretrained(out / "model")
    ids = tok(["En Madrid, el tren abre a las ocho."], return_tensors="pt")
    with torch.no_grad():
        assert model.generate(**ids).shape[0] == 1
    card = ModelCard.load(out / "model" / "README.md")
    assert card.data.pipeline_tag == "translation" and "seq2seq" in card.data.tags
    names = {(res.metric_type, res.dataset_split) for res in card.data.eval_results}
    # the Hub's metric ids (sacreBLEU's is "sacrebleu"), for every scored split
    assert {("sacrebleu", "test"), ("chrf", "test"), ("sacrebleu", "test_more"), ("chrf", "test_more")} <= names
    # the same predictions, scored again from the file
    from es_zoo.tasks.scoring import score_file

    again = score_file("translation", out / "predictions" / "test.jsonl", source="wmt13-es-en",
                       files={"test": files["test"]})
    assert again["bleu"] == pytest.approx(m["bleu"]) and again["chrf"] == pytest.approx(m["chrf"])


def test_generative_qa_with_bart_reports_both_rouge_variants_and_counts_cut_contexts(micro: dict[str, Path],
                                                                                     tmp_path: Path) -> None:
    task = load_task("generative_qa")
    data = load_task_data(task, "shipped")
    data.dataset["train"] = data.dataset["train"].select(range(24))
    data.dataset["test"] = data.dataset["test"].select(range(8))
    r = finetune(str(micro["barto"]), task, tmp_path / "qa", data=data, hparams=FAST, save_model=False)
    m = r["metrics"]
    assert {"rouge1", "rouge2", "rougeL", "paper_rouge1", "paper_rougeL", "f1", "exact_match"} <= set(m)
    assert r["splits"]["test"]["truncated_sources"] > 0  # SQuAD-es contexts exceed 128 micro-BART positions
    assert r["family"] == "bart"
    # the micro BART reads 128 positions: a task that truncates anyway is cut there, and says so ...
    cut = finetune(str(micro["barto"]), task, tmp_path / "qa2", data=data, hparams={**FAST, "max_length": 512},
                   save_model=False)
    assert cut["splits"]["test"]["source_limit"] == 128 == cut["hyperparameters"]["max_length"]
    # ... one that does not truncate refuses the longer limit
    files = {"train": [str(FIX / "train.es"), str(FIX / "train.en")], "test": [str(FIX / "test.es"), str(FIX / "test.en")]}
    with pytest.raises(TaskError, match="longer than .* can read \\(128 positions\\)"):
        finetune(str(micro["barto"]), "translation", tmp_path / "mt", files=files, hparams={**FAST, "max_length": 512})


def test_an_interrupted_seq2seq_finetune_resumes_to_the_same_predictions(micro: dict[str, Path],
                                                                         tmp_path: Path) -> None:
    files = {"train": [str(FIX / "train.es"), str(FIX / "train.en")],
             "test": [str(FIX / "test.es"), str(FIX / "test.en")]}
    hp = {**FAST, "epochs": 2}
    whole = finetune(str(micro["t5s"]), "translation", tmp_path / "a", files=files, hparams=hp, save_model=False)
    from es_zoo.training import stop_after

    with stop_after(3):
        first = finetune(str(micro["t5s"]), "translation", tmp_path / "b", files=files, hparams=hp, save_model=False)
    assert first["stopped_early"]
    resumed = finetune(str(micro["t5s"]), "translation", tmp_path / "b", files=files, hparams=hp,
                       save_model=False, resume=True)
    read = lambda d: (d / "predictions" / "test.jsonl").read_text()  # noqa: E731
    assert read(tmp_path / "a") == read(tmp_path / "b")
    assert resumed["metrics"]["bleu"] == whole["metrics"]["bleu"]


def test_text_to_text_accuracy_counts_outputs_that_are_no_label() -> None:
    from es_zoo.tasks.seq2seq import Texts, score

    task = load_task("xnli_t2t")
    texts = Texts(["1", "2", "3", "4"], ["a", "b", "c", "d"], [], [["entailment"], ["neutral"], ["contradiction"],
                                                                   ["neutral"]])
    s = score(task, task.metric, ["entailment", "Neutral ", "quizá", "contradiction"], texts)
    assert s["accuracy"] == 50.0 and s["invalid"] == 1 and s["total"] == 4


def test_dialogue_scores_f1_and_says_why_meteor_is_missing() -> None:
    from es_zoo.tasks.seq2seq import Texts, paper_unigram_f1, score

    task = load_task("dialogue")
    texts = Texts(["1", "2"], ["x", "y"], [], [["Hay un tren a las ocho."], ["Gracias, adiós."]])
    s = score(task, task.metric, ["Hay un tren a las diez.", "Adiós."], texts)
    assert 0 < s["f1"] < 100 and "paper_f1" in s and "bleu" in s
    if s["meteor"] is None:
        assert "nltk" in s["meteor_unavailable"]
    # the paper's unigram F1: membership, whitespace tokens
    assert paper_unigram_f1(["a b b c"], ["b c d"]) == pytest.approx(100 * 2 * 0.75 * (2 / 3) / (0.75 + 2 / 3))


# -------------------------------------------------------------------------------------------- CLI
def _data_dir(root: Path) -> Path:
    d = root / "data"
    (d / "mlsum").mkdir(parents=True)
    shutil.copy(FIX / "es_train.jsonl", d / "mlsum" / "es_train.jsonl")
    shutil.copy(FIX / "es_test.jsonl", d / "mlsum" / "es_test.jsonl")
    (d / "BiSECT" / "es").mkdir(parents=True)
    shutil.copy(FIX / "bisect_train.jsonl", d / "BiSECT" / "es" / "train.jsonl")
    shutil.copy(FIX / "bisect_test.jsonl", d / "BiSECT" / "es" / "test.jsonl")
    (d / "dihana").mkdir()
    shutil.copy(FIX / "dihana_train.csv", d / "dihana" / "train.csv")
    shutil.copy(FIX / "dihana_test.csv", d / "dihana" / "test.csv")
    return d


def test_evaluate_seq2seq_suite_runs_every_dataset_found_and_lists_the_rest(micro: dict[str, Path],
                                                                           tmp_path: Path) -> None:
    from click.testing import CliRunner

    from es_zoo.cli import cli

    out = tmp_path / "eval"
    args = ["evaluate", str(micro["t5s"]), "--suite", "seq2seq", "--tasks", "summarization,split_rephrase,dialogue",
            "--data-dir", str(_data_dir(tmp_path)), "--output-dir", str(out), "--epochs", "1", "--batch-size", "8",
            "--learning-rate", "1e-3", "--max-length", "128", "--set", "num_beams=2", "--set", "max_new_tokens=8",
            "--set", "min_new_tokens=0", "--set", "max_target_length=64"]
    res = CliRunner().invoke(cli, args, catch_exceptions=False)
    assert res.exit_code == 0, res.output
    results = json.loads((out / "results.json").read_text())
    assert set(results["tasks"]) == {"summarization/mlsum", "split_rephrase/bisect", "dialogue/miam"}
    assert results["suite"] == "seq2seq"
    assert {"summarization/xlsum", "summarization/wikilingua", "split_rephrase/bisect-parallel"} <= set(results["skipped"])
    s = results["tasks"]["split_rephrase/bisect"]["metrics"]
    assert {"sari", "sari_add", "sari_keep", "sari_delete", "bleu", "exact_match"} <= set(s)
    summ = results["tasks"]["summarization/mlsum"]
    assert summ["metric"]["main"] == "rougeL" and "paper_rougeL" in summ["metrics"]
    assert summ["hyperparameters"]["num_beams"] == 2
    assert "summarization/mlsum" in res.output and "rougeL" in res.output


def test_reproduce_t5s_ends_with_seq2seq_finetunes(published_runs: dict[str, Path]) -> None:
    # The session's micro T5S run ends with the tiny recipe's two fine-tunes (translation, generative QA) with
    # micro settings (tests/conftest.py T5_RUNS): the README test of `es-zoo reproduce t5s` skips them to keep
    # CI short.
    run = published_runs["t5s"]
    results = json.loads((run / "results.json").read_text())
    assert set(results["seq2seq"]) == {"translation", "generative_qa"}
    qa = results["seq2seq"]["generative_qa"]
    assert qa["examples"] == 301 and "paper_rougeL" in qa["metrics"] and "f1" in qa["metrics"]
    assert (run / "seq2seq" / "generative_qa" / "predictions" / "test.jsonl").is_file()
    t = results["seq2seq"]["translation"]
    assert t["source"] == "shipped" and t["split"] == "test" and t["examples"] == 200
    assert t["other_splits"]["test_tatoeba"]["examples"] == 300
    assert (run / "seq2seq" / "translation" / "model" / "model.safetensors").is_file()
    card = (run / "model" / "README.md").read_text()
    assert "Seq2seq fine-tunes (measured by this run)" in card and "test_tatoeba" in card
    # the run's summary carries each fine-tune's own score
    own = json.loads((run / "seq2seq" / "translation" / "results.json").read_text())
    assert own["main"] == t["main"] and own["split"] == "test"


def test_seq2seq_runs_are_validated_with_the_recipe() -> None:
    from es_zoo.errors import RecipeError
    from es_zoo.recipes import load_recipe

    with pytest.raises(RecipeError, match="seq2seq.runs\\[0\\].task 'pos' is a glues task"):
        load_recipe("t5s", "tiny", overrides=["seq2seq.runs=[{task: pos}]"])
    with pytest.raises(RecipeError, match="encoder-decoder"):
        load_recipe("beto", "tiny", overrides=["seq2seq.runs=[{task: translation}]"])
    with pytest.raises(RecipeError, match=r"seq2seq.runs\[0\].hparams.beams: unknown key \(did you mean 'num_beams'\?\)"):
        load_recipe("barto", "tiny", overrides=["seq2seq.runs=[{task: translation, hparams: {beams: 2}}]"])


def test_rouge_and_sari_load_as_offline_evaluate_modules() -> None:
    from es_zoo.metrics import load_metric, rouge, sari

    r = load_metric("es_zoo_rouge")
    # rouge-score's default tokenizer matches the stray "n" of "canci n" / "cami n"; the Spanish one does not
    assert r.compute(predictions=["Una canción."], references=["Un camión."], variant="paper")["rouge1"] == \
        pytest.approx(33.333333, abs=1e-4)
    assert r.compute(predictions=["Una canción."], references=[["Un camión."]])["rouge1"] == \
        rouge(["Una canción."], [["Un camión."]])["rouge1"] == 0.0
    s = load_metric("es_zoo_sari")
    args = dict(sources=["About 95 species are currently accepted."], predictions=["About 95 you now get in."],
                references=[["About 95 species are currently known.", "About 95 species are now accepted.",
                             "95 species are now accepted."]])
    assert s.compute(**args)["sari"] == pytest.approx(26.953601953601954, abs=1e-12) == sari(**args)["sari"]


def test_text_to_text_classification_generates_label_words_end_to_end(micro: dict[str, Path], tmp_path: Path) -> None:
    labels = ["entailment", "neutral", "contradiction"]
    rows = ["pairID\tgold_label\tsentence1\tsentence2\tgenre"]
    for i in range(24):
        rows.append(f"p{i}\t{labels[i % 3]}\tEl tren {i} sale de Madrid.\tUn tren sale a las {i}.\tviajes")
    p = tmp_path / "xnli.tsv"
    p.write_text("\n".join(rows) + "\n")
    r = finetune(str(micro["t5s"]), "xnli_t2t", tmp_path / "t2t", files={"train": [str(p)], "test": [str(p)]},
                 hparams=FAST, save_model=False)
    m = r["metrics"]
    assert m["total"] == 24 and 0 <= m["accuracy"] <= 100 and 0 <= m["invalid"] <= 24
    preds = [json.loads(x)["prediction"] for x in (tmp_path / "t2t" / "predictions" / "test.jsonl").read_text().splitlines()]
    assert len(preds) == 24 and all(isinstance(x, str) for x in preds)
