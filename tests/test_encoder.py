"""The face image encoder (``digiface-encoder``) as a probe extractor, and the hand-labelled face data. CPU, seconds."""

import json
from pathlib import Path

import pytest
import torch

from feature_unlearning import hub
from feature_unlearning.oracles import LinearProbe, Selection
from feature_unlearning.models import ARCHITECTURES, DCGAN64Generator, ImageEncoder
from feature_unlearning.feature import Feature

ENCODER_DIR = Path(hub.__file__).parent / "pretrained" / "digiface-encoder"
DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="module")
def encoder():
    return hub.load_folder(ENCODER_DIR).eval()


def _faces(n: int, glasses: bool, seed: int) -> torch.Tensor:
    """Smooth random 'faces' (N, 3, 64, 64) in [-1, 1]; with ``glasses``, a dark bar with two rims over the eyes."""
    g = torch.Generator().manual_seed(seed)
    x = torch.nn.functional.interpolate(torch.rand(n, 3, 8, 8, generator=g) * 1.2 - 0.4, size=64, mode="bilinear")
    if glasses:
        x[:, :, 26:29, 14:50] = -0.9
        for c in (22, 42):
            x[:, :, 24:36, c - 8 : c + 8] = -0.9
            x[:, :, 26:34, c - 6 : c + 6] = 0.6
    return x


def test_bundled_encoder_loads_strict_with_its_card(encoder):
    assert isinstance(encoder, ImageEncoder) and ARCHITECTURES["ImageEncoder"] is ImageEncoder
    config = json.loads((ENCODER_DIR / "config.json").read_text())
    assert config["architecture"] == "ImageEncoder"
    card = (ENCODER_DIR / "README.md").read_text()
    assert "DigiFace-1M" in card and "non-commercial" in card


def test_a_folder_with_a_missing_tensor_is_refused(tmp_path):
    from safetensors.torch import save_file

    folder = tmp_path / "enc"
    folder.mkdir()
    (folder / "config.json").write_text((ENCODER_DIR / "config.json").read_text())
    state = hub.load_state(ENCODER_DIR / hub.WEIGHTS_NAME)
    state.pop("latent_head.bias")
    save_file(state, folder / hub.WEIGHTS_NAME)
    with pytest.raises(ValueError, match="does not match"):
        hub.load_folder(folder)


def test_encoder_output_shapes_and_bad_input(encoder):
    x = _faces(5, False, 0)
    with torch.no_grad():
        f = encoder(x)
        assert f.shape == (5, encoder.out_dim) == (5, 100) and torch.isfinite(f).all()
        assert torch.equal(f, encoder.features(x))
        assert encoder.latent(x).shape == (5, 100) and encoder.activation(x).shape == (5, 512)
        # an image's features do not depend on the rest of the batch
        assert torch.allclose(encoder(x[:1]), f[:1], atol=1e-5)
    with pytest.raises(ValueError, match="expected images"):
        encoder(torch.zeros(2, 1, 28, 28))


def test_mirror_features_are_the_mean_over_the_image_and_its_mirror(encoder):
    x = _faces(4, True, 2)
    x[:, :, :, :20] = 0.9  # a bright band on one side: the image is not symmetric
    assert encoder.mirror  # the bundled face encoder: glasses and hats have no left or right
    plain = ImageEncoder(**{**encoder.config, "mirror": False}).eval()
    plain.load_state_dict(encoder.state_dict())
    with torch.no_grad():
        f = encoder(x)
        assert torch.allclose(f, encoder(x.flip(-1)), atol=1e-5)  # blind to the side
        assert torch.allclose(f, (plain(x) + plain(x.flip(-1))) / 2, atol=1e-5)
        assert not torch.allclose(plain(x), plain(x.flip(-1)), atol=1e-3)  # ... which the plain features are not


