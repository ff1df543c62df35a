"""The registry end to end against real servers on 127.0.0.1: an `mlflow server` process whose artifact
destination is a real S3 API server (moto's: MinIO cannot be installed here), HTTP between them, and
this client holding no S3 credentials. The tests share one registry and run in file order (register,
inspect, load, promote, then take S3 and the server down)."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from servers import S3_KEYS, start_mlflow, start_s3, stop

from steps.modelstore import ModelStore

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parent.parent
BUCKET = "cardflow-artifacts"


@pytest.fixture(scope="module")
def client_env(trained_store: ModelStore, tmp_path_factory):
    """What a user's shell holds: the tracking URI, the model store and a registry cache of its own (so the
    CLI runs here never touch ~/.cache), and no S3 credentials at all."""
    with pytest.MonkeyPatch.context() as mp:
        for key in [*S3_KEYS, "MLFLOW_S3_ENDPOINT_URL", "MLFLOW_TRACKING_URI"]:
            mp.delenv(key, raising=False)
        mp.setenv("CARDFLOW_MODELS", str(trained_store.root))
        mp.setenv("CARDFLOW_REGISTRY_CACHE", str(tmp_path_factory.mktemp("cli-registry-cache")))
        yield mp


@pytest.fixture(scope="module")
def s3(tmp_path_factory):
    server = start_s3(tmp_path_factory.mktemp("s3"))
    server.create_bucket(BUCKET)
    yield server
    stop(server.proc)


@pytest.fixture(scope="module")
def server(s3, client_env, tmp_path_factory):
    work = tmp_path_factory.mktemp("mlflow-server")
    srv = start_mlflow(work, f"sqlite:///{work / 'mlflow.db'}", s3, BUCKET)
    client_env.setenv("MLFLOW_TRACKING_URI", srv.url)
    yield srv
    stop(srv.proc)


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("registry-cache")


@pytest.fixture(scope="module")
def registered(server, small_corpus: Path, trained_store: ModelStore, tmp_path_factory):
    """A sweep run evaluating the default configuration and a profile of one preprocessing version;
    `mlflow run . -e register` for two variants; then the whole catalog registered twice (the second time
    must find everything registered)."""
    import mlflow

    from mlproject.cli import main
    from registry.register import register_all
    from steps.catalog import default_catalog
    from steps.spec import load_spec

    catalog = default_catalog(trained_store)
    default = load_spec(catalog).default.as_dict()
    mlflow.set_tracking_uri(server.url)
    began = time.perf_counter()
    assert main(["run-config", "--corpus", str(small_corpus), "--distribution", "clean", "--workers", "1",
                 "--latency-repeats", "0", *[arg for step, vid in default.items() for arg in (f"--{step}", vid)]]) == 0
    eval_run = mlflow.search_runs(experiment_names=["cardflow-sweep"], output_format="list")[0]
    assert main(["profile", "--corpus", str(small_corpus), "--distributions", "clean", "--step", "preprocess",
                 "--versions", "otsu:gray", "--cores", "1", "--batch-sizes", "1,2", "--name", "registry-test",
                 "--reports", str(tmp_path_factory.mktemp("reports")),
                 "--min-seconds", "0.3", "--latency-repeats", "0"]) == 0
    cells = mlflow.search_runs(experiment_names=["cardflow-profile"], output_format="list",
                               filter_string="tags.`cardflow.kind` = 'profile-cell'")

    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    entry = subprocess.run(
        [str(Path(sys.executable).parent / "mlflow"), "run", ".", "-e", "register", "--env-manager", "local",
         "-P", "variants=extract/mrz-first:v1,classify/keywords:l2"],
        capture_output=True, text=True, cwd=ROOT, env=env, timeout=600)
    assert entry.returncode == 0, entry.stderr[-3000:]

    print(f"setup: evaluation, profile and entry point {time.perf_counter() - began:.0f} s")
    started = time.perf_counter()
    first = register_all(catalog, trained_store, default=default)
    first_s = time.perf_counter() - started
    started = time.perf_counter()
    second = register_all(catalog, trained_store, default=default)
    second_s = time.perf_counter() - started
    print(f"setup: register_all {first_s:.0f} s, again {second_s:.0f} s")
    return {"catalog": catalog, "default": default, "first": first, "second": second, "first_s": first_s,
            "second_s": second_s, "entry": entry, "eval_run": eval_run, "cells": cells}


CHAMPIONS = {"preprocess": "preprocess/otsu:gray", "ocr": "ocr/tesseract:lstm-fast",
             "classify": "classify/tfidf-logreg:l2", "extract": "extract/mrz-first:v1"}


@pytest.fixture(scope="module")
def champions(registered, server) -> dict:
    """The champion alias on one version per step: {step: Registered}."""
    client = _client(server)
    out = {}
    for step, vid in CHAMPIONS.items():
        entry = next(r for r in registered["first"] if r.variant_id == vid)
        client.set_registered_model_alias(entry.name, "champion", entry.version)
        out[step] = entry
    return out


def _client(server):
    from registry.register import client_for

    return client_for(server.url)


def test_every_variant_is_registered_once_with_its_artifacts_in_s3(registered, server, s3) -> None:
    catalog = registered["catalog"]
    first = registered["first"]
    expected_models = {f"cardflow.{v.step}.{v.model}" for v in catalog}
    assert len(first) == len(catalog) == 36
    assert {r.name for r in first} == expected_models and len(expected_models) == 16
    # The entry point registered two variants; the full pass found them and registered the other 34.
    assert "2 new versions" in registered["entry"].stdout
    assert {r.variant_id for r in first if not r.new} == {"extract/mrz-first:v1", "classify/keywords:l2"}
    assert sum(r.new for r in first) == 34
    client = _client(server)
    versions = [mv for name in expected_models for mv in client.search_model_versions(f"name = '{name}'")]
    assert len(versions) == 36 and {mv.status for mv in versions} == {"READY"}
    tesseract = {mv.tags["cardflow.version_name"]: mv.version
                 for mv in client.search_model_versions("name = 'cardflow.ocr.tesseract'")}
    assert set(tesseract) == {"lstm-fast", "lstm-standard", "legacy", "lstm-fast-mrz", "band-fast", "band-legacy",
                              "band-ensemble"}
    # The artifacts are in the S3 bucket (the server proxies them; this process has no S3 keys).
    assert not any(key in os.environ for key in S3_KEYS)
    keys = [obj["Key"] for page in s3.client().get_paginator("list_objects_v2").paginate(Bucket=BUCKET)
            for obj in page.get("Contents", [])]
    assert sum(key.endswith("/MLmodel") for key in keys) == 36
    standard = [k for k in keys if k.endswith("tessdata/standard/eng.traineddata")]
    # lstm-standard, legacy, lstm-fast-mrz, band-legacy and band-ensemble (legacy engine) each carry their own copy
    assert len(standard) == 5


def test_a_second_register_registers_nothing(registered, server) -> None:
    second = registered["second"]
    assert len(second) == 36 and not any(r.new for r in second)
    by_id = {r.variant_id: r.version for r in registered["first"]}
    assert {r.variant_id: r.version for r in second} == by_id
    client = _client(server)
    assert sum(len(client.search_model_versions(f"name = '{m.name}'"))
               for m in client.search_registered_models()) == 36


def test_a_sweep_after_registration_is_linked_by_the_next_register(registered, server, small_corpus) -> None:
    """Evaluations that run after a version was registered: re-registering registers nothing new but points
    the version at the newer run (tags, description, metrics)."""
    import mlflow

    from mlproject.cli import main
    from registry.register import register_all

    config = {**registered["default"], "ocr": "ocr/tesseract:lstm-fast"}
    assert main(["run-config", "--corpus", str(small_corpus), "--distribution", "clean", "--workers", "1",
                 "--latency-repeats", "0", *[arg for step, vid in config.items() for arg in (f"--{step}", vid)]]) == 0
    run = next(r for r in mlflow.search_runs(experiment_names=["cardflow-sweep"], output_format="list")
               if r.data.params.get("ocr") == "ocr/tesseract:lstm-fast")
    catalog = registered["catalog"]
    again = register_all(catalog, catalog.get("ocr/tesseract:lstm-fast").store, variant_ids=["ocr/tesseract:lstm-fast"],
                         default=registered["default"])
    assert [(r.new, r.refreshed) for r in again] == [(False, True)]
    version = _client(server).get_model_version("cardflow.ocr.tesseract", again[0].version)
    assert version.tags["cardflow.eval.run_id"] == run.info.run_id
    assert f"Evaluated in run {run.info.run_id}: accuracy {run.data.metrics['accuracy']:.1%}" in version.description
    metrics = _client(server).get_run(version.run_id).data.metrics
    assert metrics["accuracy"] == pytest.approx(run.data.metrics["accuracy"])
    once_more = register_all(catalog, catalog.get("ocr/tesseract:lstm-fast").store,
                             variant_ids=["ocr/tesseract:lstm-fast"], default=registered["default"])
    assert [(r.new, r.refreshed) for r in once_more] == [(False, False)]


def test_a_version_carries_flavours_signature_requirements_and_checksums(registered, server, trained_store) -> None:
    import mlflow

    client = _client(server)
    ocr = next(r for r in registered["first"] if r.variant_id == "ocr/tesseract:lstm-fast-mrz")
    version = client.get_model_version("cardflow.ocr.tesseract", ocr.version)
    files = json.loads(version.tags["cardflow.files"])
    manifest = ModelStore().manifest()["files"]
    assert set(files) == {"tessdata/lstm-fast/eng.traineddata", "tessdata/standard/eng.traineddata"}
    assert all(files[rel] == manifest[rel]["sha256"] for rel in files)
    info = mlflow.models.get_model_info(f"models:/cardflow.ocr.tesseract/{ocr.version}")
    assert "python_function" in info.flavors and "onnx" not in info.flavors
    inputs = info.signature.inputs.to_dict()
    assert [c["name"] for c in inputs] == ["doc_id", "image_b64", "error"]  # the wire codec's ocr fields
    assert [c.get("required", True) for c in inputs] == [True, True, False]
    assert [c["name"] for c in info.signature.outputs.to_dict()] == ["doc_id", "ocr_json", "text", "error"]
    assert info.metadata["cardflow"]["fingerprint"] == ocr.fingerprint
    # The ONNX classifier also has the ONNX flavour: its model.onnx opens with mlflow.onnx.
    clf = next(r for r in registered["first"] if r.variant_id == "classify/tfidf-logreg:l2")
    uri = f"models:/cardflow.classify.tfidf-logreg/{clf.version}"
    assert {"python_function", "onnx"} <= set(mlflow.models.get_model_info(uri).flavors)
    assert mlflow.onnx.load_model(uri).graph.input[0].name
    requirements = Path(mlflow.artifacts.download_artifacts(f"{uri}/requirements.txt")).read_text().split()
    assert "onnxruntime==1.32.0" in requirements and any(r.startswith("mlflow==") for r in requirements)
    run = client.get_run(version.run_id)
    assert run.data.params["param.mrz_pass"] == "True" and run.data.params["fingerprint"] == ocr.fingerprint


def test_a_version_links_the_sweep_and_profile_runs_that_measured_it(registered, server) -> None:
    from registry.register import versions

    client = _client(server)
    eval_run = registered["eval_run"]
    for step, vid in registered["default"].items():
        entry = next(r for r in registered["first"] if r.variant_id == vid)
        version = client.get_model_version(entry.name, entry.version)
        assert version.tags.get("cardflow.eval.run_id") == eval_run.info.run_id, vid
        metrics = client.get_run(version.run_id).data.metrics
        assert metrics["accuracy"] == pytest.approx(eval_run.data.metrics["accuracy"])
        assert metrics[f"step.{step}.latency_ms.p95"] == pytest.approx(eval_run.data.metrics[f"step.{step}.latency_ms.p95"])
    # The profiled version carries its smallest cell's figures (1 core, batch 1) and links that cell.
    cell = next(c for c in registered["cells"] if c.data.params["batch_size"] == "1")
    otsu = next(r for r in registered["first"] if r.variant_id == "preprocess/otsu:gray")
    version = client.get_model_version(otsu.name, otsu.version)
    assert version.tags["cardflow.profile.run_id"] == cell.info.run_id
    metrics = client.get_run(version.run_id).data.metrics
    assert metrics["profile.latency_ms.p95"] == pytest.approx(cell.data.metrics["latency_ms.p95"])
    assert metrics["profile.cost_per_1k_docs"] == pytest.approx(cell.data.metrics["cost_per_1k_docs"])
    assert metrics["profile.batch_size"] == 1 and metrics["profile.cores"] == 1
    rows = versions(server.url, "cardflow.ocr.tesseract")
    row = next(r for r in rows if r["variant"] == registered["default"]["ocr"])
    assert row["accuracy"] == pytest.approx(eval_run.data.metrics["accuracy"])
    others = [r for r in rows if r["variant"] in ("ocr/tesseract:legacy", "ocr/tesseract:lstm-standard")]
    assert len(others) == 2 and all(r["accuracy"] is None for r in others)  # nothing evaluated them


def test_cli_list_shows_models_versions_aliases_and_metrics(registered, server) -> None:
    out = subprocess.run([str(Path(sys.executable).parent / "cardflow"), "registry", "list"],
                         capture_output=True, text=True, env=os.environ, timeout=120)
    assert out.returncode == 0, out.stderr
    lines = [ln for ln in out.stdout.splitlines() if ln.startswith("| cardflow.")]
    assert len(lines) == 36
    ocr_line = next(ln for ln in lines if registered["default"]["ocr"] in ln)
    accuracy = registered["eval_run"].data.metrics["accuracy"]
    assert f"{accuracy:.1%}" in ocr_line


def _docs(small_corpus: Path, n: int = 4):
    from corpus.loaders import load

    return [d for d in load(small_corpus) if d.distribution == "clean"][:n]


def test_loaded_versions_predict_exactly_what_the_in_process_variants_do(registered, champions, server, small_corpus,
                                                                         cache) -> None:
    import mlflow
    import pandas as pd

    from registry import Loader
    from steps.codec import codec, encode_image
    from steps.records import ExtractInput, ImageRecord

    catalog = registered["catalog"]
    chosen = CHAMPIONS
    numbers = champions
    loader = Loader(server.url, cache)
    docs = _docs(small_corpus)
    images = [ImageRecord(d.doc_id, d.read_image()) for d in docs]
    inputs = {"preprocess": images}
    expected = {}
    for step, vid in chosen.items():
        local = catalog.get(vid)
        expected[step] = local.run(inputs[step])
        if step == "preprocess":
            inputs["ocr"] = expected[step]
        elif step == "ocr":
            inputs["classify"] = expected[step]
        elif step == "classify":
            inputs["extract"] = [ExtractInput(o, c) for o, c in zip(inputs["classify"], expected[step], strict=True)]
    for step, vid in chosen.items():
        by_alias = loader.load(step, vid.split("/")[1].split(":")[0], alias="champion")
        by_version = loader.load(step, vid.split("/")[1].split(":")[0], version=numbers[step].version)
        assert by_alias.id == by_version.id == vid
        assert by_alias.registered.origin == "download" and by_version.registered.origin == "cache"
        got = by_alias.run(inputs[step])
        if step == "preprocess":
            assert all(np.array_equal(a.image, b.image) for a, b in zip(got, expected[step], strict=True))
        else:
            assert got == expected[step], step
    # The same through MLflow's own pyfunc loader, by alias, on the wire format.
    model = mlflow.pyfunc.load_model("models:/cardflow.classify.tfidf-logreg@champion")
    frame = pd.DataFrame([{"doc_id": o.doc_id, "ocr_json": json.dumps(o.to_json())} for o in inputs["classify"]])
    out = model.predict(frame)
    want = codec("classify").encode(inputs["classify"], expected["classify"])
    assert out.to_dict(orient="records") == want
    pre = mlflow.pyfunc.load_model("models:/cardflow.preprocess.otsu@champion")
    frame = pd.DataFrame([{"doc_id": d.doc_id, "image_b64": encode_image(d.image)} for d in images[:1]])
    assert pre.predict(frame).loc[0, "image_b64"] == encode_image(expected["preprocess"][0].image)


def test_a_bad_row_is_refused_naming_row_document_and_field(champions, server, small_corpus) -> None:
    """Malformed input is bad input for the whole request (HTTP 400 when served), never an error string in a
    200 response; a document the variant fails on stays its own row's error."""
    import mlflow
    import pandas as pd
    from mlflow.exceptions import MlflowException

    from common.errors import outcome
    from steps.codec import WireError, encode_image

    model = mlflow.pyfunc.load_model("models:/cardflow.preprocess.otsu@champion")
    good = encode_image(_docs(small_corpus, 1)[0].read_image())
    with pytest.raises(WireError, match=r"preprocess input row 1 \(document 'bad'\): image_b64 is not a "
                                        r"base64-encoded image") as caught:
        model.predict(pd.DataFrame([{"doc_id": "ok", "image_b64": good}, {"doc_id": "bad", "image_b64": "bm90IGFuIGltYWdl"}]))
    assert outcome(caught.value).http_status == 400 and outcome(caught.value).exit_code == 2
    with pytest.raises(MlflowException, match=r"missing inputs \['image_b64'\]"):  # MLflow's schema check first
        model.predict(pd.DataFrame([{"doc_id": "x"}]))
    upstream = model.predict(pd.DataFrame([{"doc_id": "failed", "image_b64": "", "error": "ocr/x:y: no text"}]))
    assert upstream.loc[0, "error"] == "ocr/x:y: no text" and upstream.loc[0, "image_b64"] == ""


