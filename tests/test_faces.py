"""Face generators (PGAN, PGGAN, DCGAN-64), converting published checkpoints, the adapter. CPU, no network."""

import json
import os
import pickle
import re
import subprocess
import sys
import types
from collections import OrderedDict
from pathlib import Path

import pytest
import torch
from torch import nn

import feature_unlearning as fu
from feature_unlearning import convert as cv
from feature_unlearning.directions import feature_direction, threshold
from feature_unlearning.oracles import Oracle, collect
from feature_unlearning.hub import REGISTRY
from feature_unlearning.hub import extractor_for as hub_extractor_for
from feature_unlearning.models import (
    ARCHITECTURES,
    DCGAN64Generator,
    GeneratorAdapter,
    PGANGenerator,
    PGGANGenerator,
)
from feature_unlearning.unlearn import UnlearnConfig, unlearn

KEYLISTS = Path(cv.__file__).parent / "keylists"
PUBLISHED = sorted(p.stem for p in KEYLISTS.glob("*.json") if p.stem != "reference-outputs")
DOCS = Path(__file__).parents[1] / "docs" / "faces.md"

# Small instances: 32 px is the least the 3-scale MS-SSIM of the unlearning loss accepts.
SMALL = {
    "PGANGenerator": lambda: PGANGenerator(latent_dim=8, depth_scale0=8, depth_other_scales=[8, 4, 4]),
    "PGGANGenerator": lambda: PGGANGenerator(resolution=32, latent_dim=8, fmaps_base=64, fmaps_max=8),
    "DCGAN64Generator": lambda: _visible(DCGAN64Generator(latent_dim=8, hidden_size=2)),
}


def _visible(model: nn.Module) -> nn.Module:
    """DCGAN's N(0, 0.02) initialisation gives a tiny random network blank images; widen it."""
    for m in model.modules():
        if isinstance(m, nn.ConvTranspose2d):
            nn.init.normal_(m.weight, 0.0, 0.4)
    return model


def keylist(name: str) -> dict:
    return json.loads((KEYLISTS / f"{name}.json").read_text())


def small(arch: str) -> nn.Module:
    torch.manual_seed(0)
    return SMALL[arch]().eval()


class Brightness(Oracle):
    """Mean intensity of an image of any size; 'bright' above ``threshold``."""

    name = "bright"

    def __init__(self, threshold: float = 0.0):
        self.threshold = threshold
        self.default_margin = 0.0

    def scores(self, images: torch.Tensor) -> torch.Tensor:
        return images.float().mean(dim=(1, 2, 3))


# ------------------------------------------------------------------------ published names and shapes


@pytest.mark.parametrize("name", PUBLISHED)
def test_parameter_names_and_shapes_match_the_published_model(name):
    rec = keylist(name)
    with torch.device("meta"):  # full size, no memory
        model = ARCHITECTURES[rec["architecture"]](**rec["config"])
    ours = [[k, list(v.shape)] for k, v in model.state_dict().items()]
    assert ours == rec["keys"]  # every name and shape, in the published order
    prov = rec["provenance"]
    assert re.fullmatch(r"[0-9a-f]{40}", prov["commit"]) and prov["code"].startswith("https://github.com/")


def test_key_lists_cover_every_face_source():
    for name, entry in cv.sources().items():
        if entry.source.package:  # digiface-dcgan64: the package's own file is checked in test_digiface_*
            continue
        rec = keylist(name)
        assert rec["architecture"] == entry.source.architecture
        if entry.source.url:
            assert rec["provenance"]["checkpoint"] == entry.source.url


