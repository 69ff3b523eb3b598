"""The corpus layer: the embedded sample, every local format, cleaning, splitting and the errors."""

from __future__ import annotations

import gzip
import json
import os
import pickle
import subprocess
import sys
import time
import zlib

import pytest

from es_zoo.corpus import EMBEDDED, Corpus, CorpusStats, clean_text, open_corpus
from es_zoo.errors import CorpusError, EsZooError
from es_zoo.recipes import CorpusConfig


def docs(source, split="train", **kw) -> list[str]:
    kw.setdefault("heldout_fraction", 0.0)
    return list(open_corpus(CorpusConfig(source=str(source), **kw)).documents(split))


def write_jsonl(path, records, field="text"):
    records = [{field: r} if isinstance(r, str) else r for r in records]
    lines = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
    if str(path).endswith(".gz"):
        with gzip.open(path, "wt", encoding="utf-8") as f:
            f.write(lines)
    else:
        path.write_text(lines, encoding="utf-8")
    return path


# ------------------------------------------------------------------------------------------------
# The embedded sample
# ------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def embedded():
    corpus = open_corpus(CorpusConfig(source=EMBEDDED))
    return corpus, list(corpus.documents("train")), list(corpus.documents("heldout"))


def test_embedded_corpus_has_whole_novels_held_out(embedded):
    corpus, train, heldout = embedded
    assert "ELTeC-spa" in corpus.source_description
    assert len(train) >= 20 and 1 <= len(heldout) <= 3
    train_chars = sum(map(len, train))
    held_chars = sum(map(len, heldout))
    assert 5_000_000 < train_chars + held_chars < 10_000_000
    assert 0.04 < held_chars / (train_chars + held_chars) < 0.09
    assert corpus.stats["train"] == CorpusStats(documents=len(train), characters=train_chars)
    assert corpus.stats["heldout"].documents == len(heldout)
    # Evaluation must never see training text: not even one paragraph is shared.
    train_paragraphs = {p for d in train for p in d.split("\n") if len(p) > 80}
    held_paragraphs = {p for d in heldout for p in d.split("\n") if len(p) > 80}
    assert held_paragraphs and not held_paragraphs & train_paragraphs
    assert all(clean_text(d) == d for d in heldout)
    assert "ñ" in heldout[0] or "ó" in heldout[0]


def test_embedded_file_records_and_notice_agree(embedded):
    from es_zoo.resources import DATA_DIR

    corpus, train, heldout = embedded
    with gzip.open(DATA_DIR / "eltec-es-sample.jsonl.gz", "rt", encoding="utf-8") as f:
        records = [json.loads(line) for line in f]
    assert all(set(r) == {"id", "title", "author", "year", "split", "text"} for r in records)
    assert sorted(r["split"] for r in records).count("heldout") == len(heldout)
    notice = (DATA_DIR / "NOTICE.md").read_text(encoding="utf-8")
    assert "CC BY 4.0" in notice and "public domain" in notice
    assert all(r["id"] in notice for r in records)


def test_max_documents_caps_each_split():
    corpus = open_corpus(CorpusConfig(source=EMBEDDED, max_documents=3))
    assert len(list(corpus.documents("train"))) == 3
    assert corpus.stats["train"].documents == 3


# ------------------------------------------------------------------------------------------------
# Cleaning
# ------------------------------------------------------------------------------------------------


def test_clean_text_composes_unicode():
    decomposed = "cancio\u0301n"
    assert decomposed != "canción"
    assert clean_text(decomposed) == "canción"
    assert clean_text("pin\u0303a") == "piña"


def test_clean_text_folds_whitespace_and_keeps_single_newlines():
    text = "  Hola\t\tmundo\u00a0 feliz \r\n\r\n\r\n   Segunda\u3000línea  \rTercera\u2028cuarta  "
    assert clean_text(text) == "Hola mundo feliz\nSegunda línea\nTercera\ncuarta"


def test_clean_text_drops_control_and_invisible_characters():
    assert clean_text("\ufeffca\u00adsa\x00 de\u200b\x07 piedra\x1b") == "casa de piedra"
    assert clean_text(" \n\t\n ") == ""


