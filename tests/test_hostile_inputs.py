"""Hostile input, as a user (or anyone) can hand it to the command line: every case must end in one
clear line that names the file (and line, or JSON path) and says what was expected, a non-zero exit,
no traceback, within a time limit and a memory limit (the command runs under RLIMIT_AS), and with
nothing half-written. docs/hostile-inputs.md keeps the tally.

Each case is ``(name, build)``: ``build(tmp, ctx)`` writes its inputs under ``tmp`` and returns the
command-line arguments, the phrases the error line must contain, and the paths that must be left as
they were (or must not exist).
"""

from __future__ import annotations

import gzip
import json
import os
import shutil
from pathlib import Path
from typing import Any, Callable

import pytest

REPO = Path(__file__).resolve().parents[1]
MEMORY_LIMIT = 6 << 30  # address space: torch and datasets map far more than they touch
TIME_LIMIT = 180  # seconds; the slowest case (a model run folder) needs a few


ENV = dict(os.environ, HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", GRADIO_ANALYTICS_ENABLED="False",
           OMP_NUM_THREADS="1", PYTHONPATH=str(REPO), TOKENIZERS_PARALLELISM="false")


@pytest.fixture(scope="module")
def es_zoo_cli():
    """`python -m es_zoo ARGS` in its own process, under the memory and time limits, forked from a server
    that has done the heavy imports once (tests/forkserver.py): about 2 s less per case."""
    from tests.forkserver import ForkServer

    server = ForkServer(ENV, MEMORY_LIMIT, TIME_LIMIT)
    yield server.run
    server.close()


def _snapshot(paths: list[Path]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for p in paths:
        if not p.exists():
            out[str(p)] = None
        elif p.is_dir():
            out[str(p)] = sorted(str(q.relative_to(p)) + f":{q.stat().st_size}" for q in p.rglob("*"))
        else:
            out[str(p)] = p.read_bytes()
    return out


# ------------------------------------------------------------------------------------------ recipes
def _bomb(levels: int = 8) -> str:
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for i in range(1, levels):
        lines.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]")
    return "\n".join(lines) + "\n"


def _recipe_file(content: bytes | str, needles: list[str]) -> Callable:
    def build(tmp: Path, ctx: dict) -> tuple:
        path = tmp / "recipe.yaml"
        path.write_bytes(content.encode() if isinstance(content, str) else content)
        return ["recipes", "validate", str(path)], [str(path), *needles], []
    return build


def _override(override: str, needles: list[str]) -> Callable:
    def build(tmp: Path, ctx: dict) -> tuple:
        out = tmp / "run"
        return ["reproduce", "beto", "--output-dir", str(out), override], needles, [out]
    return build


RECIPES = [
    ("recipe: alias bomb", _recipe_file(_bomb(), ["expands to more than", "aliases"])),
    ("recipe: binary file", _recipe_file(bytes(range(256)) * 8, ["not UTF-8"])),
    ("recipe: NUL byte", _recipe_file("name: beto\x00\n", ["NUL"])),
    ("recipe: nested 10,000 deep", _recipe_file("[" * 10000 + "]" * 10000, ["nested"])),
    ("recipe: recursive alias", _recipe_file("a: &a [*a]\n", ["alias"])),
    ("recipe: not YAML", _recipe_file("name: beto\npresets: [1, 2\nx: 3\n", ["not valid YAML"])),
    ("recipe: a list at the top", _recipe_file("- 1\n- 2\n", ["expected"])),
    ("recipe: unknown key", _recipe_file("name: beto\nbogus_key: 1\n", ["bogus_key", "unknown key"])),
    ("recipe: 5 MB file", _recipe_file("# " + "x" * (5 << 20) + "\n", ["bytes; expected a YAML recipe under"])),
    ("override: 10^20 vocabulary", _override("tokenizer.vocab_size=99999999999999999999",
                                             ["tokenizer.vocab_size", "at most 2^53"])),
    ("override: 10 M vocabulary", _override("tokenizer.vocab_size=9999999", ["vocab_size must be at most"])),
    ("override: hidden size 10 M", _override("model.hidden_size=10000000", ["hidden_size must be in"])),
    ("override: NaN learning rate", _override("training.learning_rate=.nan", ["learning_rate", "finite"])),
    ("override: infinite learning rate", _override("training.learning_rate=.inf", ["finite"])),
    ("override: 10^11 steps", _override("training.phases=[{max_steps: 100000000000, seq_len: 32, "
                                        "global_batch_size: 8}]", ["max_steps must be at most"])),
    ("override: sequence of 2^30", _override("training.phases=[{max_steps: 10, seq_len: 1073741824, "
                                             "global_batch_size: 8}]", ["seq_len must be at most"])),
    ("override: micro-batch of 2^40", _override("training.micro_batch_size=1099511627776",
                                                ["micro_batch_size must be in"])),
    ("override: a 20,000-item value", _override("training.warmup_steps=[" + "1," * 20000 + "]",
                                                 ["warmup_steps", "characters)"])),
    ("override: alias bomb", _override("training.warmup_steps=" + _bomb().replace("\n", ", ").join("{}"),
                                       ["expands to more than"])),
    ("override: not KEY=VALUE", _override("training.learning_rate", ["expected KEY=VALUE"])),
    ("override: unknown key", _override("training.lerning_rate=1", ["did you mean 'learning_rate'"])),
]


