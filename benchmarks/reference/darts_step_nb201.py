"""Reference timing of one first-order DARTS step on the NAS-Bench-201 supernet (PyTorch).

This is a plain PyTorch re-implementation of the NB201 search network used by DARTS
(AutoDL-Projects / darts-pt ``TinyNetwork``), written only so that the C++ benchmarks in
this repository have an independent point of comparison. It is not part of the library.

Network (C=16, N=5, 10 classes, 3x32x32 input):
  * stem: Conv3x3(3->16) + BN;
  * three stages of N cells with 16/32/64 channels, separated by stride-2 ResNet basic
    blocks (ReLU-Conv-BN twice, shortcut AvgPool2x2 + Conv1x1);
  * head: BN, ReLU, global average pooling, Linear;
  * cells: 4 nodes, 6 edges ("1<-0", "2<-0", "2<-1", "3<-0", "3<-1", "3<-2"), each a mixed
    op over none / skip_connect / nor_conv_1x1 / nor_conv_3x3 / avg_pool_3x3 with BN
    affine=False; one 6x5 alpha tensor (1e-3 * randn) shared by all cells.

One first-order DARTS step is
  1. architecture step: forward on a validation batch, cross-entropy, backward,
     Adam on alpha (lr 3e-4, betas (0.5, 0.999), weight decay 1e-3);
  2. weight step: forward on a training batch, cross-entropy, backward, gradient-norm
     clipping at 5 on the weights only, SGD (lr 0.025, momentum 0.9, weight decay 3e-4).

Usage (Debian's python has torch):
    /usr/bin/python3 benchmarks/reference/darts_step_nb201.py [--threads 1] [--steps 5]

It runs 2 warm-up steps, times --steps steps and prints one JSON line, e.g.
    {"threads": 1, "batch": 64, "steps": 5, "median_s": ..., "min_s": ..., "torch": "..."}
"""

import argparse
import json
import statistics
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

OP_NAMES = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
EDGES = ("1<-0", "2<-0", "2<-1", "3<-0", "3<-1", "3<-2")  # alpha row order (sorted keys)
MAX_NODES = 4


class ReLUConvBN(nn.Sequential):
    def __init__(self, c_in, c_out, kernel_size, stride, padding, affine=True):
        super().__init__(
            nn.ReLU(inplace=False),
            nn.Conv2d(c_in, c_out, kernel_size, stride=stride, padding=padding, bias=False),
            nn.BatchNorm2d(c_out, affine=affine),
        )


class Zero(nn.Module):
    def forward(self, x):
        return x.mul(0.0)


def make_op(name, channels):
    """An NB201 candidate op for a cell edge (C_in == C_out, stride 1, BN affine=False)."""
    if name == "none":
        return Zero()
    if name == "skip_connect":
        return nn.Identity()
    if name == "nor_conv_1x1":
        return ReLUConvBN(channels, channels, 1, 1, 0, affine=False)
    if name == "nor_conv_3x3":
        return ReLUConvBN(channels, channels, 3, 1, 1, affine=False)
    if name == "avg_pool_3x3":
        return nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False)
    raise ValueError(f"unknown op {name!r}")


class MixedOp(nn.Module):
    def __init__(self, channels):
        super().__init__()
        self.ops = nn.ModuleList(make_op(name, channels) for name in OP_NAMES)

    def forward(self, x, weights):
        return sum(w * op(x) for w, op in zip(weights, self.ops))


class SearchCell(nn.Module):
    def __init__(self, channels):
        super().__init__()
        self.edges = nn.ModuleDict({key: MixedOp(channels) for key in EDGES})
        self.edge_index = {key: i for i, key in enumerate(EDGES)}

    def forward(self, x, arch_weights):
        nodes = [x]
        for i in range(1, MAX_NODES):
            inputs = []
            for j in range(i):
                key = f"{i}<-{j}"
                inputs.append(self.edges[key](nodes[j], arch_weights[self.edge_index[key]]))
            nodes.append(sum(inputs))
        return nodes[-1]


