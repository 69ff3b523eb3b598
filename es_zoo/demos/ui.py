"""The Gradio layout of each demo: inputs, outputs and Spanish examples around the functions of
:mod:`es_zoo.demos.predict`. Every event is exposed to ``gradio_client`` as ``/predict`` (the zoo: ``/search``
and ``/board``); a :class:`DemoError` or any other failure becomes a ``gr.Error`` message, never a traceback."""

from __future__ import annotations

import functools
import logging
import os
from typing import Any, Callable

from es_zoo.demos import zoo
from es_zoo.demos import predict as P
from es_zoo.demos.registry import Demo
from es_zoo.demos.tree import tree_svg

log = logging.getLogger("es_zoo.demos")
FOOTER = ("Made with [es-zoo](https://github.com/es-zoo/es-zoo). Inputs are bounded in length; nothing you type "
          "is stored.")


def _safe(fn: Callable) -> Callable:
    """Run ``fn``; show a :class:`DemoError` as it is and any other failure as one line (the server keeps
    serving)."""
    import gradio as gr

    @functools.wraps(fn)
    def wrapper(*args: Any) -> Any:
        try:
            return fn(*args)
        except P.DemoError as exc:
            raise gr.Error(str(exc), print_exception=False) from None
        except Exception as exc:  # noqa: BLE001 - a visitor never sees a traceback
            log.exception("demo failure")
            raise gr.Error(f"The model could not process this input ({type(exc).__name__}: "
                           f"{str(exc).splitlines()[0][:200] if str(exc) else 'no details'}).",
                           print_exception=False) from None
    return wrapper


def _model_line(m: P.Loaded) -> str:
    if m.problem:
        return f"⚠️ **No model loaded.** {m.problem}"
    return f"Model: `{m.name}`"


def build_blocks(demo: Demo, model: str | None = None, reverse_model: str | None = None, results: tuple = (),
                 strict: bool = False) -> Any:
    """The demo's Blocks. A model that cannot be loaded is shown in the page (a Space still starts and says
    what to do); with ``strict`` (the command line) it is an error before anything listens."""
    import gradio as gr

    model = model or os.environ.get("ES_ZOO_DEMO_MODEL") or demo.default
    with gr.Blocks(title=f"{demo.title} · es-zoo", analytics_enabled=False) as app:
        gr.Markdown(f"# {demo.emoji} {demo.title}\n\n{demo.description}")
        if demo.kind == "zoo":
            _zoo(demo, results or tuple(p for p in os.environ.get("ES_ZOO_DEMO_RESULTS", "").split(os.pathsep) if p))
        elif demo.name == "translation":
            reverse = reverse_model or os.environ.get("ES_ZOO_DEMO_REVERSE_MODEL") or (
                None if model != demo.default else demo.reverse_default)
            forward = P.load("seq2seq", model, "translation es → en")
            if strict and forward.problem:
                raise P.DemoError(forward.problem)
            _translation(demo, forward, P.load("seq2seq", reverse, "translation en → es") if reverse else None)
        else:
            m = P.load(demo.kind, model, demo.title, demo.labels())
            if strict and m.problem:
                raise P.DemoError(m.problem)
            gr.Markdown(_model_line(m), elem_id="model-line")
            BUILDERS[demo.name](demo, m)
        gr.Markdown(FOOTER)
    return app


def _button() -> Any:
    import gradio as gr

    return gr.Button("Run", variant="primary", elem_id="run")


def _text(label: str, lines: int = 3, max_length: int = 1000, value: str = "") -> Any:
    """A text box that says its limit. The limit is checked on the server, with a message: Gradio's own
    ``max_length`` would cut a longer (pasted) text silently."""
    import gradio as gr

    return gr.Textbox(label=label, lines=lines, value=value, info=f"at most {max_length:,} characters")


