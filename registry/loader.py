"""Loading a registered version as a ready variant: downloaded once, verified, cached.

    registry.load("ocr", "tesseract", alias="champion")      # or version="3"

The cache (`$CARDFLOW_REGISTRY_CACHE`, else ~/.cache/cardflow/registry) holds one folder per tracking
server and version, keyed by name, version and fingerprint (which covers every file's sha256):

    <cache>/<server>/<name>/v<version>-<fingerprint>/{entry.json, model/...}   entry.json: what the registry said
    <cache>/<server>/<name>/aliases.json      alias -> version and fingerprint, as last resolved and fetched

Every load checks every model file against the sha256 the registry recorded. A cached copy that fails
is discarded (the warning names the file) and downloaded again; a download that fails is an error
naming the file. When the tracking server (or its S3 store) cannot be reached, a verified cached copy
is loaded with a warning saying so; without one, the error names the URI. A process that loads versions (a
step server, the registry commands) calls `tracking.edge.fail_over_fast()` once at start, so that a server
going away mid-call costs seconds of MLflow retries, not minutes.
"""

from __future__ import annotations

import contextlib
import enum
import fcntl
import hashlib
import json
import logging
import os
import re
import shutil
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from registry.errors import RegistryError, RegistryNotFound, RegistryUnavailable
from registry.package import STORE_ARTIFACT, build_variant, model_name
from registry.register import TAG_FILES, TAG_FINGERPRINT, TAG_VARIANT
from steps.base import STEPS, Variant
from steps.errors import StepError
from steps.modelstore import sha256_file
from tracking.edge import TrackingUnavailable, client_for, is_connection_error, probe, tracking_uri

log = logging.getLogger(__name__)
CACHE_ENV = "CARDFLOW_REGISTRY_CACHE"


def cache_root() -> Path:
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "cardflow" / "registry")


def server_key(uri: str) -> str:
    """A folder name for a tracking URI: readable, and distinct for distinct URIs."""
    readable = re.sub(r"[^A-Za-z0-9.-]+", "_", uri.split("://", 1)[-1])[:48].strip("_") or "local"
    return f"{readable}-{hashlib.sha256(uri.encode()).hexdigest()[:8]}"


@contextlib.contextmanager
def _locked(folder: Path):
    """One process at a time verifies, downloads or discards a model's cached copies."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        lock = open(folder / ".lock", "w")  # noqa: SIM115 — closed below, after the lock is released
    except OSError as exc:
        raise RegistryError(f"the registry cache {folder} cannot be written ({exc.strerror}): point "
                            "CARDFLOW_REGISTRY_CACHE (or --cache) at a writable folder") from exc
    with lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _discard(entry: Path) -> None:
    """Remove a cached copy without a window where a half-deleted folder looks like a copy."""
    if not entry.exists():
        return
    tomb = entry.with_name(f".discarded-{uuid.uuid4().hex}")
    try:
        os.replace(entry, tomb)
    except OSError:
        return
    shutil.rmtree(tomb, ignore_errors=True)


class Origin(enum.StrEnum):
    """Where a loaded version's files came from."""

    DOWNLOAD = "download"  # fetched from the registry now (and verified)
    CACHE = "cache"  # the verified cached copy, the registry confirming the version
    OFFLINE_CACHE = "offline cache"  # the verified cached copy, the registry unreachable (`Resolved.offline_reason`)
    MODEL_DIR = "model dir"  # a folder packaged by `cardflow registry image` (a modelcar's /models), verified


@dataclass
class Resolved:
    """Which version a load used and where it came from."""

    name: str
    version: str
    fingerprint: str
    variant_id: str
    files: dict[str, str]  # store path -> sha256, as registered
    path: Path  # the cached model folder (an MLflow model: MLmodel, artifacts/...)
    origin: Origin
    alias: str | None = None
    seconds: float = 0.0
    offline_reason: str | None = None  # why the registry was not asked (origin OFFLINE_CACHE)

    def describe(self) -> str:
        """Where the version came from, in words."""
        return f"{self.origin} ({self.offline_reason})" if self.offline_reason else str(self.origin)


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return {}


def _write_json(path: Path, data: dict) -> None:
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, path)


def verify(model_dir: Path, files: dict[str, str]) -> str | None:
    """None when every registered file is present with its sha256, else what is wrong (naming the file)."""
    store = model_dir / "artifacts" / STORE_ARTIFACT
    for rel, expected in sorted(files.items()):
        path = store / rel
        if not path.is_file():
            return f"{path} is missing"
        actual = sha256_file(path)
        if actual != expected:
            return f"{path} has sha256 {actual[:12]}…, the registry recorded {expected[:12]}…"
    return None