def test_a_corrupted_cached_file_is_detected_and_downloaded_again(champions, server, cache, caplog) -> None:
    from registry import Loader
    from steps.modelstore import sha256_file

    loader = Loader(server.url, cache)
    first = loader.resolve("ocr", "tesseract", alias="champion")
    target = first.path / "artifacts" / "store" / "tessdata" / "lstm-fast" / "eng.traineddata"
    with open(target, "r+b") as fh:
        fh.seek(4096)
        fh.write(b"\x00corrupt\x00")
    with caplog.at_level(logging.WARNING, logger="registry.loader"):
        variant = loader.load("ocr", "tesseract", alias="champion")
    assert variant.registered.origin == "download"
    assert str(target) in caplog.text and "corrupt" in caplog.text
    assert sha256_file(target) == first.files["tessdata/lstm-fast/eng.traineddata"]


def test_unknown_models_aliases_and_versions_are_named(champions, server, cache) -> None:
    from registry import Loader, RegistryError

    loader = Loader(server.url, cache)
    with pytest.raises(RegistryError, match=r"cardflow.ocr.tesseract has no alias 'nightly'.*aliases: champion \(v1\)"):
        loader.load("ocr", "tesseract", alias="nightly")
    with pytest.raises(RegistryError, match=r"has no version 99"):
        loader.load("ocr", "tesseract", version=99)
    with pytest.raises(RegistryError, match=r"no registered model 'cardflow.ocr.easyocr'.*cardflow.ocr.tesseract"):
        loader.load("ocr", "easyocr", alias="champion")
    with pytest.raises(RegistryError, match=r"unknown step 'ocrr'"):
        loader.load("ocrr", "tesseract", alias="champion")


