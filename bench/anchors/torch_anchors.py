#!/usr/bin/python3
"""PyTorch anchors for pocketcv benchmarks (bench-only tool; tests never use it).

Measures PyTorch on this machine so that our benchmarks can print ratios measured side by
side in the same run, instead of comparing against numbers from elsewhere. Nothing is
downloaded: models are randomly initialized with a fixed seed and fed random inputs.

Run with Debian's PyTorch (torch 1.13, torchvision 0.14); `python3` on PATH may lack torch:

  /usr/bin/python3 bench/anchors/torch_anchors.py --what {latency,int8,train} \
      --model {mobilenet_v2,small_cnn} --threads N [--runs R] [--size 224] [--batch 32] \
      [--steps S] [--warmup W]

  latency  fp32 inference, batch 1: eval + jit trace + freeze + optimize_for_inference (oneDNN),
           W warm-up runs, R timed runs.
  int8     FX post-training static quantization ('onednn' engine if present, else the
           default engine), calibrated on 8 random inputs, then timed like latency.
  train    SGD(lr=0.01, momentum=0.9) + CrossEntropyLoss on random batches of B images
           with labels over 2 classes: 2 warm-up steps, then S timed steps.

Prints exactly one JSON line on stdout, e.g.
  {"what":"latency","model":"mobilenet_v2","threads":1,"median_ms":9.1,"min_ms":8.8,"runs":50}
  {"what":"train","model":"small_cnn","threads":1,"batch":32,"images_per_sec":12.3,
   "median_step_ms":2600.0,"steps":5}
Errors go to stderr with a non-zero exit status.

Models mirror src/zoo/zoo.cc (our trailing softmax is left out: it is a no-op on cost):
  mobilenet_v2  torchvision.models.mobilenet_v2, 1000 classes (2 for train).
  small_cnn     the tutorial CNN: blocks of [conv3x3 VALID + bias, ReLU, maxpool 2x2] with
                widths 32, 64, 128, 128 (4 blocks at 224, fewer if the size does not allow,
                as in our zoo), flatten, dense 512 + ReLU, dropout 0.5, dense 2.
"""
import argparse
import json
import statistics
import sys
import time

import torch
import torch.nn as nn
import torchvision

SEED = 1


def small_cnn(size, classes=2):
    layers, c, spatial = [], 3, size
    for i, width in enumerate([32, 64, 128, 128]):
        if (spatial - 2) // 2 < 1 or (i > 0 and spatial < 6):  # same rule as zoo.cc
            break
        layers += [nn.Conv2d(c, width, 3, stride=1, padding=0, bias=True), nn.ReLU(), nn.MaxPool2d(2, 2)]
        c, spatial = width, (spatial - 2) // 2
    if not layers:
        raise ValueError(f"small_cnn needs an input of at least 4x4, got {size}")
    return nn.Sequential(*layers, nn.Flatten(), nn.Linear(c * spatial * spatial, 512), nn.ReLU(),
                         nn.Dropout(0.5), nn.Linear(512, classes))


def make_model(name, size, classes):
    if name == "mobilenet_v2":
        return torchvision.models.mobilenet_v2(num_classes=classes)
    return small_cnn(size, classes)


def time_inference(model, x, warmup, runs):
    times = []
    with torch.no_grad():
        for i in range(warmup + runs):
            start = time.perf_counter()
            model(x)
            if i >= warmup:
                times.append((time.perf_counter() - start) * 1e3)
    return {"median_ms": round(statistics.median(times), 3), "min_ms": round(min(times), 3), "runs": runs}


def freeze(model, x, optimize=False):
    with torch.no_grad():
        frozen = torch.jit.freeze(torch.jit.trace(model, x))
        return torch.jit.optimize_for_inference(frozen) if optimize else frozen


def latency(args):
    # optimize_for_inference moves every conv to oneDNN. Without it, Debian's build (generic
    # reference BLAS, no MKL) sends 1x1 convs at batch 1 with 1 thread to im2col + that BLAS:
    # mobilenet_v2 takes ~115 ms instead of ~6.5 ms, which would be no fair anchor. (Linear
    # layers stay on that BLAS: ~2 ms of small_cnn's ~10 ms.)
    model = make_model(args.model, args.size, 1000 if args.model == "mobilenet_v2" else 2).eval()
    x = torch.rand(1, 3, args.size, args.size)
    return time_inference(freeze(model, x, optimize=True), x, args.warmup, args.runs)


def int8(args):
    # The plain torchvision mobilenet_v2 quantizes fine with FX (its residual adds are traced as
    # operator.add and get quantized adds), so torchvision's quantizable variant is not used.
    from torch.ao.quantization import get_default_qconfig_mapping
    from torch.ao.quantization.quantize_fx import convert_fx, prepare_fx

    engines = torch.backends.quantized.supported_engines
    engine = "onednn" if "onednn" in engines else ("fbgemm" if "fbgemm" in engines else "qnnpack")
    torch.backends.quantized.engine = engine
    model = make_model(args.model, args.size, 1000 if args.model == "mobilenet_v2" else 2).eval()
    x = torch.rand(1, 3, args.size, args.size)
    try:
        prepared = prepare_fx(model, get_default_qconfig_mapping(engine), example_inputs=(x,))
        with torch.no_grad():
            for _ in range(8):
                prepared(torch.rand(1, 3, args.size, args.size))
        quantized = freeze(convert_fx(prepared), x)
    except Exception as e:
        raise RuntimeError(f"int8 quantization with FX ({engine} engine) failed: {e}") from e
    return {"engine": engine, **time_inference(quantized, x, args.warmup, args.runs)}


def train(args):
    model = make_model(args.model, args.size, 2).train()
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    loss_fn = nn.CrossEntropyLoss()
    images = torch.rand(args.batch, 3, args.size, args.size)
    labels = torch.randint(0, 2, (args.batch,))
    times = []
    for i in range(2 + args.steps):
        start = time.perf_counter()
        opt.zero_grad()
        loss_fn(model(images), labels).backward()
        opt.step()
        if i >= 2:
            times.append((time.perf_counter() - start) * 1e3)
    return {"batch": args.batch, "images_per_sec": round(args.batch * args.steps / (sum(times) / 1e3), 3),
            "median_step_ms": round(statistics.median(times), 3), "steps": args.steps}


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--what", required=True, choices=["latency", "int8", "train"])
    p.add_argument("--model", required=True, choices=["mobilenet_v2", "small_cnn"])
    p.add_argument("--threads", required=True, type=int)
    p.add_argument("--runs", type=int, default=50)
    p.add_argument("--size", type=int, default=224)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--warmup", type=int, default=10)
    args = p.parse_args()
    for name in ["threads", "runs", "size", "batch", "steps"]:
        if getattr(args, name) < 1:
            p.error(f"--{name} must be at least 1")
    if args.warmup < 0:
        p.error("--warmup must be at least 0")
    if args.model == "mobilenet_v2" and args.size < 32:
        p.error(f"mobilenet_v2 needs an input of at least 32x32, got {args.size}")

    torch.manual_seed(SEED)
    torch.set_num_threads(args.threads)
    try:
        result = {"latency": latency, "int8": int8, "train": train}[args.what](args)
    except Exception as e:
        print(f"torch_anchors: {args.what} {args.model}: {e}", file=sys.stderr)
        return 1
    print(json.dumps({"what": args.what, "model": args.model, "threads": args.threads, **result},
                     separators=(",", ":")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