def test_one_registry_pins_each_face_model_once():
    """The face models live in hub.REGISTRY alone: each entry carries its Source (no second table)."""
    assert not hasattr(cv, "SOURCES")
    names = set(cv.sources())
    assert {"digiface-dcgan64", "pggan-celebahq-1024", "pgan-celebahq-512", "pgan-celebahq-256", "pgan-celeba-128"} == names
    assert names <= set(fu.list_models("generator"))
    for name in names:
        entry = REGISTRY[name]
        assert entry.kind == "generator" and not entry.bundled and entry.repo_id is None
        assert entry.terms and entry.license
    hf = REGISTRY["pggan-celebahq-1024"].source
    assert hf.repo_id == "huggan/pggan-celebahq-1024" and re.fullmatch(r"[0-9a-f]{40}", hf.revision)
    assert REGISTRY["pggan-celebahq-1024"].base_model == "huggan/pggan-celebahq-1024"
    for name in names:
        source = REGISTRY[name].source
        if source.url:  # torch.hub's pin: the SHA-256 prefix in the file name
            assert re.fullmatch(r"[0-9a-f]{8}", source.sha256_prefix)
    digi = REGISTRY["digiface-dcgan64"]
    assert digi.source.package == "gan-face-generate" and re.fullmatch(r"[0-9a-f]{12}", digi.source.sha256_prefix)
    for text in (digi.description, digi.terms):
        assert "DigiFace-1M" in text and "non-commercial" in text


def _fill(model: nn.Module, std: float) -> None:
    """The fixed rule of keylists/reference-outputs.json."""
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, t in model.state_dict().items():
            if t.is_floating_point() and t.ndim > 0:
                v = torch.randn(t.shape, generator=g) * std
                t.copy_(v.abs() + 0.5 if name.endswith("running_var") else v)


@pytest.mark.parametrize("which", ["pgan", "pggan", "dcgan64"])
def test_same_function_as_the_public_code(which):
    """The public code's outputs on fixed weights (recorded in /tmp, see the JSON) are reproduced."""
    rec = json.loads((KEYLISTS / "reference-outputs.json").read_text())[which]
    model = ARCHITECTURES[rec["ours"]["architecture"]](**rec["ours"]["config"]).eval()
    _fill(model, rec["std"])
    z = torch.randn(2, 16, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        out = getattr(model, rec["ours"]["method"])(z).double()
    ref = rec["output"]
    assert list(out.shape) == ref["shape"]
    assert out.sum().item() == pytest.approx(ref["sum"], rel=1e-4, abs=1e-3)
    assert out.abs().sum().item() == pytest.approx(ref["abs_sum"], rel=1e-5)
    assert out.flatten()[:8].tolist() == pytest.approx(ref["first"], abs=1e-5)


# ------------------------------------------------------------------------------ protocol and flow


@pytest.mark.parametrize("arch", sorted(SMALL))
def test_protocol(arch):
    model = small(arch)
    z = model.sample_latent(3, seed=0)
    out = model(z)
    assert out.shape == (3, *model.image_shape) and out.min() >= -1 and out.max() <= 1
    assert torch.equal(model(z), out)
    assert torch.allclose(model(z[:1]), out[:1], atol=1e-4)  # eval mode: an image depends on its own latent only
    if hasattr(model, "synthesize"):
        assert torch.equal(out, model.synthesize(z).clamp(-1, 1))


def test_unused_rgb_layers_are_not_fine_tuned():
    pgan, pggan = small("PGANGenerator"), small("PGGANGenerator")
    trained = {id(p) for p in pgan.generator_parameters()}
    assert not any(id(p) in trained for layer in pgan.toRGBLayers[:-1] for p in layer.parameters())
    assert all(id(p) in trained for p in pgan.toRGBLayers[-1].parameters())
    assert len(list(pggan.generator_parameters())) == len(list(pggan.parameters())) - 2 * (pggan.num_blocks - 1)


@pytest.mark.parametrize("arch", sorted(SMALL))
def test_collect_direction_unlearn_and_save(arch, tmp_path):
    model = small(arch)
    oracle = Brightness()
    col = collect(model, oracle, 48, seed=0)
    oracle.threshold = float(col.scores.median())
    labels = col.scores >= oracle.threshold
    assert col.images.shape == (48, *model.image_shape)
    d = feature_direction(col.z[labels], col.z[~labels])
    t = threshold(col.z[labels], col.z[~labels], d)
    assert d.shape == (model.latent_dim,)

    before = {k: v.clone() for k, v in model.state_dict().items()}
    paper, hist = unlearn(model, d, t, UnlearnConfig.paper(steps=3, batch_size=4, log_every=1))
    guided, _ = unlearn(model, d, t, UnlearnConfig(steps=2, batch_size=4, log_every=1), oracle=oracle)
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in before.items())  # the original is untouched
    assert len(hist.loss) == 3 and all(torch.isfinite(torch.tensor(hist.loss)))
    z = model.sample_latent(2, seed=1)
    for new in (paper, guided):
        assert type(new) is type(model) and new(z).shape == (2, *model.image_shape)
        assert any(not torch.equal(v, new.state_dict()[k]) for k, v in before.items())  # it was trained

    folder = fu.save_pretrained(paper, tmp_path / "model")
    loaded = fu.load_pretrained(folder)
    assert type(loaded) is type(model) and loaded.config == paper.config
    assert all(torch.equal(v, loaded.state_dict()[k]) for k, v in paper.state_dict().items())
    assert torch.equal(loaded(z), paper(z))