# ------------------------------------------------------------------------------------------------
# Local formats
# ------------------------------------------------------------------------------------------------


def test_txt_documents_are_separated_by_blank_lines(tmp_path):
    path = tmp_path / "c.txt"
    text = "Uno, primera línea.\nUno, segunda.\n\n\n   \nDos.\n\nTres  con\tespacios.\n"
    path.write_text(text, encoding="utf-8")
    assert docs(path) == ["Uno, primera línea.\nUno, segunda.", "Dos.", "Tres con espacios."]


def test_txt_gz_and_crlf(tmp_path):
    path = tmp_path / "c.txt.gz"
    with gzip.open(path, "wb") as f:
        f.write("Uno.\r\n\r\nDos.\r\n".encode("utf-8"))
    assert docs(path) == ["Uno.", "Dos."]


@pytest.mark.parametrize("name", ["c.jsonl", "c.jsonl.gz"])
def test_jsonl_reads_the_configured_field(tmp_path, name):
    path = write_jsonl(tmp_path / name, [{"id": 1, "body": "Hola  mundo."}, {"id": 2, "body": "Adiós."}])
    with open(path, "ab") as f:  # a trailing blank line is harmless
        f.write(b"\n" if name.endswith(".jsonl") else b"")
    assert docs(path, text_field="body") == ["Hola mundo.", "Adiós."]


def test_jsonl_saved_with_a_byte_order_mark(tmp_path):
    path = tmp_path / "windows.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + '{"text": "Año nuevo."}\r\n'.encode("utf-8"))
    assert docs(path) == ["Año nuevo."]


def test_parquet_file(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"text": ["Primero.", "Segundo."], "n": [1, 2]}), tmp_path / "c.parquet")
    assert docs(tmp_path / "c.parquet") == ["Primero.", "Segundo."]


def test_save_to_disk_folder_and_its_arrow_file(tmp_path):
    import datasets

    datasets.Dataset.from_dict({"text": ["Uno.", "Dos."]}).save_to_disk(str(tmp_path / "ds"))
    assert docs(tmp_path / "ds") == ["Uno.", "Dos."]
    (arrow,) = (tmp_path / "ds").glob("*.arrow")
    assert docs(arrow) == ["Uno.", "Dos."]

    dd = datasets.DatasetDict({
        "train": datasets.Dataset.from_dict({"text": ["Entrenamiento."]}),
        "validation": datasets.Dataset.from_dict({"text": ["Validación."]}),
    })
    dd.save_to_disk(str(tmp_path / "dd"))
    assert docs(tmp_path / "dd", split="train") == ["Entrenamiento."]
    corpus = open_corpus(CorpusConfig(source=str(tmp_path / "dd"), split="validation", heldout_fraction=0.0))
    assert list(corpus.documents("train")) == ["Validación."]
    with pytest.raises(CorpusError, match=r"dd.*no split 'test'.*train, validation"):
        open_corpus(CorpusConfig(source=str(tmp_path / "dd"), split="test"))


def test_folder_reads_supported_files_in_sorted_order(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "b.txt").write_text("Be.\n", encoding="utf-8")
    write_jsonl(tmp_path / "a.jsonl", ["A."])
    write_jsonl(tmp_path / "sub" / "c.jsonl.gz", ["Ce."])
    (tmp_path / "notes.md").write_text("ignored\n")
    (tmp_path / ".hidden.txt").write_text("ignored\n")
    corpus = open_corpus(CorpusConfig(source=str(tmp_path), heldout_fraction=0.0))
    assert list(corpus.documents("train")) == ["A.", "Be.", "Ce."]
    assert "3 files" in corpus.source_description


# ------------------------------------------------------------------------------------------------
# Filtering and splitting
# ------------------------------------------------------------------------------------------------


def test_dedup_and_min_chars_are_counted(tmp_path):
    path = write_jsonl(tmp_path / "c.jsonl", [
        "Un documento largo.", "Un  documento largo.",
        "cancio\u0301n repetida", "canción repetida",
        "corto", "",
    ])
    corpus = open_corpus(CorpusConfig(source=str(path), dedup=True, min_chars=10, heldout_fraction=0.0))
    assert list(corpus.documents("train")) == ["Un documento largo.", "canción repetida"]
    assert corpus.stats["train"] == CorpusStats(documents=2, characters=35, duplicates=2, too_short=2)
    # Without dedup the repeats are kept; the counts start afresh on every pass.
    corpus = open_corpus(CorpusConfig(source=str(path), min_chars=10, heldout_fraction=0.0))
    assert len(list(corpus.documents("train"))) == 4
    assert corpus.stats["train"].duplicates == 0


