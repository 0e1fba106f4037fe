"""vizlib.models: the registry, preprocessing, predictions, weights download, devices and sharing."""

from __future__ import annotations

import dataclasses
import hashlib
import http.server
import io
import pickle
import threading
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from vizlib import devices, images, models

# ------------------------------------------------------------------------------------------ registry


def test_default_model_is_first_and_offline():
    names = models.list_models()
    assert names[0] == models.DEFAULT_MODEL == "efficientnet_lite0"
    assert models.weights_status(models.DEFAULT_MODEL) == "bundled"
    assert models.weights_path(models.DEFAULT_MODEL).is_file()


def test_registry_has_the_classic_zoo():
    required = {"alexnet", "vgg16", "resnet18", "resnet50", "googlenet", "mobilenet_v3_large", "efficientnet_b0"}
    assert required <= set(models.list_models())


@pytest.mark.parametrize("name", models.list_models())
def test_every_entry_loads_untrained_offline(name):
    spec = models.get_spec(name)
    assert spec.title and spec.description
    if spec.family == "torchvision":
        assert spec.weights_url.startswith("https://download.pytorch.org/models/")
        assert models._expected_hash(spec.weights_url), "torchvision weights carry a hash in their name"
    loaded = models.load_model(name, pretrained=False, device="cpu")
    assert loaded.name == name and not loaded.pretrained
    assert not loaded.model.training
    assert all(not p.requires_grad for p in loaded.model.parameters())
    h, w = loaded.input_size
    image = np.zeros((40, 60, 3), np.uint8)
    image[10:30, 28:32] = 255  # a stroke, so the digits model has ink to read
    x = loaded.preprocess(image)
    assert x.shape == (1, spec.in_channels, h, w) and x.device.type == "cpu"
    assert loaded.resize(image).shape == (h, w, 3)
    n_classes = 10 if spec.family == "digits" else 1000
    assert len(loaded.categories) == n_classes
    if n_classes == 1000:
        assert loaded.categories[281] == "tabby"
    with torch.no_grad():
        assert loaded.model(x).shape == (1, n_classes)


def test_digits_model_is_registered_and_reads_a_drawn_one():
    loaded = models.load_model(models.DIGITS_MODEL)
    assert loaded.categories == [str(d) for d in range(10)] and loaded.spec.in_channels == 1
    assert models.weights_status(models.DIGITS_MODEL) == "bundled"
    canvas = np.full((200, 200, 3), 255, np.uint8)
    canvas[30:170, 95:110] = 0  # a black vertical bar on white: a "1"
    assert models.predict(loaded, canvas, k=1)[0][0] == "1"
    with pytest.raises(ValueError, match="empty"):
        models.predict(loaded, np.full((50, 50, 3), 255, np.uint8))


def test_untrained_is_seeded():
    a = models.load_model("resnet18", pretrained=False).model.conv1.weight
    b = models.load_model("resnet18", pretrained=False).model.conv1.weight
    assert torch.equal(a, b)


def test_unknown_model_names_the_choices():
    with pytest.raises(models.UnknownModelError, match="Choose one of: efficientnet_lite0, alexnet"):
        models.load_model("resnet1000")


# ------------------------------------------------------------------------------------------ preprocessing


def test_lite0_preprocessing_is_tflite(lite0):
    img = np.zeros((10, 10, 3), np.uint8)
    img[..., 0], img[..., 1], img[..., 2] = 127, 255, 0
    x = lite0.preprocess(img)
    assert x.shape == (1, 3, 224, 224)
    torch.testing.assert_close(x[0, 0], torch.zeros(224, 224))
    torch.testing.assert_close(x[0, 1], torch.full((224, 224), 128 / 128))
    torch.testing.assert_close(x[0, 2], torch.full((224, 224), -127 / 128))


def test_torchvision_preprocessing_uses_the_weights_mean_and_std():
    loaded = models.load_model("resnet18", pretrained=False)
    img = np.full((5, 5, 3), 255, np.uint8)
    x = loaded.preprocess(img)
    expected = [(1 - 0.485) / 0.229, (1 - 0.456) / 0.224, (1 - 0.406) / 0.225]
    torch.testing.assert_close(x[0, :, 0, 0], torch.tensor(expected), rtol=1e-5, atol=1e-5)


def test_resize_keeps_the_whole_image(lite0):
    img = np.zeros((100, 300, 3), np.uint8)
    img[:, :150] = 255  # left half white
    out = lite0.resize(img)
    assert out.shape == (224, 224, 3)
    assert out[:, :100].min() == 255 and out[:, 124:].max() == 0


@pytest.mark.parametrize("bad", [np.zeros((4, 4), np.uint8), np.zeros((4, 4, 3), np.float32), "cat.jpg"])
def test_preprocess_rejects_non_images(lite0, bad):
    with pytest.raises(ValueError, match="HxWx3 uint8 RGB"):
        lite0.preprocess(bad)


