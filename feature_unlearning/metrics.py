"""Numbers that say whether a feature is gone and whether anything else was lost.

Fidelity is measured in the bundled classifier's feature space (MNIST digits are far from what an
Inception network was trained on): the Frechet distance is computed as torchmetrics'
``FrechetInceptionDistance`` computes it (the same state, the same float64 arithmetic; tested to agree)
with that classifier as its feature extractor, and the SSIM as its ``structural_similarity_index_measure``,
both here without importing torchmetrics (seconds on a CPU); the Inception-style score is torchmetrics'
``InceptionScore``.
Reference statistics of real held-out digits (all of them, and those without each preset feature) ship
with the package, so every number here works offline.
"""

from __future__ import annotations

import functools
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from .models.base import render
from .oracles import Oracle, bundled_classifier

REFERENCE_FILE = Path(__file__).parent / "pretrained" / "reference_stats.safetensors"


class ClassifierEmbedding(nn.Module):
    """torchmetrics' "feature extractor": images ``(N, C, H, W)`` in [0, 1] -> the classifier's embedding.

    ``output="features"`` gives the penultimate layer (for Frechet distances), ``"logits"`` the class
    logits (for the Inception-style score). Runs in float64 so that covariances are accurate.
    """

    def __init__(self, classifier: nn.Module, output: str = "features"):
        super().__init__()
        self.classifier = classifier.eval().requires_grad_(False)
        self.output = output
        with torch.no_grad():
            self.num_features = int(self._run(torch.zeros(1, 1, 28, 28)).shape[-1])

    def _run(self, x01: torch.Tensor) -> torch.Tensor:
        device = next(self.classifier.parameters()).device
        x = (x01.float() * 2 - 1).to(device)
        out = self.classifier.features(x) if self.output == "features" else self.classifier(x)
        return out.double().cpu()

    def forward(self, x01: torch.Tensor) -> torch.Tensor:
        return self._run(x01)


def check_finite(images: torch.Tensor, what: str = "images") -> None:
    """Raise ``ValueError`` if ``images`` hold NaN or infinite values (a diverged model draws them, and the
    Frechet distance's matrix square root would crash on them)."""
    bad = ~torch.isfinite(images.detach()).flatten(1).all(1) if images.ndim > 1 else ~torch.isfinite(images.detach())
    if bool(bad.any()):
        raise ValueError(
            f"{what}: {int(bad.sum())} of {len(images)} images hold NaN or infinite values, so no metric can score "
            "them; the model that drew them has diverged (retrain it with a lower learning rate)"
        )


def _default_classifier(classifier: nn.Module | None) -> nn.Module:
    return classifier if classifier is not None else bundled_classifier()


def _feature_state(images: torch.Tensor, classifier: nn.Module | None, *, what: str,
                   batch_size: int = 1000) -> dict[str, torch.Tensor]:
    """Sums of the classifier features of ``images`` and of their outer products (float64), and the count:
    the state torchmetrics' ``FrechetInceptionDistance`` keeps, so shipped statistics stay compatible."""
    check_finite(images, what)
    feats = ClassifierEmbedding(_default_classifier(classifier))
    dim = feats.num_features
    state = {"sum": torch.zeros(dim, dtype=torch.float64), "cov_sum": torch.zeros(dim, dim, dtype=torch.float64),
             "n": torch.tensor(0)}
    for x01 in _batches01(images, batch_size):
        f = feats(x01).double()
        state["sum"] += f.sum(dim=0)
        state["cov_sum"] += f.t().mm(f)
        state["n"] += len(f)
    return state


def _batches01(images: torch.Tensor, batch_size: int = 1000):
    """``images`` in [-1, 1] as CPU float batches in [0, 1], the input of :class:`ClassifierEmbedding`."""
    for x in images.split(batch_size):
        yield ((x.detach().float().cpu() + 1) / 2).clamp(0, 1)


def _frechet_from_states(real: dict[str, torch.Tensor], fake: dict[str, torch.Tensor]) -> float:
    """d^2 = |mu_r - mu_f|^2 + Tr(S_r + S_f - 2 sqrt(S_r S_f)), computed as torchmetrics does (float64,
    the square root's trace from the eigenvalues of S_r S_f) without importing it."""
    moments = []
    for state in (real, fake):
        n = state["n"].to(torch.float64)
        if n < 2:
            raise ValueError("a Frechet distance needs at least 2 images on each side")
        mean = (state["sum"].double() / n).unsqueeze(0)
        moments.append((mean.squeeze(0), (state["cov_sum"].double() - n * mean.t().mm(mean)) / (n - 1)))
    (mu1, sigma1), (mu2, sigma2) = moments
    a = (mu1 - mu2).square().sum(dim=-1)
    b = sigma1.trace() + sigma2.trace()
    c = torch.linalg.eigvals(sigma1 @ sigma2).sqrt().real.sum(dim=-1)
    return float((a + b - 2 * c).float())