class ResNetBasicBlock(nn.Module):
    def __init__(self, c_in, c_out, stride):
        super().__init__()
        self.conv_a = ReLUConvBN(c_in, c_out, 3, stride, 1)
        self.conv_b = ReLUConvBN(c_out, c_out, 3, 1, 1)
        self.downsample = nn.Sequential(
            nn.AvgPool2d(kernel_size=2, stride=2, padding=0),
            nn.Conv2d(c_in, c_out, kernel_size=1, stride=1, padding=0, bias=False),
        )

    def forward(self, x):
        return self.downsample(x) + self.conv_b(self.conv_a(x))


class TinyNetworkDarts(nn.Module):
    """NB201 DARTS search network; alpha is kept outside ``parameters()``."""

    def __init__(self, channels=16, cells_per_stage=5, num_classes=10):
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(3, channels, kernel_size=3, padding=1, bias=False),
            nn.BatchNorm2d(channels),
        )
        layers = []
        c_prev = channels
        for stage, mult in enumerate((1, 2, 4)):
            c_curr = channels * mult
            if stage > 0:
                layers.append(ResNetBasicBlock(c_prev, c_curr, stride=2))
            layers.extend(SearchCell(c_curr) for _ in range(cells_per_stage))
            c_prev = c_curr
        self.cells = nn.ModuleList(layers)
        self.lastact = nn.Sequential(nn.BatchNorm2d(c_prev), nn.ReLU(inplace=True))
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(c_prev, num_classes)
        # A plain tensor attribute, not an nn.Parameter: excluded from the weight optimiser,
        # weight decay and gradient clipping.
        self.arch_parameters = 1e-3 * torch.randn(len(EDGES), len(OP_NAMES))
        self.arch_parameters.requires_grad_(True)

    def forward(self, x):
        arch_weights = F.softmax(self.arch_parameters, dim=-1)
        x = self.stem(x)
        for cell in self.cells:
            x = cell(x, arch_weights) if isinstance(cell, SearchCell) else cell(x)
        x = self.global_pooling(self.lastact(x)).flatten(1)
        return self.classifier(x)


def darts_step(model, arch_opt, weight_opt, train_batch, val_batch):
    """One first-order DARTS step: architecture step on val, then weight step on train."""
    x_val, y_val = val_batch
    arch_opt.zero_grad()
    F.cross_entropy(model(x_val), y_val).backward()
    arch_opt.step()

    x_train, y_train = train_batch
    weight_opt.zero_grad()
    model.arch_parameters.grad = None  # alpha's grad from the weight step is never used
    F.cross_entropy(model(x_train), y_train).backward()
    nn.utils.clip_grad_norm_(model.parameters(), 5.0)
    weight_opt.step()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    parser.add_argument("--steps", type=int, default=5, help="timed steps (at least 5)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed warm-up steps")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if args.steps < 5:
        parser.error("--steps must be at least 5")

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)

    model = TinyNetworkDarts(channels=16, cells_per_stage=5, num_classes=10)
    model.train()
    arch_opt = torch.optim.Adam(
        [model.arch_parameters], lr=3e-4, betas=(0.5, 0.999), weight_decay=1e-3
    )
    weight_opt = torch.optim.SGD(
        model.parameters(), lr=0.025, momentum=0.9, weight_decay=3e-4
    )

    def random_batch():
        return (
            torch.randn(args.batch, 3, 32, 32),
            torch.randint(0, 10, (args.batch,)),
        )

    train_batch, val_batch = random_batch(), random_batch()

    for _ in range(args.warmup):
        darts_step(model, arch_opt, weight_opt, train_batch, val_batch)

    times = []
    for _ in range(args.steps):
        start = time.perf_counter()
        darts_step(model, arch_opt, weight_opt, train_batch, val_batch)
        times.append(time.perf_counter() - start)

    print(json.dumps({
        "threads": args.threads,
        "batch": args.batch,
        "steps": args.steps,
        "median_s": round(statistics.median(times), 4),
        "min_s": round(min(times), 4),
        "torch": torch.__version__,
    }))


if __name__ == "__main__":
    main()