# ------------------------------------------------------------------------------------- converting


@pytest.fixture
def gan_zoo_config_class(monkeypatch):
    """A class importable as ``models.utils.config.BaseConfig``, so torch.save pickles it as the real files do."""
    mods = {name: types.ModuleType(name) for name in ("models", "models.utils", "models.utils.config")}
    for name, mod in mods.items():
        monkeypatch.setitem(sys.modules, name, mod)

    class BaseConfig:
        pass

    BaseConfig.__module__, BaseConfig.__qualname__ = "models.utils.config", "BaseConfig"
    mods["models.utils.config"].BaseConfig = BaseConfig
    return BaseConfig


def _gan_zoo_checkpoint(path, config_cls, *, legacy_names=False):
    """A file in pytorch_GAN_zoo's format: {'config': BaseConfig, 'netG', 'netD', 'avgG'} (its getStateDict)."""
    net_g, avg_g = small("PGANGenerator"), small("PGANGenerator")
    torch.manual_seed(1)
    for p in avg_g.parameters():
        p.data.normal_()
    config = config_cls()
    vars(config).update(
        depthScale0=8,
        depthOtherScales=[8, 4, 4],
        perChannelNormalization=True,
        leakyReluLeak=0.2,
        alpha=0,
        equalizedlR=True,
        lossCriterion="WGANGP",
        noiseVectorDim=8,
        latentVectorDim=8,
        dimOutput=3,
        categoryVectorDim=0,
        attribKeysOrder=None,
        miniBatchStdDev=True,
        learningRate=0.001,
    )
    avg = avg_g.state_dict()
    if legacy_names:  # what older pytorch_GAN_zoo files contain
        avg = OrderedDict((k.replace(".module.", "."), v) for k, v in avg.items())
    netd = OrderedDict([("decisionLayer.module.weight", torch.randn(1, 8))])
    torch.save({"config": config, "netG": net_g.state_dict(), "netD": netd, "avgG": avg}, path)
    return avg_g


@pytest.mark.parametrize("legacy_names", [False, True])
def test_convert_a_gan_zoo_checkpoint(tmp_path, gan_zoo_config_class, legacy_names):
    avg_g = _gan_zoo_checkpoint(tmp_path / "ckpt.pth", gan_zoo_config_class, legacy_names=legacy_names)
    folder = cv.convert(tmp_path / "ckpt.pth", tmp_path / "out")
    assert sorted(p.name for p in folder.iterdir()) == ["README.md", "config.json", "model.safetensors"]
    model = fu.load_pretrained(folder)
    assert isinstance(model, PGANGenerator) and model.image_shape == (3, 32, 32)
    z = model.sample_latent(3, seed=0)
    assert torch.equal(model.synthesize(z), avg_g.synthesize(z))  # the smoothed generator, not netG


def test_convert_refuses_a_mid_transition_checkpoint(tmp_path, gan_zoo_config_class):
    _gan_zoo_checkpoint(tmp_path / "ckpt.pth", gan_zoo_config_class)
    obj = cv.read_checkpoint(tmp_path / "ckpt.pth")
    obj["config"].alpha = 0.5
    with pytest.raises(ValueError, match="mid-transition"):
        cv.pgan_from_checkpoint(obj)


