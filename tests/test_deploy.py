"""The deployment files: compose.yaml and the Kubernetes manifests under serving/k8s (the registry, the served
pipeline, its monitoring).

No container engine nor Kubernetes API server runs here, so these are checked offline: compose.yaml
structurally (services, health checks, named volumes, secrets only from the git-ignored env file), the
manifests rendered by `kubectl kustomize`, core kinds validated against the Kubernetes 1.32 schemas (strict),
KServe and Prometheus Operator resources against their CRDs' schemas (../shared/schemas, strict: an unknown
field fails), and the chains, selectors and rules checked against what they must agree with."""

from __future__ import annotations

import functools
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
ENV_EXAMPLE = ROOT / "deploy" / "registry.env.example"
SCHEMAS = ROOT.parent / "shared" / "schemas"
CRDS = {("serving.kserve.io", "InferenceService"): "kserve/serving.kserve.io_inferenceservices.yaml",
        ("serving.kserve.io", "InferenceGraph"): "kserve/serving.kserve.io_inferencegraphs.yaml",
        ("monitoring.coreos.com", "PodMonitor"): "prometheus-operator/monitoring.coreos.com_podmonitors.yaml",
        ("monitoring.coreos.com", "ServiceMonitor"): "prometheus-operator/monitoring.coreos.com_servicemonitors.yaml",
        ("monitoring.coreos.com", "PrometheusRule"): "prometheus-operator/monitoring.coreos.com_prometheusrules.yaml",
        ("ray.io", "RayJob"): "kuberay/ray.io_rayjobs.yaml"}


def _example_keys() -> set[str]:
    return {line.split("=", 1)[0] for line in ENV_EXAMPLE.read_text().splitlines()
            if line.strip() and not line.startswith("#")}


def _lock_pins() -> dict[str, str]:
    return dict(line.split("==", 1) for line in (ROOT / "requirements.lock").read_text().splitlines() if "==" in line)


def test_compose_runs_mlflow_on_postgres_and_minio_with_health_checks_and_named_volumes() -> None:
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    services = compose["services"]
    assert set(services) == {"minio", "minio-init", "postgres", "mlflow"}
    for name in ("minio", "postgres", "mlflow"):
        assert services[name]["healthcheck"]["test"], name
        assert services[name]["env_file"] == [".env"], name
    assert set(compose["volumes"]) == {"minio-data", "postgres-data"}
    assert services["minio"]["volumes"] == ["minio-data:/data"]
    assert services["postgres"]["volumes"] == ["postgres-data:/var/lib/postgresql/data"]
    env = services["mlflow"]["environment"]
    assert env["MLFLOW_BACKEND_STORE_URI"].startswith("postgresql+psycopg2://") and "@postgres:5432/" in env["MLFLOW_BACKEND_STORE_URI"]
    assert env["MLFLOW_ARTIFACTS_DESTINATION"].startswith("s3://")
    assert env["MLFLOW_S3_ENDPOINT_URL"] == "http://minio:9000"
    assert services["mlflow"]["depends_on"] == {"postgres": {"condition": "service_healthy"},
                                                 "minio-init": {"condition": "service_completed_successfully"}}
    # Every published port is on this host only; every variable comes from the env file's example.
    ports = [p for s in services.values() for p in s.get("ports", [])]
    assert ports and all(p.startswith("127.0.0.1:") for p in ports)
    text = (ROOT / "compose.yaml").read_text()
    used = set(re.findall(r"\$\{(\w+)", text)) | set(re.findall(r"\$\$(\w+)", text))
    assert used and used <= _example_keys()
    # No secret in the committed file; the env file itself is ignored by git.
    assert "change-me" not in text and "password" not in text.lower().replace("postgres_password", "").replace(
        "minio_root_password", "")
    assert ".env" in (ROOT / ".gitignore").read_text().split()


