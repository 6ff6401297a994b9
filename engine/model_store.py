"""Model folders: find the cards (bundled and user, user wins), list fill backends, cache loaded networks."""

from __future__ import annotations

import os
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from engine import paths
from engine.api import SKETCH_GUIDED_ARCHITECTURES, ModelInfo
from engine.errors import ModelFileError
from engine.model_files import ModelCard, check_weights_file, load_model, read_card, weights_path
from engine.networks import in_preferred_layout

if TYPE_CHECKING:  # torch is imported when a network is loaded, not to list the folders
    import torch
    from torch import nn


@dataclass
class StoredModel:
    """One card found on disk; ``card`` is None and ``error`` says why when it could not be read."""

    name: str
    path: Path  # the card (.json)
    source: str  # "bundled" or "user"
    card: ModelCard | None = None
    error: str | None = None


def model_file_stems(folder: str | os.PathLike[str]) -> set[str]:
    """Lower-cased stems of every model file in ``folder`` (cards and weights, also a weights file without its
    card): the names a new model cannot take there (case-insensitive file systems treat ``A`` and ``a`` alike).
    Reads no file, so a name check as the user types stays cheap."""
    folder = Path(folder)
    if not folder.is_dir():
        return set()
    return {p.stem.lower() for p in folder.iterdir() if p.suffix in (".json", ".safetensors")}


class ModelStore:
    """Scans the bundled and user model folders and keeps an LRU cache of loaded networks.

    A card that cannot be read is kept as a :class:`StoredModel` with its error, listed as unavailable,
    and never breaks the listing. Loaded networks are cached by (card path, file times, device), so
    switching between models does not reload, and a replaced file is picked up after :meth:`refresh`.
    """

    def __init__(self, bundled_dir: str | os.PathLike[str] | None = None,
                 user_dir: str | os.PathLike[str] | None = None, cache_size: int = 6) -> None:
        self._bundled_dir = Path(bundled_dir) if bundled_dir is not None else None
        self._user_dir = Path(user_dir) if user_dir is not None else None
        self.cache_size = cache_size
        self._models: dict[str, StoredModel] = {}
        self._cache: OrderedDict[tuple, tuple[nn.Module, ModelCard]] = OrderedDict()
        self.loads = 0  # how many times a network was read from disk (tests check the cache with it)
        self.refresh()

    def folders(self) -> list[tuple[str, Path]]:
        """(source, folder) in increasing priority: bundled first, then the user's folder (wins)."""
        bundled = self._bundled_dir if self._bundled_dir is not None else paths.bundled_models_dir()
        user = self._user_dir if self._user_dir is not None else paths.user_models_dir()
        return [("bundled", bundled), ("user", user)]

    def scan(self) -> list[StoredModel]:
        """Every card of both folders, bundled first, including those a user model of the same name hides."""
        found: list[StoredModel] = []
        for source, folder in self.folders():
            if not folder.is_dir():
                continue
            for card_file in sorted(folder.glob("*.json")):
                entry = StoredModel(name=card_file.stem, path=card_file, source=source)
                try:
                    entry.card = read_card(card_file)
                    if entry.card.name != card_file.stem:
                        entry.card.name = card_file.stem  # the file name is what users and companions refer to
                    check_weights_file(card_file)
                except ModelFileError as exc:
                    entry.error = str(exc)
                except OSError as exc:
                    entry.error = f"{card_file}: cannot be read ({exc})"
                except Exception as exc:  # whatever is in one file, the others stay usable
                    entry.error = f"{card_file}: cannot be used ({type(exc).__name__}: {exc})"
                found.append(entry)
        return found

    def refresh(self) -> None:
        """Rescan both folders (after a fine-tune registered a model, or files changed)."""
        self._models = {entry.name: entry for entry in self.scan()}  # later folders (user) win

    def entries(self) -> dict[str, StoredModel]:
        """Every card found, by name (after the user-wins rule)."""
        return dict(self._models)

    def get(self, name: str) -> StoredModel | None:
        return self._models.get(name)

    def card_path(self, name: str) -> Path | None:
        """The card of model ``name`` (the user's folder wins over the bundled one), or None."""
        entry = self._models.get(name) if name else None
        return entry.path if entry is not None else None

    def problems(self) -> list[str]:
        """Messages for cards that could not be used."""
        return [m.error for m in self._models.values() if m.error]

    def companion_error(self, entry: StoredModel) -> str | None:
        """Why an image model's edge companion cannot be used, or None when it can."""
        card = entry.card
        if card is None or card.stage != "image":
            return None
        if not card.companion:
            return f"{entry.path}: image model has no 'companion' edge model in its card"
        edge = self._models.get(card.companion)
        if edge is None:
            return f"{entry.path}: its edge model {card.companion!r} was not found"
        if edge.error:
            return f"{entry.path}: its edge model {card.companion!r} is unusable ({edge.error})"
        if edge.card is not None and edge.card.stage != "edge":
            return f"{entry.path}: companion {card.companion!r} is a {edge.card.stage} model, not an edge model"
        return None

    def fill_models(self) -> list[ModelInfo]:
        """Fill backends made of model files: edge-guided pairs (named by the image model) and completion models.

        Broken ones are listed with ``kind="unavailable"`` and the error as description.
        """
        infos: list[ModelInfo] = []
        for entry in sorted(self._models.values(), key=lambda m: m.name):
            card = entry.card
            if card is not None and card.stage == "edge":
                continue  # edge models are companions, not fill backends
            error = entry.error or self.companion_error(entry)
            if error or card is None:
                infos.append(ModelInfo(entry.name, "unavailable", entry.source, error or "unreadable card",
                                       str(entry.path), False))
                continue
            kind = "neural" if card.stage == "image" else "completion"
            description = card.description or f"{card.architecture} at {card.resolution} px"
            infos.append(ModelInfo(entry.name, kind, entry.source, description, str(entry.path), kind == "neural",
                                   sketch_guided=kind == "neural" and card.architecture in SKETCH_GUIDED_ARCHITECTURES))
        return infos

    def load(self, name: str, device: torch.device | str = "cpu") -> tuple[nn.Module, ModelCard]:
        """The network of model ``name`` in eval mode on ``device`` (cached; LRU of ``cache_size``)."""
        entry = self._models.get(name)
        if entry is None:
            raise ModelFileError(f"Model {name!r} not found in {' or '.join(str(f) for _, f in self.folders())}.")
        if entry.error:
            raise ModelFileError(entry.error)
        import torch

        from engine.networks.layers import strip_spectral_norm

        device = torch.device(device)
        try:
            stamp = (entry.path.stat().st_mtime_ns, weights_path(entry.path).stat().st_mtime_ns)
        except OSError as exc:
            raise ModelFileError(f"{entry.path}: cannot be read ({exc})") from None
        key = (str(entry.path), stamp, str(device))
        hit = self._cache.get(key)
        if hit is not None:
            self._cache.move_to_end(key)
            return hit
        module, card = load_model(entry.path)
        card.name = entry.name
        module = in_preferred_layout(strip_spectral_norm(module).to(device).eval())
        for parameter in module.parameters():
            parameter.requires_grad_(False)
        self.loads += 1
        self._cache[key] = (module, card)
        while len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)
        return module, card
