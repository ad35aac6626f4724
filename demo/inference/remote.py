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

The server is not trusted. tritonclient encodes the requests, but its HTTP client reads a whole
answer into memory whatever its size, so the answers travel over the standard library's
http.client instead: each is read in pieces and dropped as soon as it passes a cap derived
from the outputs it should hold (plus room for the JSON header), or when the request's overall
deadline passes. Every answer is then checked against the local file's metadata: the outputs
asked for, by name, datatype and shape (the batch and sequence axes bound from the inputs sent,
so the row count is checked too), with finite values. A bad answer raises AnswerError for the
rows of that request only; the batch command turns them into error rows and goes on.
"""
import http.client
import math
import socket
import threading
import time
import urllib.parse

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr, ValidationError

from demo.inference.protocol import HEADER_LENGTH, ORT_TO_V2, V2_TO_NUMPY, tensor_metadata
from demo.inference.runtime import AnswerError, ModelError, ModelZoo
from demo.settings import JSON_BYTES_PER_NUMBER, JSON_HEADER_BYTES, TRITON_MAX_BATCH, TRITON_TIMEOUT_S

TIMEOUT_S = TRITON_TIMEOUT_S  # a whole request, answer included: a server trickling bytes is cut off too
METADATA_LIMIT = 1 << 20  # a model's metadata or an error message
READ_PIECE = 64 << 10


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


# --- what the server may answer, as pydantic models (strict: "10" is not a dimension) --------------

class TensorSpec(BaseModel):
    name: StrictStr
    datatype: StrictStr
    shape: list[StrictInt]


class ServedModel(BaseModel):
    """GET /v2/models/{id}: the tensors the server will take and give."""
    inputs: list[TensorSpec]
    outputs: list[TensorSpec]


class OutputParameters(BaseModel):
    model_config = ConfigDict(extra="allow")
    binary_data_size: StrictInt | None = Field(None, ge=0)


class AnswerTensor(TensorSpec):
    parameters: OutputParameters | None = None
    data: list | None = None


class Answer(BaseModel):
    """POST /v2/models/{id}/infer: the answer's JSON header."""
    outputs: list[AnswerTensor]


def first_problem(error: ValidationError) -> str:
    """pydantic's first complaint, in words: where it is and what is wrong."""
    problem = error.errors(include_url=False)[0]
    where = ".".join(str(part) for part in problem["loc"])
    return f"{where}: {problem['msg']}" if where else problem["msg"]


def printable(text: bytes, limit: int = 200) -> str:
    """A server's own words, safe to print on one line."""
    words = "".join(c if c.isprintable() else " " for c in text.decode("utf-8", "replace"))
    return words[:limit] + ("..." if len(words) > limit else "")


# --- the transport: bounded answers -------------------------------------------------------------

STALE = (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError)  # a kept-alive connection gone idle


class Transport:
    """One kept-alive HTTP connection per thread (the app runs requests on a thread pool); every
    answer read under a size cap and one deadline for the whole exchange."""

    def __init__(self, url: str):
        host, _, port = url.rpartition(":")
        self.host, self.port = host.strip("[]"), int(port)
        self.local = threading.local()

    def connection(self) -> http.client.HTTPConnection:
        if getattr(self.local, "connection", None) is None:
            self.local.connection = http.client.HTTPConnection(self.host, self.port, timeout=TIMEOUT_S)
        return self.local.connection

    def drop(self) -> None:
        """Close this thread's connection: after a bad answer its stream holds unread bytes."""
        connection, self.local.connection = getattr(self.local, "connection", None), None
        if connection is not None:
            connection.close()

    def exchange(self, method: str, path: str, limit: int, body: bytes | None = None,
                 headers: dict | None = None) -> tuple[int, http.client.HTTPMessage, bytes]:
        """-> (HTTP status, headers, body of at most `limit` bytes), or AnswerError saying what went wrong.
        A kept-alive connection the server closed while idle is retried once on a fresh one."""
        deadline = time.monotonic() + TIMEOUT_S
        for fresh in (False, True):
            connection = self.connection()
            may_be_stale = not fresh and connection.sock is not None
            try:
                return self.attempt(connection, method, path, limit, body, headers or {}, deadline)
            except (OSError, http.client.HTTPException) as e:
                self.drop()
                if not (may_be_stale and isinstance(e, STALE)):
                    raise AnswerError(transport_problem(e)) from None
            except AnswerError:
                self.drop()
                raise

    def attempt(self, connection, method, path, limit, body, headers, deadline):
        connection.request(method, path, body=body, headers=headers)
        sock = connection.sock  # the response's too: getresponse() lets go of it when the answer ends the connection
        keep_to(deadline, sock)
        response = connection.getresponse()
        data = read_capped(response, limit, sock, deadline)
        response.close()
        if response.will_close:
            self.drop()
        return response.status, response.headers, data


def keep_to(deadline: float, sock: socket.socket) -> None:
    """The socket's next wait ends at the deadline: a server sending a byte now and then can't
    stretch the exchange past it."""
    left = deadline - time.monotonic()
    if left <= 0:
        raise TimeoutError
    sock.settimeout(left)