class Loader:
    """Resolves, downloads, verifies and caches registered versions for one tracking URI."""

    def __init__(self, uri: str | None = None, cache_dir: Path | None = None) -> None:
        self.tracking_uri = uri or tracking_uri()
        self.cache = (Path(cache_dir) if cache_dir else cache_root()) / server_key(self.tracking_uri)

    def resolve(self, step: str, model: str, *, alias: str | None = None, version: str | int | None = None) -> Resolved:
        """The cached, verified folder of a version (downloading it when needed)."""
        if step not in STEPS:
            raise RegistryNotFound(f"unknown step {step!r}; steps: {', '.join(STEPS)}")
        if (alias is None) == (version is None):
            raise RegistryError("give exactly one of alias= and version=")
        name = model_name(step, model)
        started = time.perf_counter()
        try:
            probe(self.tracking_uri)
            mv = self._model_version(name, alias, version)
        except TrackingUnavailable as exc:
            found = self._offline(name, alias, version, f"the MLflow tracking server at {self.tracking_uri} "
                                                        f"is unreachable ({exc})")
            found.seconds = time.perf_counter() - started
            return found
        found = self._fetch(name, mv, alias)
        found.seconds = time.perf_counter() - started
        return found

    def load(self, step: str, model: str, *, alias: str | None = None, version: str | int | None = None,
             threads: int = 1) -> Variant:
        """A ready variant (loaded) of the version; `variant.registered` says which and from where."""
        return build_resolved(self.resolve(step, model, alias=alias, version=version), threads)


    # --- online ---------------------------------------------------------------------------------

    def _model_version(self, name: str, alias: str | None, version: str | int | None):
        from mlflow.exceptions import MlflowException

        client = client_for(self.tracking_uri)
        try:
            if alias is not None:
                return client.get_model_version_by_alias(name, alias)
            return client.get_model_version(name, str(version))
        except MlflowException as exc:
            if is_connection_error(exc):
                raise TrackingUnavailable(str(exc).splitlines()[0]) from exc
            raise RegistryNotFound(self._not_found(client, name, alias, version, exc)) from exc
        except OSError as exc:
            raise TrackingUnavailable(f"{type(exc).__name__}: {exc}") from exc

    def _not_found(self, client, name: str, alias: str | None, version, exc: Exception) -> str:
        from mlflow.exceptions import MlflowException

        try:
            versions = client.search_model_versions(f"name = '{name}'")
        except MlflowException:
            versions = []
        if not versions:
            models = sorted(m.name for m in client.search_registered_models(max_results=1000))
            return (f"no registered model {name!r} at {self.tracking_uri}; registered: {', '.join(models) or 'none'} "
                    "(`cardflow registry register` registers the catalog)")
        try:
            aliases = sorted(f"{a} (v{v})" for a, v in client.get_registered_model(name).aliases.items())
        except MlflowException:
            aliases = []
        wanted = f"alias {alias!r}" if alias is not None else f"version {version}"
        return (f"{name} has no {wanted} ({str(exc).splitlines()[0]}); versions: "
                f"{', '.join(sorted((v.version for v in versions), key=int))}; aliases: {', '.join(aliases) or 'none'}")

    def _fetch(self, name: str, mv, alias: str | None) -> Resolved:
        files = json.loads(mv.tags.get(TAG_FILES, "{}"))
        fingerprint = mv.tags.get(TAG_FINGERPRINT, "")
        variant_id = mv.tags.get(TAG_VARIANT, "")
        if not fingerprint or not variant_id:
            raise RegistryError(f"{name} version {mv.version} was not registered by CardFlow (no {TAG_FINGERPRINT} tag)")
        folder = self.cache / name
        entry = folder / f"v{mv.version}-{fingerprint}"
        with _locked(folder):
            origin = Origin.CACHE
            problem = verify(entry / "model", files) if (entry / "entry.json").is_file() else "not cached"
            if problem != "not cached" and problem is not None:
                log.warning("cached copy of %s version %s is corrupt: %s; discarding it and downloading again",
                            name, mv.version, problem)
                _discard(entry)
            if problem is not None:
                origin = Origin.DOWNLOAD
                meta = {"name": name, "version": mv.version, "fingerprint": fingerprint, "variant": variant_id,
                        "files": files, "source": mv.source, "tracking_uri": self.tracking_uri,
                        "downloaded_at": time.time()}
                try:
                    self._download(name, mv.version, files, entry, meta)
                except TrackingUnavailable as exc:
                    raise RegistryUnavailable(f"cannot download {name} version {mv.version} from {self.tracking_uri} ({exc}) "
                                        f"and there is no cached copy in {entry}") from exc
            if alias is not None:
                aliases = _read_json(folder / "aliases.json")
                aliases[alias] = {"version": str(mv.version), "fingerprint": fingerprint, "resolved_at": time.time()}
                _write_json(folder / "aliases.json", aliases)
        return Resolved(name, mv.version, fingerprint, variant_id, files, entry / "model", origin, alias)

    def _download(self, name: str, version: str, files: dict[str, str], entry: Path, meta: dict) -> None:
        """Download into a private folder, verify, then move it into place in one step (entry.json inside)."""
        import mlflow
        from mlflow.exceptions import MlflowException

        tmp = entry.parent / f".download-{uuid.uuid4().hex}"
        tmp.mkdir(parents=True)
        try:
            try:
                mlflow.artifacts.download_artifacts(artifact_uri=f"models:/{name}/{version}", dst_path=str(tmp / "model"),
                                                    tracking_uri=self.tracking_uri, registry_uri=self.tracking_uri)
            except (MlflowException, OSError) as exc:
                raise TrackingUnavailable(str(exc).splitlines()[0][:300]) from exc
            problem = verify(tmp / "model", files)
            if problem is not None:
                raise RegistryError(f"downloaded {name} version {version} does not match the registry: {problem} "
                                    "(the download was discarded)")
            _write_json(tmp / "entry.json", meta)
            os.replace(tmp, entry)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)

    # --- offline --------------------------------------------------------------------------------

    def _offline(self, name: str, alias: str | None, version, why: str) -> Resolved:
        folder = self.cache / name
        fingerprint = None
        if alias is not None:
            known = _read_json(folder / "aliases.json").get(alias)
            if not known:
                raise RegistryUnavailable(f"{why}, and the cache {folder} has no copy of {name}@{alias}")
            version, fingerprint = known["version"], known.get("fingerprint")
            as_of = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(known["resolved_at"]))
            label = f"{name}@{alias} (version {version} when last resolved, {as_of})"
        else:
            label = f"{name} version {version}"
        pattern = f"v{version}-{fingerprint}" if fingerprint else f"v{version}-*"
        with _locked(folder):
            entries = [(e, _read_json(e / "entry.json")) for e in folder.glob(pattern)]
            for entry, meta in sorted(entries, key=lambda em: -em[1].get("downloaded_at", 0)):
                if not meta:
                    continue
                problem = verify(entry / "model", meta["files"])
                if problem is not None:
                    log.warning("cached copy %s is corrupt (%s); discarding it", entry, problem)
                    _discard(entry)
                    continue
                log.warning("%s; loading the verified cached copy of %s from %s", why, label, entry)
                return Resolved(name, str(version), meta["fingerprint"], meta["variant"], meta["files"],
                                entry / "model", Origin.OFFLINE_CACHE, alias, offline_reason=why)
        raise RegistryUnavailable(f"{why}, and the cache {folder} has no verified copy of {label}")