# ------------------------------------------------------------------------------------ predictions
def _gold(task: str) -> list[dict]:
    from es_zoo.tasks.data import load_task_data
    from es_zoo.tasks.definitions import load_task

    split = load_task_data(load_task(task), source="shipped").dataset["test"]
    names = {c: getattr(split.features[c], "feature", split.features[c]) for c in split.column_names}
    rows = []
    for row in split:
        if task == "pos":
            pred = [names["upos"].names[t] for t in row["upos"]]
        elif task == "parsing":
            pred = [row["head"], [names["deprel"].names[r] for r in row["deprel"]]]
        elif task == "pawsx":
            pred = names["label"].names[row["label"]]
        else:
            pred = (row["answers"]["text"] or [""])[0]
        rows.append({"id": row["id"], "prediction": pred})
    return rows


def _predictions(task: str, mutate: Callable[[list[dict]], Any], needles: list[str]) -> Callable:
    def build(tmp: Path, ctx: dict) -> tuple:
        rows = json.loads(json.dumps(ctx["gold"][task]))
        text = mutate(rows)
        path = tmp / "predictions.jsonl"
        if isinstance(text, (bytes, str)):
            path.write_bytes(text.encode() if isinstance(text, str) else text)
        else:
            path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
        return ["score", task, str(path), "--source", "shipped"], [str(path), *needles], []
    return build


def _set(i: int, value: Any) -> Callable:
    def mutate(rows: list[dict]) -> None:
        rows[i]["prediction"] = value
    return mutate


def _shift_tags(rows: list[dict]) -> None:
    """One tag moved from the first sentence to the second: the total count is unchanged."""
    rows[1]["prediction"].insert(0, rows[0]["prediction"].pop())


def _rel(i: int, j: int, value: Any) -> Callable:
    def mutate(rows: list[dict]) -> None:
        rows[i]["prediction"][1][j] = value
    return mutate


def _head(i: int, value: Any) -> Callable:
    def mutate(rows: list[dict]) -> None:
        rows[i]["prediction"][0][0] = value
    return mutate




