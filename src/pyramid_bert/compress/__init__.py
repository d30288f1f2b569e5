"""``pyramid-bert compress``: try a few pyramid configurations adapted from a dense model, measure each one's real
speedup and dev metric, and ship the fastest that meets the goal as a Hugging Face model folder.

Modules: :mod:`~pyramid_bert.compress.candidates` (what is tried), :mod:`~pyramid_bert.compress.choose` (the
choice rule), :mod:`~pyramid_bert.compress.measure` (speed and metrics), :mod:`~pyramid_bert.compress.run` (the
resumable run), :mod:`~pyramid_bert.compress.output` (the folder, model card, report and plot).
"""

from __future__ import annotations

from pyramid_bert.compress.candidates import DEFAULT_CANDIDATES, Candidate, read_candidates
from pyramid_bert.compress.choose import Choice, choose
from pyramid_bert.compress.run import CompressResult, CompressSettings, compress

__all__ = [
    "DEFAULT_CANDIDATES",
    "Candidate",
    "Choice",
    "CompressResult",
    "CompressSettings",
    "choose",
    "compress",
    "read_candidates",
]
