"""Model patches: swap a model's encoder class for one that keeps fewer tokens in each layer."""
