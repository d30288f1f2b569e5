"""The saved form of a pyramid model's config: a folder that transformers' Auto classes load as a pyramid model.

:func:`~pyramid_bert.patch.hf.pyramidize` swaps the class of ``model.config`` (``BertConfig``, ``RobertaConfig``, ...)
for a subclass ``Pyramid<Name>`` (:func:`mark_config`), in the manner of the encoder's class swap. In memory nothing
changes: the same attributes, the dense ``model_type`` ("bert"), the selection settings in ``config.pyramid``.

Modifications of the saved ``config.json`` (``to_json_string``, hence ``save_pretrained``, ``Trainer``, ``push_to_hub``):

- ``"model_type": "pyramid-bert"`` and ``"dense_model_type": "bert"``: transformers finds the classes that pyramid-bert
  registers for that type (:mod:`pyramid_bert.patch.auto_config`, :mod:`pyramid_bert.patch.auto_model`); where
  pyramid-bert is not imported or not installed, the type is unknown, so the folder never loads as a dense model
  unnoticed;
- ``"auto_map"``: the Auto classes of :data:`CODE_FILE`, a few lines saved beside ``config.json`` (``save_pretrained``)
  that import them from pyramid-bert for ``trust_remote_code=True``, or fail with ``pip install pyramid-bert``.

The weights and their names stay the dense model's: the dense class (``BertForSequenceClassification``) reads them.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pyramid_bert.errors import ConfigError
from pyramid_bert.io import atomic_write_text

#: ``model_type`` of a saved pyramid model, whatever its encoder family.
MODEL_TYPE = "pyramid-bert"
#: The key of ``config.json`` that keeps the dense family's ``model_type`` ("bert", "roberta", ...).
DENSE_TYPE_KEY = "dense_model_type"
#: The module saved into a pyramid model folder for ``trust_remote_code=True``.
CODE_FILE = "pyramid_bert_auto.py"
#: transformers' Auto class -> the pyramid-bert class it gets (``auto_map``).
AUTO_CLASSES = {
    "AutoConfig": "PyramidAutoConfig",
    "AutoModel": "PyramidAutoModel",
    "AutoModelForSequenceClassification": "PyramidAutoModelForSequenceClassification",
}
INSTALL_COMMAND = "pip install pyramid-bert"
#: What loading a pyramid folder says where the pyramid-bert package is missing (with ``trust_remote_code=True``).
MISSING_PACKAGE_MESSAGE = (
    "This folder holds a Pyramid-BERT model: its encoder keeps fewer tokens in each layer (config.json, 'pyramid'), "
    f"which needs the pyramid-bert package. Install it with `{INSTALL_COMMAND}`. (Its weights are the dense model's: "
    "the dense class, e.g. BertForSequenceClassification.from_pretrained(FOLDER), reads them without the token "
    "selection and its speedup.)"
)
_CODE_HEADER = '"""Pyramid-BERT: lets transformers\' Auto classes load this model folder (trust_remote_code=True).'
CODE = f'''{_CODE_HEADER}

Written by pyramid-bert's save_pretrained. The model is a BERT-family encoder that keeps fewer tokens in each layer
(the "pyramid" entry of config.json). The token selection is the pyramid-bert package's code; this file only hands its
classes to transformers. Where pyramid-bert is imported (`import pyramid_bert`), Auto classes and pipelines load the
folder without this file and without trust_remote_code.
"""

try:
    from pyramid_bert import {", ".join(AUTO_CLASSES.values())}
except ModuleNotFoundError as error:
    if error.name != "pyramid_bert":
        raise
    raise ImportError({MISSING_PACKAGE_MESSAGE!r}) from None

__all__ = {list(AUTO_CLASSES.values())!r}
'''


class PyramidConfigMixin:
    """Saves a pyramid model's config in the form Auto classes load as a pyramid model; mixed in front of the
    config's own class by :func:`mark_config`."""

    _pyramid_dense_class: type

    def to_json_string(self, use_diff: bool = True) -> str:
        """The dense config's JSON with ``model_type`` "pyramid-bert", ``dense_model_type`` and ``auto_map``."""
        data = json.loads(super().to_json_string(use_diff))  # type: ignore[misc]
        return json.dumps(saved_form(data, self._pyramid_dense_class.model_type), indent=2, sort_keys=True) + "\n"

    def save_pretrained(self, save_directory: str | os.PathLike[str], push_to_hub: bool = False, **kwargs: Any) -> None:
        """:data:`CODE_FILE` and ``config.json`` into ``save_directory`` (within a model's ``save_pretrained``, so a
        model's ``push_to_hub``, which uploads the files its save wrote, takes the code along)."""
        Path(save_directory).mkdir(parents=True, exist_ok=True)
        write_code_file(save_directory)
        super().save_pretrained(save_directory, push_to_hub=push_to_hub, **kwargs)  # type: ignore[misc]

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickled as the dense class's object plus the mark (the ``Pyramid<Name>`` class is made at run time)."""
        return _marked_config, (self._pyramid_dense_class, self.__dict__)


