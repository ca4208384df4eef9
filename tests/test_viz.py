"""feature_unlearning.viz: the pictures and plots the app and the notebooks show."""

import numpy as np
import pytest
import torch

from feature_unlearning import viz



def test_difference_shows_removed_ink_red_and_added_ink_blue():
    before, after = -torch.ones(1, 1, 4, 4), -torch.ones(1, 1, 4, 4)
    before[..., 0, 0] = 1  # ink the unlearned model no longer draws
    after[..., 3, 3] = 1  # ink it added
    rgb = viz.to_uint8(viz.difference_images(before, after))[0]
    assert tuple(rgb[0, 0]) == viz.REMOVED_INK and tuple(rgb[3, 3]) == viz.ADDED_INK
    assert tuple(rgb[1, 1]) == (0, 0, 0)


def test_side_by_side_and_traversal_pictures_have_the_expected_layout():
    x = torch.rand(8, 1, 28, 28) * 2 - 1
    picture = viz.side_by_side(x, x.flip(0), nrow=4, scale=2, padding=2, gap=12)
    cell = 28 * 2 + 4
    assert picture.dtype == np.uint8 and picture.shape[1] == 3 * 4 * cell + 2 * 12
    assert picture.shape[0] > 2 * cell  # two rows plus the titles
    strips = torch.rand(3, 7, 1, 28, 28) * 2 - 1
    grid = viz.traversal_grid(strips, (-3, -2, -1, 0, 1, 2, 3), scale=1, padding=2)
    assert grid.shape[1] == 7 * 32 and grid.shape[0] > 3 * 32
    with pytest.raises(ValueError, match="alphas"):
        viz.traversal_grid(strips, (0, 1))


def test_fit_enlarges_small_images_and_shrinks_large_ones():
    small, scale = viz.fit(torch.zeros(2, 1, 28, 28), 112)
    assert small.shape == (2, 1, 28, 28) and scale == 4
    big, scale = viz.fit(torch.zeros(2, 5, 3, 256, 128), 64)
    assert big.shape == (2, 5, 3, 64, 32) and scale == 1


def test_plots_are_matplotlib_figures_with_what_they_promise():
    fig = viz.projection_histogram(torch.randn(50) + 2, torch.randn(500), 0.5)
    (ax,) = fig.axes
    assert [line.get_xdata()[0] for line in ax.lines] == [0.5]  # the threshold line
    fig = viz.loss_curves({"step": [10, 20], "loss": [1.0, 0.5], "recon": [0.1, 0.1]}, total_steps=100)
    (ax,) = fig.axes
    assert len(ax.lines) == 2 and ax.get_xlim() == (0, 100)
