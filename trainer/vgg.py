"""VGG-19 feature extractor in torchvision's ``features.N`` layout, built without torchvision.

Weights are never downloaded: the user points to a local file holding a torchvision ``vgg19`` state dict
(or only its ``features.*`` part), as safetensors or, only if the file is a torch pickle, read with
``torch.load(..., weights_only=True)``. Keys are checked strictly: every ``features.*`` tensor must be
present with the right shape, and nothing but torchvision's ``classifier.*`` tensors may be extra.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from engine.errors import ModelFileError

# torchvision's configuration "E": numbers are conv widths, "M" a 2x2 max-pool.
VGG19_CONFIG = (64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M",
                512, 512, 512, 512, "M")
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
CLASSIFIER_KEYS = frozenset(f"classifier.{i}.{p}" for i in (0, 3, 6) for p in ("weight", "bias"))


def _layer_names() -> list[str]:
    """Names of the ``features`` layers by index: conv1_1, relu1_1, conv1_2, ..., pool5."""
    names, block, conv = [], 1, 1
    for item in VGG19_CONFIG:
        if item == "M":
            names.append(f"pool{block}")
            block, conv = block + 1, 1
        else:
            names += [f"conv{block}_{conv}", f"relu{block}_{conv}"]
            conv += 1
    return names


LAYER_NAMES = _layer_names()
LAYER_INDEX = {name: i for i, name in enumerate(LAYER_NAMES)}


def build_features() -> nn.Sequential:
    """The ``features`` part of torchvision's ``vgg19`` (same indices; ReLUs not in place)."""
    layers: list[nn.Module] = []
    cin = 3
    for item in VGG19_CONFIG:
        if item == "M":
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
        else:
            layers += [nn.Conv2d(cin, int(item), kernel_size=3, padding=1), nn.ReLU(inplace=False)]
            cin = int(item)
    return nn.Sequential(*layers)


def _is_safetensors(path: Path) -> bool:
    with path.open("rb") as fh:
        head = fh.read(9)
    return len(head) == 9 and int.from_bytes(head[:8], "little") > 1 and head[8:9] == b"{"


def _is_torch_pickle(path: Path) -> bool:
    with path.open("rb") as fh:
        head = fh.read(4)
    return head.startswith(b"PK\x03\x04") or head[:1] == b"\x80"


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Read a VGG-19 weights file (safetensors, or a torch pickle with ``weights_only=True``)."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise ModelFileError(f"VGG-19 weights file not found: {path}")
    try:
        if _is_safetensors(path):
            from safetensors.torch import load_file

            state = load_file(str(path), device="cpu")
        elif _is_torch_pickle(path):
            state = torch.load(str(path), map_location="cpu", weights_only=True)
        else:
            raise ModelFileError(f"{path}: not a VGG-19 weights file (expected safetensors or a torch state dict)")
    except ModelFileError:
        raise
    except Exception as exc:  # corrupt file, refused pickle content, ...
        raise ModelFileError(f"{path}: cannot read the VGG-19 weights ({type(exc).__name__}: {exc})") from None
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ModelFileError(f"{path}: expected a dict of tensors (a torchvision vgg19 state dict)")
    return state


def features_state_dict(state: dict[str, torch.Tensor], source: str = "the VGG-19 weights") -> dict[str, torch.Tensor]:
    """The ``features`` part of a torchvision ``vgg19`` state dict, keyed ``N.weight``; strict key check."""
    reference = build_features().state_dict()
    expected = {f"features.{k}": v.shape for k, v in reference.items()}
    missing = sorted(set(expected) - set(state), key=_key_order)
    unexpected = sorted(set(state) - set(expected) - CLASSIFIER_KEYS)
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"missing {', '.join(missing[:4])}{' ...' if len(missing) > 4 else ''}")
        if unexpected:
            parts.append(f"unexpected {', '.join(unexpected[:4])}{' ...' if len(unexpected) > 4 else ''}")
        raise ModelFileError(f"{source} do not match torchvision's vgg19 layout: {'; '.join(parts)}")
    for key, shape in expected.items():
        if tuple(state[key].shape) != tuple(shape):
            raise ModelFileError(f"{source} do not match torchvision's vgg19 layout: {key} has shape "
                                 f"{tuple(state[key].shape)}, expected {tuple(shape)}")
    return {key.removeprefix("features."): state[key].float() for key in expected}


def _key_order(key: str) -> tuple[int, str]:
    parts = key.split(".")
    return (int(parts[1]) if len(parts) > 2 and parts[1].isdigit() else -1, key)


class VGG19Features(nn.Module):
    """Frozen VGG-19 returning the activations of the named layers (``relu1_1`` ...) for [0, 1] RGB input.

    ImageNet mean/std normalisation happens inside. Only the layers up to the deepest requested one run.
    """

    def __init__(self, state: dict[str, torch.Tensor] | None = None,
                 layers: tuple[str, ...] = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")) -> None:
        super().__init__()
        unknown = [name for name in layers if name not in LAYER_INDEX]
        if unknown:
            raise ValueError(f"unknown VGG-19 layer(s) {unknown}; known: {', '.join(LAYER_NAMES)}")
        self.features = build_features()
        if state is not None:
            self.features.load_state_dict(state, strict=True)
        self.features.requires_grad_(False)
        self.features.eval()
        self.layers = tuple(layers)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def train(self, mode: bool = True) -> VGG19Features:
        super().train(mode)
        self.features.eval()  # no dropout/batch norm here, but keep it frozen-looking regardless
        return self

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        x = (x - self.mean) / self.std
        wanted = {LAYER_INDEX[name]: name for name in self.layers}
        last = max(wanted)
        out = {}
        for i, layer in enumerate(self.features):
            x = layer(x)
            if i in wanted:
                out[wanted[i]] = x
            if i == last:
                break
        return out


def load_vgg19(path: str | Path, layers: tuple[str, ...]) -> VGG19Features:
    """A frozen :class:`VGG19Features` with the weights from ``path`` (strict key check, clear errors)."""
    state = features_state_dict(read_state_dict(path), source=f"the VGG-19 weights in {path}")
    return VGG19Features(state, layers)
