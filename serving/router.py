"""The pipeline endpoint: `/v2/models/cardflow/infer` calls the step servers in order over HTTP.

Each step's V2 response becomes the next step's request (serving/v2.py `response_as_request`), so the router
does what a KServe InferenceGraph `Sequence` with `data: $response` does, plus what the graph router lacks:
per-step timeouts, retries on connection errors only (never on an answer, never on a 4xx), the request id
(`x-request-id`) and `traceparent` passed to every step, Prometheus metrics for the chain (kserve#2703), and
every step's latency, model, version and alias in the response (kserve#3639).

A step that is down or too slow makes the router answer 503 naming the step; a step's 4xx comes back with
its status and message, prefixed with the step.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import time
import uuid
from dataclasses import dataclass
from typing import Any

import orjson
from kserve import Model
from kserve.protocol.infer_type import InferOutput, InferRequest, InferResponse

from common.errors import BadInput, NotFound, Overloaded, Unavailable
from serving import metrics as m
from serving.v2 import (
    accepted_inputs,
    input_tensors,
    output_names,
    required_inputs,
    response_as_request,
    rows_from_tensors,
    served_name,
    tensor_metadata,
)
from steps.base import STEPS

NAME = "cardflow"


class StepUnavailable(Unavailable):
    """A step server cannot be reached, timed out, or answered 5xx (HTTP 503, naming the step)."""


@dataclass(frozen=True)
class StepTarget:
    step: str
    url: str  # the step server's base URL, e.g. http://127.0.0.1:8081
    timeout_s: float = 30.0

    @property
    def infer_url(self) -> str:
        return f"{self.url.rstrip('/')}/v2/models/{served_name(self.step)}/infer"


@dataclass(frozen=True)
class RouterSettings:
    targets: tuple[StepTarget, ...]
    retries: int = 2  # extra attempts after a connection error
    backoff_s: float = 0.2
    budget_s: float | None = None  # the end-to-end SLA budget (each step server counts its own step's)


def _refused(step: str, status: int, message: str) -> Exception:
    text = f"step {step} refused the request (HTTP {status}): {message}"
    if status == 404:
        return NotFound(text)
    if status == 429:
        return Overloaded(text)
    return BadInput(text)


class PipelineRouter(Model):
    """`cardflow`: the whole pipeline over the step servers (see the module docstring)."""

    def __init__(self, settings: RouterSettings) -> None:
        super().__init__(NAME)
        steps = [t.step for t in settings.targets]
        if steps != list(STEPS):
            raise BadInput(f"the router needs one step server per step, in order {', '.join(STEPS)}; got "
                           f"{', '.join(steps) or 'none'}")
        self.settings = settings
        self._client = None

    def load(self) -> bool:
        if self.settings.budget_s is not None:
            m.SLA_BUDGET.labels("pipeline").set(self.settings.budget_s)
        self.ready = True
        return True

    @property
    def client(self):
        """One aiohttp session per router (keep-alive to every step server). aiohttp, not httpx: on the router's
        hot path httpx spent ~15 ms of CPU per pipeline request here (bench/bench_serve.py, py-spy)."""
        import aiohttp

        if self._client is None or self._client.closed:
            self._client = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=64, limit_per_host=16),
                                                 json_serialize=lambda v: orjson.dumps(v).decode())
        return self._client

    def get_input_types(self) -> list[dict]:
        return tensor_metadata(accepted_inputs("preprocess"))

    def get_output_types(self) -> list[dict]:
        return tensor_metadata(output_names("extract"))

    def metadata_parameters(self) -> dict[str, str]:
        return {"cardflow.steps": ",".join(f"{t.step}={t.url}" for t in self.settings.targets)}

    async def reload(self) -> dict[str, Any]:
        """Ask every step server to re-resolve its alias (the V2 repository `load`); the router itself keeps running."""
        answers = {}
        for target in self.settings.targets:
            url = f"{target.url.rstrip('/')}/v2/repository/models/{served_name(target.step)}/load"
            response = await self._post(target, url, b"{}", {"content-type": "application/json"})
            answers[target.step] = response
        return {"name": NAME, "load": True, "steps": json.dumps(answers)}

    async def _post(self, target: StepTarget, url: str, body: bytes, headers: dict[str, str]) -> dict:
        import aiohttp

        for attempt in range(self.settings.retries + 1):
            try:
                async with self.client.post(url, data=body, headers=headers,
                                            timeout=aiohttp.ClientTimeout(total=target.timeout_s)) as response:
                    status, raw = response.status, await response.read()
            except TimeoutError as exc:  # before connection errors: aiohttp's timeouts are both
                raise StepUnavailable(f"step {target.step} at {url} did not answer within {target.timeout_s:g} s") from exc
            except (aiohttp.ClientConnectionError, ConnectionError) as exc:  # refused, reset, closed keep-alive
                if attempt < self.settings.retries:
                    await asyncio.sleep(self.settings.backoff_s * (attempt + 1))
                    continue
                raise StepUnavailable(f"step {target.step} at {url} is unreachable after {attempt + 1} attempts "
                                      f"({type(exc).__name__}: {exc})") from exc
            try:
                data = orjson.loads(raw)
            except orjson.JSONDecodeError:
                data = {"error": raw[:300].decode("utf-8", "replace")}
            if status == 200:
                return data
            message = data.get("error") if isinstance(data, dict) else str(data)
            if 400 <= status < 500:
                raise _refused(target.step, status, str(message))
            raise StepUnavailable(f"step {target.step} at {url} answered HTTP {status}: {message}")
        raise AssertionError("not reached")

    async def predict(self, payload: InferRequest, headers: dict[str, str] | None = None) -> InferResponse:
        started = time.perf_counter()
        headers = {k.lower(): v for k, v in (headers or {}).items()}
        rows = rows_from_tensors("preprocess", payload.inputs)
        request_id = headers.get("x-request-id") or payload.id or str(uuid.uuid4())
        traceparent = headers.get("traceparent") or f"00-{secrets.token_hex(16)}-{secrets.token_hex(8)}-01"
        forward = {"content-type": "application/json", "x-request-id": request_id, "traceparent": traceparent}
        body: dict[str, Any] = {"id": request_id,
                                "inputs": input_tensors(rows, [n for n in accepted_inputs("preprocess")
                                                               if any(n in r for r in rows)])}
        per_step = []
        for target in self.settings.targets:
            step_started = time.perf_counter()
            answer = await self._post(target, target.infer_url, orjson.dumps(body), forward)
            seconds = time.perf_counter() - step_started
            m.STEP_SECONDS.labels(target.step).observe(seconds)
            params = answer.get("parameters") or {}
            per_step.append({"step": target.step, "model": params.get("cardflow.model", ""),
                             "version": params.get("cardflow.version", ""), "alias": params.get("cardflow.alias", ""),
                             "latency_ms": round(seconds * 1000, 3),
                             "compute_ms": params.get("cardflow.compute_ms"), "queue_ms": params.get("cardflow.queue_ms"),
                             "request_id": request_id})
            body = response_as_request(answer)
            index = STEPS.index(target.step)
            given = {t.get("name") for t in body.get("inputs", [])}
            needed = required_inputs(STEPS[index + 1]) if index + 1 < len(STEPS) else output_names(target.step)
            missing = [n for n in needed if n not in given]
            if missing:
                raise StepUnavailable(f"step {target.step} answered without tensor(s) {', '.join(missing)}")
        total = time.perf_counter() - started
        budget = self.settings.budget_s
        if budget is not None and total > budget:
            m.SLA_VIOLATIONS.labels("pipeline").inc()
        m.REQUEST_SECONDS.labels("pipeline", NAME, "", "").observe(total)
        outputs = [InferOutput(t["name"], t["shape"], t["datatype"], t["data"]) for t in body["inputs"]]
        params: dict[str, Any] = {"cardflow.request_id": request_id, "cardflow.traceparent": traceparent,
                                  "cardflow.latency_ms": round(total * 1000, 3), "cardflow.steps": json.dumps(per_step)}
        for item in per_step:
            for key in ("model", "version", "alias", "latency_ms"):
                params[f"cardflow.{item['step']}.{key}"] = item[key]
        return InferResponse(request_id, NAME, outputs, parameters=params)
