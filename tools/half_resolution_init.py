"""Start a half-resolution LaMa-FFC structure model from a full-resolution one.

    python tools/half_resolution_init.py resources/models/lama-structure-preview-image.json --out DIR

``engine.networks.ffc`` with ``half_resolution`` drops the full-resolution octave: the 1/4 and 1/8 encoder
levels, the FFC blocks and the 1/8 and 1/4 decoder levels are the same layers, so their tensors are copied;
the pixel-unshuffle stem is new (random) and the half-resolution head starts at zero, so the result still
returns the harmonic fill until trained. The file written is an ``--init`` for ``inpaint-train``, not a model
to ship: its card says where its tensors came from and that it has not been trained as it is.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from engine.model_files import load_model, save_model  # noqa: E402
from engine.networks.ffc import FFCStructureGenerator  # noqa: E402

# Full-resolution name prefix -> half-resolution name prefix; layers not listed are new.
RENAMES = {"down.1.": "down.0.", "down.2.": "down.1.", "up.0.": "up.0.", "up.1.": "up.1.", "middle.": "middle."}


def transfer(full: FFCStructureGenerator) -> tuple[FFCStructureGenerator, list[str]]:
    """A half-resolution network with every shared layer copied from ``full``; returns it and the copied names."""
    if full.half_resolution:
        raise ValueError("the model is already a half-resolution one")
    blocks = len(full.middle)
    deep = full.middle[0].body[0].split + full.middle[0].body[0].global_from_local.out_channels
    c = deep // 4
    percent = round(100 * full.middle[0].body[0].global_from_local.out_channels / deep)
    torch.manual_seed(0)
    half = FFCStructureGenerator(c, blocks, percent, half_resolution=True)
    source = full.state_dict()
    target = half.state_dict()
    copied = []
    for name in target:
        for old, new in RENAMES.items():
            if name.startswith(new) and (old + name[len(new):]) in source:
                tensor = source[old + name[len(new):]]
                if tensor.shape == target[name].shape:
                    target[name] = tensor.clone()
                    copied.append(name)
                break
    half.load_state_dict(target)
    return half, copied


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", type=Path, help="a full-resolution lama-ffc model (.json card or .safetensors)")
    parser.add_argument("--out", type=Path, required=True, help="folder for the init model")
    parser.add_argument("--name", default="lama-structure-half-init")
    args = parser.parse_args(argv)
    full, card = load_model(args.model)
    if card.architecture != "lama-ffc":
        parser.error(f"{args.model} is a {card.architecture} model, not lama-ffc")
    half, copied = transfer(full)
    arguments = {**card.arguments, "half_resolution": True}
    new_card = dataclasses.replace(
        card, name=args.name, arguments=arguments, steps=0, validation={},
        description=(f"Init only: {len(copied)} of {len(half.state_dict())} tensors copied from '{card.name}' "
                     f"({card.steps} steps); the half-resolution stem is random and the head zero."))
    path = save_model(half, new_card, args.out)
    print(f"{path}: {len(copied)} tensors copied, stem and head new")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
