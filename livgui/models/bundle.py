"""Model bundles: a folder with ``manifest.json`` and ``weights.safetensors``.

The manifest names a registry key (never a Python path), the hyper-parameters to build it
with, the stage (``liver``, ``lesion`` or ``onestage``), the labels, the preprocessing, the
provenance, the metrics and the SHA-256 of the weights.  Loading is strict (RELIABILITY
rows 23-24): pickle / ``.pt`` checkpoints are refused with no fallback, the weights hash is
verified, the safetensors header is checked before parsing, and the weights are loaded into
a *fresh* module so a failure never leaves a half-loaded network behind.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import struct
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load as safetensors_load
from safetensors.torch import save_file
from torch import nn

from livgui.core.atomicio import sha256_file
from livgui.core.volume import RESEARCH_NOTICE
from livgui.models import oracle as _oracle  # noqa: F401  (registers oracle_threshold)
from livgui.models import registry
from livgui.models.preprocess import Preprocessing, PreprocessingError

__all__ = [
    "MANIFEST",
    "SCHEMA_VERSION",
    "STAGES",
    "WEIGHTS",
    "Bundle",
    "BundleError",
    "build_model",
    "load_bundle",
    "save_bundle",
]

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1
MANIFEST = "manifest.json"
WEIGHTS = "weights.safetensors"
STAGES = ("liver", "lesion", "onestage")
#: Files that are (or may be) pickles: refused outright, never "tried".
_PICKLE_SUFFIXES = (".pt", ".pth", ".ckpt", ".pkl", ".pickle", ".bin", ".tar")
_MAX_HEADER = 100 * 1024 * 1024  # a safetensors JSON header is kilobytes, never 100 MB
_MAX_MANIFEST = 1024 * 1024


class BundleError(Exception):
    """A bundle could not be used; ``str()`` reads ``"<path>: <problem>"``."""

    def __init__(self, path: str | Path, problem: str) -> None:
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


def _invalid(path: str | Path, detail: str) -> BundleError:
    return BundleError(path, f"model file invalid / does not match architecture: {detail}")


@dataclass(frozen=True)
class Bundle:
    """A parsed manifest (weights not yet loaded).

    Attributes
    ----------
    name
        Bundle name (also its folder name in a store).
    architecture
        Registry key; see :func:`livgui.models.registry.available`.
    hyperparameters
        Keyword arguments for the registry builder.
    stage
        ``"liver"`` (0/1 liver), ``"lesion"`` (0/1 lesion on the liver-masked image) or
        ``"onestage"`` (0/1/2).
    labels
        Output channel index -> label name.
    preprocessing
        The one preprocessing definition the network was trained with.
    weights_sha256
        Hex SHA-256 of ``weights.safetensors``.
    path
        The bundle folder (``None`` before it is saved).
    """

    name: str
    architecture: str
    hyperparameters: dict[str, Any]
    stage: str
    labels: dict[int, str]
    preprocessing: Preprocessing
    weights_sha256: str = ""
    provenance: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    schema_version: int = SCHEMA_VERSION
    path: Path | None = None

    @property
    def num_classes(self) -> int:
        return len(self.labels)

    @property
    def model_id(self) -> str:
        """Short identity used in reports: ``name@sha12``."""
        return f"{self.name}@{self.weights_sha256[:12]}"

    @property
    def weights_path(self) -> Path:
        if self.path is None:
            raise BundleError(self.name, "bundle has not been saved")
        return self.path / WEIGHTS

    def to_manifest(self) -> dict[str, Any]:
        return {
            "format": "livgui-model-bundle",
            "schema_version": self.schema_version,
            "notice": RESEARCH_NOTICE,
            "name": self.name,
            "architecture": self.architecture,
            "hyperparameters": dict(self.hyperparameters),
            "stage": self.stage,
            "labels": {str(k): v for k, v in sorted(self.labels.items())},
            "preprocessing": self.preprocessing.to_json(),
            "provenance": dict(self.provenance),
            "metrics": dict(self.metrics),
            "weights": {"file": WEIGHTS, "sha256": self.weights_sha256},
        }


# -- manifest parsing ---------------------------------------------------------------------
def _require(doc: Mapping[str, Any], key: str, kind: type | tuple[type, ...], where: Path) -> Any:
    if key not in doc:
        raise BundleError(where, f"manifest lacks {key!r}")
    value = doc[key]
    if not isinstance(value, kind):
        raise BundleError(where, f"manifest field {key!r} has the wrong type")
    return value


def _parse_labels(raw: Mapping[str, Any], where: Path) -> dict[int, str]:
    try:
        labels = {int(k): str(v) for k, v in raw.items()}
    except ValueError:
        raise BundleError(where, "manifest labels must be keyed by class index") from None
    if sorted(labels) != list(range(len(labels))) or len(labels) < 2:
        raise BundleError(where, f"manifest labels must be 0..K-1 with K >= 2: {sorted(labels)}")
    return labels


def parse_manifest(doc: Any, where: Path) -> Bundle:
    """Validate a manifest dict and turn it into a :class:`Bundle` (``path`` = ``where``)."""
    if not isinstance(doc, dict):
        raise BundleError(where, "manifest must be a JSON object")
    version = _require(doc, "schema_version", int, where)
    if version != SCHEMA_VERSION:
        raise BundleError(
            where, f"manifest schema {version} is not supported (want {SCHEMA_VERSION})"
        )
    stage = _require(doc, "stage", str, where)
    if stage not in STAGES:
        raise BundleError(where, f"stage must be one of {STAGES}, got {stage!r}")
    arch = _require(doc, "architecture", str, where)
    if arch not in registry.available():
        raise BundleError(where, f"unknown architecture {arch!r}")
    weights = _require(doc, "weights", dict, where)
    sha = weights.get("sha256")
    if not isinstance(sha, str) or len(sha) != 64:
        raise BundleError(where, "manifest lacks a valid weights sha256")
    try:
        prep = Preprocessing.from_json(_require(doc, "preprocessing", dict, where))
    except PreprocessingError as exc:
        raise BundleError(where, f"bad preprocessing: {exc}") from None
    return Bundle(
        name=_require(doc, "name", str, where),
        architecture=arch,
        hyperparameters=dict(_require(doc, "hyperparameters", dict, where)),
        stage=stage,
        labels=_parse_labels(_require(doc, "labels", dict, where), where),
        preprocessing=prep,
        weights_sha256=sha,
        provenance=dict(doc.get("provenance") or {}),
        metrics=dict(doc.get("metrics") or {}),
        schema_version=version,
        path=where,
    )


def _refuse_pickle(path: Path) -> None:
    if path.suffix.lower() in _PICKLE_SUFFIXES:
        raise BundleError(
            path,
            "pickle/PyTorch checkpoints are refused (they can run code when loaded); "
            "convert the weights to a safetensors bundle",
        )


def load_bundle(path: str | Path) -> Bundle:
    """Read and validate a bundle folder's manifest (the weights are checked on build).

    Raises
    ------
    BundleError
        For a pickle checkpoint, a missing/invalid manifest or weights file.
    """
    folder = Path(path)
    _refuse_pickle(folder)
    if folder.is_file():
        raise BundleError(folder, f"a model bundle is a folder with {MANIFEST} and {WEIGHTS}")
    manifest = folder / MANIFEST
    if not manifest.is_file():
        raise BundleError(folder, f"no {MANIFEST}: not a model bundle")
    if manifest.stat().st_size > _MAX_MANIFEST:
        raise BundleError(manifest, "manifest is implausibly large")
    try:
        doc = json.loads(manifest.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BundleError(manifest, f"manifest is not valid JSON ({exc})") from None
    bundle = parse_manifest(doc, folder)
    if not (folder / WEIGHTS).is_file():
        raise BundleError(folder, f"no {WEIGHTS} (pickle checkpoints are not accepted)")
    return bundle


# -- weights ------------------------------------------------------------------------------
def _check_safetensors_header(path: Path) -> None:
    """Cheap structural checks before any parser sees the file."""
    size = path.stat().st_size
    with open(path, "rb") as fh:
        head = fh.read(9)
    (n,) = struct.unpack("<Q", head[:8]) if len(head) >= 8 else (0,)
    looks_safetensors = len(head) == 9 and head[8:9] == b"{"
    if not looks_safetensors and (head[:1] == b"\x80" or head[:4] == b"PK\x03\x04"):
        raise BundleError(path, "this is a pickle/PyTorch checkpoint: refused (unsafe)")
    if len(head) < 9:
        raise _invalid(path, "file is too short to be safetensors")
    if n > _MAX_HEADER or n + 8 > size:
        raise _invalid(path, f"safetensors header length {n} is impossible for a {size}-byte file")
    if not looks_safetensors:
        raise _invalid(path, "not a safetensors file (no JSON header)")


def read_weights(bundle: Bundle) -> dict[str, torch.Tensor]:
    """Verify the hash and header, then read the tensors (CPU)."""
    path = bundle.weights_path
    _check_safetensors_header(path)
    data = path.read_bytes()  # read once: the bytes hashed are the bytes parsed
    if hashlib.sha256(data).hexdigest() != bundle.weights_sha256:
        raise BundleError(path, "weights do not match the manifest's SHA-256 (file changed?)")
    try:
        return safetensors_load(data)
    except (SafetensorError, OSError, ValueError) as exc:
        raise _invalid(path, str(exc)) from None


def _check_state(
    expected: Mapping[str, torch.Tensor], got: Mapping[str, torch.Tensor], where: Path
) -> None:
    missing = sorted(set(expected) - set(got))
    unexpected = sorted(set(got) - set(expected))
    if missing or unexpected:
        raise _invalid(where, f"missing keys {missing[:5]}, unexpected keys {unexpected[:5]}")
    for key, ref in expected.items():
        if tuple(got[key].shape) != tuple(ref.shape):
            raise _invalid(
                where,
                f"{key} has shape {tuple(got[key].shape)}, the architecture wants {tuple(ref.shape)}",
            )
        if got[key].dtype.is_floating_point != ref.dtype.is_floating_point:
            raise _invalid(where, f"{key} has dtype {got[key].dtype}, expected {ref.dtype}")


def build_model(bundle: Bundle) -> nn.Module:
    """A fresh network with the bundle's verified weights, in eval mode, on the CPU.

    Nothing is modified unless everything succeeds: the caller swaps its active model
    only when this returns.
    """
    where = bundle.weights_path
    try:
        model = registry.build(bundle.architecture, **bundle.hyperparameters)
    except (TypeError, ValueError, registry.UnknownArchitecture) as exc:
        raise _invalid(where, f"cannot build {bundle.architecture}: {exc}") from None
    state = read_weights(bundle)
    expected = model.state_dict()
    _check_state(expected, state, where)
    cast = {k: v.to(expected[k].dtype) for k, v in state.items()}
    model.load_state_dict(cast, strict=True)
    model.train(False)  # evaluation mode
    return model


def save_bundle(bundle: Bundle, model: nn.Module, folder: str | Path) -> Bundle:
    """Write ``folder`` atomically (a temp folder beside it, then a rename).

    Returns the bundle with ``weights_sha256`` and ``path`` filled in.  An existing bundle
    at ``folder`` is replaced only once the new one is complete and re-verified.
    """
    target = Path(folder)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent))
    try:
        state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
        save_file(state, str(tmp / WEIGHTS), metadata={"notice": RESEARCH_NOTICE})
        done = replace(bundle, weights_sha256=sha256_file(tmp / WEIGHTS), path=tmp)
        text = json.dumps(done.to_manifest(), indent=2, allow_nan=False)
        (tmp / MANIFEST).write_text(text + "\n", encoding="utf-8")
        _fsync_tree(tmp)
        build_model(load_bundle(tmp))  # re-read and verify before publishing
        _publish(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    log.info("saved model bundle %s", target)
    return replace(done, path=target)


def _fsync_tree(folder: Path) -> None:
    for item in folder.iterdir():
        with open(item, "rb+") as fh:
            os.fsync(fh.fileno())


def _publish(tmp: Path, target: Path) -> None:
    """Rename ``tmp`` to ``target``; an old ``target`` is moved aside first, then removed."""
    old: Path | None = None
    if target.exists():
        old = target.with_name(f".{target.name}.old-{os.getpid()}")
        shutil.rmtree(old, ignore_errors=True)
        os.replace(target, old)
    try:
        os.replace(tmp, target)
    except OSError:
        if old is not None:
            os.replace(old, target)
        raise
    if old is not None:
        with contextlib.suppress(OSError):
            shutil.rmtree(old)
