"""Fill backends behind one protocol: the edge-guided neural pair, GLCIC completion, OpenCV Telea and Navier-Stokes.

A backend works on one region already prepared by the pipeline (:class:`WorkInput`: the known image at
the backend's working resolution with the hole zeroed, the hole mask and the user's sketch) and returns
the completed edge map and the fill at that resolution. Neural backends run under ``torch.inference_mode``
with the device's autocast dtype; the pipeline handles cropping, upsampling and compositing.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Protocol

import cv2
import numpy as np

from engine.api import DEFAULT_MODEL, FALLBACK_STRUCTURE, PREFERRED_IMAGE_MODEL, SKETCH_GUIDED_ARCHITECTURES, ModelInfo
from engine.edge_lines import connect_lines
from engine.edges import DEFAULT_SIGMA, EDGE_THRESHOLD, known_edges, to_gray
from engine.errors import EngineError, ModelFileError
from engine.model_files import ModelCard
from engine.model_store import ModelStore
from engine.pixels import to_uint8
from engine.resolution import pad_amounts, pad_reflect
from engine.texture.native import load_patchmatch

if TYPE_CHECKING:  # torch is imported by the methods that run a network; listing backends needs none
    import torch



@dataclass
class WorkInput:
    """One region at the backend's working resolution (hole pixels of ``image`` are zero)."""

    image: np.ndarray  # h x w x 3 uint8
    mask: np.ndarray  # h x w bool, True = hole
    drawn: np.ndarray | None = None  # h x w bool: user-drawn edges (forced on)
    erased: np.ndarray | None = None  # h x w bool: user-erased edges (forced off)


class Backend(Protocol):
    """What the pipeline needs from a fill method."""

    name: str
    kind: str  # "neural", "completion" or "classical"
    uses_edges: bool
    resolution: int | None  # working resolution (long side); None = full resolution, no shrinking
    context_margin: int | None  # px of context its crops need; None = automatic (see engine.regions)
    structure_source: bool  # its fill is a structure that guided texture synthesis refines (engine.texture)
    sketch_guided: bool  # a fill guides it by the known edges and the sketch only, not by completed edges

    def complete_edges(self, work: WorkInput, device: torch.device) -> np.ndarray:
        """Edge map h x w float32 in [0, 1]: known edges, completed edges in the hole, sketch applied."""
        ...

    def fill(self, work: WorkInput, edges: np.ndarray | None, device: torch.device) -> np.ndarray:
        """The image at working resolution (float32 in [0, 1] or uint8), valid inside the hole."""
        ...


def apply_sketch(edges: np.ndarray, drawn: np.ndarray | None, erased: np.ndarray | None) -> np.ndarray:
    """Force ``drawn`` pixels to edge (1) and ``erased`` pixels to no edge (0); erasing wins on overlap."""
    out = edges.copy()
    if drawn is not None:
        out[drawn] = 1.0
    if erased is not None:
        out[erased] = 0.0
    return out


def sketch_only_edges(work: WorkInput, sigma: float = DEFAULT_SIGMA) -> np.ndarray:
    """Known edges of the photo plus the sketch, without a network (for backends that use no edges)."""
    edges = known_edges(work.image, work.mask, sigma).astype(np.float32)
    return apply_sketch(edges, work.drawn, work.erased)


def _tensor(array: np.ndarray, device: torch.device, pad: tuple[int, int]) -> torch.Tensor:
    """H x W (x C) numpy array, reflect-padded at bottom/right, as a float 1 x C x H x W tensor on ``device``."""
    import torch

    padded = pad_reflect(array, *pad)
    if padded.ndim == 2:
        padded = padded[..., None]
    tensor = torch.from_numpy(np.ascontiguousarray(padded)).permute(2, 0, 1)[None]
    return tensor.to(device=device, dtype=torch.float32, non_blocking=True)


def _image_tensor(image: np.ndarray, device: torch.device, pad: tuple[int, int]) -> torch.Tensor:
    return _tensor(image, device, pad).div_(255.0)


