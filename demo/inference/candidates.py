"""Which of a picture's candidate crops the model reads: the digit is found by outcome.

demo.imaging.prepare offers one picture for a plain image, and for a photo the few groups of
strokes that could be the digit, best placed first (a shadow's edge, a ruled line, the page's
corner or the desk can outrank it there). All of them go through the model in one batch; the
answer is the candidate the model reads with the most calibrated confidence, the best-placed one
unless another reads clearly better.
"""
import numpy as np

from demo.contract import normalize

SWITCH_MARGIN = 0.1  # another candidate is taken over the best-placed one when its top-1 probability is this much higher


def choose(probs: np.ndarray) -> int:
    """[K, classes] calibrated probabilities of K candidates, best placed first -> the one to answer with."""
    top = probs.max(axis=1)
    best = int(np.argmax(top))
    return best if top[best] >= top[0] + SWITCH_MARGIN else 0


def read_best(model, stacks: list[np.ndarray]) -> tuple[np.ndarray, list[int]]:
    """uint8 [K_i, H, W] candidate stacks of N images -> ([N, classes] probabilities of each image's
    chosen candidate, which candidate that was), every candidate in one model run."""
    counts = np.cumsum([len(s) for s in stacks])[:-1]
    probs = model.probabilities(model.run(normalize(np.concatenate(stacks), model.meta.input)))
    chosen = [choose(p) for p in np.split(probs, counts)]
    rows = np.concatenate([[0], counts]) + chosen
    return probs[rows], chosen