@pytest.mark.parametrize("nesting", ["bare", "generator_smooth"])
def test_convert_a_pggan_state_dict(tmp_path, nesting):
    ref = small("PGGANGenerator")
    state = OrderedDict((k, v) for k, v in ref.state_dict().items() if k != "lod")  # lod may be absent
    torch.save(
        state if nesting == "bare" else {"generator_smooth": state, "generator": {}}, tmp_path / "pytorch_model.bin"
    )
    model = fu.load_pretrained(cv.convert(tmp_path / "pytorch_model.bin", tmp_path / "out"))
    assert isinstance(model, PGGANGenerator) and model.config == ref.config
    z = model.sample_latent(2, seed=0)
    assert torch.equal(model(z), ref(z))


def test_convert_a_dcgan_tutorial_state_dict(tmp_path):
    ref = small("DCGAN64Generator")
    state = {"module.main." + k[len("model.") :]: v for k, v in ref.state_dict().items()}  # netG under DataParallel
    torch.save(state, tmp_path / "netG.pth")
    model = fu.load_pretrained(cv.convert(tmp_path / "netG.pth", tmp_path / "out", architecture="DCGAN64Generator"))
    z = model.sample_latent(2, seed=0)
    assert torch.equal(model(z), ref(z))


class _Boom:
    ran = False

    def __reduce__(self):
        return (_explode, ())


def _explode():
    _Boom.ran = True
    return 0


def test_convert_never_runs_pickled_code(tmp_path):
    torch.save({"avgG": {"formatLayer.module.weight": torch.zeros(1)}, "x": _Boom()}, tmp_path / "evil.pth")
    with pytest.raises(ValueError, match="weights_only"):
        cv.convert(tmp_path / "evil.pth", tmp_path / "out")
    assert not _Boom.ran and not (tmp_path / "out").exists()
    with pytest.raises(pickle.UnpicklingError):  # what a plain weights_only load says, for comparison
        torch.load(tmp_path / "evil.pth", weights_only=True)


def test_convert_errors_speak_to_the_user(tmp_path):
    with pytest.raises(ValueError, match="neither a known source"):
        cv.convert(tmp_path / "missing.pth", tmp_path / "out")
    torch.save({"w": torch.zeros(2)}, tmp_path / "other.pth")
    with pytest.raises(ValueError, match="GeneratorAdapter"):
        cv.convert(tmp_path / "other.pth", tmp_path / "out")
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="not a readable"):
        cv.convert(tmp_path / "junk.pth", tmp_path / "out")
    ref = small("PGGANGenerator")
    torch.save(ref.state_dict(), tmp_path / "g.pth")
    with pytest.raises(ValueError, match="not a DCGAN-64"):
        cv.convert(tmp_path / "g.pth", tmp_path / "out", architecture="DCGAN64Generator")


def test_convert_command(tmp_path, capsys):
    torch.save(small("DCGAN64Generator").state_dict(), tmp_path / "g.bin")
    assert cv.main([str(tmp_path / "g.bin"), "--out", str(tmp_path / "out")]) == 0
    assert "load_pretrained" in capsys.readouterr().out
    assert isinstance(fu.load_pretrained(tmp_path / "out"), DCGAN64Generator)
    assert cv.main([str(tmp_path / "g.bin"), "--out", str(tmp_path / "out")]) == 2  # exists, no --overwrite
    assert "not empty" in capsys.readouterr().err

    import argparse

    parser = argparse.ArgumentParser()
    cv.add_convert_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["convert", "pgan-celebahq-512", "--out", "x"])
    assert args.func is cv.cmd_convert and args.source == "pgan-celebahq-512"


def test_convert_a_known_name_pins_its_source_and_writes_a_card(tmp_path, monkeypatch):
    ref = small("PGGANGenerator")
    torch.save(ref.state_dict(), tmp_path / "pytorch_model.bin")
    asked = []
    monkeypatch.setattr(
        cv, "fetch", lambda entry, cache_dir=None, token=None: asked.append(entry) or tmp_path / "pytorch_model.bin"
    )
    folder = cv.convert("pggan-celebahq-1024", tmp_path / "out")
    assert asked[0].source.revision == "278449f8416d38a0233c980774528d32c4eee99c"
    card = (folder / "README.md").read_text()
    assert "license: cc-by-nc-4.0" in card and "base_model: huggan/pggan-celebahq-1024" in card
    assert "278449f8416d38a0233c980774528d32c4eee99c/pytorch_model.bin" in card
    assert "bare state dict" in card and "CC BY-NC 4.0" in card
    assert json.loads((folder / "config.json").read_text())["architecture"] == "PGGANGenerator"
    with pytest.raises(ValueError, match="is a PGGANGenerator"):
        cv.convert("pggan-celebahq-1024", tmp_path / "out2", architecture="PGANGenerator")


