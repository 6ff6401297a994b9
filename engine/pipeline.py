"""The fill pipeline: regions -> working resolution -> edges -> image -> full resolution -> composite.

``Engine`` is what the editor's worker, the CLI and the trainer's validation use. It owns the model store
(and its cache of loaded networks), the device choice and the CPU thread cap. Each fill validates the
request, splits the mask into regions (cost grows with the mask, not the photo), runs the backend per
region at its working resolution, restores full-resolution detail, and composites so that every pixel
outside the mask comes back byte-identical. Pixels under the mask are zeroed before anything reads them.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator

import cv2
import numpy as np
import torch

from engine.allocator import keep_freed_memory
from engine.api import (
    CancelFn,
    FillRequest,
    FillResult,
    ModelInfo,
    ProgressFn,
)
from engine.backends import (
    Backend,
    WorkInput,
    automatic_info,
    create_backend,
    list_backends,
    resolve_model_name,
    sketch_only_edges,
)
from engine.composite import BOX_MARGIN, composite_into
from engine.devices import cpu_thread_cap, device_name, resolve_device, run_with_fallback, torch_threads
from engine.edges import EDGE_THRESHOLD, known_edges
from engine.errors import EngineError, FillCancelled, MaskError
from engine.model_store import ModelStore
from engine.pixels import to_uint8
from engine.regions import Region, find_regions
from engine.resolution import harmonic_upsample, shrink_mask, to_working
from engine.texture import DEFAULT_STRENGTH, TextureInput, check_strength, synthesize
from engine.texture.copier import CopyFailed, NativeCopier

STAGES = ("crop", "edges", "image", "upsample", "texture", "composite")
EMPTY_MASK_MESSAGE = "The mask is empty: nothing to fill, the image is unchanged."


def _size(array: np.ndarray) -> str:
    return f"{array.shape[1]} x {array.shape[0]}" if array.ndim >= 2 else f"shape {array.shape}"


def validate_image(image: object) -> np.ndarray:
    """H x W x 3 uint8 RGB from the request's image; other dtypes converted when unambiguous, else refused."""
    if not isinstance(image, np.ndarray):
        raise EngineError(f"The image must be a numpy array (H x W x 3 uint8 RGB), got {type(image).__name__}.")
    if image.ndim != 3 or image.shape[2] != 3:
        raise EngineError(f"The image must be H x W x 3 RGB, got shape {image.shape}. "
                          "Convert grayscale or RGBA images to RGB first (alpha passes through separately).")
    if image.shape[0] < 1 or image.shape[1] < 1:
        raise EngineError(f"The image is empty (shape {image.shape}).")
    if image.dtype == np.uint8:
        return np.ascontiguousarray(image)  # no copy unless it is a strided view
    if image.dtype == np.uint16:
        return ((image.astype(np.uint32) + 128) // 257).astype(np.uint8)
    if np.issubdtype(image.dtype, np.floating):
        if not np.isfinite(image).all() or image.min() < 0.0 or image.max() > 1.0:
            raise EngineError(f"A float image must hold values in [0, 1]; this {image.dtype} image does not.")
        return to_uint8(image)
    if np.issubdtype(image.dtype, np.integer) and image.min() >= 0 and image.max() <= 255:
        return image.astype(np.uint8)
    raise EngineError(f"Unsupported image type {image.dtype}: use uint8 RGB (0-255).")


def validate_mask(mask: object, image: np.ndarray, what: str = "mask") -> np.ndarray:
    """H x W bool matching ``image``; a mismatch is a ``MaskError`` naming both sizes."""
    if not isinstance(mask, np.ndarray):
        raise MaskError(f"The {what} must be a numpy array (H x W bool), got {type(mask).__name__}.")
    if mask.ndim == 3 and mask.shape[2] == 1:
        mask = mask[..., 0]
    if mask.ndim != 2:
        raise MaskError(f"The {what} must be a single-channel H x W array, got shape {mask.shape}.")
    if mask.shape != image.shape[:2]:
        raise MaskError(f"The {what} is {_size(mask)} pixels but the image is {_size(image)}; "
                        "they must be the same size.")
    if mask.dtype == np.bool_:
        return np.ascontiguousarray(mask)
    if np.issubdtype(mask.dtype, np.floating):
        return mask >= 0.5
    if np.issubdtype(mask.dtype, np.integer):
        return mask > 0
    raise MaskError(f"Unsupported {what} type {mask.dtype}: use bool (True = hole) or 0/255 uint8.")


class Engine:
    """Fills holes in photos. One instance per worker thread; it caches loaded models between fills."""

    def __init__(self, device: str = "auto", cpu_threads: int | None = None, default_model: str | None = None,
                 *, store: ModelStore | None = None) -> None:
        self.device = resolve_device(device)
        self.cpu_threads = cpu_thread_cap(cpu_threads)
        self.default_model = default_model
        self.store = store if store is not None else ModelStore()
        self.device_name = device_name(self.device, self.cpu_threads)
        self._copier: NativeCopier | None = None  # the texture copy, in a child process beside the network
        keep_freed_memory()  # the next fill's feature maps reuse this one's pages (engine.allocator)

    # ----- models -----
    def models(self) -> list[ModelInfo]:
        """Fill backends: "Automatic" first (``default``, with what it ``resolves_to``), then model pairs and
        completion models (user wins over bundled), then the classical fills."""
        return [automatic_info(self.store, self.default_model), *list_backends(self.store)]

    def refresh_models(self) -> None:
        """Rescan the model folders (after a fine-tune registered a model)."""
        self.store.refresh()

    def resolve_model(self, name: str | None) -> str:
        """The backend name a request's ``model`` stands for (``default`` resolved)."""
        return resolve_model_name(self.store, name, self.default_model)

    def backend(self, name: str | None) -> Backend:
        return create_backend(self.resolve_model(name), self.store)

    # ----- fills -----
    def fill(self, request: FillRequest, progress: ProgressFn | None = None,
             cancel: CancelFn | None = None) -> FillResult:
        """Fill the request's hole; known pixels come back byte-identical. ``FillCancelled`` if cancelled."""
        return self._run(request, progress, cancel, fill=True)

    def predict_edges(self, request: FillRequest, progress: ProgressFn | None = None,
                      cancel: CancelFn | None = None) -> FillResult:
        """The edge map that would guide a fill (known edges, completed edges, sketch); the image is unchanged."""
        return self._run(request, progress, cancel, fill=False)

    @contextlib.contextmanager
    def _compute(self, device: torch.device) -> Iterator[None]:
        with contextlib.ExitStack() as stack:
            if device.type == "cpu":
                stack.enter_context(torch_threads(self.cpu_threads))
            stack.enter_context(torch.inference_mode())
            yield

    def _run(self, request: FillRequest, progress: ProgressFn | None, cancel: CancelFn | None,
             fill: bool) -> FillResult:
        started = time.perf_counter()
        timings = dict.fromkeys(STAGES, 0.0)
        image = validate_image(request.image)
        mask = validate_mask(request.mask, image)
        drawn = validate_mask(request.sketch_drawn, image, "drawn-edge sketch") \
            if request.sketch_drawn is not None else None
        erased = validate_mask(request.sketch_erased, image, "erased-edge sketch") \
            if request.sketch_erased is not None else None
        options = request.options
        device = self.device if options.device in ("", "auto", None) else resolve_device(options.device)
        try:
            texture = DEFAULT_STRENGTH if options.texture is None else check_strength(options.texture)
        except ValueError as exc:
            raise EngineError(f"{exc}.") from None
        backend = self.backend(request.model)
        messages: list[str] = []
        if image.dtype != request.image.dtype:
            messages.append(f"The image was converted from {request.image.dtype} to 8-bit.")

        def step(fraction: float, label: str) -> None:
            if cancel is not None and cancel():
                raise FillCancelled("The fill was cancelled.")
            if progress is not None:
                progress(min(1.0, max(0.0, fraction)), label)

        step(0.0, "start")
        t = time.perf_counter()
        margin = options.context_margin if options.context_margin is not None else backend.context_margin
        regions = find_regions(mask, margin)
        timings["crop"] += time.perf_counter() - t
        if not regions:
            step(1.0, "done")
            timings["total"] = time.perf_counter() - started
            return FillResult(image.copy(), None, timings, [], backend.name, str(device),
                              [*messages, EMPTY_MASK_MESSAGE])
        if not fill or backend.uses_edges or drawn is not None or erased is not None:
            edges_full: np.ndarray | None = np.zeros(mask.shape, np.uint8)
        else:
            edges_full = None
        if fill and regions[0].box == (0, 0, image.shape[1], image.shape[0]) and mask.all():
            raise MaskError("The mask covers the whole image: there are no known pixels to fill from.")
        out = image.copy() if fill else image
        used_device = device
        with self._compute(device):
            for index, region in enumerate(regions):
                base = index / len(regions)
                span = 1.0 / len(regions)
                used_device = self._region(backend, region, image, mask, drawn, erased, out, edges_full,
                                           used_device, fill, options.poisson_blend, texture, timings, messages,
                                           lambda f, label, b=base, s=span: step(b + f * s, label))
        step(1.0, "done")
        timings["total"] = time.perf_counter() - started
        result_image = out if fill else image.copy()
        drawn_in_hole = drawn is not None and bool((drawn & mask).any())
        sketch_in_hole = drawn_in_hole or (erased is not None and bool((erased & mask).any()))
        # The network follows the whole sketch; the texture copy follows drawn lines (engine.texture).
        followed = fill and ((backend.uses_edges and sketch_in_hole)
                             or (backend.structure_source and texture > 0 and drawn_in_hole))
        return FillResult(result_image, edges_full, timings, [r.box for r in regions], backend.name,
                          str(used_device), messages, followed)

    def _region(self, backend: Backend, region: Region, image: np.ndarray, mask: np.ndarray,
                drawn: np.ndarray | None, erased: np.ndarray | None, out: np.ndarray,
                edges_full: np.ndarray | None, device: torch.device, fill: bool, poisson: bool, texture: float,
                timings: dict[str, float], messages: list[str], step) -> torch.device:
        """Process one region in place on ``out`` / ``edges_full``; returns the device that was used."""
        rows, cols = region.slices()
        step(0.0, "crop")
        t = time.perf_counter()
        crop_image, crop_mask = image[rows, cols], mask[rows, cols]
        resolution = backend.resolution or max(crop_mask.shape)
        working = to_working(crop_image, crop_mask, resolution)
        size = working.mask.shape
        work = WorkInput(working.image, working.mask,
                         shrink_mask(drawn[rows, cols], size) if drawn is not None else None,
                         shrink_mask(erased[rows, cols], size) if erased is not None else None)
        timings["crop"] += time.perf_counter() - t

        edges_small = None
        if backend.uses_edges or not fill or edges_full is not None:
            step(0.2, "edges")
            t = time.perf_counter()
            if fill and backend.sketch_guided:
                edges_small = sketch_only_edges(work)
            else:
                edges_small, device = run_with_fallback(lambda d: backend.complete_edges(work, d), device,
                                                        messages.append)
            timings["edges"] += time.perf_counter() - t
            if edges_full is not None:
                self._put_edges(edges_full, edges_small, region, crop_mask, drawn, erased,
                                getattr(backend, "edge_threshold", EDGE_THRESHOLD))
        if not fill:
            return device

        # From here on only the hole's box (plus the seam blend's margin) is touched, not the whole crop.
        x0, y0 = region.box[0], region.box[1]
        hx0, hy0, hx1, hy1 = region.hole_box
        inner = (max(0, hx0 - x0 - BOX_MARGIN), max(0, hy0 - y0 - BOX_MARGIN),
                 min(crop_mask.shape[1], hx1 - x0 + BOX_MARGIN), min(crop_mask.shape[0], hy1 - y0 + BOX_MARGIN))
        texture_hole = np.zeros_like(crop_mask)
        texture_hole[inner[1]:inner[3], inner[0]:inner[2]] = crop_mask[inner[1]:inner[3], inner[0]:inner[2]]
        copying = bool(backend.structure_source and texture > 0)
        if copying:  # the unguided copy needs no structure: a child process runs it while the network fills
            self._copier = self._copier or NativeCopier()
            self._copier.submit(crop_image, texture_hole, crop_mask)
        try:
            step(0.45, "image")
            t = time.perf_counter()
            guide = edges_small if backend.uses_edges else None
            # While the copy runs on one core, the network keeps to the others (two threads on two busy cores
            # took 4x as long at 512 px).
            threads = max(1, torch.get_num_threads() - 1) if copying else torch.get_num_threads()
            with torch_threads(threads):
                low, device = run_with_fallback(lambda d: backend.fill(work, guide, d), device, messages.append)
            timings["image"] += time.perf_counter() - t

            step(0.75, "upsample")
            t = time.perf_counter()
            if working.scaled:
                low = low.astype(np.float32) * np.float32(1 / 255) if low.dtype == np.uint8 else low
                known_low = working.image.astype(np.float32) * np.float32(1 / 255)
                low = np.where(working.mask[..., None], low, known_low)
                full = harmonic_upsample(crop_image, crop_mask, low, working.mask, inner)
            else:
                full = low[inner[1]:inner[3], inner[0]:inner[2]]
            timings["upsample"] += time.perf_counter() - t

            if backend.structure_source and texture > 0:
                t = time.perf_counter()
                sketch = drawn[rows, cols].astype(np.uint8) * np.uint8(255) if drawn is not None else None
                copied, native = self._collect_copy(copying, messages, lambda: step(0.75, "texture"))
                if copying and self._copier is not None:  # the child's CPU time, not in this process's
                    timings["copy_cpu"] = timings.get("copy_cpu", 0.0) + self._copier.last_cpu_s
                scale = max(crop_mask.shape) / max(size)
                full = self._texture(crop_image, crop_mask, texture_hole, full, inner, sketch, texture, scale,
                                     copied, native, messages, lambda f, label: step(0.75 + 0.15 * f, label))
                timings["texture"] += time.perf_counter() - t
        finally:
            if copying and self._copier is not None and self._copier.pending:  # cancelled or failed: stop it
                self._copier.stop()

        step(0.9, "composite")
        t = time.perf_counter()
        iy, ix = slice(inner[1], inner[3]), slice(inner[0], inner[2])
        composite_into(out[rows, cols][iy, ix], crop_image[iy, ix], full, crop_mask[iy, ix], poisson=poisson)
        timings["composite"] += time.perf_counter() - t
        return device

    def _collect_copy(self, copying: bool, messages: list[str], wait) -> tuple[np.ndarray | None, bool]:
        """(the copy made beside the network or None, whether the native copy may still be used). ``wait`` is
        called while the copy runs and raises on a cancel."""
        if not copying or self._copier is None:
            return None, True
        try:
            return self._copier.result(wait), True
        except CopyFailed as exc:
            messages.append(f"The texture copy failed ({exc}); the project's own search copied the texture.")
            return None, False

    @staticmethod
    def _texture(crop_image: np.ndarray, crop_mask: np.ndarray, hole: np.ndarray, structure_box: np.ndarray,
                 inner: tuple[int, int, int, int], crop_edges: np.ndarray | None, strength: float, scale: float,
                 copied: np.ndarray | None, native: bool, messages: list[str], step) -> np.ndarray:
        """Texture copied over the region's ``hole`` (the crop's mask within ``inner``) on the structure fill of
        the ``inner`` box; the user's whole mask in the crop is never a source. ``copied``: the copy made
        beside the structure model, if one was."""
        x0, y0, x1, y1 = inner
        structure = crop_image.astype(np.float32) * np.float32(1 / 255)
        box = structure_box.astype(np.float32)
        structure[y0:y1, x0:x1] = box * np.float32(1 / 255) if structure_box.dtype == np.uint8 else box
        edges = crop_edges.astype(np.float32) * np.float32(1 / 255) if crop_edges is not None else None
        source_edges = known_edges(crop_image, crop_mask).astype(np.float32)
        result = synthesize(TextureInput(crop_image, hole, crop_mask, structure, edges, source_edges, scale),
                            strength, step=step, copied=copied, native=native)
        if result.message and result.message not in messages:
            messages.append(result.message)
        return result.image[y0:y1, x0:x1]

    @staticmethod
    def _put_edges(edges_full: np.ndarray, edges_small: np.ndarray, region: Region, crop_mask: np.ndarray,
                   drawn: np.ndarray | None, erased: np.ndarray | None, threshold: float = EDGE_THRESHOLD) -> None:
        """Write a region's edge map (255 = edge: probability above ``threshold``, the edge model's operating
        point) at full resolution; the user's sketch is applied at full size."""
        rows, cols = region.slices()
        h, w = crop_mask.shape
        small = np.where(edges_small > threshold, 255, 0).astype(np.uint8)
        if small.shape != (h, w):
            small = cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
        binary = small >= 128
        if drawn is not None:
            binary |= drawn[rows, cols]
        if erased is not None:
            binary &= ~erased[rows, cols]
        np.bitwise_or(edges_full[rows, cols], binary.view(np.uint8) * np.uint8(255), out=edges_full[rows, cols])
