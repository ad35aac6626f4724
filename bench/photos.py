"""Photos people really take, through `POST /api/classify` of a live server: digits written on paper
and garments in shop photos (bench/photo_scenes.py builds them from the real test sets, seeded),
per condition, for every image model, before (a baseline checkout's code) and after (this one's).

    python -m bench.photos --baseline /work/main            # before -> after, every image model
    python -m bench.photos --seed 1 --models mnist-cnn      # another seed, one model, this code only
    python -m bench.photos --montage /tmp/seen.png          # + what the model saw, per condition

A cell reads `accuracy`; "conf. wrong" is the share of photos answered wrong with confidence
>= 0.9 and not marked unsure; "unsure" the share marked unsure or refused with "couldn't find".
"""
import argparse
import compileall
import http.client
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from bench.photo_scenes import (DIGIT_CONDITIONS, FASHION_CONDITIONS, Photo, digit_photo, garment_photo,
                                make_photos)
from bench.report import print_table
from training.data import load_split

CONFIDENT = 0.9
ROOT = Path(__file__).resolve().parents[1]


@dataclass
class Answer:
    right: bool
    confidently_wrong: bool
    unsure: bool
    ms: float


def classify_in(checkout: Path, program: str, args: list[str]) -> tuple[subprocess.CompletedProcess, float]:
    """-> (the finished process, its wall seconds): Python `program`, which runs `tinyzoo classify`
    on `args`, in a process of its own in `checkout`'s code. The package's bytecode is compiled first,
    untimed, as `pip install` leaves it: a checkout run with PYTHONDONTWRITEBYTECODE would otherwise
    compile every module of demo/ it imports at each start (~40 ms)."""
    compileall.compile_dir(checkout / "demo", quiet=1)
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", program, *args], cwd=checkout,
                          env={**os.environ, "PYTHONPATH": str(checkout)}, capture_output=True, text=True)
    return done, time.perf_counter() - started


class Server:
    """`python -m demo` from a checkout (its code on PYTHONPATH), on localhost:port, until closed."""

    def __init__(self, checkout: Path, port: int, models_dir: str | None):
        env = {**os.environ, "PYTHONPATH": str(checkout)}
        cmd = [sys.executable, "-m", "demo", "--port", str(port), "--provider", "cpu"]
        cmd += ["--models-dir", models_dir] if models_dir else []
        self.port = port
        self.process = subprocess.Popen(cmd, cwd=checkout, env=env, stdout=subprocess.DEVNULL)
        deadline = time.time() + 180
        while time.time() < deadline:
            try:
                self.request("GET", "/api/models")
                return
            except OSError:
                if self.process.poll() is not None:
                    raise RuntimeError(f"server from {checkout} exited with {self.process.returncode}") from None
                time.sleep(1)
        self.close()
        raise RuntimeError(f"server from {checkout} did not answer on port {port}")

    def request(self, method: str, path: str, body: bytes | None = None) -> tuple[int, dict]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        try:
            conn.request(method, path, body)
            response = conn.getresponse()
            return response.status, json.loads(response.read() or b"{}")
        finally:
            conn.close()

    def ask(self, model: str, photo: Photo, labels: list[str]) -> Answer:
        started = time.perf_counter()
        status, body = self.request("POST", f"/api/classify?model={model}", photo.data)
        ms = (time.perf_counter() - started) * 1000
        if status != 200:  # "couldn't find a digit": not right, not confidently wrong
            return Answer(False, False, True, ms)
        right = body["label"] == labels[photo.label]
        unsure = bool(body.get("unsure", False))
        return Answer(right, not right and not unsure and body["confidence"] >= CONFIDENT, unsure, ms)

    def close(self) -> None:
        self.process.terminate()
        self.process.wait(30)


def photo_sets(per_condition: int, seed: int) -> dict[str, list[Photo]]:
    sets = {}
    for dataset, conditions, render in (("mnist", DIGIT_CONDITIONS, digit_photo),
                                        ("fashion", FASHION_CONDITIONS, garment_photo)):
        images, labels = load_split(dataset, "test")
        sets[dataset] = make_photos(images, labels, conditions, per_condition, seed, render)
    return sets


def score(server: Server, model: str, photos: list[Photo], labels: list[str]) -> dict:
    answers = [server.ask(model, p, labels) for p in photos]
    by_condition = {}
    for photo, answer in zip(photos, answers):
        by_condition.setdefault(photo.condition, []).append(answer.right)
    return {"conditions": {c: float(np.mean(v)) for c, v in by_condition.items()},
            "all": float(np.mean([a.right for a in answers])),
            "confidently wrong": float(np.mean([a.confidently_wrong for a in answers])),
            "unsure": float(np.mean([a.unsure for a in answers])),
            "median ms": float(np.median([a.ms for a in answers]))}