def _marked_config(dense_class: type, state: dict[str, Any]) -> Any:
    """The unpickled marked config: a ``dense_class`` object with ``state``, marked."""
    config = dense_class.__new__(dense_class)
    config.__dict__.update(state)
    return mark_config(config)


_CLASS_CACHE: dict[type, type] = {}
_CLASS_LISTENERS: list[Callable[[type], None]] = []


def pyramid_config_class(dense_class: type) -> type:
    """``Pyramid<DenseClass>``: :class:`PyramidConfigMixin` in front of ``dense_class`` (one class per dense class, so
    the Auto classes can map it); each new one is handed to the listeners of :func:`on_new_config_class`."""
    if dense_class not in _CLASS_CACHE:
        namespace = {"_pyramid_dense_class": dense_class, "__module__": __name__}
        created = type(f"Pyramid{dense_class.__name__}", (PyramidConfigMixin, dense_class), namespace)
        _CLASS_CACHE[dense_class] = created
        for listener in _CLASS_LISTENERS:
            listener(created)
    return _CLASS_CACHE[dense_class]


def on_new_config_class(listener: Callable[[type], None]) -> None:
    """Call ``listener`` with every ``Pyramid<DenseClass>`` made so far and with each one made later (the Auto model
    classes map them as they come: resolving families ahead would import transformers' model modules)."""
    if listener not in _CLASS_LISTENERS:
        _CLASS_LISTENERS.append(listener)
    for created in list(_CLASS_CACHE.values()):
        listener(created)


def mark_config(config: Any) -> Any:
    """Make ``config`` save as a pyramid model's config (in place; a no-op when it already does); returns it."""
    if not isinstance(config, PyramidConfigMixin):
        config.__class__ = pyramid_config_class(config.__class__)
    return config


def unmark_config(config: Any) -> Any:
    """Undo :func:`mark_config` in place (a no-op on a dense config); returns ``config``."""
    if isinstance(config, PyramidConfigMixin):
        config.__class__ = config._pyramid_dense_class
    return config


def dense_config_class(config_class: type) -> type:
    """The dense family's config class of a ``Pyramid<DenseClass>`` (``config_class`` itself for a dense one)."""
    return getattr(config_class, "_pyramid_dense_class", config_class)


def saved_form(data: dict[str, Any], dense_model_type: str) -> dict[str, Any]:
    """A dense config dict as a pyramid folder saves it: ``model_type`` "pyramid-bert", ``dense_model_type``,
    ``auto_map`` with pyramid-bert's classes (other entries of an existing ``auto_map`` are kept)."""
    module = Path(CODE_FILE).stem
    auto_map = {**(data.get("auto_map") or {}), **{auto: f"{module}.{name}" for auto, name in AUTO_CLASSES.items()}}
    return {**data, "model_type": MODEL_TYPE, DENSE_TYPE_KEY: dense_model_type, "auto_map": auto_map}


def dense_form(data: dict[str, Any]) -> dict[str, Any]:
    """Inverse of :func:`saved_form`: the dense family's config dict (``pyramid`` settings kept); a ConfigError
    when ``dense_model_type`` is missing."""
    dense_model_type = data.get(DENSE_TYPE_KEY)
    if not isinstance(dense_model_type, str) or not dense_model_type:
        raise ConfigError(
            f"config.json: model_type {MODEL_TYPE!r} needs {DENSE_TYPE_KEY!r} (the dense model's type, e.g. 'bert'); "
            "the folder was not written by pyramid-bert, or was edited"
        )
    ours = {f"{Path(CODE_FILE).stem}.{name}" for name in AUTO_CLASSES.values()}
    auto_map = {auto: ref for auto, ref in (data.get("auto_map") or {}).items() if ref not in ours}
    dense = {key: value for key, value in data.items() if key not in (DENSE_TYPE_KEY, "auto_map")}
    return {**dense, "model_type": dense_model_type, **({"auto_map": auto_map} if auto_map else {})}


def write_code_file(folder: str | os.PathLike[str]) -> Path:
    """Write :data:`CODE_FILE` into ``folder`` (atomically); a file of that name that pyramid-bert did not write is
    refused with a ConfigError, never replaced."""
    path = Path(folder) / CODE_FILE
    if path.is_file() and not path.read_text(errors="replace").startswith(_CODE_HEADER):
        raise ConfigError(
            f"save_pretrained: {path} exists and was not written by pyramid-bert; a pyramid model folder needs that "
            "name for the code that loads it: save to another folder or move that file"
        )
    if path.is_file() and path.read_text() == CODE:
        return path
    return atomic_write_text(path, CODE)
