"""`cardflow registry image`: a registered version as an OCI image in KServe's modelcar layout.

The version is resolved through the loader (downloaded once, every file checked against the sha256 the registry
recorded), and its MLflow model folder — `MLmodel`, `artifacts/store/<the variant's model files>` — is copied
under `/models` of an image built with podman. KServe mounts a modelcar's `/models` into the predictor for an
InferenceService whose container has `STORAGE_URI=oci://<image>` (serving/k8s/overlays/modelcar), and
`cardflow serve step --model-dir /mnt/models/models` serves it after checking every file against the manifest
(`cardflow.json`, the registry's sha256) written beside them. The base only has to provide
a shell (KServe's modelcar sidecar links `/models` with one); labels name the registered model, version,
variant and fingerprint, and `cardflow.files` lists every file with its sha256, so the image says what it holds.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from registry.errors import RegistryError
from registry.loader import MANIFEST, Loader
from registry.package import STORE_ARTIFACT

DEFAULT_BASE = "localhost/cardflow/bookworm-python:3.11"
PODMAN = ("podman", "--runtime", "runc")


@dataclass
class ModelcarImage:
    tag: str
    name: str
    version: str
    variant_id: str
    files: dict[str, str]  # /models-relative path -> sha256 (the registry's)
    seconds: float


def modelcar_tag(name: str, version: str) -> str:
    """localhost/cardflow/models/<registered model>:<version>, e.g. …/cardflow.ocr.tesseract:3."""
    return f"localhost/cardflow/models/{name}:{version}"


def build_modelcar(step: str, model: str, *, alias: str | None = None, version: str | None = None,
                   tag: str | None = None, base: str = DEFAULT_BASE, podman: tuple[str, ...] = PODMAN) -> ModelcarImage:
    import time

    if shutil.which(podman[0]) is None:
        raise RegistryError(f"`{podman[0]}` is not installed: it builds the modelcar image (Debian: apt-get install "
                            "podman runc)")
    started = time.perf_counter()
    resolved = Loader().resolve(step, model, alias=alias, version=version)
    files = {f"artifacts/{STORE_ARTIFACT}/{rel}": sha for rel, sha in resolved.files.items()}
    tag = tag or modelcar_tag(resolved.name, resolved.version)
    with tempfile.TemporaryDirectory(prefix="cardflow-modelcar-") as tmp:
        context = Path(tmp)
        shutil.copytree(resolved.path, context / "models", ignore=shutil.ignore_patterns(".*"))
        # what `cardflow serve step --model-dir` checks before serving the folder (registry/loader.py)
        (context / "models" / MANIFEST).write_text(json.dumps(
            {"name": resolved.name, "version": resolved.version, "variant_id": resolved.variant_id,
             "fingerprint": resolved.fingerprint, "files": resolved.files}, indent=1, sort_keys=True))
        labels = {"org.opencontainers.image.title": f"{resolved.name} version {resolved.version}",
                  "cardflow.model": resolved.name, "cardflow.version": resolved.version,
                  "cardflow.variant": resolved.variant_id, "cardflow.fingerprint": resolved.fingerprint,
                  "cardflow.files": json.dumps(files, sort_keys=True)}
        label_lines = "".join(f"LABEL {key}={json.dumps(value)}\n" for key, value in labels.items())
        (context / "Containerfile").write_text(
            f"FROM {base}\nCOPY models /models\nRUN chmod -R a+rX /models\n{label_lines}")
        done = subprocess.run([*podman, "build", "--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024",
                               "-t", tag, "-f", str(context / "Containerfile"), str(context)],
                              capture_output=True, text=True, timeout=1800)
        if done.returncode != 0:
            hint = f" (build the base first: deploy/base-image.sh {base})" if "not found" in done.stderr or \
                "manifest unknown" in done.stderr else ""
            raise RegistryError(f"building {tag} failed{hint}: {done.stderr.strip().splitlines()[-1][:400]}")
    return ModelcarImage(tag, resolved.name, resolved.version, resolved.variant_id, files,
                         time.perf_counter() - started)
