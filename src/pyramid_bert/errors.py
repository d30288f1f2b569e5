"""Exceptions that the command line turns into one clear message instead of a traceback."""

from __future__ import annotations


class PyramidBertError(Exception):
    """Base class: bad user input or an unusable resource, described in plain words."""


class ConfigError(PyramidBertError, ValueError):
    """A parameter is out of its valid range; the message names the parameter and the valid choices."""


class DataError(PyramidBertError):
    """A data source is unknown, unreachable, corrupted or malformed."""


class CheckpointError(PyramidBertError):
    """A checkpoint folder is missing a file or holds a corrupted one."""


class BusyError(PyramidBertError):
    """A file or folder is in use by another run (its lock is held): trying again once that run ends may succeed."""


class RunFolderBusyError(BusyError, CheckpointError):
    """A run folder's lock is held by another run."""