# ------------------------------------------------------------------------------------------ predictions


def test_cat_photo_is_a_cat_in_top3(lite0):
    top = models.predict(lite0, images.load_gallery_image("cat"), k=3)
    names = [name for name, _ in top]
    cats = {"tabby", "tiger cat", "Egyptian cat", "Persian cat", "Siamese cat", "lynx"}
    assert cats & set(names), names


def test_predict_is_sorted_probabilities(lite0, rng):
    img = rng.integers(0, 256, (50, 70, 3), dtype=np.uint8)
    top = models.predict(lite0, img, k=7)
    probs = [p for _, p in top]
    assert len(top) == 7 and probs == sorted(probs, reverse=True)
    assert all(0 <= p <= 1 for p in probs) and sum(probs) <= 1.0 + 1e-6
    with torch.no_grad():
        full = torch.softmax(lite0.model(lite0.preprocess(img)), 1)[0]
    assert probs[0] == pytest.approx(float(full.max()), abs=1e-6)


def test_classify_reports_time_and_device(tiny_loaded, rng):
    pred = models.classify(tiny_loaded, rng.integers(0, 256, (8, 8, 3), dtype=np.uint8), k=2)
    assert pred.seconds > 0 and pred.device == "cpu" and len(pred.indices) == 2
    with pytest.raises(ValueError):
        models.classify(tiny_loaded, np.zeros((8, 8, 3), np.uint8), k=0)


# ------------------------------------------------------------------------------------------ weights


class _Server:
    """A local HTTP server for one test: serves ``files`` (name -> bytes), optionally cut short."""

    def __init__(self, files: dict[str, bytes], cut_after: int | None = None):
        outer = self
        self.requests: list[str] = []

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802
                outer.requests.append(self.path)
                name = self.path.rsplit("/", 1)[-1]
                if name not in files:
                    self.send_error(404)
                    return
                body = files[name]
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body if cut_after is None else body[:cut_after])

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.port}/models/{name}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def _state_bytes(name: str, seed: int) -> bytes:
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        model = models._build(models.get_spec(name), 1000)
    buf = io.BytesIO()
    torch.save(model.state_dict(), buf)
    return buf.getvalue()


@pytest.fixture
def ckpt_dir(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv(models.CHECKPOINTS_ENV, str(tmp_path))
    return tmp_path


def _point_at(monkeypatch, name: str, url: str) -> None:
    specs = dict(models._specs())
    specs[name] = dataclasses.replace(specs[name], weights_url=url)
    monkeypatch.setattr(models, "_SPECS", specs)


def test_download_with_progress_and_hash_check(ckpt_dir, monkeypatch):
    body = _state_bytes("resnet18", seed=7)
    fname = f"resnet18-{hashlib.sha256(body).hexdigest()[:8]}.pth"
    server = _Server({fname: body})
    try:
        _point_at(monkeypatch, "resnet18", server.url(fname))
        assert models.weights_status("resnet18") == "download"
        seen: list[tuple[int, int]] = []
        loaded = models.load_model("resnet18", progress=lambda done, total: seen.append((done, total)))
    finally:
        server.close()
    assert server.requests == [f"/models/{fname}"]
    assert (ckpt_dir / fname).read_bytes() == body
    assert seen[0] == (0, len(body)) and seen[-1] == (len(body), len(body))
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)
    expected = torch.load(io.BytesIO(body), weights_only=True)
    torch.testing.assert_close(loaded.model.conv1.weight, expected["conv1.weight"])
    assert loaded.pretrained and not loaded.model.training
    # The server is gone: the file on disk is used with no network.
    assert models.weights_status("resnet18") == "on disk"
    again = models.load_model("resnet18")
    torch.testing.assert_close(again.model.fc.bias, expected["fc.bias"])
    assert list(ckpt_dir.iterdir()) == [ckpt_dir / fname]


def test_hash_mismatch_saves_nothing(ckpt_dir, monkeypatch):
    body = _state_bytes("resnet18", seed=1)
    fname = "resnet18-00000000.pth"  # the content's sha256 does not start with 00000000
    server = _Server({fname: body})
    try:
        _point_at(monkeypatch, "resnet18", server.url(fname))
        with pytest.raises(models.WeightsIntegrityError, match="failed its hash check"):
            models.load_model("resnet18")
    finally:
        server.close()
    assert list(ckpt_dir.iterdir()) == []