def _to_numpy(tensor: torch.Tensor, height: int, width: int) -> np.ndarray:
    """1 x C x H' x W' tensor -> H x W x C float32 numpy (padding removed)."""
    return tensor[0, :, :height, :width].float().permute(1, 2, 0).contiguous().cpu().numpy()


class EdgeConnectBackend:
    """Edge generator completes the edges in the hole; the user's sketch overrides; the image generator fills."""

    kind = "neural"
    uses_edges = True
    structure_source = True
    context_margin: int | None = None

    def __init__(self, store: ModelStore, image_model: str, sigma: float = DEFAULT_SIGMA) -> None:
        self.store = store
        self.name = image_model
        self.sigma = sigma
        entry = store.get(image_model)
        card = entry.card if entry is not None else None
        self.resolution = card.resolution if card is not None else 256
        self.edge_model = card.companion if card is not None else None
        edge_entry = store.get(self.edge_model) if self.edge_model else None
        edge_card = edge_entry.card if edge_entry is not None else None
        # Predict Edges shows an edge above the edge model's own operating point (its card), else 0.5.
        self.edge_threshold = float(edge_card.edge_threshold) if edge_card is not None and \
            edge_card.edge_threshold is not None else EDGE_THRESHOLD
        self.sketch_guided = card is not None and card.architecture in SKETCH_GUIDED_ARCHITECTURES

    def _models(self, device: torch.device) -> tuple[torch.nn.Module, torch.nn.Module, ModelCard]:
        image_net, card = self.store.load(self.name, device)
        edge_net, _ = self.store.load(card.companion or "", device)
        return edge_net, image_net, card

    def complete_edges(self, work: WorkInput, device: torch.device) -> np.ndarray:
        import torch

        from engine.devices import autocast
        from engine.networks.edgeconnect import complete_edges

        edge_net, _, _ = self._models(device)
        h, w = work.mask.shape
        pad = pad_amounts(h, w, getattr(edge_net, "stride", 4))
        known = known_edges(work.image, work.mask, self.sigma).astype(np.float32)
        gray = to_gray(work.image).astype(np.float32) / 255.0
        with torch.inference_mode(), autocast(device):
            completed = complete_edges(edge_net, _tensor(gray, device, pad), _tensor(known, device, pad),
                                       _tensor(work.mask.astype(np.float32), device, pad))
        edges = _to_numpy(completed, h, w)[..., 0]
        # Known lines that enter the hole from two sides along one course are joined across it: the edge model
        # continues them only a short way (engine.edge_lines).
        joined = connect_lines(known > 0, work.mask, to_gray(work.image))
        edges = np.where(joined, np.float32(1.0), edges).astype(np.float32)
        return apply_sketch(edges, work.drawn, work.erased)

    def fill(self, work: WorkInput, edges: np.ndarray | None, device: torch.device) -> np.ndarray:
        import torch

        from engine.devices import autocast

        _, image_net, _ = self._models(device)
        if edges is None:
            edges = self.complete_edges(work, device)
        h, w = work.mask.shape
        pad = pad_amounts(h, w, getattr(image_net, "stride", 4))
        with torch.inference_mode(), autocast(device):
            out = image_net(_image_tensor(work.image, device, pad), _tensor(edges.astype(np.float32), device, pad),
                            _tensor(work.mask.astype(np.float32), device, pad))
        return _to_numpy(out, h, w)


class CompletionBackend:
    """GLCIC completion network: fills from the masked image and the mask, no edges."""

    kind = "completion"
    uses_edges = False
    structure_source = True
    sketch_guided = False
    context_margin: int | None = None

    def __init__(self, store: ModelStore, model: str) -> None:
        self.store = store
        self.name = model
        entry = store.get(model)
        self.resolution = entry.card.resolution if entry is not None and entry.card is not None else 256

    def complete_edges(self, work: WorkInput, device: torch.device) -> np.ndarray:
        return sketch_only_edges(work)

    def fill(self, work: WorkInput, edges: np.ndarray | None, device: torch.device) -> np.ndarray:
        import torch

        from engine.devices import autocast

        net, _ = self.store.load(self.name, device)
        h, w = work.mask.shape
        pad = pad_amounts(h, w, getattr(net, "stride", 4))
        with torch.inference_mode(), autocast(device):
            out = net(_image_tensor(work.image, device, pad), _tensor(work.mask.astype(np.float32), device, pad))
        return _to_numpy(out, h, w)


