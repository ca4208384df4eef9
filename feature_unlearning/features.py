"""Moved to :mod:`feature_unlearning.oracles`; this alias keeps old imports working (remove once unused)."""

from .oracles import *  # noqa: F401,F403
from .oracles import CALIBRATION_FILE, Collection, Oracle, collect, get_oracle, stroke_width  # noqa: F401


def score_images(oracle, images, *, batch_size: int = 1000):
    """Old name of :meth:`Oracle.score_all <feature_unlearning.oracles.Oracle.score_all>`."""
    return oracle.score_all(images, batch_size=batch_size)