def test_the_server_image_pins_what_the_lock_file_pins() -> None:
    dockerfile = (ROOT / "registry" / "server.Dockerfile").read_text()
    pins = dict(re.findall(r"([A-Za-z0-9_.-]+)==([0-9][^\s\\]*)", dockerfile))
    lock = _lock_pins()
    assert set(pins) == {"mlflow", "psycopg2-binary", "boto3"}
    assert all(lock[name] == version for name, version in pins.items())
    assert "-c /tmp/requirements.lock" in dockerfile  # their dependencies at the lock's pins too


OVERLAYS = ("", "overlays/local", "overlays/production", "overlays/modelcar")


@functools.cache
def render(overlay: str, work: Path) -> tuple[dict, ...]:
    """`kubectl kustomize serving/k8s/<overlay>` with the example credentials in place of the git-ignored env file."""
    kubectl = shutil.which("kubectl")
    assert kubectl, "kubectl is needed to render the Kubernetes manifests (it is installed on these machines)"
    if not work.exists():
        shutil.copytree(ROOT / "serving" / "k8s", work)
        shutil.copyfile(ENV_EXAMPLE, work / "registry" / "registry.env")
    out = subprocess.run([kubectl, "kustomize", str(work / overlay)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return tuple(doc for doc in yaml.safe_load_all(out.stdout) if doc)


@pytest.fixture(scope="module")
def k8s_copy(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("k8s") / "k8s"


@pytest.fixture(scope="module")
def rendered(k8s_copy: Path) -> list[dict]:
    """The base (`kubectl kustomize serving/k8s`)."""
    return list(render("", k8s_copy))


def _strict(schema: dict) -> dict:
    """A CRD's openAPIV3Schema that refuses unknown fields, as the API server does (structural schemas prune or,
    with kubectl --validate=strict, reject them): additionalProperties false wherever properties are listed and
    unknown fields are not preserved."""
    if isinstance(schema, dict):
        out = {k: _strict(v) for k, v in schema.items()}
        if "properties" in out and "additionalProperties" not in out \
                and not out.get("x-kubernetes-preserve-unknown-fields"):
            out["additionalProperties"] = False
        return out
    if isinstance(schema, list):
        return [_strict(v) for v in schema]
    return schema


@functools.cache
def _validator(api_version: str, kind: str):
    import jsonschema

    group, version = api_version.split("/")
    crd = yaml.load((SCHEMAS / CRDS[(group, kind)]).read_text(), Loader=yaml.CSafeLoader)
    served = next(v for v in crd["spec"]["versions"] if v["name"] == version)
    # Draft 4, as the CRD schemas are OpenAPI v3 (their Go regexes are not all Python's, so the schema itself is
    # not checked against the metaschema: only the document against the schema)
    return jsonschema.Draft4Validator(_strict(served["schema"]["openAPIV3Schema"]))


def validate_custom(doc: dict) -> None:
    """Validate a custom resource against its CRD's schema for its apiVersion (strict)."""
    _validator(doc["apiVersion"], doc["kind"]).validate(doc)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_kubernetes_manifests_render_and_validate_strictly(overlay: str, k8s_copy: Path) -> None:
    import kubernetes_validate

    rendered = render(overlay, k8s_copy)
    kinds = sorted((d["kind"], d["metadata"]["name"]) for d in rendered)
    assert {name for kind, name in kinds if kind == "Deployment"} == {"minio", "mlflow", "cardflow-router"}
    assert ("StatefulSet", "postgres") in kinds and ("Job", "minio-create-bucket") in kinds
    assert {name for kind, name in kinds if kind == "Service"} == {"minio", "postgres", "mlflow", "cardflow-router"}
    assert {name for kind, name in kinds if kind == "InferenceService"} == {
        "cardflow-preprocess", "cardflow-ocr", "cardflow-classify", "cardflow-extract"}
    assert [k for k, _ in kinds].count("InferenceGraph") == 1 and [k for k, _ in kinds].count("NetworkPolicy") == 2
    assert {"PodMonitor", "ServiceMonitor", "PrometheusRule"} <= {k for k, _ in kinds}
    for doc in rendered:
        if (doc["apiVersion"].split("/")[0], doc["kind"]) in CRDS:
            validate_custom(doc)
        else:
            kubernetes_validate.validate(doc, "1.32.0", strict=True)
        if doc["kind"] != "Namespace":
            assert doc["metadata"]["namespace"] == "cardflow", doc["metadata"]["name"]


def test_the_crd_validation_refuses_an_unknown_field_and_a_wrong_type(rendered: list[dict]) -> None:
    import jsonschema

    isvc = next(d for d in rendered if d["kind"] == "InferenceService")
    graph = next(d for d in rendered if d["kind"] == "InferenceGraph")
    typo = {**isvc, "spec": {"predictor": {**isvc["spec"]["predictor"], "minReplica": 1}}}
    with pytest.raises(jsonschema.ValidationError, match="minReplica"):
        validate_custom(typo)
    wrong = {**graph, "spec": {**graph["spec"], "timeout": "sixty"}}
    with pytest.raises(jsonschema.ValidationError, match="sixty"):
        validate_custom(wrong)


def test_kubernetes_secrets_come_from_the_generated_secret(rendered: list[dict]) -> None:
    secret = next(d for d in rendered if d["kind"] == "Secret")
    assert secret["metadata"]["name"].startswith("registry-credentials-")  # name hash: pods roll on a change
    assert set(secret["data"]) == _example_keys()
    refs = set()
    for doc in rendered:
        spec = doc.get("spec", {}).get("template", {}).get("spec", {})
        for container in spec.get("containers", []):
            for env in container.get("env", []):
                ref = env.get("valueFrom", {}).get("secretKeyRef")
                if ref:
                    assert ref["name"] == secret["metadata"]["name"]
                    refs.add(ref["key"])
            assert "resources" in container and "readinessProbe" in container or doc["kind"] == "Job"
    assert refs == _example_keys()
    mlflow = next(d for d in rendered if d["kind"] == "Deployment" and d["metadata"]["name"] == "mlflow")
    container = mlflow["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["MLFLOW_BACKEND_STORE_URI"].startswith("postgresql+psycopg2://$(POSTGRES_USER):$(POSTGRES_PASSWORD)@postgres")
    assert env["MLFLOW_ARTIFACTS_DESTINATION"] == "s3://$(CARDFLOW_BUCKET)/mlflow"
    assert container["image"] == "localhost/cardflow/mlflow-server:3.17.2"


def _by(rendered: list[dict], kind: str) -> dict[str, dict]:
    return {d["metadata"]["name"]: d for d in rendered if d["kind"] == kind}


def _router_args(rendered: list[dict]) -> list[str]:
    return _by(rendered, "Deployment")["cardflow-router"]["spec"]["template"]["spec"]["containers"][0]["args"]


def test_each_step_inference_service_serves_the_default_configurations_champion(rendered: list[dict]) -> None:
    from steps.base import STEPS
    from steps.catalog import default_catalog
    from steps.spec import load_spec

    default = load_spec(default_catalog()).default
    services = _by(rendered, "InferenceService")
    for step in STEPS:
        isvc = services[f"cardflow-{step}"]
        predictor = isvc["spec"]["predictor"]
        container = predictor["containers"][0]
        args = container["args"]
        flag = dict(zip(args[2::2], args[3::2], strict=False))
        family = getattr(default, step).split("/", 1)[1].split(":")[0]  # preprocess/channel:gray -> channel
        assert container["command"] == ["cardflow"] and args[:2] == ["serve", "step"]
        assert flag == {"--step": step, "--model": family, "--alias": "champion", "--host": "0.0.0.0", "--port": "8080"}
        assert container["image"] == "localhost/cardflow/serving:0.1.0"
        assert container["securityContext"]["readOnlyRootFilesystem"] is True
        assert predictor["securityContext"]["runAsNonRoot"] is True
        assert container["readinessProbe"]["httpGet"]["path"] == "/v2/health/ready"
        env = {e["name"]: e["value"] for e in container["env"]}
        assert env["MLFLOW_TRACKING_URI"] == "http://mlflow:5000"
        mounts = {m["mountPath"] for m in container["volumeMounts"]}
        assert env["CARDFLOW_REGISTRY_CACHE"].startswith(tuple(mounts))  # the cache is on a writable volume
        assert predictor["labels"] == {"app.kubernetes.io/component": "step", "cardflow.io/step": step}
        assert isvc["metadata"]["annotations"]["serving.kserve.io/deploymentMode"] == "RawDeployment"


def test_the_inference_graph_chains_the_same_steps_in_the_same_order_as_the_router(rendered: list[dict]) -> None:
    from serving.router import StepTarget
    from steps.base import STEPS

    graph = _by(rendered, "InferenceGraph")["cardflow"]["spec"]["nodes"]
    assert set(graph) == {"root"} and graph["root"]["routerType"] == "Sequence"
    steps = graph["root"]["steps"]
    assert [s["name"] for s in steps] == list(STEPS)
    assert [s["data"] for s in steps] == ["$request"] + ["$response"] * (len(STEPS) - 1)
    args = _router_args(rendered)
    chain = dict(item.split("=", 1) for item in args[args.index("--steps") + 1].split(","))
    assert list(chain) == list(STEPS)  # the router's order is the graph's
    for step in steps:
        # the graph calls exactly the URL the router calls for that step, on that step's InferenceService
        assert step["serviceUrl"] == StepTarget(step["name"], chain[step["name"]], 10).infer_url
        assert chain[step["name"]] == f"http://cardflow-{step['name']}-predictor"
    assert set(_by(rendered, "InferenceService")) == {f"cardflow-{s}" for s in STEPS}
    timeouts = dict(item.split("=") for item in args[args.index("--timeout-s") + 1].split(","))
    assert list(timeouts) == list(STEPS)
    assert sum(map(float, timeouts.values())) <= _by(rendered, "InferenceGraph")["cardflow"]["spec"]["timeout"]


def _selects(selector: dict, labels: dict) -> bool:
    return all(labels.get(k) == v for k, v in selector["matchLabels"].items())


def test_network_policies_and_monitors_select_the_pods_they_are_for(rendered: list[dict]) -> None:
    step_labels = [isvc["spec"]["predictor"]["labels"] for isvc in _by(rendered, "InferenceService").values()]
    router = _by(rendered, "Deployment")["cardflow-router"]
    router_labels = router["spec"]["template"]["metadata"]["labels"]
    policies = _by(rendered, "NetworkPolicy")
    steps_policy = policies["cardflow-steps"]["spec"]
    assert all(_selects(steps_policy["podSelector"], labels) for labels in step_labels)
    assert not _selects(steps_policy["podSelector"], router_labels)
    sources = steps_policy["ingress"][0]["from"]
    assert any("podSelector" in s and _selects(s["podSelector"], router_labels) for s in sources)
    assert {"serving.kserve.io/inferencegraph": "cardflow"} in [s.get("podSelector", {}).get("matchLabels")
                                                                 for s in sources]
    assert steps_policy["ingress"][0]["ports"] == [{"port": 8080, "protocol": "TCP"}]
    mlflow = _by(rendered, "Deployment")["mlflow"]["spec"]["template"]["metadata"]["labels"]
    assert _selects(steps_policy["egress"][0]["to"][0]["podSelector"], mlflow)
    assert _selects(policies["cardflow-router"]["spec"]["podSelector"], router_labels)

    pods = _by(rendered, "PodMonitor")["cardflow-steps"]["spec"]
    assert all(_selects(pods["selector"], labels) for labels in step_labels)
    ports = {p["name"] for isvc in _by(rendered, "InferenceService").values()
             for p in isvc["spec"]["predictor"]["containers"][0]["ports"]}
    assert pods["podMetricsEndpoints"][0]["port"] in ports
    service = _by(rendered, "Service")["cardflow-router"]
    monitor = _by(rendered, "ServiceMonitor")["cardflow-router"]["spec"]
    assert _selects(monitor["selector"], service["metadata"]["labels"])
    assert monitor["endpoints"][0]["port"] in {p["name"] for p in service["spec"]["ports"]}
    for endpoint in [*pods["podMetricsEndpoints"], *monitor["endpoints"]]:
        # the same job label as serving/monitoring/prometheus.yml, which the alert rules select on
        assert {"action": "replace", "targetLabel": "job", "replacement": "cardflow"} in endpoint["relabelings"]
        assert endpoint["path"] == "/metrics"


def test_the_prometheus_rule_is_the_rule_files(rendered: list[dict]) -> None:
    monitoring = ROOT / "serving" / "monitoring"
    check = subprocess.run([sys.executable, str(monitoring / "render_prometheusrule.py"), "--check"],
                           capture_output=True, text=True, timeout=60)
    assert check.returncode == 0, check.stderr
    groups = [g for name in ("recording.yml", "alerts.yml")
              for g in yaml.safe_load((monitoring / "rules" / name).read_text())["groups"]]
    assert _by(rendered, "PrometheusRule")["cardflow"]["spec"]["groups"] == groups


def test_the_overlays_set_replicas_and_production_keeps_each_steps_pods_on_nodes_of_their_own(k8s_copy: Path) -> None:
    local = render("overlays/local", k8s_copy)
    production = render("overlays/production", k8s_copy)
    assert {isvc["spec"]["predictor"]["minReplicas"] for isvc in _by(list(local), "InferenceService").values()} == {1}
    assert _by(list(local), "Deployment")["cardflow-router"]["spec"]["replicas"] == 1
    services = _by(list(production), "InferenceService")
    pods = {isvc["spec"]["predictor"]["labels"]["cardflow.io/step"]: isvc["spec"]["predictor"]["labels"]
            for isvc in services.values()}
    for name, isvc in services.items():
        predictor = isvc["spec"]["predictor"]
        assert predictor["minReplicas"] >= 2
        terms = predictor["affinity"]["podAntiAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
        assert [t["topologyKey"] for t in terms] == ["kubernetes.io/hostname"]
        own = predictor["labels"]["cardflow.io/step"]

        def repelled(labels: dict, term=terms[0]) -> bool:
            return all((labels.get(e["key"]) in e["values"]) == (e["operator"] == "In")
                       for e in term["labelSelector"]["matchExpressions"])

        # it avoids every other step's pods, and not its own replicas' (they may share a node with each other)
        assert all(repelled(labels) for step, labels in pods.items() if step != own), name
        assert not repelled(pods[own]), name
    ocr = services["cardflow-ocr"]["spec"]["predictor"]["containers"][0]["resources"]["requests"]["cpu"]
    assert ocr == "2"
    router = _by(list(production), "Deployment")["cardflow-router"]["spec"]
    assert router["replicas"] == 3 and "podAntiAffinity" in router["template"]["spec"]["affinity"]


def test_the_modelcar_overlay_serves_each_step_from_its_packaged_image(k8s_copy: Path) -> None:
    from registry.image import modelcar_tag

    for name, isvc in _by(list(render("overlays/modelcar", k8s_copy)), "InferenceService").items():
        container = isvc["spec"]["predictor"]["containers"][0]
        args = container["args"]
        flag = dict(zip(args[2::2], args[3::2], strict=False))
        assert flag["--model-dir"] == "/mnt/models" and "--alias" not in flag, name
        env = {e["name"]: e.get("value") for e in container["env"]}
        step, model = flag["--step"], flag["--model"]
        assert name == f"cardflow-{step}"
        assert env["STORAGE_URI"] == "oci://" + modelcar_tag(f"cardflow.{step}.{model}", "1")


def _mlproject_parameters(entry: str) -> set[str]:
    project = yaml.safe_load((ROOT / "MLproject").read_text())
    return set(project["entry_points"][entry]["parameters"])


def test_the_sweep_rayjob_validates_and_runs_the_sweep_entry_point_on_the_team_server(k8s_copy: Path) -> None:
    """serving/k8s/sweep: a KubeRay RayJob (validated strictly against ../shared/schemas/kuberay) running
    `mlflow run . -e sweep -P executor=ray` in the sweep image against the registry's MLflow Service."""
    import kubernetes_validate

    rendered = render("sweep", k8s_copy)
    assert sorted(d["kind"] for d in rendered) == ["PersistentVolumeClaim", "RayJob"]
    for doc in rendered:
        if doc["kind"] == "RayJob":
            validate_custom(doc)
        else:
            kubernetes_validate.validate(doc, "1.32.0", strict=True)
        assert doc["metadata"]["namespace"] == "cardflow"
    job = _by(rendered, "RayJob")["cardflow-sweep"]
    spec = job["spec"]
    setup, _, command = spec["entrypoint"].partition(" && ")
    assert setup == "mkdir -p /data/reports /data/mlruns"  # what /app/reports and /app/mlruns point at (Dockerfile)
    words = command.split()
    assert words[:5] == ["mlflow", "run", "/app", "-e", "sweep"] and "--env-manager" in words
    given = dict(words[k + 1].split("=", 1) for k, w in enumerate(words) if w == "-P")
    assert given["executor"] == "ray" and set(given) <= _mlproject_parameters("sweep")
    assert spec["shutdownAfterJobFinishes"] is True and spec["rayClusterSpec"]["rayVersion"] == _lock_pins()["ray"]
    head = spec["rayClusterSpec"]["headGroupSpec"]
    workers = spec["rayClusterSpec"]["workerGroupSpecs"]
    assert head["rayStartParams"]["num-cpus"] == "0"  # the driver only: no sweep task on the head
    registry = render("", k8s_copy)
    mlflow_port = next(p["port"] for p in _by(list(registry), "Service")["mlflow"]["spec"]["ports"])
    claim = _by(rendered, "PersistentVolumeClaim")["cardflow-sweep-data"]
    assert claim["spec"]["accessModes"] == ["ReadWriteMany"]  # head and workers on different nodes
    for pod, group in [(head["template"], head), *((w["template"], w) for w in workers)]:
        container = pod["spec"]["containers"][0]
        assert container["image"] == "localhost/cardflow/sweep:0.1.0"
        env = {e["name"]: e["value"] for e in container["env"]}
        assert env["MLFLOW_TRACKING_URI"] == f"http://mlflow:{mlflow_port}"
        assert env["CARDFLOW_MODELS"].startswith("/data/")
        mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
        volumes = {v["name"]: v for v in pod["spec"]["volumes"]}
        assert volumes[mounts["/data"]]["persistentVolumeClaim"]["claimName"] == "cardflow-sweep-data"
        assert pod["spec"]["securityContext"]["runAsNonRoot"] is True
        if group is not head:  # a worker offers exactly the CPUs it is limited to
            assert group["rayStartParams"]["num-cpus"] == str(container["resources"]["limits"]["cpu"])
            assert container["resources"]["requests"]["cpu"] == container["resources"]["limits"]["cpu"]
            assert 1 <= group["minReplicas"] <= group["replicas"] <= group["maxReplicas"]
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^FROM base AS sweep$", dockerfile, re.MULTILINE)
    assert "['optional-dependencies']['ray']" in dockerfile and "-c requirements.lock" in dockerfile
    assert dockerfile.rstrip().splitlines()[-1].startswith("CMD [\"cardflow\", \"demo\"")  # demo stays the default
    # a typo'd field is refused by the RayJob schema
    import jsonschema

    broken = yaml.safe_load(yaml.safe_dump(job))
    broken["spec"]["rayClusterSpec"]["workerGroupSpecs"][0]["replica"] = 2
    with pytest.raises(jsonschema.ValidationError, match="replica"):
        validate_custom(broken)
