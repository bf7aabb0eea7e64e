"""The seed project's training pipeline, re-created faithfully, as the baseline to beat.

torchvision's MNIST dataset decoding PIL images, `ToTensor()` + `Normalize()` per sample, a
DataLoader with batch 128, shuffling and default workers, the seed's optimizer and scheduler.
The model is mnist-exp's build of the same layers (identical parameter counts).

    python benchmarks/seed_pipeline.py --model v3 --epochs 20     # the seed's V3 notebook, end to end
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F
from hydra import compose, initialize_config_module
from hydra.utils import instantiate
from torch.utils.data import DataLoader
from torchvision import datasets, transforms

import mnist_exp.train  # noqa: F401  registers the config schemas
from mnist_exp.data import ensure_named

SEED_TEST_BATCH = {"v1": 2000, "v2": 2000, "v3": 128}


def seed_config(model: str):
    with initialize_config_module("mnist_exp.conf", version_base="1.3"):
        return compose("config", overrides=[f"experiment=seed_{model}"])


def seed_loaders(model: str) -> tuple[DataLoader, DataLoader]:
    root = ensure_named("mnist").parent.parent  # torchvision reads <root>/MNIST/raw
    transform = transforms.Compose([transforms.ToTensor(), transforms.Normalize((0.1307,), (0.3081,))])
    train = datasets.MNIST(root, train=True, download=False, transform=transform)
    test = datasets.MNIST(root, train=False, download=False, transform=transform)
    return (
        DataLoader(train, batch_size=128, shuffle=True),
        DataLoader(test, batch_size=SEED_TEST_BATCH[model], shuffle=False),
    )


def seed_model_and_optimizer(model: str):
    cfg = seed_config(model)
    network = instantiate(cfg.model)
    optimizer = instantiate(cfg.optimizer)(network.parameters())
    scheduler = instantiate(cfg.scheduler)(optimizer) if cfg.scheduler else None
    return network, optimizer, scheduler


def train_batch(model, optimizer, images, labels) -> None:
    model.train()
    optimizer.zero_grad()
    loss = F.cross_entropy(model(images), labels)
    loss.backward()
    optimizer.step()


def test_accuracy(model, loader, device: torch.device) -> float:
    model.eval()
    correct = 0
    with torch.no_grad():
        for images, labels in loader:
            correct += (model(images.to(device)).argmax(1).cpu() == labels).sum().item()
    return 100.0 * correct / len(loader.dataset)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", choices=sorted(SEED_TEST_BATCH), default="v3")
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu",
                        help="the seed's notebooks used CUDA when present, else the CPU")  # fmt: skip
    args = parser.parse_args()
    started = time.perf_counter()
    device = torch.device(args.device)
    torch.manual_seed(0)
    train_loader, test_loader = seed_loaders(args.model)
    model, optimizer, scheduler = seed_model_and_optimizer(args.model)
    model.to(device)
    for epoch in range(1, args.epochs + 1):
        for images, labels in train_loader:
            train_batch(model, optimizer, images.to(device), labels.to(device))
        if scheduler is not None:
            scheduler.step()
        print(f"epoch {epoch}: test acc {test_accuracy(model, test_loader, device):.2f}%", flush=True)
    print(f"wall {time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    main()
