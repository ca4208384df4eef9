"""feature_unlearning.feature and .result: a Feature, one unlearning run's result, its card, save, zip, push."""

import dataclasses
import zipfile

import pytest
import torch

import feature_unlearning as fu
from feature_unlearning.feature import Feature
from feature_unlearning.result import UnlearnResult


@pytest.fixture(scope="module")
def result():
    model = fu.load_pretrained("mnist-dcgan")
    feature = Feature.from_oracle(model, "digit:8", n=600, seed=0)
    return feature.unlearn(model, fu.UnlearnConfig(steps=3, batch_size=16))


def test_a_feature_from_a_short_name_has_its_direction_and_statistics(result):
    feature = result.feature
    assert feature.name == "digit:8" and feature.oracle.name == "digit:8"
    assert feature.direction.shape == (32,) and feature.direction.norm() == pytest.approx(1.0, abs=1e-5)
    pos, neg = feature.projections()
    assert len(pos) == feature.stats["n_positive"] and len(pos) + len(neg) == 600
    assert pos.mean() > neg.mean()


def test_unlearn_returns_a_result_that_names_its_parts(result):
    assert isinstance(result, UnlearnResult)
    assert result.base_model == "mnist-dcgan" and result.name == "mnist-dcgan-without-digit-8"
    assert result.unlearned is not result.original and result.history.step == [3]
    assert not result.stopped_early


def test_the_card_says_what_every_front_end_says(result):
    report = result.compare(n=200, seed=4)
    assert result.comparison is report and report["n"] == 200
    card = result.card()
    assert "Unlearned feature: `digit:8`" in card and "base_model: feature-unlearning/mnist-dcgan" in card
    assert "| steps | 3 |" in card and "share_before" in card
    assert "| margin | 6 (the oracle's) |" in card  # the margin the run used, not the config's None
    assert "| anchor | 0.01 (the oracle's) |" in card


def test_save_and_zip_reload_the_same_model(result, tmp_path):
    folder = result.save(tmp_path / "saved")
    z = result.original.sample_latent(8, seed=0)
    assert torch.equal(fu.render(fu.load_pretrained(str(folder)), z), fu.render(result.unlearned, z))
    assert "digit:8" in (folder / "README.md").read_text()
    with pytest.raises(FileExistsError):
        result.save(folder)
    zipped = result.export_zip(tmp_path / "zips")
    assert zipped.name == "mnist-dcgan-without-digit-8.zip"
    with zipfile.ZipFile(zipped) as z:
        assert {"config.json", "model.safetensors", "README.md"} <= {name.split("/")[-1] for name in z.namelist()}


def test_another_model_and_name_can_stand_in(result):
    """As in notebook 06: the card of a re-wrapped model, under the name of its base."""
    other = dataclasses.replace(result, base_model="my/base")
    assert other.name == "base-without-digit-8" and "my/base" in other.card()


def test_push_says_what_is_wrong_before_going_online(result):
    with pytest.raises(ValueError, match="needs a token"):
        result.push("me/model", "")
    with pytest.raises(ValueError, match="is not a Hub repo id"):
        result.push("no slash", "hf_token")