def _fill_mask(demo: Demo, m: P.Loaded) -> None:
    import gradio as gr

    text = _text("Text with [MASK]", 2)
    run = _button()
    out = gr.Label(label="Most likely words", num_top_classes=5, elem_id="output")
    run.click(_safe(lambda t: P.fill_mask(m, t)), text, out, api_name="predict")
    gr.Examples(demo.examples, [text])


def _classification(demo: Demo, m: P.Loaded) -> None:
    import gradio as gr

    pair = len(demo.examples[0]) == 2
    a = _text("First sentence" if pair else "Text", 2 if pair else 5, 2000)
    inputs = [a]
    if pair:
        inputs.append(_text("Second sentence", 2, 2000))
    run = _button()
    out = gr.Label(label="Prediction", elem_id="output")
    fn = (lambda x, y: P.classify(m, x, y)) if pair else (lambda x: P.classify(m, x))
    run.click(_safe(fn), inputs, out, api_name="predict")
    gr.Examples(demo.examples, inputs)


def _tagging(demo: Demo, m: P.Loaded) -> None:
    import gradio as gr

    text = _text("Text", 3)
    run = _button()
    out = gr.HighlightedText(label="Entities" if demo.name == "ner" else "Tags", show_legend=True,
                             combine_adjacent=False, elem_id="output")
    run.click(_safe(lambda t: P.tag(m, t, entities=demo.name == "ner")), text, out, api_name="predict")
    gr.Examples(demo.examples, [text])


def _parsing(demo: Demo, m: P.Loaded) -> None:
    import gradio as gr

    text = _text("Sentence", 2, 500)
    run = _button()
    svg = gr.HTML(label="Dependency tree", elem_id="output")
    conllu = gr.Textbox(label="CoNLL-U (ID, FORM, HEAD, DEPREL)", lines=6, elem_id="conllu")

    def fn(t: str) -> tuple[str, str]:
        tokens = P.parse_text(m, t)
        rows = "\n".join(f"{x['id']}\t{x['form']}\t_\t_\t_\t_\t{x['head']}\t{x['deprel']}\t_\t_" for x in tokens)
        return f"<div style='overflow-x:auto'>{tree_svg(tokens)}</div>", rows

    run.click(_safe(fn), text, [svg, conllu], api_name="predict")
    gr.Examples(demo.examples, [text])


def _qa(demo: Demo, m: P.Loaded) -> None:
    import gradio as gr

    question = _text("Question", 1, 300)
    context = _text("Context", 6, 5000)
    run = _button()
    ans = gr.Textbox(label="Answer", elem_id="answer")
    shown = gr.HighlightedText(label="In the context", elem_id="output", show_legend=False)

    def fn(q: str, c: str) -> tuple[str, dict]:
        r = P.answer(m, q, c)
        return r["answer"], r["highlighted"]

    run.click(_safe(fn), [question, context], [ans, shown], api_name="predict")
    gr.Examples(demo.examples, [question, context])


def _generation(demo: Demo, m: P.Loaded) -> None:
    import gradio as gr

    if demo.task == "generative_qa":
        inputs = [_text("Question", 1, 300), _text("Context", 6, 4000)]
        make = lambda q, c: {"question": P.check_text(q, "question", 300), "context": c}  # noqa: E731
    elif demo.task == "dialogue":
        inputs = [_text("Conversation so far (one turn per line)", 5, 3000)]
        make = lambda h: {"history": [t for t in (h or "").splitlines() if t.strip()] or [h]}  # noqa: E731
    else:
        column = {"summarization": "text"}.get(demo.task, "source")
        inputs = [_text({"summarization": "Article"}.get(demo.task, "Text"), 6 if demo.task == "summarization" else 3,
                        4000)]
        make = lambda t: {column: t}  # noqa: E731
    run = _button()
    out = gr.Textbox(label="Output", lines=4, elem_id="output")
    limit = 3000 if demo.task == "dialogue" else 4000  # as the text boxes say
    run.click(_safe(lambda *xs: P.generate_text(m, demo.task, make(*xs), max_chars=limit)), inputs, out,
              api_name="predict")
    gr.Examples(demo.examples, inputs)