def test_heldout_choice_depends_on_the_text_only(tmp_path):
    texts = [f"Documento número {i}: {'palabra ' * (i % 7)}fin." for i in range(300)]
    expected = {t for t in texts if zlib.crc32(t.encode()) / 2**32 < 0.2}
    write_jsonl(tmp_path / "a.jsonl", texts)
    write_jsonl(tmp_path / "b.jsonl", list(reversed(texts)) + ["Otro documento que no estaba."])
    held_a = docs(tmp_path / "a.jsonl", "heldout", heldout_fraction=0.2)
    train_a = docs(tmp_path / "a.jsonl", "train", heldout_fraction=0.2)
    held_b = docs(tmp_path / "b.jsonl", "heldout", heldout_fraction=0.2)
    assert set(held_a) == expected == set(held_b) - {"Otro documento que no estaba."}
    assert not set(held_a) & set(train_a) and len(held_a) + len(train_a) == 300
    assert 30 < len(held_a) < 90
    assert docs(tmp_path / "a.jsonl", "heldout", heldout_fraction=0.2) == held_a


def test_unknown_split_fails_at_the_call():
    corpus = open_corpus(CorpusConfig(source=EMBEDDED))
    with pytest.raises(CorpusError, match="unknown corpus split 'validation'; expected one of train"):
        corpus.documents("validation")


def test_corpus_pickles_for_dataloader_workers(tmp_path):
    path = write_jsonl(tmp_path / "c.jsonl", ["Uno.", "Dos."])
    corpus = pickle.loads(pickle.dumps(open_corpus(CorpusConfig(source=str(path), heldout_fraction=0.0))))
    assert list(corpus.documents("train")) == ["Uno.", "Dos."]


# ------------------------------------------------------------------------------------------------
# Errors: each names the file (and line) and what was expected
# ------------------------------------------------------------------------------------------------


def test_missing_path(tmp_path):
    with pytest.raises(CorpusError, match=r"nowhere\.jsonl.*no such file or folder"):
        Corpus(CorpusConfig(source=str(tmp_path / "nowhere.jsonl")))


def test_empty_file_and_empty_folder(tmp_path):
    (tmp_path / "empty.txt").write_text("")
    with pytest.raises(CorpusError, match=r"empty\.txt: empty file"):
        Corpus(CorpusConfig(source=str(tmp_path / "empty.txt")))
    (tmp_path / "folder").mkdir()
    (tmp_path / "folder" / "readme.md").write_text("no corpus here")
    with pytest.raises(CorpusError, match=r"folder: empty corpus folder; it holds no \.jsonl\.gz"):
        Corpus(CorpusConfig(source=str(tmp_path / "folder")))


def test_unsupported_extension(tmp_path):
    (tmp_path / "c.csv").write_text("text\nhola\n")
    with pytest.raises(CorpusError, match=r"c\.csv: unsupported file type; expected one of .*\.parquet"):
        Corpus(CorpusConfig(source=str(tmp_path / "c.csv")))


@pytest.mark.parametrize("line, problem", [
    ("{not json", "not valid JSON"),
    ('["a list"]', "got list"),
    ('{"body": "x"}', "it is missing"),
    ('{"text": 3}', "it is int"),
])
def test_malformed_jsonl_line_names_file_and_line(tmp_path, line, problem):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"text": "bien"}\n\n' + line + "\n", encoding="utf-8")
    corpus = Corpus(CorpusConfig(source=str(path), heldout_fraction=0.0))
    with pytest.raises(CorpusError) as info:
        list(corpus.documents("train"))
    message = str(info.value)
    assert f"{path}:3: expected a JSON object with a string field 'text'" in message
    assert problem in message


