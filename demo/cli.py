"""`tinyzoo` console script: train | export | demo | classify.

train and export need the training extra (`pip install 'tinyzoo[train]'`); demo and classify
run on the serving install alone, without torch.
"""
import importlib
import sys

COMMANDS = {
    "train": ("training.train", "train a registered model (needs tinyzoo[train])"),
    "export": ("export.onnx_export", "checkpoint -> ONNX with parity check (needs tinyzoo[train])"),
    "demo": ("demo.web.server", "serve the models: Gradio app + HTTP API"),
    "classify": ("demo.batch.classify", "classify image files, folders, globs, archives -> CSV/JSONL"),
}


def usage() -> str:
    lines = [f"  {name:<9}{help_}" for name, (_, help_) in COMMANDS.items()]
    return "usage: tinyzoo <command> [args]\n\ncommands:\n" + "\n".join(lines) + "\n\n`tinyzoo <command> -h` for its options."


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in ("-h", "--help"):
        print(usage())
        return 0
    if not argv:  # a usage error, as argparse treats a missing required argument
        print(f"tinyzoo: name a command\n\n{usage()}", file=sys.stderr)
        return 2
    command, rest = argv[0], argv[1:]
    if command not in COMMANDS:
        print(f"tinyzoo: unknown command {command!r}\n\n{usage()}", file=sys.stderr)
        return 2
    module_name = COMMANDS[command][0]
    try:
        module = importlib.import_module(module_name)
    except KeyboardInterrupt:  # Ctrl-C while the command's libraries load: no traceback
        return 130
    except ModuleNotFoundError as e:
        if e.name in ("torch", "torchvision", "onnx", "onnxscript", "safetensors", "tqdm"):
            print(f"tinyzoo {command}: needs {e.name}, part of the training extra: pip install 'tinyzoo[train]'",
                  file=sys.stderr)
            return 2
        raise
    return module.main(rest)


if __name__ == "__main__":
    sys.exit(main())
