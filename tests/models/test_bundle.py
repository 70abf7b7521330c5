"""Model bundles: every architecture round-trips; bad files are refused whole (rows 23-24)."""

from __future__ import annotations

import json
import pickle
import struct
import zipfile

import pytest
import torch

from livgui.models import registry
from livgui.models.bundle import (
    MANIFEST,
    WEIGHTS,
    Bundle,
    BundleError,
    build_model,
    load_bundle,
    save_bundle,
)
from livgui.models.preprocess import Preprocessing
from livgui.models.store import ModelStore

SMALL: dict[str, dict] = {
    "oracle_threshold": {"in_channels": 1, "num_classes": 2, "thresholds": [0.4]},
}
PATCH3D = (8, 16, 16)


def _hparams(name: str) -> dict:
    if name in SMALL:
        return dict(SMALL[name])
    return {"in_channels": 1, "num_classes": 2, "base_c": 4, "depth": 2}


def _bundle(name: str, arch: str = "unet2d", **over) -> tuple[Bundle, torch.nn.Module]:
    hp = {**_hparams(arch), **over}
    prep = Preprocessing(target_size=(32, 32), patch_size=PATCH3D if arch.endswith("3d") else None)
    bundle = Bundle(
        name=name,
        architecture=arch,
        hyperparameters=hp,
        stage="liver",
        labels={0: "background", 1: "liver"},
        preprocessing=prep,
        provenance={"training_data": ["synthetic"]},
        metrics={"dice_liver": 0.5},
    )
    torch.manual_seed(0)
    return bundle, registry.build(arch, **hp)


@pytest.mark.parametrize("arch", sorted(registry.available()))
def test_every_registered_architecture_round_trips(tmp_path, arch):
    bundle, model = _bundle(f"rt-{arch}", arch)
    saved = save_bundle(bundle, model, tmp_path / "b")
    loaded = load_bundle(tmp_path / "b")
    assert loaded.model_id == saved.model_id and loaded.architecture == arch
    assert loaded.preprocessing == bundle.preprocessing
    assert loaded.provenance == bundle.provenance and loaded.metrics == bundle.metrics
    again = build_model(loaded)
    shape = (1, 1, *PATCH3D) if arch.endswith("3d") else (1, 1, 32, 32)
    x = torch.randn(shape)
    model.eval()
    with torch.no_grad():
        assert torch.equal(model(x), again(x))
    manifest = json.loads((tmp_path / "b" / MANIFEST).read_text())
    assert manifest["notice"] == "research use only, not for diagnosis"
    assert manifest["weights"]["sha256"] == loaded.weights_sha256


@pytest.fixture
def saved(tmp_path):
    bundle, model = _bundle("good")
    return save_bundle(bundle, model, tmp_path / "good")


def test_pickle_checkpoints_are_refused_without_fallback(tmp_path, saved):
    pt = tmp_path / "model.pt"
    pt.write_bytes(pickle.dumps({"weights": [1, 2, 3]}))
    with pytest.raises(BundleError, match="pickle/PyTorch checkpoints are refused"):
        load_bundle(pt)
    # a pickle (or a torch zip checkpoint) hiding under the safetensors name
    for payload in (pickle.dumps(object), _torch_zip(tmp_path)):
        (saved.path / WEIGHTS).write_bytes(payload)
        with pytest.raises(BundleError, match="pickle/PyTorch checkpoint: refused"):
            build_model(load_bundle(saved.path))


def _torch_zip(tmp_path) -> bytes:
    z = tmp_path / "ckpt.zip"
    with zipfile.ZipFile(z, "w") as fh:
        fh.writestr("archive/data.pkl", pickle.dumps({"a": 1}))
    return z.read_bytes()