PREDICTIONS = [
    ("score pos: tags shifted across sentences", _predictions("pos", _shift_tags, [":1 ", "tags (one per word"])),
    ("score pos: tag BOGUS", _predictions("pos", lambda r: r[3]["prediction"].__setitem__(0, "BOGUS"),
                                          [":4 ", "'BOGUS'", "task's set"])),
    ("score pos: null prediction", _predictions("pos", _set(5, None), [":6 ", "got None"])),
    ("score pos: a string for a sentence", _predictions("pos", _set(0, "NOUN"), [":1 ", "a list of"])),
    ("score pos: a number as a tag", _predictions("pos", lambda r: r[2]["prediction"].__setitem__(1, 7),
                                                  [":3 ", "got 7"])),
    ("score pawsx: label 2", _predictions("pawsx", _set(4, "2"), [":5 ", "one of the task's labels", "'2'"])),
    ("score pawsx: label as an integer", _predictions("pawsx", _set(0, 1), [":1 ", "got 1"])),
    ("score pawsx: null label", _predictions("pawsx", _set(9, None), [":10 ", "got None"])),
    ("score parsing: unknown relation", _predictions("parsing", _rel(2, 0, "bogus_rel"),
                                                     [":3 ", "relations from the task's set", "'bogus_rel'"])),
    ("score parsing: head past the sentence", _predictions("parsing", _head(1, 999), [":2 ", "got 999"])),
    ("score parsing: negative head", _predictions("parsing", _head(1, -1), [":2 ", "got -1"])),
    ("score parsing: head as text", _predictions("parsing", _head(0, "1"), [":1 ", "integers"])),
    ("score parsing: head true", _predictions("parsing", _head(0, True), [":1 ", "got True"])),
    ("score parsing: a string", _predictions("parsing", _set(0, "0 root"), [":1 ", "[heads, relations]"])),
    ("score parsing: one list only", _predictions("parsing", lambda r: r[6].__setitem__("prediction", r[6]["prediction"][:1]),
                                                  [":7 ", "[heads, relations]"])),
    ("score parsing: one head short", _predictions("parsing", lambda r: r[0]["prediction"][0].pop(),
                                                   [":1 ", "[heads, relations]"])),
    ("score qa: an answer that is a list", _predictions("qa", _set(0, ["a", "b"]), [":1 ", "a string"])),
    ("score qa: null answer", _predictions("qa", _set(2, None), [":3 ", "got None"])),
    ("score: an id not in the split", _predictions("pos", lambda r: r[7].__setitem__("id", "nope"),
                                                   [":8:", "'nope'", "not an example"])),
    ("score: a duplicated id", _predictions("pos", lambda r: r.__setitem__(8, dict(r[3])), [":9:", "appears twice (first on line 4)"])),
    ("score: a missing example", _predictions("pos", lambda r: r.pop(), ["no prediction for gold example"])),
    ("score: an id that is an object", _predictions("pos", lambda r: r[0].__setitem__("id", {"a": 1}),
                                                    [":1", "\"id\" must be"])),
    ("score: a line that is not JSON", _predictions("pos", lambda r: "{\"id\": 1,\n", [":1", "not JSON"])),
    ("score: a line that is an array", _predictions("pos", lambda r: "[1, 2]\n", [":1", "JSON object"])),
    ("score: no prediction key", _predictions("pos", lambda r: '{"id": "x"}\n', [":1", "\"prediction\""])),
    ("score: an empty file", _predictions("pos", lambda r: "", ["no prediction for gold example"])),
    ("score: binary file", _predictions("pos", lambda r: b"\xff\xfe\x00\x01" * 100, [":1", "not UTF-8"])),
    ("score: a NUL in a line", _predictions("pos", lambda r: '{"id": "a\x00b", "prediction": []}\n',
                                            [":1", "control character (U+0000)"])),
    ("score: one 20 MB line", _predictions("pos", lambda r: "x" * (20 << 20), [":1", "a line longer than"])),
]


# ------------------------------------------------------------------------------------- task files
def _conllu(heads: list) -> str:
    rows = []
    for i, h in enumerate(heads, start=1):
        rel = "root" if h == 0 else "nmod"
        rows.append(f"{i}\t{'abc'[i - 1]}\t_\tNOUN\t_\t_\t{h}\t{rel}\t_\t_")
    return "\n".join(rows) + "\n\n"


def _squad(answer_start: int = 5, qas: Any = None, drop_id: bool = False, context: Any = "Hola mundo") -> str:
    q = {"id": "q1", "question": "¿Qué?", "answers": [{"text": "mundo", "answer_start": answer_start}]}
    if drop_id:
        del q["id"]
    para = {"context": context, "qas": [q] if qas is None else qas}
    return json.dumps({"data": [{"title": "t", "paragraphs": [para]}]})


def _task_file(name: str, content: str | bytes, task: str, needles: list[str], fmt: str = "--gold") -> Callable:
    def build(tmp: Path, ctx: dict) -> tuple:
        path = tmp / name
        path.write_bytes(content.encode() if isinstance(content, str) else content)
        preds = tmp / "p.jsonl"
        preds.write_text('{"id": "x", "prediction": "0"}\n')
        return ["score", task, str(preds), "--gold", str(path)], [str(path), *needles], []
    return build