def test_download_cut_off_half_way_leaves_no_file(ckpt_dir, monkeypatch):
    body = _state_bytes("resnet18", seed=2)
    fname = f"resnet18-{hashlib.sha256(body).hexdigest()[:8]}.pth"
    server = _Server({fname: body}, cut_after=len(body) // 2)
    try:
        _point_at(monkeypatch, "resnet18", server.url(fname))
        with pytest.raises(models.WeightsUnavailableError):
            models.load_model("resnet18")
    finally:
        server.close()
    assert list(ckpt_dir.iterdir()) == []


def test_offline_and_absent_names_the_file_and_where_to_get_it(ckpt_dir, monkeypatch):
    server = _Server({})
    url = server.url("resnet50-11ad3fa6.pth")
    server.close()  # nothing listens on that port any more: like having no network
    _point_at(monkeypatch, "resnet50", url)
    with pytest.raises(models.WeightsUnavailableError) as info:
        models.load_model("resnet50")
    message = str(info.value)
    assert "resnet50-11ad3fa6.pth" in message and url in message and str(ckpt_dir) in message
    assert "python -m vizlib.fetch_weights resnet50" in message
    assert list(ckpt_dir.iterdir()) == []


def test_a_file_copied_into_checkpoints_is_used_offline(ckpt_dir, monkeypatch):
    body = _state_bytes("googlenet", seed=3)
    fname = f"googlenet-{hashlib.sha256(body).hexdigest()[:8]}.pth"
    (ckpt_dir / fname).write_bytes(body)
    _point_at(monkeypatch, "googlenet", "http://127.0.0.1:9/unreachable/" + fname)
    loaded = models.load_model("googlenet")
    expected = torch.load(io.BytesIO(body), weights_only=True)
    torch.testing.assert_close(loaded.model.conv1.conv.weight, expected["conv1.conv.weight"])
    assert loaded.model.aux1 is None and loaded.model.transform_input


def test_damaged_file_on_disk_is_reported(ckpt_dir, monkeypatch):
    fname = "resnet18-abcdef12.pth"
    (ckpt_dir / fname).write_bytes(b"not the real weights")
    _point_at(monkeypatch, "resnet18", "http://127.0.0.1:9/" + fname)
    with pytest.raises(models.WeightsIntegrityError, match="damaged"):
        models.load_model("resnet18")


class _Payload:
    def __reduce__(self):
        return (print, ("this code must never run",))


def test_pickle_with_a_payload_is_refused(ckpt_dir, monkeypatch, capsys):
    body = pickle.dumps({"conv1.weight": _Payload()})
    fname = f"resnet18-{hashlib.sha256(body).hexdigest()[:8]}.pth"
    (ckpt_dir / fname).write_bytes(body)
    _point_at(monkeypatch, "resnet18", "http://127.0.0.1:9/" + fname)
    with pytest.raises(models.WeightsIntegrityError, match="weights_only=True"):
        models.load_model("resnet18")
    assert "must never run" not in capsys.readouterr().out


# ------------------------------------------------------------------------------------------ devices


def test_device_env_forces_cpu(monkeypatch):
    monkeypatch.setenv(devices.DEVICE_ENV, "cpu")
    assert devices.default_device() == torch.device("cpu")
    monkeypatch.delenv(devices.DEVICE_ENV)
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert devices.default_device().type == expected


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message on a machine without CUDA")
def test_device_env_asking_for_missing_cuda_is_clear(monkeypatch):
    monkeypatch.setenv(devices.DEVICE_ENV, "cuda")
    with pytest.raises(ValueError, match="no CUDA GPU is available"):
        devices.default_device()


def test_device_env_nonsense(monkeypatch):
    monkeypatch.setenv(devices.DEVICE_ENV, "banana")
    with pytest.raises(ValueError, match="not a device name"):
        devices.default_device()


def test_describe_device_cpu():
    assert devices.describe_device("cpu").startswith("CPU (")


def test_out_of_memory_is_retried_on_the_cpu(tiny_loaded, rng):
    # Pretend the model lives on a GPU: its CPU twin must be a separate copy.
    gpu_like = dataclasses.replace(tiny_loaded, device=torch.device("meta"), lock=tiny_loaded.lock, cache={})
    calls: list[str] = []

    def fn(lm):
        calls.append(lm.device.type)
        if lm.device.type != "cpu":
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return "ok"

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert models.run_with_cpu_fallback(gpu_like, fn) == "ok"
    assert calls == ["meta", "cpu"]
    assert any(issubclass(w.category, devices.DeviceFallbackWarning) for w in caught)
    twin = gpu_like.cpu_twin()
    assert twin.model is not gpu_like.model and twin is gpu_like.cpu_twin()
    torch.testing.assert_close(twin.model[0].weight, tiny_loaded.model[0].weight)


def test_other_errors_are_not_swallowed(tiny_loaded):
    def fn(lm):
        raise RuntimeError("something else")

    with pytest.raises(RuntimeError, match="something else"):
        models.run_with_cpu_fallback(tiny_loaded, fn)


# ------------------------------------------------------------------------------------------ sharing


def test_two_threads_two_images_one_shared_model(lite0):
    cat = images.load_gallery_image("cat")
    coffee = images.load_gallery_image("coffee")
    expected = {"cat": models.predict(lite0, cat), "coffee": models.predict(lite0, coffee)}
    assert expected["cat"][0][0] != expected["coffee"][0][0]
    results: dict[str, list] = {"cat": [], "coffee": []}
    errors: list[BaseException] = []

    def worker(key, img):
        try:
            for _ in range(6):
                results[key].append(models.predict(lite0, img))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(k, v)) for k, v in (("cat", cat), ("coffee", coffee))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors
    for key in results:
        assert len(results[key]) == 6
        for top in results[key]:
            assert [n for n, _ in top] == [n for n, _ in expected[key]]
            np.testing.assert_allclose([p for _, p in top], [p for _, p in expected[key]], atol=1e-5)
    assert not lite0.model.training