def cell(after: float, before: float | None) -> str:
    return f"{after:.0%}" if before is None else f"{before:.0%} → {after:.0%}"


def print_results(dataset: str, conditions, results: dict, baseline: dict) -> None:
    headers = ["model", *conditions, "all", "conf. wrong", "unsure", "median ms"]
    rows = []
    for model, r in results.items():
        b = baseline.get(model)
        rows.append([model, *(cell(r["conditions"][c], b and b["conditions"][c]) for c in conditions),
                     cell(r["all"], b and b["all"]), cell(r["confidently wrong"], b and b["confidently wrong"]),
                     cell(r["unsure"], b and b["unsure"]), cell_ms(r["median ms"], b and b["median ms"])])
    print(f"\n{dataset}: {len(next(iter(results.values()))['conditions'])} conditions" + (" (before → after)" if baseline else ""))
    print_table(headers, rows)


def cell_ms(after: float, before: float | None) -> str:
    return f"{after:.0f}" if before is None else f"{before:.0f} → {after:.0f}"


def montage(sets: dict[str, list[Photo]], model_for: dict, path: str, per_row: int = 8) -> None:
    """Per condition, per_row photos: a thumbnail with the ink box, then what the model saw, 3x."""
    from demo.inference.runtime import ModelZoo

    zoo = ModelZoo(provider="cpu")
    tiles = []
    for dataset, photos in sets.items():
        model = zoo.get(model_for[dataset])
        for condition in dict.fromkeys(p.condition for p in photos):
            row = [p for p in photos if p.condition == condition][:per_row]
            tiles.append([_tile(model, p) for p in row])
    sheet = Image.new("RGB", (per_row * 180, len(tiles) * 90), "white")
    for r, row in enumerate(tiles):
        for c, tile in enumerate(row):
            sheet.paste(tile, (c * 180, r * 90))
    sheet.save(path)
    print(f"montage of what the model saw: {path}")


def _tile(model, photo: Photo) -> Image.Image:
    from demo.imaging.prepare import ImageInputError, open_image

    tile = Image.new("RGB", (180, 90), "white")
    picture = open_image(photo.data).convert("RGB")
    try:
        pred = model.classify(photo.data)
        seen, box = Image.fromarray(pred.seen).resize((84, 84), Image.Resampling.NEAREST), pred.ink_box
    except ImageInputError:
        seen, box = Image.new("L", (84, 84), 128), None
    if box:
        ImageDraw.Draw(picture).rectangle(box, outline=(255, 0, 0), width=max(2, max(picture.size) // 100))
    picture.thumbnail((84, 84))
    tile.paste(picture, (2, 3))
    tile.paste(seen.convert("RGB"), (92, 3))
    return tile


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--per-condition", type=int, default=30, help="photos per condition (default 30)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--models", default="all", help="comma-separated image model ids, or all (default)")
    p.add_argument("--baseline", default=None, help="a checkout whose code gives the 'before' column (e.g. /work/main)")
    p.add_argument("--models-dir", default=None, help="models both servers load (e.g. a calibrated copy)")
    p.add_argument("--port", type=int, default=7750, help="this code's server; the baseline's is port + 1")
    p.add_argument("--montage", default=None, help="write a PNG of what the model saw here")
    args = p.parse_args()

    started = time.perf_counter()
    sets = photo_sets(args.per_condition, args.seed)
    print(f"{sum(map(len, sets.values()))} photos generated (seed {args.seed}) in {time.perf_counter() - started:.0f} s")
    servers = {"after": Server(ROOT, args.port, args.models_dir)}
    try:
        if args.baseline:
            servers["before"] = Server(Path(args.baseline), args.port + 1, args.models_dir)
        _, listing = servers["after"].request("GET", "/api/models")
        models = {m["id"]: m for m in listing["models"] if m.get("task") == "image-classification"}
        wanted = list(models) if args.models == "all" else args.models.split(",")
        results = {name: {} for name in servers}
        for model in wanted:
            meta = models[model]["metadata"]
            for name, server in servers.items():
                results[name][model] = score(server, model, sets[meta["dataset"]], meta["labels"])
    finally:
        for server in servers.values():
            server.close()
    for dataset, conditions in (("mnist", DIGIT_CONDITIONS), ("fashion", FASHION_CONDITIONS)):
        after = {m: r for m, r in results["after"].items() if models[m]["metadata"]["dataset"] == dataset}
        if after:
            print_results(dataset, conditions, after, results.get("before", {}))
    if args.montage:
        montage(sets, {"mnist": "mnist-cnn", "fashion": "fashion-cnn"}, args.montage)


if __name__ == "__main__":
    main()
