#!/usr/bin/python3
"""Test fixtures: real PyTorch-exported CNNs for pocketcv's ONNX import tests.

Test tooling only - pocketcv itself has no Python. Needs Debian 12's python3-torch (1.13)
and python3-torchvision (0.14), installed by `scripts/setup --with-oracles`; run by
`scripts/test` before CTest:

    /usr/bin/python3 tools/pytorch/export_cnns.py OUTDIR

For each model below it writes, into OUTDIR:
    <name>.onnx            torch.onnx.export of the model in eval mode
    <name>.input.bin       the test input: float32, NCHW (1, 3, H, W), raw little-endian
    <name>.torch_out.bin   PyTorch's own output for that input: float32 (1, classes)
    <name>.json            {"name", "opset", "input_shape", "output_shape", "input_name",
                            "output_name", "torch", "torchvision", "bn_in_graph", "notes"}
and OUTDIR/manifest.json listing the models. Everything is seeded, so re-running gives the
same files; when manifest.json says the same script and torch version made the files and they
all exist, the script does nothing (pass --force to re-export).

Models (random weights; what matters is that PyTorch wrote the graph):
    mobilenet_v2       torchvision mobilenet_v2(num_classes=10), 224x224, opset 13, the
                       default export (torch folds Conv+BatchNorm itself)
    resnet18           torchvision resnet18(num_classes=10), 224x224, opset 17, exported with
                       training=PRESERVE so BatchNormalization nodes stay in the graph and the
                       reader has to fold them
    small_cnn          a tutorial CNN: (conv-bn-act-maxpool) x2, standalone BatchNorm2d,
                       AdaptiveAvgPool2d(4x4) (an AveragePool), x.view(x.size(0), -1) of a
                       spatial map, Linear-BatchNorm1d-ReLU-Dropout-Linear; 64x64, opset 13
                       (Hardswish exported as x * HardSigmoid(x)), BatchNorm kept
    small_cnn_opset17  the same network and weights at opset 17 (Hardswish as HardSwish)

Every BatchNorm gets random running statistics and affine parameters, so a folding error
shows in the outputs. Does not need the `onnx` Python package.
"""

import argparse
import hashlib
import json
import os
import sys
import warnings

import torch
import torch.nn as nn
import torchvision

SEED = 20240610


