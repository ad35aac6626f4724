"""Comparison runs shipped as training histories only (models/histories/*.json): a learner sees
what a schedule or weight decay does to the curves without training anything, and no model file
is shipped for them. Each file records the command that produced it."""
import json
from dataclasses import dataclass
from pathlib import Path

HISTORIES_DIR = "histories"


@dataclass(frozen=True)
class RunHistory:
    id: str  # e.g. "fashion-cnn-step": the run's name in the Training tab
    title: str  # what differs, in words
    command: str  # the `tinyzoo train` command that produced it
    recorded: dict  # date, commit, machine
    config: dict  # the trainer's honoured config
    history: tuple[dict, ...]  # per-epoch rows as the trainer logs them


def read_histories(models_dir: Path) -> list[RunHistory]:
    """Every models/histories/*.json, by file name; a malformed file is named in a ValueError."""
    runs = []
    for path in sorted((Path(models_dir) / HISTORIES_DIR).glob("*.json")):
        try:
            data = json.loads(path.read_text())
            runs.append(RunHistory(id=data["id"], title=data["title"], command=data["command"],
                                   recorded=dict(data["recorded"]), config=dict(data["config"]),
                                   history=tuple(dict(row) for row in data["history"])))
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise ValueError(f"{path.name}: not a training history ({e})") from None
    return runs