def test_promotion_gates_accept_refuse_force_and_roll_back(registered, server, small_corpus, cache) -> None:
    from corpus.loaders import load
    from registry import Loader, RegistryError
    from registry.gates import Gatekeeper, GateSpec, history
    from registry.register import versions

    spec = GateSpec(corpus=str(small_corpus), n=15, seed=11, distribution="clean", accuracy_tolerance=0.01,
                    budgets_ms={"classify": 1000.0}, batch_size=4)
    gate = Gatekeeper(server.url, spec, registered["default"], registered["catalog"], Loader(server.url, cache),
                      corpus=load(small_corpus))
    name = "cardflow.classify.tfidf-logreg"
    numbers = {r.variant_id: r.version for r in registered["first"] if r.name == name}
    l1, l2 = numbers["classify/tfidf-logreg:l1"], numbers["classify/tfidf-logreg:l2"]
    client = _client(server)
    client.delete_registered_model_alias(name, "champion")  # start from no holder

    first = gate.promote(name, l2, "champion", user="alice")
    assert first.outcome == "promoted" and first.previous is None
    assert "no version holds champion yet" in first.reasons[0]
    assert client.get_model_version_by_alias(name, "champion").version == l2

    # A level-1 model cannot pass the issuer × type assertions: accuracy falls below the holder's.
    refused = gate.promote(name, l1, "champion", user="alice")
    assert refused.outcome == "refused" and not refused.accepted
    assert refused.candidate.accuracy < refused.holder.accuracy - 0.01
    assert refused.failed and refused.failed[0].startswith(
        f"accuracy {refused.candidate.accuracy:.1%} vs holder v{l2} {refused.holder.accuracy:.1%}")
    assert client.get_model_version_by_alias(name, "champion").version == l2
    assert json.loads(client.get_model_version(name, l1).tags["cardflow.champion.decision"])["outcome"] == "refused"

    with pytest.raises(RegistryError, match="--force needs --reason"):
        gate.promote(name, l1, "champion", force=True)
    forced = gate.promote(name, l1, "champion", force=True, reason="type-only service for the kiosk", user="bob")
    assert forced.outcome == "forced" and forced.candidate.reused and forced.holder.reused
    tags = client.get_model_version(name, l1).tags
    assert tags["cardflow.champion.forced_by"] == "bob"
    assert tags["cardflow.champion.force_reason"] == "type-only service for the kiosk"
    assert client.get_model_version_by_alias(name, "champion").version == l1

    assert gate.previous_holder(name, "champion") == l2
    back = gate.promote(name, l2, "champion", user="alice")  # rollback = promote the previous holder back
    assert back.outcome == "promoted" and client.get_model_version_by_alias(name, "champion").version == l2

    # The p95 latency gate: with a budget no step can meet, the same version is refused for latency.
    tight = Gatekeeper(server.url, GateSpec(**{**spec.__dict__, "budgets_ms": {"classify": 0.001}}),
                       registered["default"], registered["catalog"], Loader(server.url, cache), corpus=load(small_corpus))
    slow = tight.promote(name, l2, "challenger", user="carol")
    assert slow.outcome == "refused" and slow.failed == [
        f"classify p95 latency {slow.candidate.p95_ms:.0f} ms vs SLA budget 0.001 ms per document (batch 4)"]

    rows = history(server.url, name=name)
    assert [(r["alias"], r["previous"], r["version"], r["outcome"], r["by"]) for r in rows] == [
        ("champion", None, l2, "promoted", "alice"), ("champion", l2, l1, "refused", "alice"),
        ("champion", l2, l1, "forced", "bob"), ("champion", l1, l2, "promoted", "alice"),
        ("challenger", None, l2, "refused", "carol")]
    assert rows[2]["reason"] == "type-only service for the kiosk"
    listed = {r["version"]: r["aliases"] for r in versions(server.url, name)}
    assert listed[l2] == "champion" and listed[l1] == ""
    out = subprocess.run([str(Path(sys.executable).parent / "cardflow"), "registry", "history", "--model", name],
                         capture_output=True, text=True, env=os.environ, timeout=120)
    assert out.returncode == 0 and out.stdout.count("| cardflow.classify.tfidf-logreg") == 5
    assert "type-only service for the kiosk" in out.stdout


