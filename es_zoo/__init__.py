"""es-zoo: reproduce, evaluate, publish and demo the Spanish pre-trained language models.

``import es_zoo`` is cheap: torch, transformers and gradio are imported only by the functions that
need them.

Example:
    >>> import es_zoo
    >>> es_zoo.list_models("beto*")[:2]
    ['beto-base-cased', 'beto-base-uncased']
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

__all__ = ["__version__", "list_models", "get_model", "load_model", "load_tokenizer", "load_recipe"]


def __getattr__(name: str) -> Any:  # lazy re-exports keep `import es_zoo` light
    if name in ("list_models", "get_model"):
        from es_zoo import catalog

        return getattr(catalog, name)
    if name in ("load_model", "load_tokenizer"):
        from es_zoo import loading

        return getattr(loading, name)
    if name == "load_recipe":
        from es_zoo.recipes import load_recipe

        return load_recipe
    raise AttributeError(f"module 'es_zoo' has no attribute {name!r}")
