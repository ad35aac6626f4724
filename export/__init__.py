"""Checkpoint -> ONNX (+ metadata), parity check vs PyTorch."""