def test_not_utf8_names_file_and_line(tmp_path):
    path = tmp_path / "latin1.txt"
    path.write_bytes("Primera.\n\nCanción\n".encode("latin-1"))
    with pytest.raises(CorpusError, match=r"latin1\.txt:3: not UTF-8"):
        docs(path)


def test_bad_gzip_fails_at_open_and_truncated_gzip_while_reading(tmp_path):
    plain = tmp_path / "plain.jsonl.gz"
    plain.write_text('{"text": "not compressed"}\n')
    with pytest.raises(CorpusError, match=r"plain\.jsonl\.gz: not a valid gzip file"):
        Corpus(CorpusConfig(source=str(plain)))
    lines = "".join(json.dumps({"text": f"doc {i} " * 50}) + "\n" for i in range(200))
    whole = gzip.compress(lines.encode())
    cut = tmp_path / "cut.jsonl.gz"
    cut.write_bytes(whole[: len(whole) // 2])
    corpus = Corpus(CorpusConfig(source=str(cut), heldout_fraction=0.0))
    with pytest.raises(CorpusError, match=r"cut\.jsonl\.gz: not a valid gzip file"):
        list(corpus.documents("train"))


def test_unreadable_file(tmp_path, monkeypatch):
    path = tmp_path / "secret.txt"
    path.write_text("Texto.\n")
    path.chmod(0)
    if os.geteuid() == 0:  # root reads any file, so let open() refuse the way it would for a user

        def refuse(file, *args, **kwargs):
            raise PermissionError(13, "Permission denied", str(file))

        monkeypatch.setattr("es_zoo.corpus.open", refuse, raising=False)
    with pytest.raises(CorpusError, match=r"secret\.txt: cannot read: Permission denied"):
        Corpus(CorpusConfig(source=str(path)))


def test_missing_column_in_parquet(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"content": ["x"]}), tmp_path / "c.parquet")
    with pytest.raises(CorpusError, match=r"c\.parquet: no column 'text'; its columns are: content"):
        Corpus(CorpusConfig(source=str(tmp_path / "c.parquet")))


def test_a_split_with_no_documents_says_why(tmp_path):
    path = write_jsonl(tmp_path / "c.jsonl", ["a", "b"])
    corpus = Corpus(CorpusConfig(source=str(path), min_chars=5, heldout_fraction=0.0))
    why = r"c\.jsonl.*'train' split has no documents.*2 shorter than corpus\.min_chars=5"
    with pytest.raises(CorpusError, match=why):
        list(corpus.documents("train"))
    corpus = Corpus(CorpusConfig(source=str(path), heldout_fraction=0.0))
    with pytest.raises(CorpusError, match=r"none of its 2 documents was held out.*heldout_fraction"):
        list(corpus.documents("heldout"))


