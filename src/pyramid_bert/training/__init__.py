"""Fine-tuning: the run config, the training loop, checkpoints, scoring, metrics, batching, distillation."""
