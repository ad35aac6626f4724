"""Prove an ONNX graph computes what its PyTorch module computes (a hard gate, not a warning).

Order (as optimum's validation): input/output names -> shapes -> max |torch - ORT| <= atol on
every output -> 100.00% argmax agreement over the whole evaluation set.
"""
from dataclasses import dataclass, field

import numpy as np
import onnxruntime as ort
import torch

ATOL = 1e-4
BATCH_SIZES = (1, 3, 64)
SEQUENCE_CASES = [(batch, length) for length in (1, 5, 17) for batch in (1, 3)]


class ParityError(AssertionError):
    pass


@dataclass
class ParityReport:
    max_abs_diff: dict[str, float] = field(default_factory=dict)  # case -> max |torch - ORT| over outputs
    examples: int = 0
    argmax_agreement: float = 0.0
    torch_accuracy: float = 0.0
    ort_accuracy: float = 0.0


def cpu_session(onnx_model: bytes | str) -> ort.InferenceSession:
    return ort.InferenceSession(onnx_model, providers=["CPUExecutionProvider"])


def check_names(session: ort.InferenceSession, input_names: list[str], output_names: list[str]) -> None:
    got_in, got_out = [i.name for i in session.get_inputs()], [o.name for o in session.get_outputs()]
    if got_out != output_names:
        raise ParityError(f"output names: ONNX has {got_out}, expected {output_names}")
    if got_in != input_names:
        raise ParityError(f"input names: ONNX has {got_in}, expected {input_names}")


@torch.no_grad()
def compare(module, session, feeds: dict[str, np.ndarray], output_names: list[str], atol: float, case: str) -> float:
    """Run both engines on the same feeds; shapes, then values, for every output -> max |diff|."""
    expected = module(*(torch.from_numpy(v) for v in feeds.values()))
    expected = expected if isinstance(expected, tuple) else (expected,)
    got = session.run(output_names, feeds)
    worst = 0.0
    for name, e, g in zip(output_names, expected, got):
        e = e.numpy()
        if g.shape != e.shape:
            raise ParityError(f"{case}: output {name!r} shape {g.shape} in ONNX, {e.shape} in torch")
        diff = float(np.max(np.abs(g - e)))
        if not diff <= atol:  # also catches NaN
            raise ParityError(f"{case}: output {name!r} max |torch - ORT| = {diff:.3g} > {atol:g}")
        worst = max(worst, diff)
    return worst


@torch.no_grad()
def check_parity(module: torch.nn.Module, onnx_model: bytes | str, inputs: np.ndarray, labels: np.ndarray,
                 input_name: str, output_name: str, atol: float = ATOL, batch_sizes=BATCH_SIZES,
                 chunk: int = 256) -> ParityReport:
    """Image models. inputs: float32 [N, ...] exactly as the model takes them (already normalized).
    chunk: rows per call; eager PyTorch runs a ResNet's 10,000 test images in 256s in 3/4 of the
    time it takes in 1000s, whose activations (100 MB a layer) outgrow the caches."""
    module = module.eval().cpu()
    session = cpu_session(onnx_model)
    check_names(session, [input_name], [output_name])
    report = ParityReport()
    for bs in batch_sizes:
        report.max_abs_diff[f"batch {bs}"] = compare(module, session, {input_name: inputs[:bs]}, [output_name], atol,
                                                     f"batch {bs}")

    agree = torch_correct = ort_correct = 0
    # channels-last: eager PyTorch's CPU convolutions run a ResNet's test set ~1.4x faster (the
    # same values within 1e-5); the module is handed back in the default layout
    layout = torch.channels_last if inputs.ndim == 4 else torch.contiguous_format
    module.to(memory_format=layout)
    try:
        for start in range(0, len(inputs), chunk):
            x = inputs[start:start + chunk]
            torch_pred = module(torch.from_numpy(x).contiguous(memory_format=layout)).numpy().argmax(1)
            ort_pred = session.run([output_name], {input_name: x})[0].argmax(1)
            y = labels[start:start + chunk]
            agree += int((torch_pred == ort_pred).sum())
            torch_correct += int((torch_pred == y).sum())
            ort_correct += int((ort_pred == y).sum())
    finally:
        module.to(memory_format=torch.contiguous_format)
    report.examples = len(inputs)
    report.argmax_agreement = agree / len(inputs)
    report.torch_accuracy = torch_correct / len(inputs)
    report.ort_accuracy = ort_correct / len(inputs)
    if agree != len(inputs):
        raise ParityError(f"argmax agrees on {agree}/{len(inputs)} test examples; 100% required")
    return report


@torch.no_grad()
def check_sequence_parity(module, onnx_model: bytes | str, input_names: list[str], output_names: list[str],
                          tokens: np.ndarray, targets: np.ndarray, state_shape: tuple[int, int], vocab_size: int,
                          atol: float = ATOL, seed: int = 0) -> ParityReport:
    """Sequence models: random tokens and random initial states at every (batch, length) case,
    then the trained pair itself (zero state) for argmax agreement and accuracy.
    state_shape: (layers, hidden); each state input is [layers, batch, hidden]."""
    module = module.eval().cpu()
    session = cpu_session(onnx_model)
    check_names(session, input_names, output_names)
    rng = np.random.default_rng(seed)
    report = ParityReport()
    for batch, length in SEQUENCE_CASES:
        feeds = {input_names[0]: rng.integers(0, vocab_size, (batch, length), dtype=np.int64)}
        for name in input_names[1:]:
            feeds[name] = rng.standard_normal((state_shape[0], batch, state_shape[1])).astype(np.float32)
        case = f"batch {batch} length {length}"
        report.max_abs_diff[case] = compare(module, session, feeds, output_names, atol, case)

    zero = {n: np.zeros((state_shape[0], len(tokens), state_shape[1]), np.float32) for n in input_names[1:]}
    feeds = {input_names[0]: tokens, **zero}
    torch_pred = module(*(torch.from_numpy(v) for v in feeds.values()))[0].numpy().argmax(-1)
    ort_pred = session.run(output_names[:1], feeds)[0].argmax(-1)
    report.examples = targets.size
    report.argmax_agreement = float((torch_pred == ort_pred).mean())
    report.torch_accuracy = float((torch_pred == targets).mean())
    report.ort_accuracy = float((ort_pred == targets).mean())
    if report.argmax_agreement != 1.0:
        raise ParityError(f"argmax agrees on {report.argmax_agreement:.2%} of positions; 100% required")
    return report