@torch.no_grad()
def reference_state(images: torch.Tensor, classifier: nn.Module | None = None) -> dict[str, torch.Tensor]:
    """The real-image statistics of a Frechet distance (torchmetrics' state), for :func:`frechet_distance`."""
    return _feature_state(images, classifier, what="real images")


def load_reference(name: str = "all") -> dict[str, torch.Tensor]:
    """Shipped statistics of real held-out digits: ``"all"``, or ``"not-thick"`` / ``"not-digit:K"``."""
    tensors = _reference_file(REFERENCE_FILE, REFERENCE_FILE.stat().st_mtime_ns if REFERENCE_FILE.exists() else 0)
    names = sorted({k.rsplit(".", 1)[0] for k in tensors})
    if name not in names:
        raise ValueError(f"no shipped reference {name!r}; shipped: {names}")
    return {part: tensors[f"{name}.{part}"].clone() for part in ("sum", "cov_sum", "n")}


@functools.lru_cache(maxsize=2)
def _reference_file(path: Path, mtime: int) -> dict[str, torch.Tensor]:
    """The shipped statistics, read once per process (``mtime`` makes a rebuilt file count as new)."""
    from safetensors.torch import load_file

    if not path.exists():
        raise FileNotFoundError(f"{path} is missing; rebuild it with python -m benchmarks.train_bundled")
    return load_file(str(path))


@torch.no_grad()
def frechet_distance(
    images: torch.Tensor,
    reference: torch.Tensor | dict[str, torch.Tensor] | str = "all",
    *,
    classifier: nn.Module | None = None,
) -> float:
    """Frechet distance in the classifier's feature space between ``images`` ``(N, 1, 28, 28)`` in [-1, 1]
    and ``reference``: real images, a :func:`reference_state`, or the name of a shipped reference."""
    if isinstance(reference, str):
        reference = load_reference(reference)
    if not isinstance(reference, dict):
        reference = _feature_state(reference, classifier, what="real images")
    return _frechet_from_states(reference, _feature_state(images, classifier, what="generated images"))


@torch.no_grad()
def classifier_score(images: torch.Tensor, *, classifier: nn.Module | None = None, splits: int = 10) -> tuple[float, float]:
    """Inception-style score (mean, std over ``splits``) with the digit classifier's class probabilities."""
    from torchmetrics.image.inception import InceptionScore

    with warnings.catch_warnings():  # its note that it keeps every feature in memory: 10 logits per image here
        warnings.filterwarnings("ignore", message=".*will save all extracted features", category=UserWarning)
        metric = InceptionScore(feature=ClassifierEmbedding(_default_classifier(classifier), "logits"), normalize=True,
                                splits=splits)
    check_finite(images)
    for x01 in _batches01(images):
        metric.update(x01)
    mean, std = metric.compute()
    return float(mean), float(std)


@dataclass
class DigitStats:
    """What a digit classifier says about a batch of images."""

    class_shares: list[float]  # share of images per predicted class
    mean_confidence: float  # mean max softmax probability

    @property
    def min_share(self) -> float:
        return min(self.class_shares)

    @property
    def max_share(self) -> float:
        return max(self.class_shares)


@torch.no_grad()
def digit_stats(images: torch.Tensor, classifier: nn.Module | None = None, *, batch_size: int = 1000) -> DigitStats:
    check_finite(images)
    clf = _default_classifier(classifier).eval()
    device = next(clf.parameters()).device
    probs = torch.cat([clf(x.to(device)).softmax(1).cpu() for x in images.split(batch_size)])
    counts = torch.bincount(probs.argmax(1), minlength=probs.shape[1]).float()
    return DigitStats((counts / len(images)).tolist(), float(probs.max(1).values.mean()))


def feature_share(images: torch.Tensor, oracle: Oracle) -> float:
    """Share of ``images`` that ``oracle`` labels as showing the feature (:meth:`Oracle.share`)."""
    check_finite(images)
    return oracle.share(images)


