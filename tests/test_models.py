"""The generator protocol, on tiny random models and on the bundled checkpoints."""

import pytest
import torch

from feature_unlearning.models import ConvVAE, DCGANGenerator, Generator, render


@pytest.fixture(params=["tiny_dcgan", "tiny_vae", "dcgan", "vae"])
def generator(request):
    return request.getfixturevalue(request.param)


def test_protocol_shapes_and_range(generator):
    assert isinstance(generator, Generator)
    z = generator.sample_latent(5, seed=0)
    assert z.shape == (5, generator.latent_dim) and z.dtype == torch.float32
    with torch.no_grad():
        x = generator(z)
    assert x.shape == (5, *generator.image_shape)
    assert x.min() >= -1 and x.max() <= 1
    assert generator.image_shape == (1, 28, 28)


def test_same_seed_same_latents_and_images(generator):
    a = generator.generate(6, seed=3)
    b = generator.generate(6, seed=3)
    c = generator.generate(6, seed=4)
    assert torch.equal(a, b)
    assert not torch.equal(a, c)
    g1, g2 = torch.Generator().manual_seed(7), torch.Generator().manual_seed(7)
    assert torch.equal(generator.sample_latent(4, generator=g1), generator.sample_latent(4, generator=g2))


def test_image_depends_only_on_its_own_latent(generator):
    """Eval mode: BatchNorm uses stored statistics, so batching does not change an image."""
    z = generator.sample_latent(8, seed=1)
    with torch.no_grad():
        whole = generator(z)
        one = generator(z[:1])
    torch.testing.assert_close(whole[:1], one, atol=1e-5, rtol=1e-5)


def test_sample_latent_rejects_bad_arguments(tiny_dcgan):
    with pytest.raises(ValueError, match="n must be"):
        tiny_dcgan.sample_latent(-1)
    with pytest.raises(ValueError, match="not both"):
        tiny_dcgan.sample_latent(2, seed=1, generator=torch.Generator())


def test_render_batches_restore_training_flag(tiny_dcgan):
    tiny_dcgan.train()
    z = tiny_dcgan.sample_latent(10, seed=0)
    out = render(tiny_dcgan, z, batch_size=3)
    assert tiny_dcgan.training
    tiny_dcgan.eval()
    with torch.no_grad():
        torch.testing.assert_close(out, tiny_dcgan(z))
    assert render(tiny_dcgan, z[:0]).shape == (0, 1, 28, 28)


def test_vae_encode_and_decoder_parameters(tiny_vae):
    x = torch.rand(3, 1, 28, 28) * 2 - 1
    mu, logvar = tiny_vae.encode(x)
    assert mu.shape == logvar.shape == (3, tiny_vae.latent_dim)
    assert tiny_vae.reconstruct(x).shape == x.shape
    dec = {id(p) for p in tiny_vae.generator_parameters()}
    enc = {id(p) for p in tiny_vae.encoder.parameters()}
    assert dec and not dec & enc
    assert dec == {id(p) for p in tiny_vae.decoder.parameters()}


def test_image_size_must_divide_by_four():
    with pytest.raises(ValueError, match="divisible by 4"):
        DCGANGenerator(image_size=30)
    with pytest.raises(ValueError, match="divisible by 4"):
        ConvVAE(image_size=30)