class _OpenCVBackend:
    """Classical fills at full resolution with ``cv2.inpaint``; no weights, always available."""

    kind = "classical"
    uses_edges = False
    structure_source = False
    sketch_guided = False
    resolution: int | None = None
    flag = cv2.INPAINT_TELEA
    name = ""
    description = ""
    # Neighbourhood radius: 4 px (IOPaint's default). Larger radii average more pixels per step and
    # blur fine texture further while costing time quadratically; smaller ones streak on thick holes.
    radius = 4
    # These methods only read pixels within ``radius`` of the fill front, so a small crop margin suffices
    # (and keeps huge holes from dragging in a huge crop).
    context_margin: int | None = 16

    def complete_edges(self, work: WorkInput, device: torch.device) -> np.ndarray:
        return sketch_only_edges(work)

    def fill(self, work: WorkInput, edges: np.ndarray | None, device: torch.device) -> np.ndarray:
        # cv2.inpaint reads beyond a crop thinner than its neighbourhood (on a 1-row photo the same request gave
        # different pixels from call to call, and depended on the hole's content): thin crops are
        # reflect-padded to 2 x radius + 1 first.
        h, w = work.mask.shape
        side = 2 * self.radius + 1
        pad_bottom, pad_right = max(0, side - h), max(0, side - w)
        image = pad_reflect(work.image, pad_bottom, pad_right)
        mask = pad_reflect(work.mask.astype(np.uint8), pad_bottom, pad_right)
        return cv2.inpaint(np.ascontiguousarray(image), mask, self.radius, self.flag)[:h, :w]


class TeleaBackend(_OpenCVBackend):
    name = "telea"
    description = "OpenCV Telea (fast marching); classical baseline, no model needed"
    flag = cv2.INPAINT_TELEA


class NavierStokesBackend(_OpenCVBackend):
    name = "navier-stokes"
    description = "OpenCV Navier-Stokes; classical baseline, no model needed"
    flag = cv2.INPAINT_NS


class HarmonicBackend(_OpenCVBackend):
    """The smoothest fill that meets the hole's border (``engine.networks.prefill``): what the prefill image
    models refine, and the least-squared-error fill when nothing else is known."""

    name = "harmonic"
    description = ("Harmonic (membrane) fill: the smoothest fill, as structure for copied texture (--texture); "
                   "no model needed")
    context_margin: int | None = None  # as structure, its crop is also the texture's source area
    structure_source = True

    def fill(self, work: WorkInput, edges: np.ndarray | None, device: torch.device) -> np.ndarray:
        from engine.networks.prefill import harmonic_fill_array

        # The membrane only needs the hole's border: it is solved on the hole's box plus a margin, not the whole
        # crop (which a structure source gets as the texture's source area).
        return to_uint8(harmonic_fill_array(work.image.astype(np.float32) * np.float32(1 / 255), work.mask))


PATCHMATCH_SEED = 0  # fixed: the same request gives the same bytes


class PatchMatchBackend(_OpenCVBackend):
    """Unguided PatchMatch (Barnes et al. 2009) through the ``pypatchmatch`` wheel, as IOPaint ships it: copies
    texture from the crop blindly; the classical baseline of the guided synthesis."""

    name = "patchmatch"
    description = "PatchMatch (pypatchmatch, patch radius 3): copies texture from the photo, unguided"
    context_margin: int | None = None  # texture needs source area: the automatic margin
    patch_radius = 3

    @staticmethod
    def unavailable_reason() -> str:
        return load_patchmatch()[1]

    def fill(self, work: WorkInput, edges: np.ndarray | None, device: torch.device) -> np.ndarray:
        module, why = load_patchmatch()
        if module is None:
            raise EngineError(f"PatchMatch is not available: {why}.")
        h, w = work.mask.shape
        side = 2 * self.patch_radius + 1
        if h < side or w < side:  # the native search needs a whole patch inside the crop
            return TeleaBackend().fill(work, edges, device)
        module.set_random_seed(PATCHMATCH_SEED)
        out = module.inpaint(np.ascontiguousarray(work.image), work.mask.astype(np.uint8) * 255,
                             patch_size=self.patch_radius)
        return np.asarray(out, dtype=np.uint8)


