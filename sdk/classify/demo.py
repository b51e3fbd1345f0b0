"""The classification demo: Penn-Fudan person / background crops and a small CNN trained on them, exported to
ONNX with SDK classification metadata. Real data for `scripts/bench_classify.py`, the docs and the tests
without a classifier of one's own (needs torch for the CNN)."""
from pathlib import Path

import numpy as np

from ..data.datasets import load_dataset
from ..data.images import read_image
from .crops import person_crops
from .evaluate import folder_dataset
from .metadata import classify_metadata, set_classify_props
from .preprocess import ClassifyPreprocessor

DEMO_NAMES = ["background", "person"]


def demo_crops(pennfudan, root):
    """root/train and root/val, folder per class, from the Penn-Fudan train and val images."""
    root = Path(root)
    person_crops(load_dataset(Path(pennfudan) / "instances_train.json"), root / "train")
    person_crops(load_dataset(Path(pennfudan) / "instances_val.json"), root / "val")
    return root


def train_demo_classifier(train_root, out, size=64, epochs=16, seed=0):
    """A small BN-ReLU CNN trained on folder-per-class crops; exported to ONNX with SDK metadata ('stretch')."""
    import onnx
    import torch

    meta = classify_metadata(DEMO_NAMES, (size, size), "logits", mean=(0.485, 0.456, 0.406),
                             std=(0.229, 0.224, 0.225), source="bench_classify demo CNN")
    pre = ClassifyPreprocessor(meta, "stretch")
    samples = folder_dataset(train_root, DEMO_NAMES)
    x = torch.from_numpy(np.concatenate([pre(read_image(p))[0] for p, _ in samples]))
    y = torch.tensor([c for _, c in samples])
    torch.manual_seed(seed)
    layers = []
    for cin, cout in ((3, 16), (16, 32), (32, 64)):
        layers += [torch.nn.Conv2d(cin, cout, 3, 2, 1), torch.nn.BatchNorm2d(cout), torch.nn.ReLU()]
    net = torch.nn.Sequential(*layers, torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(64, 2))
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, epochs)  # settles: held-out top-1 varies less by seed
    for _ in range(epochs):
        net.train()
        for idx in torch.randperm(len(x)).split(32):
            xb = x[idx]
            xb = torch.where(torch.rand(len(idx), 1, 1, 1) < 0.5, xb, xb.flip(-1))  # horizontal flips
            opt.zero_grad()
            torch.nn.functional.cross_entropy(net(xb), y[idx]).backward()
            opt.step()
        sched.step()
    net.eval()
    torch.onnx.export(net, (torch.zeros(1, 3, size, size),), str(out), input_names=["images"],
                      output_names=["output"], opset_version=13, dynamo=False)
    onnx.save(set_classify_props(onnx.load(str(out)), meta, "stretch"), str(out))
    return Path(out)
