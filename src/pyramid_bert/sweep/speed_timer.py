"""The timing of the separate timing pass: configurations of a sweep built on the pretrained model and timed against
it (:func:`pyramid_bert.measure.speed.time_against_dense`), with the FLOPs model's prediction for the same batches.

What is timed: the model every trial starts from (the pretrained encoder with a newly initialised head, as
``finetune`` loads it), made into each configuration with the trial's own settings. Speed depends on the
architecture and the inputs, not on the weights, so this stands for every seed's fine-tuned model; the dense twin is
that model without selection. Inputs: a seeded sample of the trials' test subset (the examples trials were timed on
before the pass existed), length-sorted, padded per batch, at the trials' inference batch size.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from transformers import AutoTokenizer

from pyramid_bert.data import load_task, resolve_model, tokenize_split
from pyramid_bert.measure.speed import predicted_split_speedup, time_against_dense
from pyramid_bert.patch.hf import unpyramidize
from pyramid_bert.sweep.finetune_trial import load_trial_data
from pyramid_bert.sweep.spec import TrialSpec
from pyramid_bert.sweep.speed_plan import SpeedPass
from pyramid_bert.training.batching import make_batches
from pyramid_bert.training.config import (
    FinetuneConfig,
    apply_selection,
    load_base_model,
    resolve_lengths,
    subset_indices,
    take,
)

#: The batching of the pass: the report's speed axis (length-sorted, padded per batch).
TIMED_MODE = "sorted"
WEIGHTS_NOTE = "the pretrained model trials start from (speed does not depend on the weights)"


@dataclass
class _Bench:
    """The dense model and the timed inputs of one (task or data files, model)."""

    model: Any
    inputs: dict[str, torch.Tensor]
    n: int
    batch_size: int
    scratch: Any = None  # a copy of ``model`` that predictions pyramidize and undo in turn

    @property
    def batches(self) -> list:
        return make_batches(self.inputs, self.batch_size, TIMED_MODE)


class ModelTimer:
    """Times configurations of a sweep (see the module docstring); models and inputs are loaded once per task."""

    def __init__(self, speed_pass: SpeedPass, *, device: str = "cpu", glue_dir: str | None = None) -> None:
        self.speed_pass, self.device, self.glue_dir = speed_pass, torch.device(device), glue_dir
        self._benches: dict[tuple, _Bench] = {}

    def predict(self, specs: Sequence[TrialSpec]) -> list[float]:
        """The FLOPs model's speedup of each configuration on the timed batches (no timing)."""
        predictions = []
        for spec in specs:
            bench = self._bench(spec)
            if bench.scratch is None:
                bench.scratch = copy.deepcopy(bench.model)
            batches = bench.batches
            try:
                predictions.append(predicted_split_speedup(_apply(bench.scratch, spec, bench.n), batches, batches))
            finally:
                unpyramidize(bench.scratch)
        return predictions

    def time(self, specs: Sequence[TrialSpec]) -> dict[str, dict[str, Any]]:
        """One interleaved timing of every configuration of ``specs`` (one task and model) against the dense model:
        config_key -> :func:`time_against_dense`'s entry plus what was timed."""
        bench = self._bench(specs[0])
        pyramids = {spec.config_key: _apply(copy.deepcopy(bench.model), spec, bench.n) for spec in specs}
        timed = time_against_dense(
            bench.model, {key: model.to(self.device) for key, model in pyramids.items()}, bench.inputs,
            batch_size=bench.batch_size, device=self.device, mode=TIMED_MODE, warmup=self.speed_pass.warmup,
            repeats=self.speed_pass.repeats,
        )  # fmt: skip
        what = {"mode": TIMED_MODE, "examples": int(len(bench.inputs["input_ids"])), "batch_size": bench.batch_size,
                "threads": torch.get_num_threads(), "weights": WEIGHTS_NOTE, "device": str(self.device)}  # fmt: skip
        return {key: {**entry, **what} for key, entry in timed.items()}

    def _bench(self, spec: TrialSpec) -> _Bench:
        identity = (spec.task, spec.model, spec.data, spec.max_eval_examples, spec.eval_batch_size)
        if identity not in self._benches:
            folder = resolve_model(spec.model)
            task = (load_trial_data(dict(spec.data), spec.model, 0) if spec.data
                    else load_task(spec.task, glue_dir=self.glue_dir or spec.glue_dir, seed=0))  # fmt: skip
            encodings = tokenize_split(AutoTokenizer.from_pretrained(folder), task, "test")
            encodings = take(encodings, subset_indices(len(encodings["labels"]), spec.max_eval_examples, 0))
            encodings = take(encodings, subset_indices(len(encodings["labels"]), self.speed_pass.examples, 0))
            model = load_base_model(folder, task).to(self.device).eval()
            self._benches[identity] = _Bench(model, encodings, task.max_length, spec.eval_batch_size)
        return self._benches[identity]


def _apply(model: Any, spec: TrialSpec, n: int) -> Any:
    """``model`` (dense) made into ``spec``'s configuration in place, as its trial does it."""
    fields = spec.finetune_config("")
    fields.pop("trial_options")
    config = FinetuneConfig.from_dict(fields)
    return apply_selection(model, config, resolve_lengths(config, n, model.config.num_hidden_layers))
