"""Load catalogued models and tokenizers with plain transformers ``from_pretrained``.

A name is resolved in this order: an existing local folder (a model folder, or an es-zoo run folder
whose ``model/`` holds the export), a catalogue name (mapped to its Hub id), a Hub id. Weights are
loaded from safetensors only, at a pinnable ``revision``. When the Hub cannot be reached the call fails
within seconds with a message that says how to use a local path instead.

Example:
    >>> import es_zoo
    >>> tok = es_zoo.load_tokenizer("runs/beto")  # doctest: +SKIP
    >>> model = es_zoo.load_model("beto-base-cased", task="fill-mask", revision="main")  # doctest: +SKIP
"""

from __future__ import annotations

import os
import re
import warnings
from pathlib import Path
from typing import Any

from es_zoo.catalog import find_model
from es_zoo.errors import EsZooError, HubUnreachableError

# Task names accepted by load_model, and the Auto class each one needs.
TASK_CLASSES = {
    None: "AutoModel",
    "base": "AutoModel",
    "fill-mask": "AutoModelForMaskedLM",
    "mlm": "AutoModelForMaskedLM",
    "token-classification": "AutoModelForTokenClassification",
    "ner": "AutoModelForTokenClassification",
    "pos": "AutoModelForTokenClassification",
    "sequence-classification": "AutoModelForSequenceClassification",
    "xnli": "AutoModelForSequenceClassification",
    "pawsx": "AutoModelForSequenceClassification",
    "mldoc": "AutoModelForSequenceClassification",
    "question-answering": "AutoModelForQuestionAnswering",
    "qa": "AutoModelForQuestionAnswering",
    "text2text": "AutoModelForSeq2SeqLM",
    "seq2seq": "AutoModelForSeq2SeqLM",
}

_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")


_ANSI = re.compile(r"\x1b\[[0-9;]*m")


class captured_load_report:
    """A context that keeps transformers' LOAD REPORT (the weights a checkpoint lacks or leaves unused,
    printed with terminal colour codes on every load with a new head) off the terminal: ``.reports``
    holds them as plain text, for a log file."""

    _LOGGERS = ("transformers.modeling_utils", "transformers.utils.loading_report")

    def __init__(self) -> None:
        import logging

        self.reports: list[str] = []
        outer = self

        class _Keep(logging.Filter):
            def filter(self, record: logging.LogRecord) -> bool:
                message = record.getMessage()
                if "LOAD REPORT" in message:
                    outer.reports.append(_ANSI.sub("", message))
                    return False
                return True

        self._filter = _Keep()

    def __enter__(self) -> "captured_load_report":
        import logging

        for name in self._LOGGERS:
            logging.getLogger(name).addFilter(self._filter)
        return self

    def __exit__(self, *exc: Any) -> None:
        import logging

        for name in self._LOGGERS:
            logging.getLogger(name).removeFilter(self._filter)


def resolve(name_or_path: str | os.PathLike) -> tuple[str, bool]:
    """``(where, is_local)``: a local folder, or the Hub id to load from."""
    p = Path(name_or_path).expanduser()
    if p.is_dir():
        if not (p / "config.json").is_file() and (p / "model" / "config.json").is_file():
            return str(p / "model"), True
        if not (p / "config.json").is_file() and (p / "recipe.yaml").is_file():
            steps = sorted((c for c in (p / "checkpoints").glob("step-*") if c.name[5:].isdigit()),
                           key=lambda c: int(c.name[5:])) if (p / "checkpoints").is_dir() else []
            newest = f"; its newest checkpoint is {steps[-1]}" if steps else ""
            raise EsZooError(f"{p}: an es-zoo run that has not finished: it has no model/ folder yet{newest}. Wait "
                             "for it to finish (or resume it with `es-zoo reproduce ... --resume`), then load the run "
                             "folder")
        return str(p), True
    text = str(name_or_path)
    rec = find_model(text)
    if rec is not None:
        if rec.hub_id is None:
            raise EsZooError(
                f"'{rec.name}' is a warm-started model with no published checkpoint; build it with "
                f"`es-zoo reproduce {rec.recipe or 'bert2bert'}` and load the run folder"
            )
        return rec.hub_id, False
    first = text.split("/", 1)[0]
    if text.startswith((".", "/", "~")) or text.count("/") > 1 or ("/" in text and Path(first).is_dir()):
        # a path here, even when it looks like ORG/NAME ("runs/quik" beside a runs/ folder): never a Hub id
        import difflib

        hint = ""
        if p.parent.is_dir():
            close = difflib.get_close_matches(p.name, [c.name for c in p.parent.iterdir() if c.is_dir()], n=1)
            hint = f" (did you mean {p.parent / close[0]}?)" if close else ""
        raise EsZooError(f"{text}: no such folder{hint}")
    if not _HUB_ID.match(text):
        raise EsZooError(f"'{text}' is neither a local folder, a catalogue name nor a Hub id (ORG/NAME)")
    return text, False


def _unreachable(hub_id: str, exc: BaseException) -> HubUnreachableError:
    offline = os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on")
    why = "offline mode is on (HF_HUB_OFFLINE=1)" if offline else f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"
    return HubUnreachableError(
        f"could not load '{hub_id}' from the Hugging Face Hub ({why}). On a machine with access, run "
        f"`hf download {hub_id} --local-dir DIR` (or `git clone https://huggingface.co/{hub_id}`), copy DIR "
        "here and pass the folder instead of the id, e.g. es_zoo.load_model('DIR') or `--model DIR`."
    )