def test_download_failure_is_a_clear_error(tmp_path, monkeypatch):
    import urllib.error

    def offline(*args, **kwargs):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    with pytest.raises(ValueError, match="Offline"):
        cv.convert("pgan-celeba-128", tmp_path / "out", cache_dir=tmp_path / "cache")


@pytest.fixture(scope="module")
def offline_messages(tmp_path_factory):
    """What a new user (no cache, HF_HUB_OFFLINE=1) is told when loading or converting face models by name."""
    tmp = tmp_path_factory.mktemp("offline")
    code = (
        "import feature_unlearning as fu\n"
        "from feature_unlearning.convert import convert\n"
        "for call in (\n"
        "    lambda: fu.load_pretrained('pggan-celebahq-1024'),\n"
        "    lambda: fu.load_pretrained('pgan-celebahq-512'),\n"
        "    lambda: convert('pggan-celebahq-1024', 'out'),\n"
        "):\n"
        "    try:\n"
        "        call()\n"
        "        print('no error')\n"
        "    except ValueError as err:\n"
        "        print('ValueError:', err)\n"
    )
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp / "hf"), "TORCH_HOME": str(tmp / "torch"),
           "FEATURE_UNLEARNING_CACHE": str(tmp / "fu")}
    env.pop("HF_HUB_CACHE", None)
    run = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp, env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert run.returncode == 0, run.stderr  # no crash, no traceback
    lines = run.stdout.strip().splitlines()
    assert len(lines) == 3 and all(line.startswith("ValueError:") for line in lines), run.stdout
    return dict(zip(["load-hf", "load-org", "convert"], lines))


def test_offline_convert_says_the_hub_cant_be_reached(offline_messages):
    assert "can't be reached" in offline_messages["convert"]
    assert "huggan/pggan-celebahq-1024" in offline_messages["convert"]


def test_offline_load_names_the_command_to_run_once_online(offline_messages):
    assert "offline" in offline_messages["load-hf"] and "offline" in offline_messages["load-org"]
    assert "huggan/pggan-celebahq-1024/blob/278449f" in offline_messages["load-hf"]
    assert "run `feature-unlearning convert pggan-celebahq-1024`" in offline_messages["load-hf"]
    assert "run `feature-unlearning convert pgan-celebahq-512`" in offline_messages["load-org"]


def test_without_a_network_the_error_comes_at_once(tmp_path):
    """No HF_HUB_OFFLINE, but nothing answers: huggingface_hub would retry for about 25 s; we fail at once."""
    code = (
        "import time, feature_unlearning as fu\n"
        "t = time.perf_counter()\n"
        "try:\n"
        "    fu.load_pretrained('pggan-celebahq-1024')\n"
        "except ValueError as err:\n"
        "    print(f'{time.perf_counter() - t:.2f}', err)\n"
    )
    env = {**os.environ, "HF_ENDPOINT": "http://127.0.0.1:9", "HF_HOME": str(tmp_path / "hf"),
           "FEATURE_UNLEARNING_CACHE": str(tmp_path / "fu")}  # port 9 (discard): connection refused
    for var in ("HF_HUB_OFFLINE", "HF_HUB_CACHE", "HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"):
        env.pop(var, None)
    run = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    seconds, message = run.stdout.split(" ", 1)
    assert "can't be reached" in message and "feature-unlearning convert pggan-celebahq-1024" in message, run.stderr
    assert float(seconds) < 10, "retried instead of failing at once"
    assert "Retrying" not in run.stderr


def _tiny_pggan_state() -> tuple[nn.Module, dict]:
    """A small PGGANGenerator state dict with the key layout of huggan/pggan-celebahq-1024's pytorch_model.bin."""
    ref = small("PGGANGenerator")
    published = [k for k, _ in keylist("pggan-celebahq-1024")["keys"]]
    state = ref.state_dict()
    assert all(k in published for k in state)  # the same names (fewer blocks)
    return ref, OrderedDict(state)


