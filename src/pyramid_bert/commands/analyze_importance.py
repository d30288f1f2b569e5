"""The ``analyze importance`` sub-command's work (parser in :mod:`pyramid_bert.commands.analyze`)."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from pyramid_bert.errors import ConfigError


def parse_layers(text: str | None, num_layers: int) -> list[int]:
    """``"1,3,6"`` -> [1, 3, 6]; None -> every encoder 1..L; ConfigError naming --layers otherwise."""
    if text is None:
        return list(range(1, num_layers + 1))
    try:
        layers = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise ConfigError(f"--layers: expected comma-separated encoders in 1..{num_layers}, got {text!r}") from None
    if not layers or any(not 1 <= layer <= num_layers for layer in layers):
        raise ConfigError(f"--layers: every encoder must be in 1..{num_layers}, got {text!r}")
    return layers


def parse_ms(text: str) -> list[int | float | None]:
    """``"1,k-1,0.5"`` -> [1, None, 0.5]; ConfigError naming --ms with the valid forms otherwise."""
    from pyramid_bert.run_config import parse_m

    values = []
    for part in (p.strip() for p in text.split(",")):
        try:
            values.append(parse_m(part))
        except (ConfigError, ValueError):
            raise ConfigError(f"--ms: {part!r} is no m; valid: an int >= 1, a float in (0, 1), or k-1") from None
    if not values:
        raise ConfigError("--ms: give at least one m (an int >= 1, a float in (0, 1), or k-1)")
    return values


def run(args: argparse.Namespace) -> int:
    import torch

    from pyramid_bert.analysis.importance import importance_curves
    from pyramid_bert.analysis.importance_report import write_importance
    from pyramid_bert.analysis.inputs import load_inputs, model_inputs
    from pyramid_bert.commands.analyze import _check_common, analysis_task, data_flags
    from pyramid_bert.io import check_output_dir, mark_output_dir

    _check_common(args)
    ms = parse_ms(args.ms)
    check_output_dir(args.out, "--out", kind="analyze", force=args.force)
    torch.set_num_threads(args.threads)
    started = time.perf_counter()
    model = args.model
    task = analysis_task(args, model)
    if model == "ablate-dense":
        from pyramid_bert.commands.ablate import dense_checkpoint

        model = str(dense_checkpoint(args))
    inputs = load_inputs(model, task=task, split=args.split, max_examples=args.max_examples, seed=args.seed,
                         glue_dir=args.glue_dir)  # fmt: skip
    if not inputs.fine_tuned:
        print(f"analyze importance: warning: {model} is not a finetune run folder; its classification head may be "
              "untrained, which makes the MI meaningless", file=sys.stderr)  # fmt: skip
    layers = parse_layers(args.layers, inputs.model.config.num_hidden_layers)
    curves, ceiling = importance_curves(inputs.model, model_inputs(inputs.encodings), layers=layers, ms=ms,
                                        batch_size=args.batch_size, progress=not args.no_progress)  # fmt: skip
    seconds = time.perf_counter() - started
    how = (f"Model `{model}`, task {inputs.task.name}, split {args.split}, {len(inputs.encodings['labels'])} inputs "
           f"(seed {args.seed}), N = {inputs.task.max_length}, encoders {layers}; {seconds:.0f} s wall, "
           f"{args.threads} thread(s). Re-run: `pyramid-bert analyze importance --model {args.model} "
           f"{data_flags(args)} --max-examples {args.max_examples} --ms {args.ms}"
           f"{'' if args.layers is None else f' --layers {args.layers}'}`.")  # fmt: skip
    out = mark_output_dir(args.out, "analyze")
    files = write_importance(curves, ceiling, out, heading="Token importance (Figures 4-5)", how=how)
    print(Path(files["section"]).read_text())
    print(f"analyze importance: {seconds:.0f} s; files in {args.out}", file=sys.stderr)
    return 0
