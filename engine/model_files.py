"""Model files: ``NAME.safetensors`` (tensors only) plus ``NAME.json`` (the card). Never unpickled."""

from __future__ import annotations

import dataclasses
import json
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from safetensors import SafetensorError

from engine.atomic import write_bytes_atomic, write_text_atomic
from engine.errors import ModelFileError
from engine.networks import ARCHITECTURES, build_network

if TYPE_CHECKING:  # torch is imported where tensors are saved or loaded, not to read a card
    import torch

CARD_VERSION = 1
MAX_ARGUMENT = 1024  # widths and depths of real networks are far below this (the paper's: 64 channels, 8 blocks)
STAGES = ("edge", "image", "completion")
# Magic numbers of formats we refuse to open as weights: pickle protocols 2-5 and torch's zip archives.
_REFUSED_MAGIC = {b"\x80\x02": "a Python pickle", b"\x80\x03": "a Python pickle", b"\x80\x04": "a Python pickle",
                  b"\x80\x05": "a Python pickle", b"PK": "a zip archive (torch.save format)"}


@dataclass
class ModelCard:
    """What a model is, how it was made and how well it did. Stored as ``NAME.json``."""

    name: str
    architecture: str
    arguments: dict[str, Any]
    stage: str
    resolution: int
    companion: str | None = None  # image models: the edge model that guides them
    data: str = ""
    steps: int = 0
    hardware: str = ""
    date: str = ""
    command: str = ""
    license: str = ""
    description: str = ""
    validation: dict[str, Any] = field(default_factory=dict)
    card_version: int = CARD_VERSION
    # Edge models: the probability above which Predict Edges shows an edge (the validation's best F-measure);
    # None = engine.edges.EDGE_THRESHOLD. Cards without it (older ones) read as None.
    edge_threshold: float | None = None

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=2, sort_keys=False) + "\n"

    @classmethod
    def from_dict(cls, raw: dict[str, Any], source: Path) -> ModelCard:
        """Validate and build a card; any problem is a ``ModelFileError`` naming ``source``."""
        if not isinstance(raw, dict):
            raise ModelFileError(f"{source}: the card is not a JSON object")
        known = {f.name for f in dataclasses.fields(cls)}
        missing = [k for k in ("name", "architecture", "arguments", "stage", "resolution") if k not in raw]
        if missing:
            raise ModelFileError(f"{source}: the card lacks {', '.join(missing)}")
        for key, value in raw.items():
            expected = _FIELD_TYPES.get(key)
            if expected is not None and (isinstance(value, bool) or not isinstance(value, expected)):
                names = " or ".join("null" if t is type(None) else _TYPE_NAMES[t] for t in expected)
                raise ModelFileError(f"{source}: {key!r} must be {names}, got {type(value).__name__}")
        card = cls(**{k: v for k, v in raw.items() if k in known})
        if card.architecture not in ARCHITECTURES:
            raise ModelFileError(f"{source}: unknown architecture {card.architecture!r} "
                                 f"(known: {', '.join(sorted(ARCHITECTURES))})")
        if card.stage not in STAGES:
            raise ModelFileError(f"{source}: unknown stage {card.stage!r} (known: {', '.join(STAGES)})")
        if not isinstance(card.arguments, dict):
            raise ModelFileError(f"{source}: 'arguments' must be an object")
        for key, value in card.arguments.items():  # checked before anything is built: 300,000 blocks took minutes
            if isinstance(value, int) and not isinstance(value, bool) and not 0 <= value <= MAX_ARGUMENT:
                raise ModelFileError(f"{source}: argument {key!r} is {value}, outside 0..{MAX_ARGUMENT}")
        if not isinstance(card.resolution, int) or card.resolution < 16:
            raise ModelFileError(f"{source}: 'resolution' must be an integer of at least 16")
        if card.edge_threshold is not None and not 0.0 < float(card.edge_threshold) < 1.0:
            raise ModelFileError(f"{source}: 'edge_threshold' must be between 0 and 1, got {card.edge_threshold}")
        return card


_TYPE_NAMES = {str: "a string", int: "an integer", float: "a number", dict: "an object"}
_FIELD_TYPES: dict[str, tuple[type, ...]] = {
    "name": (str,), "architecture": (str,), "arguments": (dict,), "stage": (str,), "resolution": (int,),
    "companion": (str, type(None)), "data": (str,), "steps": (int,), "hardware": (str,), "date": (str,),
    "command": (str,), "license": (str,), "description": (str,), "validation": (dict,), "card_version": (int,),
    "edge_threshold": (float, int, type(None)),
}