def test_hub_id_offline_fails_fast_with_advice(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    # datasets and huggingface_hub read these variables when first imported; if an earlier test
    # imported them, make the already-loaded copies agree so this test can never reach the network.
    if "datasets" in sys.modules:
        monkeypatch.setattr(sys.modules["datasets"].config, "HF_HUB_OFFLINE", True)
    if "huggingface_hub" in sys.modules:
        monkeypatch.setattr(sys.modules["huggingface_hub"].constants, "HF_HUB_OFFLINE", True)
    start = time.monotonic()
    with pytest.raises(CorpusError) as info:
        Corpus(CorpusConfig(source="es-zoo-tests/no-such-dataset"))
    assert time.monotonic() - start < 15
    message = str(info.value)
    assert "'es-zoo-tests/no-such-dataset'" in message and "Hub" in message
    assert "local data" in message and ".jsonl" in message
    assert isinstance(info.value, EsZooError)


def test_hub_id_is_streamed_by_default(monkeypatch):
    import datasets

    calls = []

    def fake_load_dataset(name, config_name=None, **kwargs):
        calls.append((name, config_name, kwargs))
        # A generator-backed stream declares no columns, like many streamed Hub datasets; it is also
        # far quicker to make here than Dataset.to_iterable_dataset(), which imports torch.
        return datasets.IterableDataset.from_generator(lambda: iter([{"text": "Uno."}, {"text": "Dos."}]))

    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    corpus = open_corpus(CorpusConfig(source="org/corpus", split="validation", heldout_fraction=0.0))
    assert list(corpus.documents("train")) == ["Uno.", "Dos."]
    assert calls == [("org/corpus", None, {"split": "validation", "streaming": True})]
    assert "org/corpus" in corpus.source_description
    open_corpus(CorpusConfig(source="org/corpus", streaming=False))
    assert calls[-1][2]["streaming"] is False
    open_corpus(CorpusConfig(source="wikimedia/wikipedia", config_name="20231101.es"))
    assert calls[-1][:2] == ("wikimedia/wikipedia", "20231101.es")


def test_importing_the_module_stays_light():
    heavy = ("datasets", "torch", "transformers", "pyarrow")
    code = f"import sys, es_zoo.corpus; print(sorted(m for m in {heavy!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def _by_units(corpus, chunk):
    from es_zoo.corpus import Unit

    units = corpus.units(chunk)
    assert all(isinstance(u, Unit) for u in units)
    return units, [t for u in units for t, _ in corpus.read_unit(u)]


def test_units_cut_every_format_without_losing_or_repeating_a_document(tmp_path):
    """`es-zoo prepare` splits big files into units read by different tasks: in every format, reading the
    units one after the other gives exactly the documents of the whole corpus, in order."""
    import datasets
    import pyarrow as pa
    import pyarrow.parquet as pq

    texts = [f"Documento {i}: " + "palabra " * (i % 7 + 1) + ("\n" + "línea " * 3 if i % 3 == 0 else "")
             for i in range(120)]
    (tmp_path / "c.jsonl").write_text("".join(json.dumps({"text": t}) + "\n" for t in texts), encoding="utf-8")
    # .txt: documents separated by blank lines, some by two, with CRLF and a line of spaces inside one gap
    raw = "".join(t + ("\r\n\r\n" if i % 5 else "\n  \n\n") for i, t in enumerate(texts))
    (tmp_path / "c.txt").write_text(raw, encoding="utf-8")
    pq.write_table(pa.table({"text": texts}), tmp_path / "c.parquet", row_group_size=11)
    datasets.Dataset.from_dict({"text": texts}).save_to_disk(str(tmp_path / "ds"))
    for source in ("c.jsonl", "c.txt", "c.parquet", "ds"):
        corpus = Corpus(CorpusConfig(source=str(tmp_path / source)))
        whole = [t for t, _ in corpus._raw()]
        for chunk in (1, 97, 1000, 10**9):
            units, read = _by_units(corpus, chunk)
            assert read == whole, (source, chunk)
            if chunk == 1000:
                assert len(units) > 3, source  # really cut
    txt = Corpus(CorpusConfig(source=str(tmp_path / "c.txt")))
    assert [clean_text(t) for t, _ in txt._raw()] == [clean_text(t) for t in texts]


def test_units_of_a_stream_are_its_shards(monkeypatch):
    import datasets

    def gen(shards):
        for s in shards:
            for i in range(3):
                yield {"text": f"Fragmento {s}, documento {i}."}

    monkeypatch.setattr(datasets, "load_dataset", lambda name, config_name=None, **kw:
                        datasets.IterableDataset.from_generator(gen, gen_kwargs={"shards": [0, 1, 2, 3]}))
    corpus = Corpus(CorpusConfig(source="org/corpus"))
    units, read = _by_units(corpus, 1)
    assert [u.start for u in units] == [0, 1, 2, 3]
    assert read == [f"Fragmento {s}, documento {i}." for s in range(4) for i in range(3)]


def test_an_error_in_a_later_unit_names_the_line_of_the_whole_file(tmp_path):
    lines = [json.dumps({"text": f"Texto número {i} con algo de contenido."}) for i in range(200)]
    lines[150] = '{"text": 3}'
    (tmp_path / "c.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    corpus = Corpus(CorpusConfig(source=str(tmp_path / "c.jsonl")))
    units = corpus.units(500)
    bad = next(u for u in units if u.start <= sum(len(x) + 1 for x in lines[:150]) < u.end)
    assert bad.start > 0
    with pytest.raises(CorpusError, match=r"c\.jsonl:151: expected a JSON object"):
        list(corpus.read_unit(bad))
