"""Fixtures for the export tests: real JPEG photos, tiny calibrated models, subprocess runners."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
SAVED_MODEL_CLI = os.path.join(os.path.dirname(sys.executable), "saved_model_cli")


@pytest.fixture(scope="session")
def photos() -> dict[str, bytes]:
    """Real camera JPEGs shipped in scikit-learn (427x640 each) plus a lossless PNG crop."""
    import sklearn
    import tensorflow as tf

    folder = os.path.join(os.path.dirname(sklearn.__file__), "datasets", "images")
    out = {}
    for name in ("china", "flower"):
        with open(os.path.join(folder, f"{name}.jpg"), "rb") as f:
            out[name] = f.read()
    crop = tf.io.decode_jpeg(out["flower"])[100:300, 200:333]  # 200x133, portrait
    out["flower_crop_png"] = tf.io.encode_png(crop).numpy()
    return out


def _calibrate_head(model, layer_name: str, sample: np.ndarray, target_std: float = 2.0) -> None:
    """Rescales a random model's last layer so its logits are O(1): softmax outputs are then
    far from one-hot and comparisons between pipelines are sensitive."""
    logits = np.asarray(model(sample, training=False))
    layer = model.get_layer(layer_name)
    kernel, bias = layer.get_weights()
    scale = target_std / max(float(logits.std()), 1e-6)
    layer.set_weights([kernel * scale, bias * 0.0])


def run(cmd: list[str], timeout: int = 300) -> subprocess.CompletedProcess:
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2",
               PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env, cwd=REPO)


LOAD_AND_RUN = r'''
import sys, numpy as np, tensorflow as tf
path, inputs, out = sys.argv[1:4]
loaded = tf.saved_model.load(path)
data = np.load(inputs, allow_pickle=True)
results = {}
for sig, arg in (("serving_default", "image_bytes"), ("serving_image_tensor", "images"),
                 ("serving_tf_example", "examples")):
    if sig + "." + arg in data:
        res = loaded.signatures[sig](**{arg: tf.constant(data[sig + "." + arg])})
        for k, v in res.items():
            v = v.numpy()
            results[sig + "." + k] = v.astype(str) if v.dtype == object else v
np.savez(out, **results)
'''


@pytest.fixture(scope="session")
def load_in_fresh_process(tmp_path_factory):
    """Runs signatures of an export in a new Python process via ``tf.saved_model.load``."""
    folder = tmp_path_factory.mktemp("fresh")
    script = folder / "load_and_run.py"
    script.write_text(LOAD_AND_RUN)

    def go(export_path: str, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        inp, out = folder / "inputs.npz", folder / "outputs.npz"
        np.savez(inp, **inputs)
        proc = run([sys.executable, str(script), export_path, str(inp), str(out)])
        assert proc.returncode == 0, proc.stderr[-3000:]
        return dict(np.load(out))

    return go


def _saved_model_cli_run(export_path: str, npy_path: str, outdir: str,
                         signature: str = "serving_default", arg: str = "image_bytes"):
    """``saved_model_cli run`` (TF1 session loader, the path tensorflow_model_server uses)."""
    return run([SAVED_MODEL_CLI, "run", "--dir", export_path, "--tag_set", "serve",
                "--signature_def", signature, "--inputs", f"{arg}={npy_path}",
                "--outdir", outdir, "--overwrite"])


@pytest.fixture(scope="session")
def calibrate_head():
    return _calibrate_head


@pytest.fixture(scope="session")
def saved_model_cli_run():
    return _saved_model_cli_run


@pytest.fixture
def grpc_stand_in():
    """An in-process gRPC ``PredictionService`` (tensorflow-serving-api protos) on 127.0.0.1:0,
    backed by ``tf.saved_model.load``: tests the client request format, not TF Serving itself
    (no model server binary exists here)."""
    import grpc
    import tensorflow as tf
    from concurrent import futures
    from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

    servers = []

    def start(loaded, model_name: str):
        """``loaded``: a ``tf.saved_model.load`` result."""

        class Servicer(prediction_service_pb2_grpc.PredictionServiceServicer):
            def Predict(self, request, context):  # noqa: N802 (gRPC method name)
                if request.model_spec.name != model_name:
                    context.abort(grpc.StatusCode.NOT_FOUND, f"unknown model {request.model_spec.name}")
                name = request.model_spec.signature_name or "serving_default"
                if name not in loaded.signatures:
                    context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"unknown signature {name}")
                inputs = {k: tf.constant(tf.make_ndarray(v)) for k, v in request.inputs.items()}
                try:
                    outputs = loaded.signatures[name](**inputs)
                except tf.errors.InvalidArgumentError as e:
                    context.abort(grpc.StatusCode.INVALID_ARGUMENT, e.message)
                response = predict_pb2.PredictResponse()
                response.model_spec.CopyFrom(request.model_spec)
                for key, value in outputs.items():
                    response.outputs[key].CopyFrom(tf.make_tensor_proto(value.numpy()))
                return response

        server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
        prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(Servicer(), server)
        port = server.add_insecure_port("127.0.0.1:0")
        server.start()
        servers.append(server)
        return prediction_service_pb2_grpc.PredictionServiceStub(grpc.insecure_channel(f"127.0.0.1:{port}"))

    yield start
    for server in servers:
        server.stop(0)


@pytest.fixture(scope="session")
def run_tool():
    """Runs ``python <repo-relative script> args...`` from the repository root."""
    return lambda args: run([sys.executable] + list(args))
