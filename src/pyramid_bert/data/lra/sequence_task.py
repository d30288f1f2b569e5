"""The data structures of the Long Range Arena tasks: token sequences with labels, and catalog entries."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from pyramid_bert.errors import ConfigError


@dataclass
class SequenceTask:
    """A classification task over fixed-length token sequences.

    Attributes:
        name: catalog name, e.g. "lra-image".
        splits: "train", "dev", "test" -> ``(tokens int64 [n, seq_len], labels int64 [n])``; "dev" is for
            choosing, "test" for reporting. Tokens are numpy arrays; use ``torch.from_numpy`` for tensors.
        vocab_size: token ids lie in ``[0, vocab_size)``.
        num_labels: labels lie in ``[0, num_labels)``.
        seq_len: N, the length of every sequence.
        pad_id: the id of padding, or None when every position is real (the image tasks).
        label_names: names in label-id order.
        metric: "accuracy" for all LRA tasks.
        info: free-form facts about the data (source, version, generation parameters).
    """

    name: str
    splits: dict[str, tuple[np.ndarray, np.ndarray]]
    vocab_size: int
    num_labels: int
    seq_len: int
    pad_id: int | None
    label_names: list[str]
    metric: str = "accuracy"
    info: dict[str, object] = field(default_factory=dict)

    def tokens(self, split: str) -> np.ndarray:
        """int64 ``[n, seq_len]`` token ids of ``split``."""
        return self._split(split)[0]

    def labels(self, split: str) -> np.ndarray:
        """int64 ``[n]`` labels of ``split``."""
        return self._split(split)[1]

    def attention_mask(self, split: str) -> np.ndarray:
        """bool ``[n, seq_len]``: True at real tokens, False at padding (all True when pad_id is None)."""
        tokens = self.tokens(split)
        if self.pad_id is None:
            return np.ones(tokens.shape, dtype=bool)
        return tokens != self.pad_id

    def label_counts(self) -> dict[str, dict[str, int]]:
        """Split -> label name -> number of examples."""
        counts = {}
        for split, (_, labels) in self.splits.items():
            per_label = np.bincount(labels, minlength=self.num_labels)
            counts[split] = {name: int(count) for name, count in zip(self.label_names, per_label, strict=True)}
        return counts

    def _split(self, split: str) -> tuple[np.ndarray, np.ndarray]:
        if split not in self.splits:
            raise ConfigError(f"unknown split {split!r} of task {self.name}; valid splits: {', '.join(self.splits)}")
        return self.splits[split]


@dataclass(frozen=True)
class LraSource:
    """One Long Range Arena source as the catalog lists it (nothing is read to build it).

    Attributes:
        name: "lra-image", "lra-pathfinder32" or "lra-bytes".
        kind: "image", "synthetic image" or "bytes".
        description: one line about what the data is and where it comes from.
        size: number of examples with the default options.
        splits: split name -> number of examples with the default options (None when known only after reading).
        metric: "accuracy".
        seq_len: N, the sequence length with the default options.
        vocab_size: number of token ids.
        num_labels: number of classes.
        cached: whether loading needs no download or generation.
    """

    name: str
    kind: str
    description: str
    size: int
    splits: dict[str, int | None]
    metric: str
    seq_len: int
    vocab_size: int
    num_labels: int
    cached: bool