@torch.no_grad()
def preservation(original: torch.Tensor, unlearned: torch.Tensor) -> dict[str, float]:
    """How alike two renderings of the same latents are: mean SSIM (28x28-sized 7x7 window) and mean L1.

    ``original`` and ``unlearned`` are ``(N, C, H, W)`` in [-1, 1]; pass the latents without the feature
    to measure what unlearning should have left alone.
    """
    from .unlearn import ssim_per_sample

    check_finite(original, "original images")
    check_finite(unlearned, "unlearned images")
    if len(original) == 0:
        return {"ssim": float("nan"), "l1": float("nan")}
    s = ssim_per_sample(unlearned.float().cpu(), original.float().cpu(), sigma=1.0)  # torchmetrics' numbers
    l1 = (unlearned.float().cpu() - original.float().cpu()).abs().flatten(1).mean(1)
    return {"ssim": float(s.mean()), "l1": float(l1.mean())}


def diversity(images: torch.Tensor, classifier: nn.Module | None = None, *, pairs: int = 2000, seed: int = 0) -> float:
    """Mean distance between the classifier features of random pairs of images (higher = more varied)."""
    check_finite(images)
    clf = _default_classifier(classifier).eval()
    embed = ClassifierEmbedding(clf)
    feats = torch.cat([embed(x01) for x01 in _batches01(images)]).float()
    g = torch.Generator().manual_seed(seed)
    i, j = torch.randint(len(feats), (2, pairs), generator=g)
    keep = i != j
    return float((feats[i[keep]] - feats[j[keep]]).norm(dim=1).mean())


@torch.no_grad()
def compare(
    original: nn.Module,
    unlearned: nn.Module,
    oracle: Oracle,
    *,
    n: int = 10_000,
    seed: int = 1,
    reference: str | None = "auto",
    classifier: nn.Module | None = None,
) -> dict:
    """Before/after numbers on the same ``n`` fresh latents.

    ``share_before``/``share_after`` (the oracle's verdict), ``removed`` (1 - after/before),
    ``fd_before`` (original vs all real digits), ``fd_after`` (unlearned vs real digits without the
    feature, when a shipped reference for this oracle exists: ``oracle.reference``), ``fd_ratio``,
    ``fd_before_same_reference`` (the original against that same reference) and ``fd_ratio_fair`` (``fd_after`` over
    it: the fair comparison, as the original draws the feature and so starts some way from that reference), and
    ``preservation`` (SSIM and L1 on the latents whose original image does not show the feature).
    ``reference=None`` skips the Frechet distances (for models that are not 28x28 digits).
    """
    start = time.perf_counter()
    z = original.sample_latent(n, seed=seed, device="cpu")
    before, after = render(original, z).cpu(), render(unlearned, z).cpu()
    check_finite(before, "the original model's images")
    check_finite(after, "the unlearned model's images")
    scores_before = oracle.score_all(before)
    pos_before = scores_before >= oracle.threshold
    pos_after = oracle.score_all(after) >= oracle.threshold
    clear = scores_before < oracle.threshold - getattr(oracle, "default_margin", 0.0)
    share_before, share_after = float(pos_before.float().mean()), float(pos_after.float().mean())
    out = {
        "n": n,
        "share_before": share_before,
        "share_after": share_after,
        "removed": 1 - share_after / share_before if share_before > 0 else float("nan"),
        "preservation": preservation(before[~pos_before], after[~pos_before]),
        # the same on samples clearly without the feature (below the oracle's margin), which unlearning targets
        # never move; the rest of the negatives are borderline and are pushed further from the feature
        "preservation_clear": preservation(before[clear], after[clear]),
    }
    if reference is not None and before.shape[1:] == (1, 28, 28):
        ref_after = (getattr(oracle, "reference", None) or "all") if reference == "auto" else reference
        before_state = _feature_state(before, classifier, what="the original model's images")
        out["fd_before"] = _frechet_from_states(load_reference("all"), before_state)
        out["fd_after"] = frechet_distance(after, ref_after, classifier=classifier)
        out["fd_after_reference"] = ref_after
        out["fd_ratio"] = out["fd_after"] / out["fd_before"]
        # the fair baseline: the original against the unlearned model's own reference (it draws the feature, so it
        # starts some way from real digits without it); 1 = the edit cost no realism beyond removing the feature
        out["fd_before_same_reference"] = (out["fd_before"] if ref_after == "all" else
                                           _frechet_from_states(load_reference(ref_after), before_state))
        out["fd_ratio_fair"] = out["fd_after"] / out["fd_before_same_reference"]
    out["seconds"] = time.perf_counter() - start
    return out