MANIFEST = "cardflow.json"  # in a packaged model folder: which version it is and every file's sha256


def load_model_dir(model_dir: Path, step: str, *, threads: int = 1) -> Variant:
    """A ready variant from a folder `cardflow registry image` packaged (a modelcar's /models, mounted by KServe at
    /mnt/models): its manifest names the version, and every file is checked against the registry's sha256."""
    manifest = Path(model_dir) / MANIFEST
    if not manifest.is_file():
        raise RegistryNotFound(f"{model_dir}: no {MANIFEST}, so not a model folder packaged by `cardflow registry "
                               "image`")
    m = _read_json(manifest)
    if m.get("variant_id", "").split("/", 1)[0] != step:
        raise RegistryError(f"{model_dir} holds {m.get('name')} ({m.get('variant_id')}), not a {step} model")
    problem = verify(Path(model_dir), m["files"])
    if problem:
        raise RegistryError(f"{model_dir}: {problem}")
    found = Resolved(m["name"], str(m["version"]), m["fingerprint"], m["variant_id"], m["files"], Path(model_dir),
                     Origin.MODEL_DIR)
    return build_resolved(found, threads)


def build_resolved(found: Resolved, threads: int = 1) -> Variant:
    """The variant of a verified version folder, built and loaded; `variant.registered` is `found`."""
    spec = _read_json(found.path / "artifacts" / "variant.json")
    if spec.get("id") != found.variant_id or spec.get("fingerprint") != found.fingerprint:
        raise RegistryError(f"{found.path}: variant.json does not describe {found.name} version {found.version} "
                            f"({spec.get('id')} / {spec.get('fingerprint')})")
    try:
        variant = build_variant(spec, found.path / "artifacts" / STORE_ARTIFACT)
    except StepError as exc:
        raise RegistryError(f"{found.name} version {found.version}: {exc}") from exc
    if variant.fingerprint() != found.fingerprint:
        raise RegistryError(f"{found.name} version {found.version} was registered with fingerprint "
                            f"{found.fingerprint}; this code computes {variant.fingerprint()} from the same files. "
                            "Register it again from this code.")
    variant.set_threads(threads)
    variant.load()
    variant.registered = found  # type: ignore[attr-defined]
    return variant


def load(step: str, model: str, *, alias: str | None = None, version: str | int | None = None,
         uri: str | None = None, cache_dir: Path | None = None, threads: int = 1) -> Variant:
    """A ready variant of a registered version (see the module docstring)."""
    return Loader(uri, cache_dir).load(step, model, alias=alias, version=version, threads=threads)
