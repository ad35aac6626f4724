"""Triton as a backend: the app and the CLI send the model's tensors to a Triton server.

    tinyzoo demo --backend triton --triton-url localhost:8000
    tinyzoo classify photos/ --model mnist-cnn --backend triton --triton-url localhost:8000

Everything else stays local: the ONNX file is still read and verified against the manifest, and
its metadata gives the preprocessing, labels, vocab and features, exactly as in-process. Only
the graph runs remotely, through `TritonSession`, which stands in for the ORT session
(`OnnxModel.session`: the one seam) with the same `run(output_names, feeds)`. The server must
serve the same file (`tinyzoo export --triton` copies it byte for byte); at load the adapter
checks that the server's inputs and outputs (names, datatypes, shapes) are the local file's.
Any server speaking the Open Inference Protocol over HTTP works: Triton, KServe, or another
`tinyzoo demo` (its /v2).
"""
import threading

import numpy as np

from demo.inference.protocol import tensor_metadata
from demo.inference.runtime import ModelError, ModelZoo
from demo.settings import BACKEND, TRITON_URL

TRITON_MAX_BATCH = 256  # export/triton.py's MAX_BATCH: the max_batch_size it writes for batchable models
TIMEOUT_S = 60.0


def import_client():
    try:
        import tritonclient.http as client
    except ImportError:
        raise ModelError("--backend triton needs tritonclient: pip install 'tinyzoo[triton]'") from None
    return client


def parse_url(url: str) -> str:
    """HOST:PORT (tritonclient's form); an http:// prefix and a trailing / are accepted."""
    url = url.strip().removeprefix("http://").rstrip("/")
    host, _, port = url.rpartition(":")
    if not host or not port.isdigit():
        raise ModelError(f"--triton-url must be HOST:PORT (e.g. localhost:8000), got {url!r}")
    return url


class TritonSession:
    """The ORT session's `run`, `get_inputs`, `get_outputs`, `get_providers`, answered by a server.

    One HTTP client per thread: tritonclient's HTTP client must not be shared between threads,
    and the app runs requests on a thread pool."""

    def __init__(self, url: str, model_id: str, local):
        self.client_module = import_client()
        self.url, self.model_id, self.local = parse_url(url), model_id, local
        self.clients = threading.local()
        self.check_served()

    def client(self):
        if not hasattr(self.clients, "client"):
            self.clients.client = self.client_module.InferenceServerClient(
                self.url, connection_timeout=TIMEOUT_S, network_timeout=TIMEOUT_S)
        return self.clients.client

    def check_served(self) -> None:
        """The server has this model, ready, with the local file's tensors."""
        errors = self.client_module.InferenceServerException
        try:
            if not self.client().is_model_ready(self.model_id):
                raise ModelError(f"{self.url} does not have {self.model_id} ready; load it there "
                                 f"(`tinyzoo export --triton DIR {self.model_id}`, then restart Triton on DIR)")
            served = self.client().get_model_metadata(self.model_id)
        except (errors, OSError) as e:
            raise ModelError(f"Triton at {self.url} did not answer for {self.model_id}: {e}") from None
        for kind, local in (("inputs", self.local.get_inputs()), ("outputs", self.local.get_outputs())):
            mine = {t["name"]: (t["datatype"], t["shape"]) for t in tensor_metadata(local)}
            theirs = {t["name"]: (t["datatype"], [int(d) for d in t["shape"]]) for t in served.get(kind, [])}
            if mine != theirs:
                raise ModelError(f"{self.url} serves a different {self.model_id}: {kind} {theirs} there, {mine} in "
                                 f"the local file; export the repository from these models (`tinyzoo export --triton`)")

    def get_inputs(self):
        return self.local.get_inputs()

    def get_outputs(self):
        return self.local.get_outputs()

    def get_providers(self) -> list[str]:
        return [f"triton@{self.url}"]

    def run(self, output_names: list[str] | None, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        output_names = output_names or [o.name for o in self.get_outputs()]
        if len(feeds) == 1:  # one batched input (images, tabular rows): at most max_batch_size rows a call
            (name, batch), = feeds.items()
            if len(batch) > TRITON_MAX_BATCH:
                parts = [self.infer(output_names, {name: batch[i:i + TRITON_MAX_BATCH]})
                         for i in range(0, len(batch), TRITON_MAX_BATCH)]
                return [np.concatenate(column) for column in zip(*parts)]
        return self.infer(output_names, feeds)

    def infer(self, output_names: list[str], feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        client = self.client_module
        inputs = []
        for name, array in feeds.items():
            array = np.ascontiguousarray(array)
            tensor = client.InferInput(name, list(array.shape), client.np_to_triton_dtype(array.dtype))
            inputs.append(tensor.set_data_from_numpy(array, binary_data=True))
        outputs = [client.InferRequestedOutput(name, binary_data=True) for name in output_names]
        try:
            result = self.client().infer(self.model_id, inputs, outputs=outputs)
        except (client.InferenceServerException, OSError) as e:
            raise ModelError(f"Triton at {self.url}, {self.model_id}: {e}") from None
        return [result.as_numpy(name) for name in output_names]


class TritonZoo(ModelZoo):
    """A ModelZoo whose models run on a Triton server: same files, same metadata, remote sessions."""

    def __init__(self, triton_url: str, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.triton_url = parse_url(triton_url)

    def get(self, model_id: str):
        model = super().get(model_id)
        if not isinstance(model.session, TritonSession):
            model.session = TritonSession(self.triton_url, model_id, model.session)
            model.provider = model.session.get_providers()[0]
        return model


def open_zoo(models_dir, provider: str | None, backend: str = "local", triton_url: str | None = None,
             **kwargs) -> ModelZoo:
    """The zoo the command line asked for: in-process ONNX Runtime, or a Triton server."""
    if backend == "local":
        return ModelZoo(models_dir, provider, **kwargs)
    if not triton_url:
        raise ModelError("--backend triton needs --triton-url HOST:PORT")
    return TritonZoo(triton_url, models_dir, provider, **kwargs)


def add_backend_arguments(parser) -> None:
    parser.add_argument("--backend", choices=["local", "triton"], default=BACKEND.get(),
                        help="run the models in-process (local, default) or on a Triton server (env TINYZOO_BACKEND)")
    parser.add_argument("--triton-url", default=TRITON_URL.get(),
                        help="HOST:PORT of Triton's HTTP endpoint (or any Open Inference Protocol server, "
                             "e.g. another tinyzoo demo) for --backend triton (env TINYZOO_TRITON_URL)")