def test_truncated_weights_fail_the_hash(saved):
    data = (saved.path / WEIGHTS).read_bytes()
    (saved.path / WEIGHTS).write_bytes(data[: len(data) // 2])
    with pytest.raises(BundleError, match=r"SHA-256|invalid"):
        build_model(load_bundle(saved.path))


def _rewrite(folder, weights: bytes) -> None:
    """Replace the weights and fix the manifest hash, so only the content check can fail."""
    import hashlib

    (folder / WEIGHTS).write_bytes(weights)
    doc = json.loads((folder / MANIFEST).read_text())
    doc["weights"]["sha256"] = hashlib.sha256(weights).hexdigest()
    (folder / MANIFEST).write_text(json.dumps(doc))


def test_absurd_safetensors_header_length_is_refused(saved):
    _rewrite(saved.path, struct.pack("<Q", 2**62) + b"{}" + b"\0" * 64)
    with pytest.raises(BundleError, match="model file invalid / does not match architecture"):
        build_model(load_bundle(saved.path))


def test_missing_keys_and_wrong_shapes_are_refused(tmp_path, saved):
    from safetensors.torch import save_file

    state = {k: v.clone() for k, v in build_model(saved).state_dict().items()}
    first = sorted(state)[0]
    for broken in (
        {k: v for k, v in state.items() if k != first},
        {**state, first: torch.zeros(3, 3, 3)},
        {**state, "extra.weight": torch.zeros(1)},
    ):
        save_file(broken, str(tmp_path / "w.safetensors"))
        _rewrite(saved.path, (tmp_path / "w.safetensors").read_bytes())
        with pytest.raises(BundleError, match="does not match architecture"):
            build_model(load_bundle(saved.path))


def test_a_bundle_for_another_architecture_width_is_refused(tmp_path, saved):
    doc = json.loads((saved.path / MANIFEST).read_text())
    doc["hyperparameters"]["base_c"] = 8
    (saved.path / MANIFEST).write_text(json.dumps(doc))
    with pytest.raises(BundleError, match="does not match architecture"):
        build_model(load_bundle(saved.path))


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("architecture", "os.system", "unknown architecture"),
        ("stage", "kidney", "stage must be one of"),
        ("schema_version", 99, "schema 99"),
        ("labels", {"0": "bg"}, "labels must be 0..K-1"),
        ("preprocessing", {"hu_window": [5, 1]}, "bad preprocessing"),
    ],
)
def test_malformed_manifests_name_the_problem(saved, field, value, message):
    doc = json.loads((saved.path / MANIFEST).read_text())
    doc[field] = value
    (saved.path / MANIFEST).write_text(json.dumps(doc))
    with pytest.raises(BundleError, match=message):
        load_bundle(saved.path)


def test_resaving_replaces_atomically_and_leaves_no_temp_folders(tmp_path):
    bundle, model = _bundle("x")
    first = save_bundle(bundle, model, tmp_path / "x")
    torch.nn.init.constant_(next(model.parameters()), 0.25)
    second = save_bundle(bundle, model, tmp_path / "x")
    assert first.weights_sha256 != second.weights_sha256
    assert load_bundle(tmp_path / "x").weights_sha256 == second.weights_sha256
    assert [p.name for p in tmp_path.iterdir()] == ["x"]


def test_store_lists_user_and_bundled_with_user_shadowing(tmp_path, monkeypatch):
    store = ModelStore(user=tmp_path / "user", bundled=tmp_path / "bundled")
    bundle, model = _bundle("shared")
    save_bundle(bundle, model, tmp_path / "bundled" / "shared")
    save_bundle(_bundle("only-bundled")[0], model, tmp_path / "bundled" / "only-bundled")
    store.install(bundle, model)
    (tmp_path / "user" / "broken").mkdir()
    (tmp_path / "user" / ".half-written.part").mkdir()
    entries = {(e.name, e.source): e for e in store.entries()}
    assert set(entries) == {
        ("shared", "user"),
        ("broken", "user"),
        ("shared", "bundled"),
        ("only-bundled", "bundled"),
    }
    assert "not a model bundle" in entries["broken", "user"].error
    assert store.find("shared").path == tmp_path / "user" / "shared"
    assert store.names() == ["only-bundled", "shared"]
    with pytest.raises(BundleError, match="no model bundle of that name"):
        store.find("nope")
    with pytest.raises(BundleError, match="letters, digits"):
        store.find("../escape")
    monkeypatch.setenv("LIVGUI_MODELS_DIR", str(tmp_path / "env"))
    assert ModelStore().user == tmp_path / "env"


def test_installed_names_with_dots_are_found_and_win_over_local_folders(tmp_path, monkeypatch):
    store = ModelStore(user=tmp_path / "user", bundled=tmp_path / "bundled")
    store.install(*_bundle("liver_v1.2"))
    monkeypatch.chdir(tmp_path)
    (tmp_path / "liver_v1.2").mkdir()  # an unrelated folder of the same name here
    assert store.find("liver_v1.2").path == tmp_path / "user" / "liver_v1.2"
