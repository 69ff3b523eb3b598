"""The demos es-zoo ships: each one's Space metadata, the kind of model it serves, its default checkpoint
and its Spanish examples. Both the package (:func:`es_zoo.demos.build`) and the Gradio layer
(:mod:`es_zoo.demos.ui`) read it, so neither imports the other's module for it."""

from __future__ import annotations

from dataclasses import dataclass, field

from es_zoo.demos.predict import DemoError


@dataclass(frozen=True)
class Demo:
    """One demo: its Space metadata, the kind of model it serves and its Spanish examples."""

    name: str
    title: str
    emoji: str
    kind: str  # a key of es_zoo.demos.predict.KIND_CHECKS, or "zoo"
    default: str | None  # catalogue name of the fine-tuned checkpoint it serves by default
    description: str
    examples: list = field(default_factory=list)
    task: str | None = None  # the es-zoo task a seq2seq demo builds its input from
    reverse_default: str | None = None  # translation: the en->es checkpoint
    label_task: str | None = None  # the es-zoo task whose label set a classifier or tagger must predict

    def labels(self) -> list[str] | None:
        """Every label of ``label_task`` (all its sources), or None for demos without a label set."""
        if self.label_task is None:
            return None
        from es_zoo.tasks.definitions import load_task  # lazy: `es-zoo --help` imports this module

        task = load_task(self.label_task)
        return sorted({label for source in task.sources for label in task.labels_for(source)})


DEMOS: dict[str, Demo] = {d.name: d for d in [
    Demo("fill-mask", "BETO fill-mask", "🎭", "fill-mask", "beto-base-cased",
         "Predict the missing word with BETO, the Spanish BERT.",
         [["Me gusta comer [MASK] con tomate."], ["La capital de Chile es [MASK]."],
          ["El perro [MASK] en el jardín."]]),
    Demo("nli", "Spanish NLI (XNLI)", "🔀", "sequence", "beto-base-cased-xnli",
         "Does the first sentence entail, contradict or say nothing about the second? (XNLI)",
         [["El hombre está tocando la guitarra en el parque.", "Un hombre toca música al aire libre."],
          ["La tienda cierra a las ocho.", "La tienda abre toda la noche."]], label_task="xnli"),
    Demo("paraphrase", "Spanish paraphrase (PAWS-X)", "🔁", "sequence", "beto-base-cased-pawsx",
         "Are the two sentences paraphrases? (PAWS-X)",
         [["Juan vendió su coche a María en 2010.", "En 2010, María le compró el coche a Juan."],
          ["El tren sale de Madrid hacia Sevilla.", "El tren sale de Sevilla hacia Madrid."]], label_task="pawsx"),
    Demo("ner", "Spanish named entities", "🏷️", "token", "beto-base-cased-ner",
         "People, organisations, places and other names (CoNLL-2002).",
         [["Gabriel García Márquez nació en Aracataca y trabajó para El Espectador en Bogotá."],
          ["La ONU celebró una reunión en Ginebra con representantes de España y México."]], label_task="ner"),
    Demo("pos", "Spanish part-of-speech tagging", "🔤", "token", "beto-base-cased-pos",
         "Universal POS tags for each word (UD).",
         [["El gato negro duerme tranquilamente sobre la alfombra."], ["Mañana iremos a la playa si no llueve."]], label_task="pos"),
    Demo("parsing", "Spanish dependency parsing", "🌳", "parser", None,
         "A biaffine dependency parser drawn as a tree (UD relations).",
         [["El perro de mi vecino ladra todas las noches."], ["María compró flores para su madre."]]),
    Demo("doc-classification", "Spanish news classification (MLDoc)", "🗞️", "sequence", "beto-base-cased-mldoc",
         "The topic of a news text: corporate, economics, government or markets (MLDoc).",
         [["El Banco Central elevó los tipos de interés un cuarto de punto para contener la inflación."],
          ["La compañía anunció la compra de su rival por 2.000 millones de euros."]], label_task="mldoc"),
    Demo("qa", "Spanish extractive question answering", "❓", "qa", "beto-base-cased-qa-mlqa",
         "The answer to a question, highlighted in its context (SQuAD-style).",
         [["¿Dónde nació Gabriel García Márquez?",
           "Gabriel García Márquez nació en Aracataca, Colombia, en 1927. Recibió el Premio Nobel de Literatura en 1982."]]),
    Demo("summarization", "Spanish summarization", "📝", "seq2seq", None,
         "A short summary of a news article (MLSUM-style), with a seq2seq model.",
         [["El Ayuntamiento de Madrid aprobó ayer un plan para ampliar la red de carriles bici en 120 kilómetros "
           "antes de 2026. La medida, que costará 40 millones de euros, incluye nuevos aparcamientos y la "
           "conexión de los barrios del sur con el centro de la ciudad."]], task="summarization"),
    Demo("split-rephrase", "Spanish split and rephrase", "✂️", "seq2seq", None,
         "One long sentence rewritten as two simpler ones (BiSECT).",
         [["Ana, que vive en Sevilla desde 2010, trabaja como enfermera en un hospital del centro de la ciudad."]],
         task="split_rephrase"),
    Demo("generative-qa", "Spanish generative question answering", "💬", "seq2seq", "barto-base-qa-sqac",
         "The answer written by a seq2seq model from a question and a context (SQAC).",
         [["¿En qué año recibió el Nobel?",
           "Gabriel García Márquez nació en Aracataca en 1927 y recibió el Premio Nobel de Literatura en 1982."]],
         task="generative_qa"),
    Demo("dialogue", "Spanish dialogue", "🗨️", "seq2seq", None,
         "The next turn of a conversation (MIAM DIHANA: train timetables); one turn per line.",
         [["Buenos días, quería saber el horario de trenes a Valencia.\nDígame para qué día."]], task="dialogue"),
    Demo("translation", "Spanish <-> English translation", "🌐", "seq2seq", "t5s-base-translation-es-en",
         "Translation with T5S / BARTO fine-tunes (WMT13).",
         [["El tren sale de la estación a las ocho de la mañana.", "es → en"],
          ["The museum opens every day except Monday.", "en → es"]], task="translation",
         reverse_default="t5s-base-translation-en-es"),
    Demo("zoo", "es-zoo: the Spanish model zoo", "🦙", "zoo", None,
         "The catalogue of Spanish models and a leaderboard of published and measured scores."),
]}
# The task names of recipes/tasks (and their snake_case spellings) for the demos named otherwise.
DEMO_ALIASES = {"xnli": "nli", "pawsx": "paraphrase", "mldoc": "doc-classification", "split_rephrase": "split-rephrase",
                "generative_qa": "generative-qa", "fill_mask": "fill-mask", "doc_classification": "doc-classification"}


def demo_name(name: str) -> str:
    """A demo's name from itself or its task's name (``xnli`` -> ``nli``)."""
    return DEMO_ALIASES.get(name, name)



def get_demo(name: str) -> Demo:
    if name not in DEMOS:
        import difflib

        close = difflib.get_close_matches(name, DEMOS, n=1)
        raise DemoError(f"no demo '{name}'" + (f"; did you mean '{close[0]}'?" if close else "")
                        + f" Demos: {', '.join(DEMOS)}")
    return DEMOS[name]