def test_hub_face_model_loads_by_name_from_the_hub_cache_and_converts_once(tmp_path):
    """A Hugging Face cache laid out as hf_hub_download writes it, holding a small file of the published
    layout at the pinned commit: load_pretrained(name) converts it once, then reads the converted copy."""
    ref, state = _tiny_pggan_state()
    source = REGISTRY["pggan-celebahq-1024"].source
    repo = tmp_path / "hf" / "models--huggan--pggan-celebahq-1024"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(source.revision)
    (repo / "blobs").mkdir()
    torch.save(state, repo / "blobs" / "0123abcd")
    snap = repo / "snapshots" / source.revision
    snap.mkdir(parents=True)
    (snap / "pytorch_model.bin").symlink_to(Path("..") / ".." / "blobs" / "0123abcd")
    z = ref.sample_latent(2, seed=0)
    with torch.no_grad():
        torch.save({"z": z, "out": ref(z)}, tmp_path / "expected.pt")
    code = (
        "import shutil, sys, torch, feature_unlearning as fu\n"
        f"expected = torch.load({str(tmp_path / 'expected.pt')!r})\n"
        "for attempt in (1, 2):\n"
        "    m = fu.load_pretrained('pggan-celebahq-1024')\n"
        "    with torch.no_grad():\n"
        "        assert torch.equal(m(expected['z']), expected['out']), 'outputs differ'\n"
        f"    shutil.rmtree({str(tmp_path / 'hf')!r}, ignore_errors=True)  # the 2nd load: the converted copy only\n"
        "print('OK', type(m).__name__, m.config['resolution'])\n"
    )
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HUB_CACHE": str(tmp_path / "hf"),
           "FEATURE_UNLEARNING_CACHE": str(tmp_path / "fu")}
    run = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert "OK PGGANGenerator 32" in run.stdout
    assert run.stderr.count("converted pggan-celebahq-1024 once") == 1 and "bare state dict" in run.stderr
    folder = tmp_path / "fu" / "models" / "pggan-celebahq-1024" / source.revision[:12]
    card = (folder / "README.md").read_text()
    assert "license: cc-by-nc-4.0" in card and "CelebA" in card and "base_model: huggan/pggan-celebahq-1024" in card


# ----------------------------------------------------------------------------------- DigiFace DCGAN-64