def test_device_env_naming_a_gpu_that_is_not_there_is_refused_early(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setenv(devices.DEVICE_ENV, "cuda:7")
    with pytest.raises(ValueError, match=r"asks for GPU 7, but this machine has 1 \(cuda:0\)"):
        devices.default_device()
    monkeypatch.setenv(devices.DEVICE_ENV, "cuda:0")
    assert devices.default_device() == torch.device("cuda:0")
    monkeypatch.setenv(devices.DEVICE_ENV, "mps")
    with pytest.raises(ValueError, match="'cpu' or 'cuda' devices only"):
        devices.default_device()


def test_cpu_twin_copies_no_tensor_on_the_device_that_ran_out(tiny_loaded, monkeypatch):
    # After a CUDA out-of-memory error the twin must not first copy the whole model on that GPU
    # (copy.deepcopy of the model would): each tensor goes straight to the CPU.
    gpu_like = dataclasses.replace(tiny_loaded, device=torch.device("meta"), lock=tiny_loaded.lock, cache={})

    def no_device_copy(self, memo):
        raise AssertionError("a tensor was deep-copied on its own device")

    monkeypatch.setattr(torch.Tensor, "__deepcopy__", no_device_copy)
    monkeypatch.setattr(torch.nn.Parameter, "__deepcopy__", no_device_copy)
    twin = gpu_like.cpu_twin()
    monkeypatch.undo()
    assert twin.device == torch.device("cpu") and twin.model is not tiny_loaded.model
    for (name, mine), (_, theirs) in zip(twin.model.state_dict().items(), tiny_loaded.model.state_dict().items(),
                                          strict=True):
        torch.testing.assert_close(mine, theirs, msg=name)
        assert mine.data_ptr() != theirs.data_ptr(), name
    assert not any(p.requires_grad for p in twin.model.parameters()) and not twin.model.training
    x = torch.randn(2, 3, 16, 16)
    with torch.no_grad():
        torch.testing.assert_close(twin.model(x), tiny_loaded.model(x))


def test_fallbacks_are_reported_to_the_request_that_had_them_only(tiny_loaded):
    import threading

    gpu_like = dataclasses.replace(tiny_loaded, device=torch.device("meta"), lock=tiny_loaded.lock, cache={})
    b_inside, a_reported = threading.Event(), threading.Event()
    seen: dict[str, list[str]] = {}

    def a_fn(lm):
        assert b_inside.wait(10)  # the other request is inside its own collector when this one falls back
        if lm.device.type != "cpu":
            raise torch.cuda.OutOfMemoryError("CUDA out of memory")
        return "cpu"

    def b_fn(lm):
        b_inside.set()
        assert a_reported.wait(10)
        return "cpu"

    def session(name: str, loaded, fn) -> None:
        with devices.collect_fallbacks() as notices, warnings.catch_warnings():
            warnings.simplefilter("ignore")
            models.run_with_cpu_fallback(loaded, fn)
            if name == "a":
                a_reported.set()
        seen[name] = notices

    threads = [threading.Thread(target=session, args=("a", gpu_like, a_fn)),
               threading.Thread(target=session, args=("b", tiny_loaded, b_fn))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    assert not any(t.is_alive() for t in threads)
    assert seen["a"] == [f"The GPU ran out of memory; {tiny_loaded.name} ran on the CPU for this request."]
    assert seen["b"] == []


def test_a_damaged_digits_checkpoint_is_a_model_error(tmp_path, monkeypatch):
    bad = tmp_path / "digits.pth"
    bad.write_bytes(b"not a checkpoint")
    monkeypatch.setattr(models, "weights_path", lambda name: bad)
    with pytest.raises(models.WeightsIntegrityError, match="digits.pth"):
        models.load_model(models.DIGITS_MODEL)