PROBE_TIMEOUT_S = 3.0
_PROBED: dict[str, str | None] = {}


def endpoint_unreachable() -> str | None:
    """Why the Hub endpoint (``HF_ENDPOINT``) does not accept a connection within a few seconds, or None;
    probed once per process. Behind a proxy a direct connection says nothing, so it is not tried."""
    import socket
    import urllib.request
    from urllib.parse import urlsplit

    from huggingface_hub import constants

    endpoint = constants.ENDPOINT
    if endpoint not in _PROBED:
        url = urlsplit(endpoint)
        if urllib.request.getproxies() and not urllib.request.proxy_bypass(url.hostname or ""):
            return None
        port = url.port or (443 if url.scheme == "https" else 80)
        try:
            with socket.create_connection((url.hostname or "", port), timeout=PROBE_TIMEOUT_S):
                _PROBED[endpoint] = None
        except OSError as exc:
            _PROBED[endpoint] = f"the Hub endpoint {endpoint} is unreachable ({exc.strerror or type(exc).__name__})"
    return _PROBED[endpoint]


def _hub_probe(hub_id: str, revision: str | None) -> BaseException | None:
    """One quick request to the Hub (respecting proxies and HF_ENDPOINT); the error, or None if reachable.

    transformers retries each file it fetches, which can take a minute when the network is down;
    one probe with a short timeout answers in seconds.
    """
    if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on"):
        return None  # huggingface_hub then fails at once (or serves the local cache)
    reason = endpoint_unreachable()  # a connection, not an API call: huggingface_hub retries those for ~30 s
    if reason is not None:
        return ConnectionError(reason)
    from huggingface_hub import HfApi
    from huggingface_hub.errors import RepositoryNotFoundError, RevisionNotFoundError

    try:
        HfApi().model_info(hub_id, revision=revision, timeout=5)
    except (RepositoryNotFoundError, RevisionNotFoundError) as exc:
        raise EsZooError(f"'{hub_id}' (revision {revision or 'main'}) does not exist on the Hub or is private: "
                         f"{str(exc).splitlines()[0]}") from None
    except Exception as exc:  # noqa: BLE001 - connection refused, DNS, timeout, proxy, 5xx
        return exc
    return None


def _from_pretrained(cls: Any, where: str, is_local: bool, revision: str | None = None, **kwargs: Any) -> Any:
    if is_local:
        try:
            return cls.from_pretrained(where, **kwargs)
        except OSError as exc:
            raise EsZooError(f"{where}: cannot load: {str(exc).splitlines()[0]}") from None
    problem = _hub_probe(where, revision)
    if problem is not None:
        try:  # a copy already in the local Hugging Face cache still works without the network
            loaded = cls.from_pretrained(where, revision=revision, local_files_only=True, **kwargs)
        except Exception:  # noqa: BLE001
            raise _unreachable(where, problem) from None
        warnings.warn(
            f"the Hugging Face Hub could not be reached for '{where}'; using the copy in the local cache, "
            "which may be older than the Hub's", stacklevel=3,
        )
        return loaded
    try:
        return cls.from_pretrained(where, revision=revision, **kwargs)
    except Exception as exc:  # noqa: BLE001 - every Hub failure becomes one clear message
        if isinstance(exc, (ValueError, TypeError)) and "safetensors" not in str(exc):
            raise
        raise _unreachable(where, exc) from None


def load_model(
    name_or_path: str | os.PathLike, task: str | None = None, revision: str | None = None, **kwargs: Any,
) -> Any:
    """A transformers model for ``task`` (see ``TASK_CLASSES``) from a local folder, name or Hub id."""
    import transformers

    if task not in TASK_CLASSES:
        raise EsZooError(f"unknown task '{task}'; expected one of: {', '.join(str(t) for t in TASK_CLASSES if t)}")
    cls = getattr(transformers, TASK_CLASSES[task])
    where, is_local = resolve(name_or_path)
    return _from_pretrained(cls, where, is_local, revision=revision, use_safetensors=True, **kwargs)


def load_config(name_or_path: str | os.PathLike, revision: str | None = None) -> Any:
    """The model's ``config.json`` (``AutoConfig.from_pretrained``), resolved like :func:`load_model`."""
    from transformers import AutoConfig

    where, is_local = resolve(name_or_path)
    return _from_pretrained(AutoConfig, where, is_local, revision=revision)


def load_tokenizer(name_or_path: str | os.PathLike, revision: str | None = None, **kwargs: Any) -> Any:
    """The tokenizer saved with a model (``AutoTokenizer.from_pretrained``)."""
    from transformers import AutoTokenizer

    where, is_local = resolve(name_or_path)
    if is_local and not any((Path(where) / f).is_file() for f in ("tokenizer.json", "vocab.txt", "tokenizer_config.json")):
        parent_tok = Path(where).parent / "tokenizer"
        if parent_tok.is_dir():
            where = str(parent_tok)
    return _from_pretrained(AutoTokenizer, where, is_local, revision=revision, **kwargs)
