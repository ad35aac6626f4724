"""ONNX Runtime sessions and providers, the model zoo, the one classification pipeline, the Open
Inference Protocol's tensors and the Triton client. Imports settings, contract and imaging."""