def test_cli_promote_exits_3_when_refused_and_names_the_failed_gate(registered, server, small_corpus) -> None:
    name = "cardflow.classify.tfidf-logreg"
    l1 = next(r.version for r in registered["first"] if r.variant_id == "classify/tfidf-logreg:l1")
    out = subprocess.run([str(Path(sys.executable).parent / "cardflow"), "registry", "promote", name, "--version", l1,
                          "--corpus", str(small_corpus), "--distribution", "clean"],
                         capture_output=True, text=True, env=os.environ, timeout=600)
    assert out.returncode == 3, out.stderr[-2000:]
    assert "REFUSED" in out.stdout and "FAIL  accuracy" in out.stdout
    bad = subprocess.run([str(Path(sys.executable).parent / "cardflow"), "registry", "promote", "cardflow.ocr",
                          "--version", "1"], capture_output=True, text=True, env=os.environ, timeout=120)
    assert bad.returncode == 2 and "model name 'cardflow.ocr' is not cardflow.<step>.<model>" in bad.stderr
    assert "Traceback" not in bad.stderr


def test_a_download_that_does_not_match_the_registry_is_refused_naming_the_file(registered, server, s3,
                                                                                  tmp_path) -> None:
    """The object in S3 is replaced behind the registry's back: the loader refuses it and keeps nothing."""
    from registry import Loader, RegistryError

    entry = next(r for r in registered["first"] if r.variant_id == "ocr/pytesseract:lstm-fast")
    model_id = _client(server).get_model_version(entry.name, entry.version).source.rsplit("/", 1)[-1]  # m-<id>
    s3c = s3.client()
    keys = [obj["Key"] for page in s3c.get_paginator("list_objects_v2").paginate(Bucket=BUCKET)
            for obj in page.get("Contents", []) if model_id in obj["Key"]]
    target = next(k for k in keys if k.endswith("store/tessdata/lstm-fast/eng.traineddata"))
    original = s3c.get_object(Bucket=BUCKET, Key=target)["Body"].read()
    s3c.put_object(Bucket=BUCKET, Key=target, Body=original[:-16] + b"\x00" * 16)
    try:
        with pytest.raises(RegistryError, match=r"does not match the registry: .*tessdata/lstm-fast/eng.traineddata "
                                                r"has sha256 .*the download was discarded"):
            Loader(server.url, tmp_path).load("ocr", "pytesseract", version=entry.version)
        assert not [p for p in tmp_path.rglob("eng.traineddata")]  # nothing unverified was kept
    finally:
        s3c.put_object(Bucket=BUCKET, Key=target, Body=original)
    assert Loader(server.url, tmp_path).load("ocr", "pytesseract", version=entry.version).registered.origin == "download"