TASK_FILES = [
    ("pawsx tsv: a control character", _task_file("p.tsv", "id\tsentence1\tsentence2\tlabel\n1\ta\x01b\tc\t0\n",
                                                   "pawsx", [":2", "control character (U+0001)"])),
    ("pawsx tsv: label 7", _task_file("p.tsv", "id\tsentence1\tsentence2\tlabel\n1\tab\tc\t7\n", "pawsx",
                                      [":2", "'7'", "label set"])),
    ("pawsx tsv: five columns", _task_file("p.tsv", "1\ta\tb\t0\textra\n", "pawsx", [":1", "tab-separated"])),
    ("xnli tsv: a column named twice", _task_file(
        "x.tsv", "language\tgold_label\tsentence1\tsentence2\tpairID\tpairID\nes\tneutral\ta\tb\t1\t2\n", "xnli",
        [":1", "'pairID' twice"])),
    ("conllu: Latin-1 bytes", _task_file("u.conllu", "1\tca\xf1a\tcaña\tNOUN\t_\t_\t0\troot\t_\t_\n".encode("latin-1"),
                                         "pos", [":1", "not UTF-8"])),
    ("conllu: a cycle", _task_file("u.conllu", _conllu([0, 3, 2]), "parsing", [":2", "2 -> 3 -> 2", "cycle"])),
    ("conllu: two roots", _task_file("u.conllu", _conllu([0, 0, 1]), "parsing", [":1", "exactly one word with HEAD 0"])),
    ("conllu: head past the sentence", _task_file("u.conllu", _conllu([0, 9, 1]), "parsing", [":2", "HEAD 9"])),
    ("conllu: superscript head", _task_file("u.conllu", _conllu([0, "²", 1]), "parsing", [":2", "HEAD '²'"])),
    ("conllu: word id 1.5e3", _task_file("u.conllu", _conllu([0, 1, 1]).replace("2\tb", "1.5e3\tb"), "parsing",
                                         [":2", "1.5e3"])),
    ("conllu: NUL in a word", _task_file("u.conllu", _conllu([0, 1, 1]).replace("\tb\t", "\tb\x00\t", 1), "parsing",
                                         [":2", "U+0000"])),
    ("conll2002: an escape character", _task_file("n.conll", "El DA O\nbanco\x1b NC B-ORG\n\n", "ner",
                                                  [":2", "U+001B"])),
    ("squad: answer_start -7", _task_file("q.json", _squad(answer_start=-7), "qa",
                                          ["data[0].paragraphs[0].qas[0].answers[0].answer_start", ">= -1"])),
    ("squad: answer_start -1 for a real answer", _task_file("q.json", _squad(answer_start=-1), "qa",
                                                            ["'mundo' has answer_start -1"])),
    ("squad: qas is a string", _task_file("q.json", _squad(qas="x"), "qa", ["data[0].paragraphs[0].qas", "array"])),
    ("squad: a question without id", _task_file("q.json", _squad(drop_id=True), "qa", ["qas[0]", "missing 'id'"])),
    ("squad: a context that is a list", _task_file("q.json", _squad(context=["x"] * 100000), "qa",
                                                   ["context", "expected a string", "characters)"])),
    ("squad: UTF-16", _task_file("q.json", _squad().encode("utf-16"), "qa", ["UTF-16"])),
    ("squad: nested 100,000 deep", _task_file("q.json", "[" * 100000 + "]" * 100000, "qa", ["nested too deeply"])),
    ("squad: not JSON", _task_file("q.json", '{"data": [\n', "qa", ["not valid JSON"])),
    ("squad: an answer not at its start", _task_file("q.json", _squad(answer_start=0), "qa",
                                                     ["'mundo' is not at answer_start 0"])),
]


# --------------------------------------------------------------------------------------- corpora
def _corpus(name: str, content: bytes | str | None, needles: list[str]) -> Callable:
    def build(tmp: Path, ctx: dict) -> tuple:
        path = tmp / name
        if content is not None:
            data = content.encode() if isinstance(content, str) else content
            if name.endswith(".gz") and not data.startswith(b"\x1f\x8b\x08"):
                data = gzip.compress(data)
            path.write_bytes(data)
        out = tmp / "prepared"
        return (["prepare", "beto", "--corpus", str(path), "--output", str(out)], [str(path), *needles], [out])
    return build