def test_save_load_roundtrip(tmp_path):
    torch.manual_seed(0)
    enc = ImageEncoder(width=4, feature_dim=8, latent_dim=3, activation_dim=0).eval()
    enc.save_pretrained(tmp_path / "enc")
    back = hub.load_folder(tmp_path / "enc")
    x = _faces(3, True, 1)
    with torch.no_grad():
        assert torch.equal(back(x), enc(x))
    with pytest.raises(ValueError, match="activation_dim=0"):
        back.activation(x)
    both = ImageEncoder(width=4, feature_dim=8, latent_dim=3, features_from="hidden+latent").eval()
    with torch.no_grad():
        assert both(x).shape == (3, both.out_dim) == (3, 11)
        assert torch.equal(both(x)[:, 8:], both.latent(x))
    with pytest.raises(ValueError, match="features_from"):
        ImageEncoder(features_from="pixels")


def test_probe_on_encoder_features_separates_a_synthetic_feature(encoder):
    x = torch.cat([_faces(12, True, 2), _faces(24, False, 3)])
    probe = Selection(range(12)).fit_probe(x, encoder)
    test = torch.cat([_faces(10, True, 4), _faces(10, False, 5)])
    s = probe.score_all(test)
    assert bool((s[:10].min() > s[10:].max())), s
    # differentiable in the image, as the oracle hinge of unlearning needs
    img = test[:2].clone().requires_grad_(True)
    probe.scores(img).sum().backward()
    assert img.grad is not None and img.grad.abs().sum() > 0


def test_encoder_is_a_feature_extractor_for_clicks(encoder):
    torch.manual_seed(0)
    gen = DCGAN64Generator(hidden_size=8).eval()
    z = gen.sample_latent(16, seed=0)
    with torch.no_grad():
        images = gen(z)
    feature = Feature.from_selection(z, images, [0, 3, 5, 9], feature_extractor=encoder)
    assert isinstance(feature.oracle, LinearProbe) and feature.oracle.extractor is encoder
    assert feature.oracle.scores(images).shape == (16,)


def test_encoder_reads_the_latent_of_real_generator_faces(encoder):
    pytest.importorskip("gan_face_generate")
    gen = hub.load_pretrained("digiface-dcgan64")
    z = gen.sample_latent(48, seed=99)
    with torch.no_grad():
        z_hat = encoder.latent(gen(z))
    corr = torch.corrcoef(torch.stack([z.flatten(), z_hat.flatten()]))[0, 1]
    assert corr > 0.3, corr  # an untrained encoder gives about 0


@pytest.mark.parametrize("name", ["digiface_labels.json", "digiface_click_pages.json"])
def test_hand_labels_are_well_formed(name):
    data = json.loads((DATA / name).read_text())
    assert {"seed", "n", "labels", "how", "model"} <= set(data)
    assert set(data["labels"]) == {"glasses", "hat", "open_mouth"}
    for values in data["labels"].values():
        assert len(values) == data["n"] and set(values) <= {"yes", "no", "unsure"}
        assert values.count("yes") >= 5 and values.count("no") >= 5
    if name == "digiface_labels.json":
        assert data["n"] >= 300


def test_clicks_match_their_pages_and_differ_from_the_held_out_seed():
    pages = json.loads((DATA / "digiface_click_pages.json").read_text())
    held_out = json.loads((DATA / "digiface_labels.json").read_text())
    assert pages["seed"] != held_out["seed"]
    for fname, key in (("digiface_clicks_glasses.json", "glasses"), ("digiface_clicks_hats.json", "hat")):
        clicks = json.loads((DATA / fname).read_text())
        assert set(clicks) == {"seed", "n", "indices"}  # the CLI's selection format
        assert clicks["seed"] == pages["seed"] and clicks["n"] == 3 * 32 <= pages["n"]  # three pages of 32
        assert clicks["indices"] == [i for i, v in enumerate(pages["labels"][key][: clicks["n"]]) if v == "yes"]