def test_each_model_requires_every_distribution_it_imports(champions, server) -> None:
    """A model served from its own requirements.txt must find everything it imports: load each step's
    champion through MLflow's pyfunc loader in a fresh process, run its input example, and check that every
    distribution it imports beyond what MLflow imports for any pyfunc model is required by the model,
    directly or through a requirement's own dependencies."""
    script = """
import sys, importlib.metadata as md, re, tempfile
import mlflow, pandas as pd
from packaging.requirements import Requirement

class Echo(mlflow.pyfunc.PythonModel):
    def predict(self, context, model_input, params=None):
        return model_input

local = mlflow.artifacts.download_artifacts(sys.argv[1])  # the tracking client's own imports happen here
# What MLflow itself imports to save, load and run any pyfunc model (some of it only because it is installed)
tmp = tempfile.mkdtemp()
mlflow.pyfunc.save_model(f"{tmp}/echo", python_model=Echo(), input_example=pd.DataFrame([{"doc_id": "x"}]))
mlflow.pyfunc.load_model(f"{tmp}/echo").predict(pd.DataFrame([{"doc_id": "x"}]))
baseline = set(sys.modules)
model = mlflow.pyfunc.load_model(local)
example = model.input_example
out = model.predict(example)
assert out.loc[0, "error"] == "", out.loc[0, "error"]
loaded = set(sys.modules) - baseline  # before asking MLflow for the requirements (that imports more)
norm = lambda n: re.sub(r"[-_.]+", "-", n).lower()
required = [Requirement(r).name for r in open(f"{local}/requirements.txt").read().split() if r]
seen, todo = set(), [norm(r) for r in required]
while todo:
    name = todo.pop()
    if name in seen:
        continue
    seen.add(name)
    try:
        reqs = md.requires(name) or []
    except md.PackageNotFoundError:
        continue
    for text in reqs:
        req = Requirement(text)
        if req.marker is None or req.marker.evaluate({"extra": ""}):
            todo.append(norm(req.name))
dists = md.packages_distributions()
tops = {m.split(".")[0] for m in loaded} - set(sys.stdlib_module_names)
imported = {norm(d) for t in tops for d in dists.get(t, [])} - {"cardflow", "pip", "setuptools"}
print(" ".join(sorted(imported - seen)))
"""
    for step, entry in champions.items():
        out = subprocess.run([sys.executable, "-c", script, f"models:/{entry.name}@champion"], capture_output=True,
                             text=True, env=os.environ, timeout=300, cwd="/")
        assert out.returncode == 0, out.stderr[-3000:]
        assert out.stdout.strip() == "", f"{step}: imported but not required: {out.stdout.strip()}"


