"""Serving side of tinyzoo: ONNX Runtime only, no torch import anywhere in this package."""
