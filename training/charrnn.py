"""The course's char RNN: learn to map "hello" -> "ohlol" (or any equal-length text pair).

    python -m training hello-rnn                                  # the course: 35 epochs, Adam 0.05
    python -m training hello-gru --input-text "abcd" --target-text "bcda" --out-dir runs/abcd

One epoch = one Adam step on the whole sequence, as in the course; each epoch prints the string
the model predicts. The vocab is derived from both texts and stored with the checkpoint.
"""
import time
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from training.config import DRY_RUN_STEPS, TrainConfig, check_text_pair
from training.trainer import SHARED_OPTIONS, RunPaths, honoured_config, write_record


class CharRNN(nn.Module):
    """tokens int64 [N, T] (+ initial state) -> logits [N, T, V] (+ final state).

    embedding=0 feeds one-hot vectors (the course); head=False uses the RNN's hidden state as the
    logits directly (the course's hello-rnn: hidden size == vocab size).
    State tensors are [layers, N, hidden]; an LSTM has two (h, c), the others one (h).
    """

    def __init__(self, vocab_size: int, cell: str = "rnn", hidden: int = 0, embedding: int = 0, head: bool = True,
                 layers: int = 1):
        super().__init__()
        self.vocab_size, self.cell_type, self.layers = vocab_size, cell, layers
        self.hidden = hidden or vocab_size
        if not head and self.hidden != vocab_size:
            raise ValueError("without a head the hidden size must equal the vocab size")
        self.embed = nn.Embedding(vocab_size, embedding) if embedding else None
        rnn_class = {"rnn": nn.RNN, "gru": nn.GRU, "lstm": nn.LSTM}[cell]
        self.rnn = rnn_class(embedding or vocab_size, self.hidden, num_layers=layers, batch_first=True)
        self.head = nn.Linear(self.hidden, vocab_size) if head else None

    @property
    def state_count(self) -> int:
        return 2 if self.cell_type == "lstm" else 1

    def initial_state(self, batch: int) -> tuple[torch.Tensor, ...]:
        return tuple(torch.zeros(self.layers, batch, self.hidden) for _ in range(self.state_count))

    def forward(self, tokens: torch.Tensor, h0: torch.Tensor | None = None, c0: torch.Tensor | None = None):
        """-> (logits, hn) or, for an LSTM, (logits, hn, cn)."""
        x = self.embed(tokens) if self.embed is not None else F.one_hot(tokens, self.vocab_size).float()
        if h0 is None:
            h0, c0 = self.initial_state(tokens.shape[0]) if self.cell_type == "lstm" else (*self.initial_state(tokens.shape[0]), None)
        out, final = self.rnn(x, (h0, c0) if self.cell_type == "lstm" else h0)
        logits = self.head(out) if self.head is not None else out
        return (logits, *final) if self.cell_type == "lstm" else (logits, final)


@dataclass
class TextPair:
    input_text: str = "hello"
    target_text: str = "ohlol"

    def validate(self) -> None:
        check_text_pair(self.input_text, self.target_text)

    def vocab(self) -> list[str]:
        return sorted(set(self.input_text) | set(self.target_text))  # "hello"+"ohlol" -> e, h, l, o


def encode(text: str, vocab: list[str]) -> torch.Tensor:
    index = {c: i for i, c in enumerate(vocab)}
    return torch.tensor([[index[c] for c in text]])


def decode(indices, vocab: list[str]) -> str:
    return "".join(vocab[i] for i in indices)


def fit_pair(model, x: torch.Tensor, y: torch.Tensor, vocab: list[str], cfg, epochs: int, model_id: str) -> list[dict]:
    """The course's loop: one Adam step on the whole sequence per epoch; -> per-epoch loss and prediction."""
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    history = []
    for epoch in range(1, epochs + 1):
        logits = model(x)[0]
        loss = F.cross_entropy(logits.reshape(-1, len(vocab)), y.reshape(-1))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        predicted = decode(logits.argmax(-1)[0].tolist(), vocab)
        history.append({"epoch": epoch, "loss": loss.item(), "predicted": predicted})
        print(f"{model_id} epoch {epoch:>3}/{epochs}: loss {loss.item():.4f} predicted {predicted!r}", flush=True)
    return history


class SequenceTrainer:
    family = "sequence"
    options = frozenset({"input_text", "target_text"})

    def honoured(self, entry) -> frozenset[str]:
        return SHARED_OPTIONS | self.options

    def fit(self, entry, cfg: TrainConfig, paths: RunPaths) -> dict:
        pair = TextPair(cfg.input_text, cfg.target_text)
        pair.validate()
        vocab = pair.vocab()
        torch.manual_seed(cfg.seed)
        model_args = {**entry.model_args, "vocab_size": len(vocab)}
        model = entry.build(**model_args)
        x, y = encode(pair.input_text, vocab), encode(pair.target_text, vocab)
        epochs = DRY_RUN_STEPS if cfg.dry_run else cfg.epochs
        started = time.perf_counter()
        history = fit_pair(model, x, y, vocab, cfg, epochs, entry.id)
        seconds = time.perf_counter() - started
        with torch.no_grad():
            final = decode(model(x)[0].argmax(-1)[0].tolist(), vocab)
        verdict = "matches the target" if final == pair.target_text else f"does NOT match {pair.target_text!r}"
        print(f"{entry.id}: {pair.input_text!r} -> {final!r} ({verdict})")
        return write_record(
            entry, model, paths.out_dir, config=honoured_config(cfg, self.honoured(entry), {"optimizer": "adam"}),
            history=history, seconds=seconds, epochs=epochs, model_args=model_args, vocab=vocab, pair=asdict(pair),
            final_prediction=final,
            solved_at_epoch=next((h["epoch"] for h in history if h["predicted"] == pair.target_text), None))


TRAINER = SequenceTrainer()