CLASSICAL: dict[str, type[_OpenCVBackend]] = {"telea": TeleaBackend, "navier-stokes": NavierStokesBackend,
                                              "harmonic": HarmonicBackend, "patchmatch": PatchMatchBackend}


def classical_infos() -> list[ModelInfo]:
    """The built-in classical fills; one whose library does not load is listed as unavailable, saying why."""
    infos = []
    for cls in CLASSICAL.values():
        why = cls.unavailable_reason() if hasattr(cls, "unavailable_reason") else ""
        if why:
            infos.append(ModelInfo(cls.name, "unavailable", "built-in", f"{cls.description}: unavailable, {why}"))
        else:
            infos.append(ModelInfo(cls.name, "classical", "built-in", cls.description,
                                   structure_source=cls.structure_source))
    return infos


def list_backends(store: ModelStore) -> list[ModelInfo]:
    """Every fill backend: model-file backends (neural pairs, completion, unavailable ones) then classical.

    A model file named like a built-in fill can never be chosen (the built-in one answers to the name): it
    is listed as unavailable, saying so."""
    files = [replace(info, kind="unavailable", uses_edges=False, sketch_guided=False,
                                 description=f"{info.path}: '{info.name}' is the name of a built-in fill; "
                                             "rename the model's files to use it")
             if info.name.lower() in CLASSICAL
             else replace(info, structure_source=info.kind in ("neural", "completion"))
             for info in store.fill_models()]
    return files + classical_infos()


AUTOMATIC_DESCRIPTION = ("Texture copied from the photo on the best structure installed: the pair named "
                         f"{PREFERRED_IMAGE_MODEL.removesuffix('-image')} when one is, else the harmonic fill")


def automatic_info(store: ModelStore, default_model: str | None = None) -> ModelInfo:
    """What "Automatic" (``default``) is: its description and, in ``resolves_to``, the backend it uses now
    (with that backend's ``uses_edges``); always a structure source (texture applies)."""
    target = resolve_model_name(store, DEFAULT_MODEL, default_model)
    chosen = next((info for info in list_backends(store) if info.name == target), None)
    uses_edges = chosen is not None and chosen.uses_edges
    return ModelInfo(DEFAULT_MODEL, "automatic", "built-in", AUTOMATIC_DESCRIPTION, None, uses_edges, True, target,
                     sketch_guided=chosen is not None and chosen.sketch_guided)


def resolve_model_name(store: ModelStore, name: str | None, default_model: str | None = None) -> str:
    """The backend name a request's ``model`` stands for: ``default`` (or nothing) is ``default_model`` if
    given, else the preferred image model when it is installed and usable, else the fallback structure fill."""
    if name and name != DEFAULT_MODEL:
        return name
    if default_model:
        return default_model
    entry = store.get(PREFERRED_IMAGE_MODEL)
    if entry is not None and not entry.error and store.companion_error(entry) is None:
        return PREFERRED_IMAGE_MODEL
    return FALLBACK_STRUCTURE


def create_backend(name: str, store: ModelStore) -> Backend:
    """The backend called ``name``: a model name or a classical fill (``telea``, ``navier-stokes``,
    ``harmonic``); ``EngineError`` if unusable."""
    key = name.strip()
    if key.lower() in CLASSICAL:
        return CLASSICAL[key.lower()]()
    entry = store.get(key)
    if entry is None:
        usable = [info.name for info in list_backends(store) if info.kind != "unavailable"]
        raise EngineError(f"Unknown model {name!r}. Available: {', '.join(usable)}.")
    if entry.error:
        raise ModelFileError(entry.error)
    card = entry.card
    assert card is not None
    if card.stage == "edge":
        raise EngineError(f"{name!r} is an edge model; choose the image model that uses it as its companion.")
    if card.stage == "image":
        problem = store.companion_error(entry)
        if problem:
            raise ModelFileError(problem)
        return EdgeConnectBackend(store, key)
    return CompletionBackend(store, key)
