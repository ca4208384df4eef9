"""load_pretrained: bundled names, local folders, the Hub path (offline cache), and clear errors."""

import json
import pickle
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

import feature_unlearning as fu
from feature_unlearning import hub
from feature_unlearning.models import DCGANGenerator


@pytest.mark.parametrize("name", ["mnist-dcgan", "mnist-vae", "mnist-classifier", "mnist-judge"])
def test_every_registry_name_loads_bundled_with_a_card(name):
    model = fu.load_pretrained(name)
    assert not model.training
    folder = hub.REGISTRY[name].bundled_path
    card = (folder / "README.md").read_text()
    assert card.startswith("---\n") and "license:" in card and "mnist" in card
    assert (folder / "model.safetensors").stat().st_size < 5e6
    assert json.loads((folder / "config.json").read_text())["architecture"] == type(model).__name__


def test_list_models_by_kind():
    assert {"mnist-dcgan", "mnist-vae"} <= set(fu.list_models("generator"))
    assert "mnist-classifier" in fu.list_models("classifier")
    assert "mnist-classifier" not in fu.list_models("generator")


def test_save_then_load_is_bit_identical(tmp_path, dcgan):
    out = fu.save_pretrained(dcgan, tmp_path / "copy", card="# copy\n")
    again = fu.load_pretrained(str(out))
    z = dcgan.sample_latent(16, seed=0)
    with torch.no_grad():
        assert torch.equal(dcgan(z), again(z))
    for (k, a), (_, b) in zip(dcgan.state_dict().items(), again.state_dict().items()):
        assert torch.equal(a, b), k
    assert (out / "README.md").read_text() == "# copy\n"


def _hub_cache(tmp_path: Path, model, repo_id: str) -> Path:
    """A Hugging Face cache laid out as huggingface_hub writes it: refs/main -> snapshots/<commit>/files."""
    src = fu.save_pretrained(model, tmp_path / "src")
    cache = tmp_path / "hf-cache"
    repo = cache / ("models--" + repo_id.replace("/", "--"))
    commit = "0123456789abcdef0123456789abcdef01234567"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)
    (repo / "blobs").mkdir()
    snap = repo / "snapshots" / commit
    snap.mkdir(parents=True)
    for f in src.iterdir():
        blob = repo / "blobs" / f"blob-{f.name}"
        shutil.copy(f, blob)
        (snap / f.name).symlink_to(Path("..") / ".." / "blobs" / blob.name)
    return cache


def test_hub_repo_id_loads_offline_from_the_cache(tmp_path, tiny_dcgan):
    cache = _hub_cache(tmp_path, tiny_dcgan, "acme/tiny-gan")
    z = tiny_dcgan.sample_latent(4, seed=0)
    with torch.no_grad():
        torch.save(tiny_dcgan(z), tmp_path / "expected.pt")
    script = textwrap.dedent(
        f"""
        import torch, feature_unlearning as fu
        m = fu.load_pretrained("acme/tiny-gan")
        z = m.sample_latent(4, seed=0)
        with torch.no_grad():
            assert torch.equal(m(z), torch.load({str(tmp_path / 'expected.pt')!r})), "outputs differ"
        try:
            fu.load_pretrained("acme/not-cached")
        except ValueError as err:
            assert "local Hugging Face cache" in str(err), err
        else:
            raise SystemExit("an uncached repo loaded offline")
        print("OK", type(m).__name__)
        """
    )
    env = {"HF_HUB_OFFLINE": "1", "HF_HUB_CACHE": str(cache), "PATH": "/usr/bin:/bin", "FEATURE_UNLEARNING_PROGRESS": "0"}
    import os

    env = {**os.environ, **env}
    res = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert "OK DCGANGenerator" in res.stdout


def test_unknown_name_lists_what_exists():
    with pytest.raises(ValueError, match="mnist-dcgan") as err:
        fu.load_pretrained("mnist-dcgann")
    assert "not a registry name" in str(err.value)


def _folder(tmp_path, model):
    return fu.save_pretrained(model, tmp_path / "m")


def test_missing_files_say_what_is_missing(tmp_path, tiny_dcgan):
    folder = _folder(tmp_path, tiny_dcgan)
    (folder / "model.safetensors").unlink()
    with pytest.raises(ValueError, match="has no model.safetensors"):
        fu.load_pretrained(str(folder))
    (folder / "config.json").unlink()
    with pytest.raises(ValueError, match="has no config.json"):
        fu.load_pretrained(str(folder))