def _digiface_file() -> Path:
    import importlib.util

    spec = importlib.util.find_spec("gan_face_generate")
    if spec is None:
        pytest.skip("the PyPI package gan-face-generate is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "weights.tar"


def test_digiface_loads_by_name_converting_the_package_file_once(tmp_path, monkeypatch):
    path = _digiface_file()
    monkeypatch.setenv("FEATURE_UNLEARNING_CACHE", str(tmp_path / "fu"))
    model = fu.load_pretrained("digiface-dcgan64")
    assert isinstance(model, DCGAN64Generator) and model.config == {"latent_dim": 100, "channels": 3, "hidden_size": 64}
    # the same network as the package's: its tutorial-layout state dict loaded by hand
    state = torch.load(path, map_location="cpu", weights_only=True)["netG_state_dict"]
    by_hand = DCGAN64Generator()
    by_hand.load_state_dict({"model." + k.removeprefix("main."): v for k, v in state.items()})
    z = model.sample_latent(8, seed=0)
    with torch.no_grad():
        out = model(z)
        assert torch.equal(out, by_hand.eval()(z))
    assert out.shape == (8, 3, 64, 64) and out.std(0).mean() > 0.1  # varied images, not one blank face

    folder = REGISTRY["digiface-dcgan64"].converted_path
    assert folder.parent.parent == tmp_path / "fu" / "models"
    card = (folder / "README.md").read_text()
    assert "netG_state_dict" in card and "DigiFace-1M" in card and "non-commercial research" in card
    assert "license: other" in card and "gan-face-generate" in card

    def no_second_read(*args, **kwargs):
        raise AssertionError("converted again")

    monkeypatch.setattr(cv, "fetch", no_second_read)  # the second load reads the cached folder only
    again = fu.load_pretrained("digiface-dcgan64")
    assert torch.equal(again(z), out)


def test_digiface_without_the_package_says_what_to_install(tmp_path, monkeypatch):
    import importlib.util

    monkeypatch.setenv("FEATURE_UNLEARNING_CACHE", str(tmp_path / "fu"))
    real = importlib.util.find_spec
    hidden = lambda name, *a: None if name == "gan_face_generate" else real(name, *a)  # noqa: E731
    monkeypatch.setattr(importlib.util, "find_spec", hidden)
    with pytest.raises(ValueError) as err:
        fu.load_pretrained("digiface-dcgan64")
    message = str(err.value)
    assert "pip install gan-face-generate" in message and "[app]" in message and "\n" not in message
    assert not (tmp_path / "fu").exists() or not any((tmp_path / "fu").rglob("*.safetensors"))


def test_digiface_package_is_in_the_app_extra_and_the_space_requirements():
    tomllib = pytest.importorskip("tomllib")
    root = Path(__file__).parents[1]
    app = tomllib.loads((root / "pyproject.toml").read_text())["project"]["optional-dependencies"]["app"]
    assert any(d.startswith("gan-face-generate") for d in app)
    assert any(ln.startswith("gan-face-generate") for ln in (root / "requirements.txt").read_text().splitlines())


@pytest.mark.parametrize("key", ["netG_state_dict", "netG", "state_dict"])
def test_convert_unwraps_a_wrapped_state_dict_and_says_which_key(tmp_path, key, capsys):
    ref = small("DCGAN64Generator")
    state = {"main." + k.removeprefix("model."): v for k, v in ref.state_dict().items()}
    optimizer = {"state": {}, "param_groups": []}
    torch.save({key: state, "epoch": 7, "optimizerG_state_dict": optimizer}, tmp_path / "ck.tar")
    assert cv.main([str(tmp_path / "ck.tar"), "--out", str(tmp_path / "out")]) == 0
    assert f"under the key {key!r}" in capsys.readouterr().out
    assert f"the key `{key}`" in (tmp_path / "out" / "README.md").read_text()
    model = fu.load_pretrained(tmp_path / "out")
    z = model.sample_latent(2, seed=0)
    assert isinstance(model, DCGAN64Generator) and torch.equal(model(z), ref(z))


def test_convert_of_a_dict_without_a_generator_names_the_keys_it_looked_for(tmp_path):
    torch.save({"optimizer": {"lr": torch.tensor(1.0)}, "weights": [torch.zeros(1)]}, tmp_path / "ck.pth")
    with pytest.raises(ValueError, match="no generator state dict under any of .*'netG_state_dict', 'netG'"):
        cv.convert(tmp_path / "ck.pth", tmp_path / "out")
    with pytest.raises(ValueError, match="netG_state_dict"):
        cv.convert(tmp_path / "ck.pth", tmp_path / "out", architecture="DCGAN64Generator")


# ---------------------------------------------------------------------------------------- adapter


def test_adapter_maps_the_output_range():
    net = nn.Sequential(nn.Linear(4, 3 * 8 * 8), nn.Sigmoid(), nn.Unflatten(1, (3, 8, 8)))
    model = GeneratorAdapter(net, latent_dim=4, image_shape=(3, 8, 8), output_range=(0, 1))
    z = model.sample_latent(5, seed=0)
    assert torch.allclose(model(z), 2 * net(z) - 1)
    as_255 = GeneratorAdapter(
        nn.Sequential(net, nn.Identity()), latent_dim=4, image_shape=(3, 8, 8), output_range=(0, 255)
    )
    assert torch.allclose(as_255(z), net(z) * (2 / 255) - 1)

    class ReturnsDict(nn.Module):
        def __init__(self):
            super().__init__()
            self.g = net

        def forward(self, z):
            return {"image": self.g(z), "z": z}

    picked = GeneratorAdapter(
        ReturnsDict(), latent_dim=4, image_shape=(3, 8, 8), output_range=(0, 1), output=lambda out: out["image"]
    )
    assert torch.allclose(picked(z), model(z))
    with pytest.raises(ValueError, match="output_range"):
        GeneratorAdapter(net, latent_dim=4, image_shape=(3, 8, 8), output_range=(1, 0))
    with pytest.raises(ValueError, match="not a submodule"):
        GeneratorAdapter(net, latent_dim=4, image_shape=(3, 8, 8), trainable="decoder")


def test_adapter_wraps_a_dcgan_style_network_and_freezes_what_it_is_told():
    class TwoPart(nn.Module):
        def __init__(self):
            super().__init__()
            self.stem = nn.ConvTranspose2d(8, 4, 4)  # (N, 8, 1, 1) -> (N, 4, 4, 4)
            self.head = nn.Sequential(nn.ConvTranspose2d(4, 3, 4, 2, 1), nn.Upsample(scale_factor=4), nn.Tanh())

        def forward(self, x):
            return self.head(self.stem(x))

    torch.manual_seed(0)
    net = TwoPart()
    model = GeneratorAdapter(net, latent_dim=8, image_shape=(3, 32, 32), latent_as_image=True, trainable="head")
    z = model.sample_latent(32, seed=0)
    bright = model(z).mean(dim=(1, 2, 3)) > model(z).mean(dim=(1, 2, 3)).median()
    d = feature_direction(z[bright], z[~bright])
    new, _ = unlearn(model, d, threshold(z[bright], z[~bright], d), UnlearnConfig.paper(steps=3, batch_size=8, lr=1e-2))
    assert torch.equal(new.net.stem.weight, net.stem.weight)  # frozen: not named by trainable
    assert not torch.equal(new.net.head[0].weight, net.head[0].weight)


def test_adapter_example_in_the_docs_runs():
    text = DOCS.read_text()
    block = re.search(r"<!-- tested: adapter example -->\n```python\n(.*?)```", text, re.DOTALL)
    assert block, "docs/faces.md lost its tested adapter example"
    namespace: dict = {}
    exec(compile(block.group(1), str(DOCS), "exec"), namespace)
    assert isinstance(namespace["new_model"], GeneratorAdapter)


# ------------------------------------------------------------------------------------------ the CLI


def test_cli_samples_digiface_faces_by_name(tmp_path, monkeypatch):
    _digiface_file()
    from feature_unlearning.cli import main

    monkeypatch.setenv("FEATURE_UNLEARNING_CACHE", str(tmp_path / "fu"))
    argv = ["sample", "--model", "digiface-dcgan64", "--n", "4", "--nrow", "2", "--out", str(tmp_path / "s.png")]
    assert main(argv) == 0
    from PIL import Image

    grid = Image.open(tmp_path / "s.png")
    assert grid.mode == "RGB" and min(grid.size) >= 2 * 64 * 2  # two 64 px faces a side, scale 2


def test_cli_clicks_on_a_model_without_an_image_extractor_fall_back_to_the_papers_rule(tmp_path, capsys):
    """A face model with no feature extractor (hub.extractor_for is None): the clicks give the direction,
    unlearning uses UnlearnConfig.paper(), and one line says so."""
    from feature_unlearning.cli import main

    model = small("DCGAN64Generator")
    folder = fu.save_pretrained(model, tmp_path / "faces")
    assert hub_extractor_for(fu.load_pretrained(folder)) is None
    clicks = tmp_path / "clicks.json"
    brightness = model.generate(24, seed=3).mean(dim=(1, 2, 3))
    clicks.write_text(json.dumps({"seed": 3, "n": 24, "indices": brightness.argsort()[-6:].tolist()}))

    assert main(["direction", "--model", str(folder), "--feature", str(clicks), "--rows", "2",
                 "--out", str(tmp_path / "dir")]) == 0
    out = capsys.readouterr().out
    assert out.count("no image feature extractor") == 1 and "UnlearnConfig.paper()" in out
    assert json.loads((tmp_path / "dir" / "direction.json").read_text())["n_positive"] == 6

    assert main(["unlearn", "--model", str(folder), "--feature", str(clicks), "--steps", "2",
                 "--out", str(tmp_path / "new")]) == 0
    out = capsys.readouterr().out
    assert out.count("no image feature extractor") == 1
    card = (tmp_path / "new" / "README.md").read_text()
    assert "| method | paper |" in card and "Measured before / after" not in card
    new = fu.load_pretrained(tmp_path / "new")
    assert isinstance(new, DCGAN64Generator) and not torch.equal(new.model[0].weight, model.model[0].weight)
