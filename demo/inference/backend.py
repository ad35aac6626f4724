"""Where the models run, as the command lines choose it: in-process ONNX Runtime, or a Triton
server (demo/inference/remote.py). Apart from remote.py so that a local run never imports the
Triton client's pydantic schemas and HTTP machinery: a third of `tinyzoo classify`'s imports."""
from demo.inference.runtime import ModelError, ModelZoo
from demo.settings import BACKEND, TRITON_URL


def open_zoo(models_dir, provider: str | None, backend: str = "local", triton_url: str | None = None,
             **kwargs) -> ModelZoo:
    """The zoo the command line asked for: in-process ONNX Runtime, or a Triton server."""
    if backend == "local":
        return ModelZoo(models_dir, provider, **kwargs)
    if not triton_url:
        raise ModelError("--backend triton needs --triton-url HOST:PORT")
    from demo.inference.remote import TritonZoo
    return TritonZoo(triton_url, models_dir, provider, **kwargs)


def add_backend_arguments(parser) -> None:
    parser.add_argument("--backend", choices=["local", "triton"], default=BACKEND.get(),
                        help="run the models in-process (local, default) or on a Triton server (env TINYZOO_BACKEND)")
    parser.add_argument("--triton-url", default=TRITON_URL.get(),
                        help="HOST:PORT of Triton's HTTP endpoint (or any Open Inference Protocol server, "
                             "e.g. another tinyzoo demo) for --backend triton (env TINYZOO_TRITON_URL)")