class SmallCnn(nn.Module):
    """The classic tutorial CNN, plus a few ops real exports contain."""

    def __init__(self, num_classes=10):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 16, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(16)
        self.conv2 = nn.Conv2d(16, 32, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(32)
        self.act2 = nn.Hardswish()
        self.pool = nn.MaxPool2d(2, 2)
        self.bn3 = nn.BatchNorm2d(32)  # not after a conv: stays a batch norm (scale and shift)
        self.avg = nn.AdaptiveAvgPool2d((4, 4))
        self.fc1 = nn.Linear(32 * 4 * 4, 64)
        self.bn4 = nn.BatchNorm1d(64)
        self.drop = nn.Dropout(0.3)
        self.fc2 = nn.Linear(64, num_classes)

    def forward(self, x):
        x = self.pool(torch.relu(self.bn1(self.conv1(x))))  # (N, 16, 32, 32)
        x = self.pool(self.act2(self.bn2(self.conv2(x))))  # (N, 32, 16, 16)
        x = self.avg(self.bn3(x))  # (N, 32, 4, 4)
        x = x.view(x.size(0), -1)  # (N, 512) in CHW order
        x = self.drop(torch.relu(self.bn4(self.fc1(x))))
        return self.fc2(x)


def randomize_batch_norms(model, gen):
    """Running statistics and affine parameters far from the defaults (0, 1, 1, 0)."""
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
                n = m.num_features
                m.running_mean.copy_(torch.randn(n, generator=gen) * 0.3)
                m.running_var.copy_(torch.rand(n, generator=gen) * 1.5 + 0.5)
                m.weight.copy_(torch.rand(n, generator=gen) * 1.0 + 0.5)
                m.bias.copy_(torch.randn(n, generator=gen) * 0.2)


def build(name):
    """(model, input size, opset, training mode, notes) for one fixture."""
    torch.manual_seed(SEED)
    gen = torch.Generator().manual_seed(SEED + 1)
    preserve = torch.onnx.TrainingMode.PRESERVE
    if name == "mobilenet_v2":
        m = torchvision.models.mobilenet_v2(num_classes=10)
        spec = (224, 13, torch.onnx.TrainingMode.EVAL, "default export: torch folds Conv+BN")
    elif name == "resnet18":
        m = torchvision.models.resnet18(num_classes=10)
        spec = (224, 17, preserve, "BatchNormalization kept (training=PRESERVE)")
    elif name == "small_cnn":
        m = SmallCnn(10)
        spec = (64, 13, preserve, "Hardswish as x * HardSigmoid(x); BatchNormalization kept")
    elif name == "small_cnn_opset17":
        m = SmallCnn(10)
        spec = (64, 17, preserve, "HardSwish op; BatchNormalization kept")
    else:
        raise ValueError(name)
    randomize_batch_norms(m, gen)
    m.eval()
    return (m,) + spec


MODELS = ["mobilenet_v2", "resnet18", "small_cnn", "small_cnn_opset17"]


def export(name, outdir):
    model, size, opset, training, notes = build(name)
    gen = torch.Generator().manual_seed(SEED + 2)
    # Like a normalized image: mean 0, std 1 per element.
    x = torch.randn(1, 3, size, size, generator=gen)
    with torch.no_grad():
        y = model(x)
    path = os.path.join(outdir, name + ".onnx")
    with warnings.catch_warnings():
        # PRESERVE with constant folding warns about training mode; the model is in eval mode.
        warnings.simplefilter("ignore")
        torch.onnx.export(model, x, path, opset_version=opset, training=training,
                          input_names=["input"], output_names=["logits"], do_constant_folding=True)
    x.numpy().astype("<f4").tofile(os.path.join(outdir, name + ".input.bin"))
    y.numpy().astype("<f4").tofile(os.path.join(outdir, name + ".torch_out.bin"))
    meta = {
        "name": name,
        "opset": opset,
        "input_shape": list(x.shape),
        "output_shape": list(y.shape),
        "input_name": "input",
        "output_name": "logits",
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "bn_in_graph": training == torch.onnx.TrainingMode.PRESERVE,
        "notes": notes,
    }
    with open(os.path.join(outdir, name + ".json"), "w") as f:
        json.dump(meta, f, indent=2)
    print(f"export_cnns: {name}: opset {opset}, input {tuple(x.shape)}, output {tuple(y.shape)}, "
          f"|y|max {y.abs().max().item():.3g}")


def files_of(name):
    return [name + ext for ext in (".onnx", ".input.bin", ".torch_out.bin", ".json")]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("outdir")
    ap.add_argument("--force", action="store_true", help="re-export even when up to date")
    args = ap.parse_args()
    os.makedirs(args.outdir, exist_ok=True)
    with open(os.path.abspath(__file__), "rb") as f:
        stamp = hashlib.sha256(f.read()).hexdigest() + " torch " + torch.__version__
    manifest_path = os.path.join(args.outdir, "manifest.json")
    if not args.force and os.path.exists(manifest_path):
        with open(manifest_path) as f:
            old = json.load(f)
        if old.get("stamp") == stamp and all(os.path.exists(os.path.join(args.outdir, p))
                                             for n in MODELS for p in files_of(n)):
            print(f"export_cnns: {args.outdir} is up to date")
            return 0
    torch.set_num_threads(min(2, os.cpu_count() or 1))
    for name in MODELS:
        export(name, args.outdir)
    with open(manifest_path, "w") as f:
        json.dump({"stamp": stamp, "models": MODELS}, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
