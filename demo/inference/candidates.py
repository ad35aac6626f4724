"""Which of a picture's candidate crops the model reads: the digit is found by outcome.

demo.imaging.prepare offers one picture for a plain image, and for a photo the few groups of
strokes that could be the digit, best placed first (a shadow's edge, a ruled line, the page's
corner or the desk can outrank it there). All of them go through the model in one batch, and the
answer is their readings blended: each candidate weighs by how clearly the model reads it and by
its place. Taking the single clearest reading instead doubled the confidently wrong answers of
the weaker models (the clearest of several crops of a shadow or a line is often a confident "1");
blended, candidates that disagree make an unsure answer, and ones that agree a sure one.
"""
import numpy as np

from demo.contract import normalize

RANK_PRIOR = 0.3  # before reading, each candidate further down the placement order is this much less likely the digit
SHARPNESS = 2.0  # a candidate's weight grows as its top-1 probability to this power


def blend(probs: np.ndarray) -> tuple[np.ndarray, int]:
    """[K, classes] calibrated probabilities of K candidates, best placed first -> (the blended
    probabilities, the candidate that carries the answer most: the one to show). One candidate:
    its own probabilities, unchanged."""
    weights = probs.max(axis=1) ** SHARPNESS * RANK_PRIOR ** np.arange(len(probs))
    weights = weights / weights.sum()
    blended = weights @ probs
    return blended, int(np.argmax(weights * probs[:, int(np.argmax(blended))]))


def read_best(model, stacks: list[np.ndarray]) -> tuple[np.ndarray, list[int]]:
    """uint8 [K_i, H, W] candidate stacks of N images -> ([N, classes] each image's blended
    probabilities, which candidate shows it), every candidate in one model run."""
    probs = model.probabilities(model.run(normalize(np.concatenate(stacks), model.meta.input)))
    if len(probs) == len(stacks):  # one candidate each (plain pictures): nothing to blend
        return probs, [0] * len(stacks)
    read = [blend(p) for p in np.split(probs, np.cumsum([len(s) for s in stacks])[:-1])]
    return np.stack([r[0] for r in read]), [r[1] for r in read]