def test_register_names_a_step_that_does_not_exist(server) -> None:
    out = subprocess.run([str(Path(sys.executable).parent / "cardflow"), "registry", "register", "--step", "ocrr"],
                         capture_output=True, text=True, env=os.environ, timeout=120)
    assert out.returncode == 2 and "parameter step: unknown step(s) ocrr" in out.stderr


def _fail_over_fast(monkeypatch) -> None:
    """What a process that loads registered versions sets at start (tracking.edge.fail_over_fast), for this test."""
    from tracking.edge import HTTP_DEFAULTS

    for key, value in HTTP_DEFAULTS.items():
        monkeypatch.setenv(key, value)


def test_with_s3_down_a_cached_version_loads_and_an_uncached_one_fails_naming_the_uri(registered, champions, server,
                                                                                         s3, cache, monkeypatch) -> None:
    from registry import Loader, RegistryError

    _fail_over_fast(monkeypatch)
    loader = Loader(server.url, cache)
    loader.load("ocr", "tesseract", alias="champion")  # cached while S3 is up
    stop(s3.proc)
    assert loader.load("ocr", "tesseract", alias="champion").registered.origin == "cache"
    legacy = next(r.version for r in registered["first"] if r.variant_id == "ocr/tesseract:legacy")
    started = time.perf_counter()
    with pytest.raises(RegistryError, match=rf"cannot download cardflow.ocr.tesseract version {legacy} from "
                                            rf"{server.url}.*no cached copy"):
        loader.load("ocr", "tesseract", version=legacy)
    assert time.perf_counter() - started < 120


