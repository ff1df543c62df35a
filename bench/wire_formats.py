"""How the preprocessed image should travel from the preprocess server to the OCR server: measured, not assumed.

A real KServe model server (this file run as `python bench/wire_formats.py --serve PORT`) receives the same
preprocessed images in four encodings and decodes each back to the uint8 array the OCR step reads:

- PNG, base64 in a BYTES tensor over JSON (what the step servers send today: lossless, compressed);
- BMP, base64 in a BYTES tensor over JSON (lossless, uncompressed: nothing to deflate or inflate);
- a UINT8 tensor [1, H, W] in the binary tensor extension (tritonclient, binary_data=True);
- a UINT8 tensor [1, H, W] as a JSON list (tritonclient, binary_data=False).

Per format it reports the sender's encode time, the round trip (HTTP, the server's parsing and its decode to an
array) and their sum, as medians over the images. `bench/bench_serve.py` prints this table with the rest.
"""

from __future__ import annotations

import argparse
import base64
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FORMATS = ("png", "bmp", "uint8-binary", "uint8-json")


def _serve(port: int) -> None:
    import numpy as np
    from kserve import Model, ModelServer
    from kserve.protocol.infer_type import InferOutput, InferRequest, InferResponse

    sys.path.insert(0, str(ROOT))
    from steps.codec import decode_image

    class Decode(Model):
        def __init__(self) -> None:
            super().__init__("decode")
            self.ready = True

        async def predict(self, payload: InferRequest, headers=None) -> InferResponse:
            tensor = payload.inputs[0]
            if tensor.datatype == "BYTES":
                data = tensor.data if tensor.data is not None else tensor.as_numpy().reshape(-1).tolist()
                value = data[0].decode() if isinstance(data[0], bytes) else data[0]
                image = decode_image(value)
            else:
                image = np.ascontiguousarray(tensor.as_numpy()[0], dtype=np.uint8)
            return InferResponse(payload.id or "x", self.name,
                                 [InferOutput("shape", [image.ndim], "INT64", list(image.shape))])

    ModelServer(http_port=port, enable_grpc=False, workers=1).start([Decode()])


def _encoders():
    import cv2

    def png(image):
        ok, buf = cv2.imencode(".png", image)
        return base64.b64encode(buf.tobytes()).decode()

    def bmp(image):
        ok, buf = cv2.imencode(".bmp", image)
        return base64.b64encode(buf.tobytes()).decode()

    return {"png": png, "bmp": bmp}


def measure(images: list, rounds: int = 3) -> list[dict]:
    """Start the decoding server, send every image in every format `rounds` times, return one row per format."""
    import numpy as np
    import orjson
    import tritonclient.http as tc
    from servers import free_port, stop, wait_http

    port = free_port()
    log = Path(f"/tmp/cardflow-wire-{port}.log")
    proc = subprocess.Popen([sys.executable, __file__, "--serve", str(port)], stdout=log.open("w"),
                            stderr=subprocess.STDOUT, start_new_session=True)
    rows = []
    try:
        wait_http(f"http://127.0.0.1:{port}/v2/health/ready", 60, proc, log)
        client = tc.InferenceServerClient(f"127.0.0.1:{port}", connection_timeout=120, network_timeout=120)
        encoders = _encoders()
        for fmt in FORMATS:
            encode_ms, trip_ms, size = [], [], []
            for _ in range(rounds):
                for image in images:
                    started = time.perf_counter()
                    if fmt in encoders:
                        text = encoders[fmt](image)
                        tensor = tc.InferInput("image_b64", [1], "BYTES")
                        tensor.set_data_from_numpy(np.array([text], dtype=object), binary_data=False)
                        size.append(len(text))
                    else:
                        tensor = tc.InferInput("image", [1, *image.shape], "UINT8")
                        tensor.set_data_from_numpy(image[None], binary_data=fmt == "uint8-binary")
                        size.append(image.size if fmt == "uint8-binary" else len(orjson.dumps(image[None].tolist())))
                    encoded = time.perf_counter()
                    result = client.infer("decode", [tensor], headers=None if fmt == "uint8-binary" else
                                          {"Content-Type": "application/json"})
                    done = time.perf_counter()
                    assert list(result.as_numpy("shape")) == list(image.shape), (fmt, result.as_numpy("shape"))
                    encode_ms.append(1000 * (encoded - started))
                    trip_ms.append(1000 * (done - encoded))
            rows.append({"format": fmt, "kb": statistics.median(size) / 1024, "encode_ms": statistics.median(encode_ms),
                         "trip_ms": statistics.median(trip_ms),
                         "total_ms": statistics.median(e + t for e, t in zip(encode_ms, trip_ms, strict=True))})
    finally:
        stop(proc)
    return rows


def print_table(rows: list[dict]) -> None:
    print("\npreprocessed image, preprocess → OCR server (medians per image; round trip = HTTP + KServe's parsing + "
          "the server's decode to an array)")
    print("| format | on the wire KB | encode ms | round trip ms | total ms | vs PNG |\n|---|---|---|---|---|---|")
    png = next(r for r in rows if r["format"] == "png")["total_ms"]
    for r in rows:
        print(f"| {r['format']} | {r['kb']:.0f} | {r['encode_ms']:.1f} | {r['trip_ms']:.1f} | {r['total_ms']:.1f} | "
              f"{r['total_ms'] / png:.2f}x |")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--serve", type=int, help="run the decoding KServe server on this port")
    parser.add_argument("--images", type=Path, help="a folder of images to preprocess (grey) and send")
    args = parser.parse_args()
    if args.serve:
        _serve(args.serve)
    else:
        import cv2

        sys.path.insert(0, str(ROOT / "tests"))
        paths = sorted((args.images or ROOT / "data" / "train-corpus" / "images" / "clean").glob("*.jpg"))[:8]
        print_table(measure([cv2.imread(str(p), cv2.IMREAD_GRAYSCALE) for p in paths]))
