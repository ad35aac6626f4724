"""Awkward and hostile uploads: a clear message in the UI and a 4xx JSON error from the API,
never a stack trace or a 500; odd-but-valid images (animated GIF, 16-bit, CMYK) just work."""
import pytest
from gradio_client import Client, handle_file

from demo.imaging.prepare import ImageInputError
from tests.conftest import odd_uploads, post

CASES = odd_uploads()


@pytest.fixture(scope="module")
def client(live_server):
    return Client(live_server, verbose=False)


@pytest.mark.parametrize("name", CASES)
def test_runtime(zoo, name):
    data, error = CASES[name]
    if error:
        with pytest.raises(ImageInputError, match=error):
            zoo.get("mnist-cnn").classify(data)
    else:
        assert zoo.get("mnist-cnn").classify(data).label == "7"


@pytest.mark.parametrize("name", CASES)
def test_http_api(live_server, name):
    data, error = CASES[name]
    status, body = post(f"{live_server}/api/classify?model=mnist-cnn", data)
    if error:
        assert 400 <= status < 500 and error in body["error"], (status, body)
    else:
        assert status == 200 and body["label"] == "7", body


@pytest.mark.parametrize("name", CASES)
def test_gradio_ui(client, tmp_path, name):
    data, error = CASES[name]
    path = tmp_path / f"{name}.bin"
    path.write_bytes(data)
    if error:
        label, seen, info = client.predict("mnist-cnn", handle_file(str(path)), api_name="/classify_mnist_upload")
        assert info.startswith("**Can't use this image:**") and error in info and "Traceback" not in info
        assert seen is None and not label.get("confidences")
    else:
        label, _, _ = client.predict("mnist-cnn", handle_file(str(path)), api_name="/classify_mnist_upload")
        assert label["label"] == "7"