def test_with_the_server_down_the_cached_copy_loads_with_a_warning(champions, server, cache, caplog,
                                                                   monkeypatch) -> None:
    from registry import Loader, RegistryError

    _fail_over_fast(monkeypatch)
    loader = Loader(server.url, cache)
    _client(server).set_registered_model_alias("cardflow.classify.tfidf-logreg", "champion",
                                               champions["classify"].version)
    loader.resolve("classify", "tfidf-logreg", alias="champion")  # resolved (and cached) while the server is up
    stop(server.proc)
    with caplog.at_level(logging.WARNING, logger="registry.loader"):
        variant = loader.load("classify", "tfidf-logreg", alias="champion")
    from registry.loader import Origin

    assert variant.registered.origin is Origin.OFFLINE_CACHE and "unreachable" in variant.registered.offline_reason
    assert f"MLflow tracking server at {server.url} is unreachable" in caplog.text
    assert "loading the verified cached copy of cardflow.classify.tfidf-logreg@champion" in caplog.text
    with pytest.raises(RegistryError, match=rf"{server.url} is unreachable.*no copy of cardflow.extract.mrz-only@champion"):
        loader.load("extract", "mrz-only", alias="champion")
    out = subprocess.run([str(Path(sys.executable).parent / "cardflow"), "registry", "load", "ocr", "rapidocr",
                          "--version", "1", "--cache", str(cache)], capture_output=True, text=True, env=os.environ,
                         timeout=120)
    # Unavailable (try again), the error table's exit 4: not bad input
    assert out.returncode == 4 and server.url in out.stderr and "Traceback" not in out.stderr


def test_an_unwritable_cache_is_a_clear_error_naming_it(tmp_path) -> None:
    """A read-only cache folder (a container without a writable volume there) is an error naming the folder and
    the setting, not a traceback."""
    import pytest as _pytest

    from registry.errors import RegistryError
    from registry.loader import _locked

    locked = tmp_path / "ro"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        if os.access(locked, os.W_OK):  # root ignores the mode bits: make it a file in the way instead
            locked.chmod(0o700)
            locked.rmdir()
            locked.write_text("not a folder")
        with _pytest.raises(RegistryError, match=r"registry cache .*ro/model cannot be written.*CARDFLOW_REGISTRY_CACHE"), \
                _locked(locked / "model"):
            pass
    finally:
        if locked.is_dir():
            locked.chmod(0o700)
