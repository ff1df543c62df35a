"""The team setup end to end: `mlflow server` with PostgreSQL as backend store (a private cluster of
Debian's PostgreSQL started for this test on a free loopback port) and an S3 API server (moto's, as MinIO
cannot be installed here) as artifact destination: register, no-op re-register, promote through the
gate, load by alias, predictions equal to the in-process variant, rows really in PostgreSQL."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest
from servers import S3_KEYS, start_mlflow, start_postgres, start_s3, stop

from steps.modelstore import ModelStore

pytestmark = pytest.mark.slow


@pytest.fixture
def team_registry(tmp_path: Path, trained_store: ModelStore, monkeypatch: pytest.MonkeyPatch):
    pg_dir = Path(tempfile.mkdtemp(prefix="cardflow-pg-"))  # outside pytest's 0700 tree: postgres must reach it
    pg = start_postgres(pg_dir)
    s3 = start_s3(tmp_path)
    server = None
    try:
        s3.create_bucket("cardflow-team")
        server = start_mlflow(tmp_path, pg.uri, s3, "cardflow-team")
        for key in [*S3_KEYS, "MLFLOW_S3_ENDPOINT_URL"]:
            monkeypatch.delenv(key, raising=False)
        monkeypatch.setenv("MLFLOW_TRACKING_URI", server.url)
        monkeypatch.setenv("CARDFLOW_MODELS", str(trained_store.root))
        yield server, pg
    finally:
        if server is not None:
            stop(server.proc)
        stop(s3.proc)
        pg.stop()
        shutil.rmtree(pg_dir, ignore_errors=True)


def test_postgres_backed_registry_end_to_end(team_registry, trained_store: ModelStore, small_corpus: Path,
                                             tmp_path: Path) -> None:
    import psycopg2

    from corpus.loaders import load
    from registry import Loader
    from registry.gates import Gatekeeper, GateSpec
    from registry.register import register_all
    from steps.catalog import default_catalog
    from steps.records import ImageRecord
    from steps.spec import load_spec

    server, pg = team_registry
    catalog = default_catalog(trained_store)
    default = load_spec(catalog).default.as_dict()
    ids = ["preprocess/channel:gray", "preprocess/channel:red", "extract/mrz-first:v1"]
    first = register_all(catalog, trained_store, variant_ids=ids, default=default)
    assert [r.new for r in first] == [True, True, True]
    assert [(r.name, r.version) for r in first] == [("cardflow.preprocess.channel", "1"),
                                                    ("cardflow.preprocess.channel", "2"), ("cardflow.extract.mrz-first", "1")]
    assert not any(r.new for r in register_all(catalog, trained_store, variant_ids=ids, default=default))

    corpus = load(small_corpus)
    gate = Gatekeeper(server.url, GateSpec(corpus=str(small_corpus), n=15, seed=11, distribution="clean",
                                           accuracy_tolerance=0.01, budgets_ms={"preprocess": 60_000.0}, batch_size=4),
                      default, catalog, Loader(server.url, tmp_path / "cache"), corpus=corpus)
    promoted = gate.promote("cardflow.preprocess.channel", "1", "champion", user="dana")
    assert promoted.outcome == "promoted" and promoted.candidate.documents == 15
    # The same corpus under a budget no preprocessing meets: version 2 is refused for latency, whatever its accuracy.
    strict = Gatekeeper(server.url, GateSpec(**{**gate.spec.__dict__, "budgets_ms": {"preprocess": 0.001},
                                                "accuracy_tolerance": 1.0 - 1e-9}),
                        default, catalog, Loader(server.url, tmp_path / "cache"), corpus=corpus)
    refused = strict.promote("cardflow.preprocess.channel", "2", "champion", user="dana")
    assert refused.outcome == "refused" and refused.holder.reused
    assert refused.failed == [f"preprocess p95 latency {refused.candidate.p95_ms:.0f} ms vs SLA budget 0.001 ms per "
                              "document (batch 4)"]

    variant = Loader(server.url, tmp_path / "cache").load("preprocess", "channel", alias="champion")
    holder = "1"
    assert variant.registered.version == holder and variant.id == "preprocess/channel:gray"
    docs = [d for d in corpus if d.distribution == "clean"][:2]
    images = [ImageRecord(d.doc_id, d.read_image()) for d in docs]
    local = catalog.get(variant.id).run(images)
    assert all(np.array_equal(a.image, b.image) for a, b in zip(variant.run(images), local, strict=True))

    # The registry's rows are in PostgreSQL itself.
    dsn = pg.uri.replace("postgresql+psycopg2://", "postgresql://")
    with psycopg2.connect(dsn) as conn, conn.cursor() as cur:
        cur.execute("SELECT name, version FROM model_versions ORDER BY name, version")
        assert cur.fetchall() == [("cardflow.extract.mrz-first", 1), ("cardflow.preprocess.channel", 1),
                                  ("cardflow.preprocess.channel", 2)]
        cur.execute("SELECT alias, version FROM registered_model_aliases WHERE name = 'cardflow.preprocess.channel'")
        assert cur.fetchall() == [("champion", int(holder))]
