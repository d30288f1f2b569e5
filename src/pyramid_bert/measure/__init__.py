"""Measurement: evaluation (metric, speed, memory), timing protocols, the speed benchmark."""
