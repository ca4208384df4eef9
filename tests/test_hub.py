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


@pytest.mark.parametrize("name", ["mnist-dcgan", "mnist-vae", "mnist-classifier", "mnist-judge", "mnist-judge-resnet"])
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


# ------------------------------------------------------------------ licences, extractors, the cache


def _card(base_model: str) -> str:
    return hub.unlearned_card(base_model=base_model, feature="glasses", feature_stats={"n_positive": 5}, config={})


def _front_matter(card: str) -> dict:
    import yaml

    return yaml.safe_load(card.split("---\n")[1])


@pytest.mark.parametrize(
    "base, license, words",
    [
        ("mnist-dcgan", "cc-by-sa-3.0", "MNIST"),
        ("digiface-dcgan64", "other", "non-commercial research"),
        ("pggan-celebahq-1024", "cc-by-nc-4.0", "CelebA"),
        ("pgan-celeba-128", "bsd-3-clause", "CelebA"),
    ],
)
def test_unlearned_card_carries_the_base_models_licence_and_data_terms(base, license, words):
    card = _card(base)
    meta = _front_matter(card)
    assert meta["license"] == license
    assert words in card.split("## License", 1)[1]
    if base == "digiface-dcgan64":
        assert "DigiFace-1M" in card and meta["license_link"] == "https://github.com/microsoft/DigiFace1M"
        assert meta["datasets"] == ["digiface-1m"] and "base_model" not in meta  # not on the Hub
    if base == "pggan-celebahq-1024":
        assert meta["base_model"] == "huggan/pggan-celebahq-1024"


def test_unlearned_card_of_a_folder_inherits_its_cards_terms(tmp_path, tiny_dcgan):
    """Unlearning twice (or a converted face folder): the terms travel with the card; unknown terms are not invented."""
    first = fu.save_pretrained(tiny_dcgan, tmp_path / "first", card=_card("digiface-dcgan64"))
    card = _card(str(first))
    assert _front_matter(card)["license"] == "other" and "non-commercial research" in card
    plain = fu.save_pretrained(tiny_dcgan, tmp_path / "plain")  # no card
    card = _card(str(plain))
    assert "license" not in _front_matter(card) and "cc-by-sa" not in card
    assert "licence and data terms of the base model" in card


def test_extractor_for_names_the_click_probes_feature_space(tmp_path, tiny_dcgan):
    assert hub.extractor_for("mnist-dcgan") == hub.extractor_for("mnist-vae") == "mnist-classifier"
    assert hub.extractor_for("digiface-dcgan64") == "digiface-encoder"
    assert hub.REGISTRY["digiface-encoder"].kind == "encoder" and "digiface-encoder" in fu.list_models("encoder")
    assert hub.extractor_for("pggan-celebahq-1024") is None and hub.extractor_for("pgan-celebahq-512") is None
    assert hub.extractor_for("acme/unknown") is None
    model = fu.load_pretrained("mnist-vae")
    assert hub.extractor_for(model) == "mnist-classifier"
    folder = fu.save_pretrained(tiny_dcgan, tmp_path / "m")
    assert hub.extractor_for(fu.load_pretrained(folder)) == "mnist-classifier"  # a 28x28 digit model by its shape
    from feature_unlearning.models import DCGAN64Generator

    assert hub.extractor_for(DCGAN64Generator(latent_dim=4, hidden_size=2)) is None


def test_cache_root_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("FEATURE_UNLEARNING_CACHE", str(tmp_path / "a"))
    assert hub.cache_root() == tmp_path / "a"
    assert hub.REGISTRY["digiface-dcgan64"].converted_path.is_relative_to(tmp_path / "a" / "models")
    monkeypatch.delenv("FEATURE_UNLEARNING_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert hub.cache_root() == tmp_path / "xdg" / "feature-unlearning"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert hub.cache_root() == tmp_path / "home" / ".cache" / "feature-unlearning"