CORPORA = [
    ("corpus: no such file", _corpus("missing.txt", None, ["no such file"])),
    ("corpus: binary", _corpus("c.txt", b"texto\n\xff\xfe\xfa\n" * 10, [":2", "not UTF-8"])),
    ("corpus: JSON lines that are not JSON", _corpus("c.jsonl", '{"text": "uno"}\n{"text": \n', [":2", "not valid JSON"])),
    ("corpus: JSON line without text", _corpus("c.jsonl", '{"text": "uno dos"}\n{"body": "x"}\n', [":2", "'text'"])),
    ("corpus: JSON line that is a list", _corpus("c.jsonl", '["uno"]\n', [":1", "got list"])),
    ("corpus: an empty file", _corpus("c.txt", "", ["empty file", "at least one document"])),
    ("corpus: a truncated gzip", _corpus("c.jsonl.gz", gzip.compress(b'{"text": "uno dos"}\n' * 5000)[:300],
                                         ["not a valid gzip file"])),
    ("corpus: a 70 MB line", _corpus("c.txt", "palabra " * (70 << 17), [":1", "a line longer than 64 MB"])),
]


# ------------------------------------------------------------------------------------- publishing
def _publish(plant: Callable[[Path, Path], None], needles: list[str]) -> Callable:
    def build(tmp: Path, ctx: dict) -> tuple:
        run = tmp / "run"
        shutil.copytree(ctx["run"], run, symlinks=True)
        outside = tmp / "outside"
        outside.mkdir()
        plant(run, outside)
        dry = tmp / "dry"
        return ["publish", str(run), "--repo-id", "es-zoo-test/beto", "--dry-run", str(dry)], needles, [dry]
    return build


def _link(rel: str) -> Callable:
    def plant(run: Path, outside: Path) -> None:
        target = outside / Path(rel).name
        src = run / rel
        if src.is_dir():
            shutil.move(str(src), str(target))
            src.symlink_to(target, target_is_directory=True)
        else:
            target.write_text("root:x:0:0:root:/root:/bin/bash\n")
            src.unlink(missing_ok=True)
            src.symlink_to(target)
    return plant


def _shards(index: Any, shards: list[str], keep_single: bool = False) -> Callable:
    def plant(run: Path, outside: Path) -> None:
        model = run / "model"
        for s in shards:
            shutil.copyfile(model / "model.safetensors", model / s)
        if index is not None:
            (model / "model.safetensors.index.json").write_text(index if isinstance(index, str) else json.dumps(index))
        if not keep_single:
            (model / "model.safetensors").unlink()
    return plant


def _write(rel: str, content: str) -> Callable:
    def plant(run: Path, outside: Path) -> None:
        (run / rel).write_text(content)
    return plant


PUBLISH = [
    ("publish: card linked to /etc/passwd-like file", _publish(_link("model/README.md"), ["README.md", "outside"])),
    ("publish: recipe.yaml linked outside", _publish(_link("recipe.yaml"), ["recipe.yaml", "outside"])),
    ("publish: results.json linked outside", _publish(_link("results.json"), ["results.json", "outside"])),
    ("publish: model/ linked outside", _publish(_link("model"), ["outside"])),
    ("publish: weights linked outside", _publish(_link("model/model.safetensors"), ["model.safetensors", "outside"])),
    ("publish: shards without an index", _publish(_shards(None, ["model-00001-of-00002.safetensors"]),
                                                  ["without model.safetensors.index.json"])),
    ("publish: an index missing a shard", _publish(_shards({"weight_map": {"a": "model-00001-of-00002.safetensors",
                                                                           "b": "model-00002-of-00002.safetensors"}},
                                                           ["model-00001-of-00002.safetensors"]),
                                                   ["incomplete", "model-00002-of-00002.safetensors"])),
    ("publish: an index that is not JSON", _publish(_shards("{weight", ["model-00001-of-00002.safetensors"]),
                                                    ["weight_map"])),
    ("publish: index beside model.safetensors", _publish(_shards({"weight_map": {"a": "model-00001-of-00002.safetensors"}},
                                                                 ["model-00001-of-00002.safetensors"], keep_single=True),
                                                         ["both model.safetensors and"])),
    ("publish: results.json not JSON", _publish(_write("results.json", "{oops"), ["results.json", "not valid JSON"])),
    ("publish: recipe.yaml alias bomb", _publish(_write("recipe.yaml", _bomb()), ["recipe.yaml", "expands"])),
    ("publish: a partial checkpoint", _publish(lambda run, o: (run / "checkpoints" / ".tmp-step-9").mkdir(parents=True),
                                               ["interrupted"])),
    ("publish: only pickles", _publish(lambda run, o: (run / "model" / "model.safetensors").rename(
        run / "model" / "pytorch_model.bin"), ["never publishes pickles"])),
]

