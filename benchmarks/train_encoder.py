"""Train and bundle ``digiface-encoder``: an image encoder for the DigiFace DCGAN-64's faces.

    OMP_NUM_THREADS=1 python -m benchmarks.train_encoder            # the bundled recipe (~9 min, 1 CPU thread)
    OMP_NUM_THREADS=1 python -m benchmarks.train_encoder --steps 20 --out /tmp/enc   # a quick try

Data: the generator's own pairs (z, G(z)), drawn fresh from the prior during training (free and
unlimited; no face photograph is used). Each step renders ``fresh`` new faces, keeps every face rendered so
far (uint8, as shown on screen) and trains on a batch of the fresh faces plus faces drawn from that
buffer. Targets: the latent ``z`` and the generator's first hidden activation (512 channel means after
BatchNorm+ReLU, standardised). The run is deterministic for a seed and a step count (one CPU thread).
The generator is the DCGAN-64 of the PyPI package ``gan-face-generate`` (MIT; trained on Microsoft's
DigiFace-1M, whose terms limit use to non-commercial research), loaded weights-only.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from feature_unlearning import hub
from feature_unlearning.models import DCGAN64Generator, ImageEncoder
from feature_unlearning.utils import atomic_directory, machine_info

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "feature_unlearning" / "pretrained" / "digiface-encoder"


def load_digiface_generator() -> DCGAN64Generator:
    """The DigiFace DCGAN-64 of ``gan-face-generate`` (the registry's ``digiface-dcgan64``), frozen, in eval mode."""
    import feature_unlearning as fu

    try:
        return fu.load_pretrained("digiface-dcgan64").requires_grad_(False)
    except ValueError as e:  # the package is missing: say what to install
        raise SystemExit(str(e)) from e


@torch.no_grad()
def render_with_activation(gen: DCGAN64Generator, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Images ``G(z)`` and the generator's first hidden activation (channel means after BN+ReLU)."""
    h = gen.model[:3](z.view(len(z), gen.latent_dim, 1, 1))
    return gen.model[3:](h), h.mean((2, 3))


def to_uint8(x: torch.Tensor) -> torch.Tensor:
    return ((x.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)


def from_uint8(x: torch.Tensor) -> torch.Tensor:
    return x.float() / 127.5 - 1


def card(info: dict) -> str:
    return f"""---
library_name: feature-unlearning
license: other
license_name: digiface-1m-research-only
tags: [feature-unlearning, pytorch, image-encoder, faces]
---
# digiface-encoder

An image encoder for the 64x64 faces of the DigiFace DCGAN-64 generator (PyPI package `gan-face-generate`):
`ImageEncoder` (four stride-2 convolutions, a {info['feature_dim']}-d hidden layer) trained to regress, from
a generated face, its latent z and the generator's first hidden activation. Its features (`features_from=
"{info['features_from']}"`: the predicted latent{", averaged over the face and its mirror image" if info.get("mirror") else ""}) are what a `LinearProbe` fitted on a few dozen clicked faces
uses to score any face (the student's too, during unlearning); see `benchmarks/results/faces.md`.

**Derived from the DigiFace-1M generator.** It was trained only on that generator's own samples; the
generator was trained on Microsoft's DigiFace-1M, whose terms limit use to **non-commercial research**.
Those terms apply to this encoder as well.

```python
import feature_unlearning as fu
encoder = fu.load_pretrained("digiface-encoder")
feats = encoder(images)            # (N, 3, 64, 64) in [-1, 1] -> (N, {info['out_dim']})
```

## Training (reproduce with `OMP_NUM_THREADS=1 python -m benchmarks.train_encoder`)
- data: fresh pairs (z, G(z)), z ~ N(0, I), {info['fresh']} new faces a step, batch {info['batch_size']}
  (the fresh ones + faces drawn from all rendered so far), {info['steps']} steps, seed {info['seed']},
  Adam lr {info['lr']} (cosine to 0)
- loss: MSE(z_hat, z) + MSE(a_hat, a) (a: standardised channel means of the generator's first hidden layer)
- time: {info['seconds']:.0f} s on {info['machine']} (1 thread; the 2 cores were shared with other jobs)
- held out (1,000 fresh faces, seed {info['eval_seed']}): R^2 of z {info['r2_z']:.3f}, of a {info['r2_a']:.3f}
- parameters: {info['params']:,}
"""


def r2(pred: torch.Tensor, target: torch.Tensor) -> float:
    return float(1 - (pred - target).pow(2).sum() / (target - target.mean(0)).pow(2).sum())


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--steps", type=int, default=600)
    ap.add_argument("--fresh", type=int, default=32)
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--features-from", default="latent", choices=ImageEncoder.FEATURES_FROM,
                    help="what the encoder's features() returns (no effect on training)")
    ap.add_argument("--no-mirror", dest="mirror", action="store_false",
                    help="features() of the image alone, not averaged with its mirror image's (no effect on training)")
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    torch.manual_seed(args.seed)
    gen = load_digiface_generator()
    sampler = torch.Generator().manual_seed(args.seed)

    # standardisation of the activation target, from 1,000 faces
    _, a0 = render_with_activation(gen, torch.randn(1000, 100, generator=sampler))
    a_mean, a_std = a0.mean(0), a0.std(0).clamp_min(1e-3)

    enc = ImageEncoder(features_from=args.features_from, mirror=args.mirror)
    opt = torch.optim.Adam(enc.parameters(), lr=args.lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, args.steps)
    buf_x = torch.empty(args.steps * args.fresh, 3, 64, 64, dtype=torch.uint8)
    buf_z = torch.empty(args.steps * args.fresh, 100)
    buf_a = torch.empty(args.steps * args.fresh, 512)
    n = 0
    start = time.perf_counter()
    for step in range(args.steps):
        z = torch.randn(args.fresh, 100, generator=sampler)
        x, a = render_with_activation(gen, z)
        buf_x[n : n + len(z)], buf_z[n : n + len(z)], buf_a[n : n + len(z)] = to_uint8(x), z, (a - a_mean) / a_std
        n += len(z)
        idx = torch.cat([torch.arange(n - len(z), n), torch.randint(0, n, (args.batch_size - len(z),), generator=sampler)])
        xb, zb, ab = from_uint8(buf_x[idx]), buf_z[idx], buf_a[idx]
        feats = enc.hidden_features(xb)
        loss_z = F.mse_loss(enc.latent_head(feats), zb)
        loss_a = F.mse_loss(enc.activation_head(feats), ab)
        opt.zero_grad()
        (loss_z + loss_a).backward()
        opt.step()
        sched.step()
        if step % 50 == 0 or step == args.steps - 1:
            print(f"step {step:5d}  loss_z {loss_z.item():.4f}  loss_a {loss_a.item():.4f}  "
                  f"{time.perf_counter() - start:.0f} s", flush=True)
    seconds = time.perf_counter() - start

    enc.eval()
    eval_seed = 12345
    z = torch.randn(1000, 100, generator=torch.Generator().manual_seed(eval_seed))
    x, a = render_with_activation(gen, z)
    with torch.no_grad():
        x = from_uint8(to_uint8(x))
        info = {
            "r2_z": r2(enc.latent(x), z),
            "r2_a": r2(enc.activation(x), (a - a_mean) / a_std),
        }
    info.update(
        steps=args.steps, fresh=args.fresh, batch_size=args.batch_size, lr=args.lr, seed=args.seed, seconds=seconds,
        eval_seed=eval_seed, feature_dim=enc.feature_dim, out_dim=enc.out_dim, features_from=enc.features_from,
        mirror=enc.mirror, machine=machine_info(),
        params=sum(p.numel() for p in enc.parameters()),
    )
    print(info)
    with atomic_directory(args.out, overwrite=True) as tmp:
        enc.save_pretrained(tmp)
        (tmp / hub.CARD_NAME).write_text(card(info), encoding="utf-8")
    print(f"wrote {args.out} ({(args.out / hub.WEIGHTS_NAME).stat().st_size / 1e6:.2f} MB)")


if __name__ == "__main__":
    main()
