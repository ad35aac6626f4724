"""Prove an ONNX graph computes what its PyTorch module computes (a hard gate, not a warning).

Order (as optimum's validation): output names -> shapes -> max |torch - ORT| <= atol at each
batch size -> 100.00% argmax agreement over the whole test set.
"""
from dataclasses import dataclass, field

import numpy as np
import onnxruntime as ort
import torch

ATOL = 1e-4
BATCH_SIZES = (1, 3, 64)


class ParityError(AssertionError):
    pass


@dataclass
class ParityReport:
    max_abs_diff: dict[int, float] = field(default_factory=dict)  # batch size -> max |torch - ORT|
    examples: int = 0
    argmax_agreement: float = 0.0
    torch_accuracy: float = 0.0
    ort_accuracy: float = 0.0


def cpu_session(onnx_model: bytes | str) -> ort.InferenceSession:
    return ort.InferenceSession(onnx_model, providers=["CPUExecutionProvider"])


@torch.no_grad()
def check_parity(module: torch.nn.Module, onnx_model: bytes | str, inputs: np.ndarray, labels: np.ndarray,
                 input_name: str, output_name: str, atol: float = ATOL, batch_sizes=BATCH_SIZES,
                 chunk: int = 1000) -> ParityReport:
    """inputs: float32 [N, ...] exactly as the model takes them (already normalized)."""
    module = module.eval().cpu()
    session = cpu_session(onnx_model)
    names = [o.name for o in session.get_outputs()]
    if names != [output_name]:
        raise ParityError(f"output names: ONNX has {names}, expected [{output_name!r}]")
    if [i.name for i in session.get_inputs()] != [input_name]:
        raise ParityError(f"input names: ONNX has {[i.name for i in session.get_inputs()]}, expected [{input_name!r}]")

    report = ParityReport()
    for bs in batch_sizes:
        x = inputs[:bs]
        expected = module(torch.from_numpy(x)).numpy()
        got = session.run([output_name], {input_name: x})[0]
        if got.shape != expected.shape:
            raise ParityError(f"batch {bs}: ONNX output shape {got.shape} != torch {expected.shape}")
        diff = float(np.max(np.abs(got - expected)))
        report.max_abs_diff[bs] = diff
        if not diff <= atol:  # also catches NaN
            raise ParityError(f"batch {bs}: max |torch - ORT| = {diff:.3g} > {atol:g}")

    agree = torch_correct = ort_correct = 0
    for start in range(0, len(inputs), chunk):
        x = inputs[start:start + chunk]
        torch_pred = module(torch.from_numpy(x)).numpy().argmax(1)
        ort_pred = session.run([output_name], {input_name: x})[0].argmax(1)
        y = labels[start:start + chunk]
        agree += int((torch_pred == ort_pred).sum())
        torch_correct += int((torch_pred == y).sum())
        ort_correct += int((ort_pred == y).sum())
    report.examples = len(inputs)
    report.argmax_agreement = agree / len(inputs)
    report.torch_accuracy = torch_correct / len(inputs)
    report.ort_accuracy = ort_correct / len(inputs)
    if agree != len(inputs):
        raise ParityError(f"argmax agrees on {agree}/{len(inputs)} test examples; 100% required")
    return report