# ------------------------------------------------------------------------------------ run folders
def _run_folder(files: dict[str, str], args: list[str], needles: list[str], hold_lock: bool = False) -> Callable:
    def build(tmp: Path, ctx: dict) -> tuple:
        run = tmp / "run"
        run.mkdir()
        for rel, text in files.items():
            (run / rel).write_text(text)
        if hold_lock:  # another es-zoo command is writing this folder
            import fcntl

            fh = open(run / ".lock", "w")
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            fh.write(json.dumps({"pid": 4242, "host": "node7", "command": "`es-zoo reproduce beto`",
                                 "started": "2026-12-04T10:00:00+00:00"}))
            fh.flush()
            ctx.setdefault("held", []).append(fh)
        return [a.replace("RUN", str(run)) for a in args], needles, [run]
    return build


RUN_FOLDERS = [
    ("run folder: recipe.yaml alias bomb on --resume", _run_folder(
        {"recipe.yaml": _bomb(), "run_info.json": "{}"}, ["reproduce", "beto", "--output-dir", "RUN", "--resume"],
        ["recipe.yaml", "expands to more than"])),
    ("run folder: another command is writing it", _run_folder(
        {"recipe.yaml": "x: 1\n"}, ["reproduce", "beto", "--output-dir", "RUN", "--resume"],
        ["is being written by `es-zoo reproduce beto` (pid 4242 on node7"], hold_lock=True)),
    ("run folder: a folder that is not a run", _run_folder(
        {"notes.txt": "mine"}, ["reproduce", "beto", "--output-dir", "RUN"], ["is not an es-zoo run folder"])),
    ("fine-tune folder: finetune.json that is not JSON", _run_folder(
        {"finetune.json": "{oops"}, ["finetune", "beto-base-cased", "--task", "pawsx", "--source", "shipped",
                                     "--output-dir", "RUN", "--resume"], ["finetune.json", "damaged"])),
]

CASES = RECIPES + PREDICTIONS + TASK_FILES + CORPORA + PUBLISH + RUN_FOLDERS


@pytest.fixture(scope="module")
def gold() -> dict:
    return {t: _gold(t) for t in ("pos", "parsing", "pawsx", "qa")}


@pytest.fixture
def ctx(gold: dict, request: pytest.FixtureRequest) -> dict:
    """What the cases build from; the run folder (a real `es-zoo reproduce` run) only when asked for."""
    class Ctx(dict):
        def __missing__(self, key: str) -> Any:
            if key != "run":
                raise KeyError(key)
            self["run"] = request.getfixturevalue("published_runs")["beto"]
            return self["run"]
    return Ctx(gold=gold)


def test_there_are_at_least_sixty_cases() -> None:
    assert len(CASES) >= 60 and len({name for name, _ in CASES}) == len(CASES)


@pytest.mark.parametrize("name,build", CASES, ids=[name for name, _ in CASES])
def test_hostile_input_gets_one_clear_line(name: str, build: Callable, ctx: dict, tmp_path: Path,
                                          es_zoo_cli: Callable) -> None:
    args, needles, untouched = build(tmp_path, ctx)
    before = _snapshot(untouched)
    done = es_zoo_cli(args, tmp_path)
    output = done.stdout + done.stderr
    assert done.returncode != 0, output[-2000:]
    assert "Traceback" not in output, output[-3000:]
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error:")]
    assert len(errors) == 1, lines[-10:]
    for needle in needles:
        assert needle in errors[0], (needle, errors[0])
    assert len(errors[0]) < 1200, errors[0][:300]
    assert _snapshot(untouched) == before
