"""PyTorch side of tinyzoo: datasets, the model registry, the train loop, the course lessons."""
