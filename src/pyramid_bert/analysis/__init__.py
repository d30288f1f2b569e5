"""The paper's analyses of a fine-tuned (or pretrained) model: token redundancy across encoders (Figure 1),
token importance by core-set order (Figures 4-5), and random non-increasing schedules (Figure 6).

Each module is small and pure where it can be: statistics take tensors, not models; the commands
(:mod:`pyramid_bert.commands.analyze`, :mod:`pyramid_bert.commands.ablate`) do loading and output.
"""