def weights_path(card_or_weights: str | os.PathLike[str]) -> Path:
    """The ``.safetensors`` path that belongs to a card or weights path."""
    return Path(card_or_weights).with_suffix(".safetensors")


def card_path(card_or_weights: str | os.PathLike[str]) -> Path:
    """The ``.json`` card path that belongs to a card or weights path."""
    return Path(card_or_weights).with_suffix(".json")


def plain_state_dict(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    """Contiguous CPU copies of a module's state, as safetensors wants them (shared storage split)."""
    return {k: v.detach().to("cpu").contiguous().clone() for k, v in module.state_dict().items()}


def save_model(module: torch.nn.Module, card: ModelCard, folder: str | os.PathLike[str]) -> Path:
    """Write ``folder/NAME.safetensors`` and ``folder/NAME.json`` atomically; return the weights path."""
    from safetensors.torch import save

    folder = Path(folder)
    target = folder / f"{card.name}.safetensors"
    write_bytes_atomic(target, save(plain_state_dict(module), metadata={"format": "pt", "name": card.name}))
    write_text_atomic(card_path(target), card.to_json())
    return target


def read_card(path: str | os.PathLike[str]) -> ModelCard:
    """Read and validate the card of a model (``path`` may name the card or the weights)."""
    source = card_path(path)
    try:
        info = source.stat()
    except FileNotFoundError:
        raise ModelFileError(f"{source}: card not found") from None
    except OSError as exc:
        raise ModelFileError(f"{source}: cannot be read ({exc.strerror or exc})") from None
    if not stat.S_ISREG(info.st_mode):  # a FIFO would block, /dev/zero would never end
        raise ModelFileError(f"{source}: not a regular file (a device, FIFO or socket); cards must be plain files")
    if info.st_size > MAX_CARD_BYTES:
        raise ModelFileError(f"{source}: the card is {info.st_size} bytes, over the limit of {MAX_CARD_BYTES}")
    try:
        with open(source, "rb") as handle:
            raw = json.loads(handle.read(MAX_CARD_BYTES + 1).decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelFileError(f"{source}: the card is not valid JSON ({exc})") from None
    except RecursionError:
        raise ModelFileError(f"{source}: the card is nested too deeply to be a model card") from None
    return ModelCard.from_dict(raw, source)


def _looks_like_safetensors(head: bytes, size: int) -> bool:
    """A safetensors file: a little-endian u64 header length that fits the file, then a JSON object."""
    if len(head) < 9:
        return False
    header_length = int.from_bytes(head[:8], "little")
    return 2 <= header_length <= size - 8 and head[8:9] == b"{"


def _check_not_pickle(path: Path) -> None:
    """Refuse pickles and torch zip archives by their magic bytes, unless the file is plainly safetensors.

    The structure is checked first: a safetensors header length such as 0x0580 starts with the same two
    bytes as a pickle of protocol 5 (80 05).
    """
    with open(path, "rb") as handle:
        head = handle.read(9)
    if _looks_like_safetensors(head, path.stat().st_size):
        return
    for magic, what in _REFUSED_MAGIC.items():
        if head.startswith(magic):
            raise ModelFileError(f"{path}: this is {what}; model files must be safetensors "
                                 "(pickles can run code and are never loaded)")


MAX_CARD_BYTES = 1_000_000  # a real card is a few kB
MAX_HEADER_BYTES = 100_000_000  # safetensors' own limit on the JSON header


def read_weights_header(path: str | os.PathLike[str]) -> dict[str, tuple[int, ...]]:
    """Tensor shapes of a weights file, from its header alone (no tensor is read), after checking its structure.

    A safetensors file is a u64 header length, a JSON header giving each tensor's dtype, shape and byte
    range, then the data: the ranges must end exactly at the end of the file, so a truncated or padded copy
    is caught here, when the models are listed, instead of when a fill loads it. Raises ``ModelFileError``.
    """
    path = weights_path(path)
    if not path.is_file():
        raise ModelFileError(f"{path}: weights file not found")
    size = path.stat().st_size
    if size == 0:
        raise ModelFileError(f"{path}: weights file is empty")
    _check_not_pickle(path)
    with open(path, "rb") as handle:
        head = handle.read(8)
        length = int.from_bytes(head, "little") if len(head) == 8 else 0
        if not 2 <= length <= min(size - 8, MAX_HEADER_BYTES):
            raise ModelFileError(f"{path}: not a safetensors file (no valid header), or truncated")
        try:
            header = json.loads(handle.read(length))
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise ModelFileError(f"{path}: the safetensors header is damaged (not JSON)") from None
        except RecursionError:
            raise ModelFileError(f"{path}: the safetensors header is damaged (nested too deeply)") from None
    if not isinstance(header, dict):
        raise ModelFileError(f"{path}: the safetensors header is damaged (not a JSON object)")
    shapes: dict[str, tuple[int, ...]] = {}
    end = 0
    try:
        for key, entry in header.items():
            if key == "__metadata__":
                continue
            shapes[key] = tuple(int(n) for n in entry["shape"])
            end = max(end, int(entry["data_offsets"][1]))
    except (TypeError, KeyError, IndexError, ValueError):
        raise ModelFileError(f"{path}: the safetensors header is damaged (bad tensor entries)") from None
    expected = 8 + length + end
    if expected != size:
        raise ModelFileError(f"{path}: the file is {size} bytes but its header describes {expected}: "
                             + ("truncated (an incomplete copy or download?)" if size < expected else
                                "extra bytes at the end (damaged)"))
    return shapes


def check_weights_file(path: str | os.PathLike[str]) -> None:
    """Raise ``ModelFileError`` if the weights file is missing, a pickle, or not a whole safetensors file."""
    read_weights_header(path)


def load_weights(path: str | os.PathLike[str]) -> dict[str, torch.Tensor]:
    """Read a safetensors file onto the CPU; refuse pickles; name the file in every error."""
    from safetensors.torch import load_file

    path = weights_path(path)
    if not path.is_file():
        raise ModelFileError(f"{path}: weights file not found")
    if path.stat().st_size == 0:
        raise ModelFileError(f"{path}: weights file is empty")
    _check_not_pickle(path)
    try:
        return load_file(str(path), device="cpu")
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise ModelFileError(f"{path}: not a readable safetensors file, truncated or corrupt ({exc})") from None


PROBE_ABOVE = 64  # cards asking for wider or deeper networks than the paper's are first built on the meta device


def load_model(path: str | os.PathLike[str]) -> tuple[torch.nn.Module, ModelCard]:
    """Rebuild the network named by the card and load its tensors; returns it in eval mode on the CPU.

    The network's tensor shapes are compared with the file's header before the weights are read. A card
    asking for an unusually big network (an argument above ``PROBE_ABOVE``) is first built on torch's
    ``meta`` device, which allocates nothing, so a bad card cannot make the program allocate gigabytes. (Not
    always: the first meta build of a spectral-norm network costs about a second of torch imports.)
    """
    import torch

    card = read_card(path)
    shapes = read_weights_header(path)
    big = any(isinstance(v, int) and not isinstance(v, bool) and v > PROBE_ABOVE for v in card.arguments.values())
    module = None
    if big:
        with torch.device("meta"):
            probe = _build(card, path)
    else:
        probe = module = _build(card, path)
    expected = {key: tuple(t.shape) for key, t in probe.state_dict().items()}
    missing = sorted(set(expected) - set(shapes))
    unexpected = sorted(set(shapes) - set(expected))
    if missing or unexpected:
        raise ModelFileError(f"{weights_path(path)}: tensors do not match {card.architecture} "
                             f"{card.arguments} (missing {missing[:3]}, unexpected {unexpected[:3]})")
    for key, shape in shapes.items():
        if shape != expected[key]:
            raise ModelFileError(f"{weights_path(path)}: shape mismatch for {key}: file has "
                                 f"{shape}, {card.architecture} {card.arguments} expects {expected[key]}")
    module = module if module is not None else _build(card, path)
    tensors = load_weights(path)
    broken = [k for k, t in tensors.items() if t.is_floating_point() and not torch.isfinite(t).all()]
    if broken:
        raise ModelFileError(f"{weights_path(path)}: the weights hold NaN or infinite values ({broken[0]}): "
                             "the model would fill nothing useful")
    module.load_state_dict(tensors)
    return module.eval(), card


def _build(card: ModelCard, path: str | os.PathLike[str]) -> torch.nn.Module:
    """The card's network; a bad argument (a negative width, a wrong type) is a ``ModelFileError`` naming it."""
    try:
        return build_network(card.architecture, card.arguments)
    except (ValueError, TypeError, RuntimeError) as exc:
        raise ModelFileError(f"{card_path(path)}: cannot build {card.architecture} from {card.arguments} "
                             f"({exc})") from None