def _translation(demo: Demo, forward: P.Loaded, reverse: P.Loaded | None) -> None:
    import gradio as gr

    gr.Markdown("es → en: " + _model_line(forward) + "  \nen → es: "
                + (_model_line(reverse) if reverse else "no model (start with --reverse-model to add one)"),
                elem_id="model-line")
    text = _text("Text", 3, 2000)
    direction = gr.Radio(["es → en", "en → es"], value="es → en", label="Direction")
    run = _button()
    out = gr.Textbox(label="Translation", lines=3, elem_id="output")

    def fn(t: str, d: str) -> str:
        m = forward if d == "es → en" else reverse
        if m is None:
            raise P.DemoError("No en → es model: start the demo with --reverse-model pointing at one.")
        return P.generate_text(m, "translation", {"source": t}, max_chars=2000)

    run.click(_safe(fn), [text, direction], out, api_name="predict")
    gr.Examples(demo.examples, [text, direction])


def _zoo(demo: Demo, results: tuple) -> None:
    import gradio as gr
    import pandas as pd

    with gr.Tab("Catalogue"):
        with gr.Row():
            query = gr.Textbox(label="Search", placeholder="beto, t5, ner ...", max_length=100)
            family = gr.Dropdown(zoo.families(), value="all", label="Family")
        gr.Examples([["beto"], ["t5s"], ["ner"], ["translation"]], inputs=query, label="Try (then press Enter)")
        table = gr.Dataframe(pd.DataFrame(zoo.catalogue_rows(), columns=zoo.CATALOGUE_COLUMNS), interactive=False,
                             elem_id="catalogue")
        search = _safe(lambda q, f: pd.DataFrame(zoo.catalogue_rows(q, f), columns=zoo.CATALOGUE_COLUMNS))
        query.submit(search, [query, family], table, api_name="search")
        family.change(search, [query, family], table, api_name=False)
    with gr.Tab("Leaderboard"):
        gr.Markdown("Published scores come from the catalogue (with their sources, `es-zoo show NAME`); measured "
                    "ones from the results files this demo was started with (`es-zoo demo zoo --results DIR`).")
        task = gr.Dropdown(zoo.board_tasks(results), value="all", label="Task")
        board0 = pd.DataFrame(zoo.leaderboard(results), columns=zoo.BOARD_COLUMNS)
        board = gr.Dataframe(board0, interactive=False, elem_id="leaderboard")
        chart = gr.BarPlot(_bars(board0), x="label", y="value", color="origin", title="Scores", elem_id="chart",
                           x_label_angle=-45)

        def show(t: str) -> tuple:
            df = pd.DataFrame(zoo.leaderboard(results, t), columns=zoo.BOARD_COLUMNS)
            return df, _bars(df)

        task.change(_safe(show), task, [board, chart], api_name="board")


def _bars(df: Any) -> Any:
    """One bar per leaderboard row. A bar plot adds up rows that share a label, so each label names the
    model, task and metric, and the dataset (then the row's origin) where that is not enough to tell rows
    apart."""
    out = df.assign(label=df["model"] + " · " + df["task"] + " · " + df["metric"])
    twice = out["label"].duplicated(keep=False)
    out.loc[twice, "label"] = out["label"] + " · " + out["dataset"].astype(str)
    twice = out["label"].duplicated(keep=False)
    out.loc[twice, "label"] = out["label"] + " · " + out["origin"] + " " + out.groupby("label").cumcount().add(1).astype(str)
    return out


BUILDERS: dict[str, Callable[[Demo, P.Loaded], None]] = {
    "fill-mask": _fill_mask, "nli": _classification, "paraphrase": _classification,
    "doc-classification": _classification, "ner": _tagging, "pos": _tagging, "parsing": _parsing, "qa": _qa,
    "summarization": _generation, "split-rephrase": _generation, "generative-qa": _generation,
    "dialogue": _generation,
}
