"""Plain request and result types of the engine: what the editor's worker, the CLI and the trainer use."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

ProgressFn = Callable[[float, str], None]
"""Called with a fraction in [0, 1] and a short stage label."""
CancelFn = Callable[[], bool]
"""Returns True when the caller wants the fill to stop; checked between stages and regions."""

DEFAULT_MODEL = "default"
"""Name that resolves to the preferred fill backend: guided texture synthesis on the best structure source
installed, i.e. the pair named ``PREFERRED_IMAGE_MODEL`` (bundled or the user's) when one is installed and
usable, else the harmonic fill."""
PREFERRED_IMAGE_MODEL = "lama-structure-image"
FALLBACK_STRUCTURE = "harmonic"
# Image architectures whose fill follows the user's sketch and the photo's known edges only, not the edge model's
# completion (they were trained without it). Named here, not on the network class, so that listing models needs
# no torch.
SKETCH_GUIDED_ARCHITECTURES = frozenset({"lama-ffc"})


@dataclass
class FillOptions:
    """Knobs of the fill pipeline; defaults are what the editor uses."""

    context_margin: int | None = None  # pixels of known context around each hole region; None = automatic
    poisson_blend: bool = False  # GLCIC-style Poisson blending of the fill into its surroundings
    device: str = "auto"  # "auto", "cpu", "cuda", "cuda:1", "mps"
    # Copied-texture strength on top of a structure source (neural image models, GLCIC, harmonic): 0 = the
    # structure alone, 1 = full detail copied from the photo; None = engine.texture.DEFAULT_STRENGTH. Other
    # fills (Telea, Navier-Stokes, PatchMatch) ignore it.
    texture: float | None = None


@dataclass
class FillRequest:
    """One fill: an RGB photo, its hole mask and an optional edge sketch by the user.

    ``image`` is H x W x 3 uint8 RGB; ``mask`` is H x W bool (True = fill this). ``sketch_drawn`` and
    ``sketch_erased`` are optional H x W bool arrays: pixels the user drew as edges (forced on) and
    pixels the user erased as "no edge" (forced off). ``model`` names a backend or model.
    """

    image: np.ndarray
    mask: np.ndarray
    sketch_drawn: np.ndarray | None = None
    sketch_erased: np.ndarray | None = None
    model: str = DEFAULT_MODEL
    options: FillOptions = field(default_factory=FillOptions)


@dataclass
class FillResult:
    """The filled photo, the edge map that guided it, per-stage timings in seconds, and notes for the user.

    ``edges`` is H x W uint8 (255 = edge) holding the known edges and the completed edges inside the
    hole, for the processed regions only (zero elsewhere); ``None`` for backends that use no edges.
    ``regions`` lists the processed crops as (x0, y0, x1, y1). ``sketch_followed`` says whether the user's edge
    sketch inside the hole guided the fill (an edge-guided network, or the texture copy along a drawn line).
    """

    image: np.ndarray
    edges: np.ndarray | None
    timings: dict[str, float]
    regions: list[tuple[int, int, int, int]] = field(default_factory=list)
    backend: str = ""
    device: str = "cpu"
    messages: list[str] = field(default_factory=list)
    sketch_followed: bool = False


@dataclass
class ModelInfo:
    """A fill backend as listed to the user (model selector, ``inpaint models``)."""

    name: str
    kind: str  # "neural" (edge-guided pair), "completion" (GLCIC), "classical"
    source: str  # "bundled", "user" or "built-in"
    description: str = ""
    path: str | None = None  # card path for model files
    uses_edges: bool = False
    structure_source: bool = False  # FillOptions.texture applies: copied texture refines its fill
    resolves_to: str | None = None  # "default" (Automatic) only: the backend a fill with it uses now
    # The fill follows the user's sketch and the photo's known edges only; Predict Edges' proposals are shown,
    # not used (the image model was trained without predicted edges).
    sketch_guided: bool = False
