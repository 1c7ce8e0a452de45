"""PyTorch twins of the model families: same sizes, same rows, PyTorch's own default
initialisation and optimiser settings (optional: needs torch)."""