def read_capped(response: http.client.HTTPResponse, limit: int, sock: socket.socket, deadline: float) -> bytes:
    """The body, read in pieces; refused as soon as it is announced or found longer than `limit`."""
    declared = (response.getheader("Content-Length") or "").strip()
    if declared.isdigit() and int(declared) > limit:
        raise AnswerError(f"it announced {int(declared):,} bytes; an answer to this request needs at most {limit:,}")
    if (response.getheader("Content-Encoding") or "identity").strip().lower() != "identity":
        raise AnswerError("it is compressed, which this client did not ask for")
    data = bytearray()
    while piece := response.read1(READ_PIECE):
        data += piece
        if len(data) > limit:
            raise AnswerError(f"it ran past {limit:,} bytes, more than an answer to this request needs; "
                              "stopped reading")
        keep_to(deadline, sock)
    if response.length:  # the connection closed before the announced length
        raise AnswerError(f"it was cut off after {len(data):,} of {len(data) + response.length:,} bytes")
    return bytes(data)


def transport_problem(error: Exception) -> str:
    if isinstance(error, TimeoutError):
        return f"no complete answer within {TIMEOUT_S:g} s"
    if isinstance(error, http.client.RemoteDisconnected):
        return "the server closed the connection without answering"
    if isinstance(error, http.client.IncompleteRead):
        return "the answer was cut off"
    if isinstance(error, ConnectionRefusedError):
        return "connection refused"
    if isinstance(error, http.client.HTTPException):
        return "its answer is not valid HTTP"
    return error.strerror or str(error)


# --- the answer, checked against what the model promises ------------------------------------------

def read_answer(data: bytes, header_length: str | None, expected: list[tuple[str, str, list[int]]]) -> list[np.ndarray]:
    """An inference answer -> the `expected` outputs (name, datatype, shape), each checked."""
    header, binary = split_answer(data, header_length)
    try:
        answer = Answer.model_validate_json(header)
    except ValidationError as e:
        raise AnswerError(f"it is not an inference answer ({first_problem(e)})") from None
    tensors, offset = {}, 0
    for tensor in answer.outputs:
        if tensor.name in tensors:
            raise AnswerError(f"it gives output {tensor.name!r} twice")
        size = tensor.parameters.binary_data_size if tensor.parameters else None
        if size is not None and offset + size > len(binary):
            raise AnswerError(f"output {tensor.name!r} claims {size:,} bytes of binary data, "
                              f"{len(binary) - offset:,} are left in the answer")
        tensors[tensor.name] = (tensor, None if size is None else binary[offset:offset + size])
        offset += size or 0
    if offset != len(binary):
        raise AnswerError(f"{len(binary) - offset:,} bytes of binary data in it belong to no output")
    return [output_array(tensors.get(name), name, datatype, shape) for name, datatype, shape in expected]


def split_answer(data: bytes, header_length: str | None) -> tuple[bytes, bytes]:
    """-> (the JSON header, the binary data after it)."""
    if header_length is None:
        return data, b""
    size = int(header_length) if header_length.strip().isdigit() else -1
    if not 0 < size <= len(data):
        raise AnswerError(f"its {HEADER_LENGTH} is {printable(header_length.encode(), 40)!r}, "
                          f"but the answer has {len(data):,} bytes")
    return data[:size], data[size:]


def output_array(found, name: str, datatype: str, shape: list[int]) -> np.ndarray:
    if found is None:
        raise AnswerError(f"output {name!r} is missing")
    tensor, raw = found
    if tensor.datatype != datatype:
        raise AnswerError(f"output {name!r} is {printable(tensor.datatype.encode(), 20)}; the model gives {datatype}")
    if tensor.shape != shape:
        raise AnswerError(f"output {name!r} has shape {tensor.shape[:8]}; for these inputs the model gives {shape}")
    dtype = np.dtype(V2_TO_NUMPY[datatype])
    if raw is not None:
        if len(raw) != math.prod(shape) * dtype.itemsize:
            raise AnswerError(f"output {name!r} has {len(raw):,} bytes of data; shape {shape} of {datatype} "
                              f"needs {math.prod(shape) * dtype.itemsize:,}")
        array = np.frombuffer(raw, dtype=dtype.newbyteorder("<")).astype(dtype).reshape(shape)
    elif tensor.data is not None:
        array = json_array(tensor.data, dtype, name, shape)
    else:
        raise AnswerError(f"output {name!r} has no data")
    if array.dtype.kind == "f" and not np.isfinite(array).all():
        raise AnswerError(f"output {name!r} holds NaN or infinity")
    return array


def json_array(data: list, dtype: np.dtype, name: str, shape: list[int]) -> np.ndarray:
    """JSON numbers of the output's kind only: no strings, no booleans for numbers, no 1.5 for an integer."""
    allowed = "b" if dtype.kind == "b" else "iu" if dtype.kind in "iu" else "iuf"
    try:
        array = np.array(data)
    except ValueError:  # rows of different lengths
        raise AnswerError(f"output {name!r}: its data is not a list of {shape} numbers") from None
    if array.dtype.kind not in allowed or array.size != math.prod(shape):
        raise AnswerError(f"output {name!r}: its data is not a list of {shape} numbers of its datatype")
    return array.astype(dtype).reshape(shape)  # a float past FP32's range becomes infinity: refused next


