"""The serving pieces without servers: V2 tensors ↔ wire rows, response-as-request, the adaptive batcher."""

from __future__ import annotations

import asyncio
import threading
from types import SimpleNamespace

import pytest

from serving.batcher import AdaptiveBatcher
from serving.v2 import BadTensor, accepted_inputs, output_names, response_as_request, rows_from_tensors
from steps.base import STEPS


def _tensor(name, data, datatype="BYTES", shape=None):
    return SimpleNamespace(name=name, datatype=datatype, shape=shape if shape is not None else [len(data)], data=data)


def test_each_steps_response_is_accepted_as_the_next_steps_request() -> None:
    for upstream, downstream in zip(STEPS, STEPS[1:], strict=False):
        assert set(output_names(upstream)) <= set(accepted_inputs(downstream)), (upstream, downstream)
    assert len(set(accepted_inputs("preprocess"))) == len(accepted_inputs("preprocess"))


def test_rows_from_tensors_names_the_tensor_at_fault() -> None:
    rows = rows_from_tensors("classify", [_tensor("doc_id", ["a", "b"]), _tensor("ocr_json", ["{}", b"{}"])])
    assert rows == [{"doc_id": "a", "ocr_json": "{}"}, {"doc_id": "b", "ocr_json": "{}"}]
    with pytest.raises(BadTensor, match="unknown input tensor 'image'"):
        rows_from_tensors("classify", [_tensor("doc_id", ["a"]), _tensor("image", ["x"])])
    with pytest.raises(BadTensor, match="missing input tensor.*'ocr_json'"):
        rows_from_tensors("classify", [_tensor("doc_id", ["a"])])
    with pytest.raises(BadTensor, match="'ocr_json' has datatype FP32"):
        rows_from_tensors("classify", [_tensor("doc_id", ["a"]), _tensor("ocr_json", [1.0], "FP32")])
    with pytest.raises(BadTensor, match=r"'ocr_json' has shape \[2\] but 1 elements"):
        rows_from_tensors("classify", [_tensor("doc_id", ["a"]), _tensor("ocr_json", ["{}"], shape=[2])])
    with pytest.raises(BadTensor, match="'ocr_json' has 2 elements; the others have 1"):
        rows_from_tensors("classify", [_tensor("doc_id", ["a"]), _tensor("ocr_json", ["{}", "{}"])])
    with pytest.raises(BadTensor, match="not UTF-8"):
        rows_from_tensors("classify", [_tensor("doc_id", ["a"]), _tensor("ocr_json", [b"\xff\xfe"])])


def test_response_as_request_renames_outputs_and_keeps_the_id() -> None:
    out = [{"name": "doc_id", "datatype": "BYTES", "shape": [1], "data": ["a"]}]
    assert response_as_request({"model_name": "m", "id": "r1", "outputs": out}) == {"inputs": out, "id": "r1"}
    request = {"inputs": out}
    assert response_as_request(request) is request


def test_the_batcher_groups_concurrent_requests_and_splits_results_back() -> None:
    calls: list[list[int]] = []
    gate = threading.Event()

    def run(records):
        gate.wait(5)
        calls.append(list(records))
        return "v1", [r * 10 for r in records]

    async def main():
        batcher = AdaptiveBatcher(run, max_batch_size=4, max_batch_delay_ms=50)
        first = asyncio.create_task(batcher.submit([1]))
        await asyncio.sleep(0.01)
        rest = [asyncio.create_task(batcher.submit([k])) for k in (2, 3, 4, 5)]
        await asyncio.sleep(0.01)
        gate.set()
        results = [await first] + [await t for t in rest]
        batcher.close()
        return results

    results = asyncio.run(main())
    assert [r.outputs for r in results] == [[10], [20], [30], [40], [50]]
    assert calls == [[1, 2, 3, 4], [5]]  # four within the window, the fifth in the next batch
    assert [r.batch_documents for r in results] == [4, 4, 4, 4, 1]
    assert all(r.served == "v1" for r in results)