def test_truncated_safetensors_is_a_clear_error(tmp_path, tiny_dcgan):
    folder = _folder(tmp_path, tiny_dcgan)
    weights = folder / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    with pytest.raises(ValueError, match="not a readable safetensors file"):
        fu.load_pretrained(str(folder))


class _Boom:
    """Unpickling this writes a marker file: proof that a loader unpickled."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (Path.write_text, (Path(self.marker), "unpickled!"))


@pytest.mark.parametrize("filename", ["pytorch_model.bin", "model.safetensors"])
def test_pickle_files_are_never_unpickled(tmp_path, tiny_dcgan, filename):
    folder = _folder(tmp_path, tiny_dcgan)
    (folder / "model.safetensors").unlink()
    marker = tmp_path / "marker"
    with open(folder / filename, "wb") as f:
        pickle.dump(_Boom(marker), f)
    with pytest.raises(ValueError, match="never unpickles|not a readable safetensors"):
        fu.load_pretrained(str(folder))
    assert not marker.exists()


def test_config_that_does_not_match_the_weights(tmp_path, tiny_dcgan):
    folder = _folder(tmp_path, tiny_dcgan)
    cfg = json.loads((folder / "config.json").read_text())
    cfg["latent_dim"] = 9
    (folder / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ValueError, match="does not match the weights"):
        fu.load_pretrained(str(folder))


@pytest.mark.parametrize(
    "edit, message",
    [
        ({"architecture": "StyleGAN9"}, "unknown architecture 'StyleGAN9'"),
        ({"n_layers": 3}, "not arguments of DCGANGenerator"),
        ({"image_size": 30}, "can't build DCGANGenerator"),
    ],
)
def test_bad_configs(tmp_path, tiny_dcgan, edit, message):
    folder = _folder(tmp_path, tiny_dcgan)
    cfg = {**json.loads((folder / "config.json").read_text()), **edit}
    (folder / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ValueError, match=message):
        fu.load_pretrained(str(folder))


def test_config_without_architecture_needs_it_named(tmp_path, tiny_dcgan):
    folder = _folder(tmp_path, tiny_dcgan)
    cfg = json.loads((folder / "config.json").read_text())
    del cfg["architecture"]
    (folder / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ValueError, match="no 'architecture' key"):
        fu.load_pretrained(str(folder))
    assert isinstance(fu.load_pretrained(str(folder), architecture="DCGANGenerator"), DCGANGenerator)


def test_save_is_whole_or_nothing(tmp_path, tiny_dcgan, monkeypatch):
    folder = _folder(tmp_path, tiny_dcgan)
    before = {f.name: f.read_bytes() for f in folder.iterdir()}
    with pytest.raises(FileExistsError, match="not empty"):
        fu.save_pretrained(tiny_dcgan, folder)

    def broken(self, directory, **kwargs):
        (Path(directory) / "model.safetensors").write_bytes(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(DCGANGenerator, "save_pretrained", broken)
    with pytest.raises(OSError, match="disk full"):
        fu.save_pretrained(tiny_dcgan, folder, overwrite=True)
    assert {f.name: f.read_bytes() for f in folder.iterdir()} == before
    assert [p.name for p in tmp_path.iterdir()] == ["m"]  # no temporary folder left behind


def test_bundled_models_are_never_overwritten(tiny_dcgan):
    with pytest.raises(ValueError, match="bundled"):
        fu.save_pretrained(tiny_dcgan, hub.REGISTRY["mnist-dcgan"].bundled_path, overwrite=True)


def test_import_loads_no_model_and_no_ui():
    """An audit hook sees every file opened during `import feature_unlearning`: no weights, no UI."""
    script = (
        "import sys\n"
        "opened = []\n"
        "sys.addaudithook(lambda ev, args: opened.append(str(args[0])) if ev == 'open' else None)\n"
        "import feature_unlearning\n"
        "bad = [p for p in opened if p.endswith(('.safetensors', 'config.json'))]\n"
        "assert not bad, bad\n"
        "assert 'gradio' not in sys.modules and 'matplotlib.pyplot' not in sys.modules\n"
        "print('OK')"
    )
    res = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0 and "OK" in res.stdout, res.stderr