# --- the session ----------------------------------------------------------------------------

class TritonSession:
    """The ORT session's `run`, `get_inputs`, `get_outputs`, `get_providers`, answered by a server."""

    def __init__(self, url: str, model_id: str, local):
        self.client_module = import_client()
        self.url, self.model_id, self.local = parse_url(url), model_id, local
        self.transport = Transport(self.url)
        self.path = f"/v2/models/{urllib.parse.quote(model_id, safe='')}"
        check_answers_can_be_bounded(model_id, local)
        self.check_served()

    def check_served(self) -> None:
        """The server has this model, ready, with the local file's tensors."""
        try:
            ready, _, _ = self.transport.exchange("GET", f"{self.path}/ready", METADATA_LIMIT)
            if ready != 200:
                raise ModelError(f"{self.url} does not have {self.model_id} ready; load it there "
                                 f"(`tinyzoo export --triton DIR {self.model_id}`, then restart Triton on DIR)")
            status, _, body = self.transport.exchange("GET", self.path, METADATA_LIMIT)
        except AnswerError as e:
            raise ModelError(f"Triton at {self.url} did not answer for {self.model_id}: {e}") from None
        try:
            if status != 200:
                raise AnswerError(f"HTTP {status}: {printable(body)}")
            served = ServedModel.model_validate_json(body)
        except (AnswerError, ValidationError) as e:
            problem = first_problem(e) if isinstance(e, ValidationError) else e
            raise ModelError(f"{self.url} gave no usable metadata for {self.model_id} ({problem})") from None
        for kind, local, theirs in (("inputs", self.local.get_inputs(), served.inputs),
                                    ("outputs", self.local.get_outputs(), served.outputs)):
            mine = {t["name"]: (t["datatype"], t["shape"]) for t in tensor_metadata(local)}
            theirs = {t.name: (t.datatype, t.shape) for t in theirs}
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
        expected = self.expected_outputs(output_names, feeds)
        limit = JSON_HEADER_BYTES + sum(JSON_BYTES_PER_NUMBER * math.prod(shape) for _, _, shape in expected)
        try:
            status, headers, data = self.transport.exchange("POST", f"{self.path}/infer", limit,
                                                            *self.request(output_names, feeds))
            if status != 200:
                raise AnswerError(f"it refused the request (HTTP {status}: {printable(data)})")
            return read_answer(data, headers.get(HEADER_LENGTH), expected)
        except AnswerError as e:
            raise AnswerError(f"Triton at {self.url} gave no usable answer for {self.model_id}: {e}") from None

    def request(self, output_names: list[str], feeds: dict[str, np.ndarray]) -> tuple[bytes, dict]:
        """-> (body, headers) of an inference request asking for binary outputs, built by tritonclient."""
        client = self.client_module
        inputs = []
        for name, array in feeds.items():
            array = np.ascontiguousarray(array)
            tensor = client.InferInput(name, list(array.shape), client.np_to_triton_dtype(array.dtype))
            inputs.append(tensor.set_data_from_numpy(array, binary_data=True))
        outputs = [client.InferRequestedOutput(name, binary_data=True) for name in output_names]
        body, header_size = client.InferenceServerClient.generate_request_body(inputs, outputs=outputs)
        headers = {"Content-Type": "application/octet-stream"}
        if header_size is not None:
            headers[HEADER_LENGTH] = str(header_size)
        return body, headers

    def expected_outputs(self, output_names: list[str], feeds: dict[str, np.ndarray]) -> list[tuple[str, str, list[int]]]:
        """(name, datatype, shape) of each output for these inputs: a named axis (batch, sequence)
        takes its size from the input that has it."""
        sizes = {}
        for arg in self.local.get_inputs():
            if arg.name in feeds:
                sizes.update((dim, size) for dim, size in zip(arg.shape, feeds[arg.name].shape) if isinstance(dim, str))
        outputs = {arg.name: arg for arg in self.local.get_outputs()}
        return [(name, ORT_TO_V2[outputs[name].type],
                 [sizes[dim] if isinstance(dim, str) else dim for dim in outputs[name].shape]) for name in output_names]


def check_answers_can_be_bounded(model_id: str, local) -> None:
    """Every output axis is a number or an input's named axis, and every output is numeric:
    the size of a right answer is then known before it arrives."""
    named = {dim for arg in local.get_inputs() for dim in arg.shape if isinstance(dim, str)}
    for arg in local.get_outputs():
        if ORT_TO_V2[arg.type] == "BYTES" or not all(isinstance(d, int) or d in named for d in arg.shape):
            raise ModelError(f"{model_id}: output {arg.name!r} ({arg.type}, shape {arg.shape}) has a size no input "
                             "gives; the Triton backend can't check the server's answers for it")


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
