"""Export a run as engine model files (``NAME.safetensors`` + ``NAME.json`` card) and optionally ONNX.

Weights are the EMA generators when the run kept them, else the live ones, from the latest checkpoint.
Spectral norm stays in the files (``use_spectral_norm`` as trained), so an export can be fine-tuned again;
the engine bakes it into plain weights when it loads a model (same outputs in eval mode).

Names: ``NAME-edge`` and ``NAME-image`` for EdgeConnect parts (the image card names its edge companion),
``NAME`` for a GLCIC completion model; ``NAME`` defaults to ``run.name`` or the run folder's name.
"""

from __future__ import annotations

import copy
import datetime as _dt
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from engine import paths
from engine.atomic import atomic_path
from engine.edges import best_edge_threshold
from engine.errors import EngineError
from engine.model_files import ModelCard, read_card, save_model
from engine.networks import build_network
from engine.networks.layers import strip_spectral_norm
from trainer import checkpoints
from trainer.config import STAGE_PARTS, TrainConfig, load_config
from trainer.loop import CHECKPOINT_DIR, CONFIG_FILE
from trainer.photos import shared_data_dir
from trainer.records import read_records
from trainer.stages import STAGE_CLASSES

PART_STAGE = {"edge": "edge", "image": "image", "glcic": "completion"}
ONNX_TOLERANCE = 1e-3
SHARED_DATA_LICENSE = ("Trained on the project's shared research data (BSDS500, ImageNet samples, Urban100, "
                       "Sun-Hays 80, McMaster; NVIDIA irregular masks, CC BY-NC-SA 4.0): these weights are for "
                       "research and non-commercial use only.")
OTHER_DATA_LICENSE = ("The weights inherit the terms of their training photos: check those before any "
                      "commercial use. Research and non-commercial use are safe.")


class ExportError(EngineError):
    """A run cannot be exported (no checkpoint, unreadable config, ONNX check failed)."""


@dataclass
class ExportResult:
    """What was written: model weights paths, ONNX paths and the ONNX max abs difference against torch."""

    models: list[Path] = field(default_factory=list)
    onnx: list[Path] = field(default_factory=list)
    onnx_max_diff: dict[str, float] = field(default_factory=dict)
    messages: list[str] = field(default_factory=list)


def _safe_name(text: str) -> str:
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-.")
    return name or "model"


def _uses_shared_data(config: TrainConfig) -> bool:
    shared = shared_data_dir().resolve()
    for value in (config.data.train_dir, config.data.masks.irregular_dir, config.data.boundaries_dir):
        if value:
            try:
                Path(value).resolve().relative_to(shared)
                return True
            except ValueError:
                continue
    return False


def portable_path(path: str | Path) -> str:
    """A path as a card may show it: relative to the checkout when it is beside or inside it
    (``../shared/data/train``), else only its last two parts; never this machine's absolute path."""
    p = Path(path)
    if not p.is_absolute():
        return str(path)
    root = paths.REPO_ROOT.resolve()
    resolved = p.resolve()
    for base, prefix in ((root, ""), (root.parent, "../")):
        if resolved == base or base in resolved.parents:
            return prefix + str(resolved.relative_to(base)) if resolved != base else prefix or "."
    return ".../" + "/".join(p.parts[-2:])


def portable_command(command: str) -> str:
    """``command`` with every absolute path replaced by :func:`portable_path` (``--out=/x`` forms too)."""
    return re.sub(r"(?<![\w.])/[^\s'\"=,;]+", lambda m: portable_path(m.group(0)), command)


def _data_description(config: TrainConfig, start: dict[str, Any]) -> str:
    if config.internal.photo:
        return f"internal fine-tuning on one photo ({Path(config.internal.photo).name}), crops of its known area"
    kinds = ", ".join(f"{k} {v:.2f}" for k, v in config.data.masks.probabilities.items() if v > 0)
    photos = start.get("train_images", "?")
    text = f"{portable_path(config.data.train_dir)} ({photos} photos), {config.data.size} px crops"
    if config.data.boundaries_dir:
        text += ", human boundary maps as edge targets where present"
    return text + f"; masks: {kinds}"


def _table_for(part: str, table: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The validation columns that belong to ``part`` (edge models: edge P/R; image models: fill metrics)."""
    keep = (lambda k: k.startswith("edge_") or k == "count") if part == "edge" else (
        lambda k: not k.startswith("edge_"))
    out = {bucket: {k: v for k, v in row.items() if keep(k)} for bucket, row in table.items()}
    return {b: row for b, row in out.items() if set(row) - {"count"}}


_MEASURE_NAMES = {"hole_psnr": "hole PSNR", "lowband_psnr": "low-band PSNR"}


def _operating_threshold(part: str, table: dict[str, Any] | None) -> float | None:
    """An edge model's Predict Edges threshold: the validation's best F-measure (engine.edges)."""
    if part != "edge" or not table:
        return None
    point = best_edge_threshold(table.get("all") or {})
    return point[0] if point is not None else None


def _best_measure(part: str, stage: str) -> str:
    """What ``schedule.keep_best`` ranked a part's validations by (trainer.loop.best_score)."""
    if part == "edge":
        return "edge F-measure"
    metric = STAGE_CLASSES[stage].best_metric
    return _MEASURE_NAMES.get(metric, metric)


def export_run(run_dir: str | Path, out_dir: str | Path, onnx: bool = False, name: str | None = None,
               companion: str | None = None, resolution: int | None = None, best: bool = False,
               overwrite: bool = False) -> ExportResult:
    """Write the run's generators as engine model files into ``out_dir`` (and ``.onnx`` graphs with ``onnx``).

    ``resolution`` is the working resolution the engine runs the models at; by default that of the model a
    part was fine-tuned from (``init``: a fine-tune's crop size says nothing about the scale its base runs at),
    else the training crop size. A larger value suits models trained on crops of downscaled photos (the card
    says both).
    ``best`` exports the best validated weights (``checkpoints/best.safetensors`` of a ``schedule.keep_best``
    run) instead of the latest, when the run has them. An existing model of the same name is never replaced
    without ``overwrite``.
    """
    run_dir, out_dir = Path(run_dir), Path(out_dir)
    if resolution is not None and (resolution < 16 or resolution % 4):
        raise ExportError(f"--resolution must be a multiple of 4 and at least 16, got {resolution}")
    if not (run_dir / CONFIG_FILE).is_file():
        raise ExportError(f"{run_dir}: not a training run folder (no {CONFIG_FILE})")
    latest = checkpoints.latest_checkpoint(run_dir / CHECKPOINT_DIR)
    if latest is None:
        raise ExportError(f"{run_dir}: no checkpoint to export yet")
    config = load_config(run_dir / CONFIG_FILE)
    best_file = run_dir / CHECKPOINT_DIR / checkpoints.BEST_NAME
    chosen = best_file if best and best_file.is_file() else latest
    no_best = best and chosen is latest
    state = checkpoints.load_checkpoint(chosen)
    step = int(state["step"])
    last_step = int(checkpoints.load_checkpoint(latest)["step"]) if chosen is not latest else step
    starts = read_records(run_dir, "start")
    start = starts[-1] if starts else {}
    hardware = " + ".join(dict.fromkeys(s.get("hardware", "") for s in starts if s.get("hardware"))) or "unknown"
    vals = [v for v in read_records(run_dir, "val") if v.get("step") == step] or read_records(run_dir, "val")
    table = vals[-1]["table"] if vals else {}
    val_step = vals[-1]["step"] if vals else None
    base = _safe_name(name or config.run.name or run_dir.resolve().name)
    license_note = SHARED_DATA_LICENSE if _uses_shared_data(config) else OTHER_DATA_LICENSE
    command = portable_command(config.run.command or start.get("command", ""))
    result = ExportResult()
    if no_best:
        result.messages.append(f"--best: this run kept no best weights (schedule.keep_best was off, or it "
                               f"never validated); exported the latest checkpoint, step {step}")
    parts = STAGE_PARTS[config.stage.name]
    names = {part: (base if part == "glcic" else f"{base}-{part}") for part in parts}
    writing = [names[p] for p in parts] + ([f"{base}-edge"] if "image" in parts and "edge" not in parts
                                           and not companion and "frozen_edge" in state["model"] else [])
    if not overwrite:
        for model in writing:
            existing = [f for f in (out_dir / f"{model}.safetensors", out_dir / f"{model}.json") if f.exists()]
            if existing:
                raise ExportError(f"{existing[0]} already exists; use --overwrite to replace it, or --name NAME")
    modules: dict[str, nn.Module] = {}
    for part in parts:
        part_state = state["model"]["parts"][part]
        net = getattr(config.model, part)
        module = build_network(net.architecture, net.arguments)
        module.load_state_dict(part_state.get("ema", part_state["g"]))
        broken = [key for key, tensor in module.state_dict().items()
                  if tensor.is_floating_point() and not torch.isfinite(tensor).all()]
        if broken:
            raise ExportError(f"{chosen.name}: the {part} model's weights hold NaN or infinite values ({broken[0]}"
                              f"{' and others' if len(broken) > 1 else ''}): it would fill nothing useful, so it is "
                              "not exported")
        modules[part] = module.eval()
    # An image model needs an edge companion: the run's own, the frozen one it trained on, or a named one.
    if "image" in parts and "edge" not in parts:
        if companion:
            names["edge"] = companion
        elif "frozen_edge" in state["model"]:
            net = config.model.edge
            frozen = build_network(net.architecture, net.arguments)
            frozen.load_state_dict(state["model"]["frozen_edge"])
            names["edge"] = f"{base}-edge"
            edge_card = _frozen_card(config, names["edge"], resolution)
            result.models.append(save_model(frozen, edge_card, out_dir))
            result.messages.append(f"copied the frozen edge model as {names['edge']}")
            if onnx:
                _export_onnx("edge", frozen, out_dir / f"{names['edge']}.onnx", result, config.data.size)
        else:
            result.messages.append("the image model has no edge companion: pass --companion EDGE_MODEL_NAME, "
                                   "or the engine cannot use it")
    now = _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    for part, module in modules.items():
        stage_text = f"{config.stage.name} stage" + (", EMA weights" if "ema" in state["model"]["parts"][part]
                                                     else "")
        init_model = _init_model(run_dir, config, part)
        measure = _best_measure(part, config.stage.name)
        working = resolution or (init_model or {}).get("resolution") or config.data.size
        card = ModelCard(
            name=names[part], architecture=getattr(config.model, part).architecture,
            arguments=dict(getattr(config.model, part).arguments), stage=PART_STAGE[part],
            resolution=working,
            companion=names.get("edge") if part == "image" else None,
            data=_data_description(config, start), steps=step, hardware=hardware, date=now, command=command,
            license=license_note,
            description=f"Trained with inpaint-train ({stage_text}, {step} steps) on {config.data.size} px crops"
                        + (f"; runs at a {working} px working resolution." if working != config.data.size else ".")
                        + (f" The best validation of the run's {last_step} steps ({measure}) was at "
                           f"step {step}: "
                           "these are its weights." if chosen is not latest else "")
                        + _init_note(init_model),
            validation={"step": val_step, "table": _table_for(part, table)} if table else {},
            edge_threshold=_operating_threshold(part, table))
        result.models.append(save_model(module, card, out_dir))
        if onnx:
            _export_onnx(part, module, out_dir / f"{names[part]}.onnx", result, config.data.size)
    return result


def _init_model(run_dir: Path, config: TrainConfig, part: str) -> dict[str, Any] | None:
    """Name, steps and resolution of the model ``part`` started from: as recorded when the run began, else
    (runs from before that record) read from the init file's card as it is now."""
    for start in read_records(run_dir, "start"):
        recorded = start.get("init_models", {}).get(part)
        if recorded:
            return recorded
    path = getattr(config.init, part, "")
    if not path or not Path(path).with_suffix(".json").is_file():
        return None
    card = read_card(path)
    return {"name": card.name, "steps": card.steps, "resolution": card.resolution}


def _init_note(base: dict[str, Any] | None) -> str:
    """Where a part started, for the card: the model it was initialised from and that model's own steps."""
    if not base:
        return ""
    return f" Initialised from the model {base['name']!r} ({base['steps']} steps of its own before this run)."


def _frozen_card(config: TrainConfig, name: str, resolution: int | None) -> ModelCard:
    """The card of the frozen edge model an image-on-predicted run trained on (its own card, renamed)."""
    card = read_card(config.init.edge) if config.init.edge and Path(config.init.edge).with_suffix(".json").is_file() \
        else ModelCard(name=name, architecture=config.model.edge.architecture,
                       arguments=dict(config.model.edge.arguments), stage="edge",
                       resolution=resolution or config.data.size)
    card.name = name
    card.arguments = dict(config.model.edge.arguments)
    card.resolution = resolution or card.resolution
    return card


# --- ONNX ----------------------------------------------------------------------------------------------------

class OnnxWrapper(nn.Module):
    """Tensors in, tensors out: the generator in eval mode with spectral norm baked in."""

    def __init__(self, generator: nn.Module) -> None:
        super().__init__()
        self.generator = strip_spectral_norm(copy.deepcopy(generator).eval())  # the run's module is kept as is

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        return self.generator(*inputs)


def _onnx_io(part: str) -> tuple[list[str], list[str], list[int]]:
    """Input names, output names and input channel counts of a part's graph."""
    if part == "edge":
        return ["gray", "edges", "mask"], ["edge_logits"], [1, 1, 1]
    if part == "image":
        return ["image", "edges", "mask"], ["image_out"], [3, 1, 1]
    return ["image", "mask"], ["image_out"], [3, 1]


def _sample_inputs(channels: list[int], h: int, w: int, seed: int) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    inputs = [torch.rand(1, c, h, w, generator=g) for c in channels[:-1]]
    mask = torch.zeros(1, 1, h, w)
    mask[:, :, h // 4:h // 2, w // 3:2 * w // 3] = 1.0
    return [*inputs, mask]


def _export_onnx(part: str, module: nn.Module, path: Path, result: ExportResult, size: int) -> None:
    import onnx

    if not getattr(module, "onnx_exportable", True):
        raise ExportError(f"{path.name}: {type(module).__name__} cannot be written as ONNX (the TorchScript "
                          "exporter has no operator for its FFT at opset 17); its .safetensors model file was "
                          "written and the engine runs it")
    wrapper = OnnxWrapper(module).eval()
    inputs, outputs, channels = _onnx_io(part)
    stride = getattr(module, "stride", 4)

    def fit(n: int) -> int:  # the next size the network takes (a multiple of its stride)
        return -(-n // stride) * stride

    side = fit(max(32, min(size, 128)) // 4 * 4)
    # Checked at a different, non-square size than the one traced: proves the dynamic height and width.
    h = fit(side + 8)
    w = fit(h + 12)
    check = _sample_inputs(channels, h, w, 1)
    with torch.no_grad():
        expected = wrapper(*check).numpy()
        original = module.eval()(*check).numpy()
    baked = float(np.max(np.abs(expected - original)))
    if not baked < ONNX_TOLERANCE:
        raise ExportError(f"{path.name}: baking spectral norm changed the outputs by {baked:.2e}")
    example = tuple(_sample_inputs(channels, side, side, 0))
    axes = {n: {2: "height", 3: "width"} for n in inputs + outputs}
    try:
        with atomic_path(path) as tmp, warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(wrapper, example, str(tmp), input_names=inputs, output_names=outputs,
                              dynamic_axes=axes, opset_version=17, dynamo=False)
            onnx.checker.check_model(onnx.load(str(tmp)))
    except torch.onnx.errors.OnnxExporterError as exc:  # e.g. lama-ffc's FFT: no ONNX operator at opset 17
        raise ExportError(f"{path.name}: this network cannot be written as ONNX ({exc}); its .safetensors "
                          "model file was written and the engine runs it") from None
    result.onnx.append(path)
    try:
        import onnxruntime as ort
    except ImportError:
        result.messages.append(f"{path.name}: onnxruntime not installed, output not compared with torch")
        return
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = session.run(None, {n: t.numpy() for n, t in zip(inputs, check)})[0]
    diff = float(np.max(np.abs(got - expected)))
    result.onnx_max_diff[path.stem] = diff
    if not diff < ONNX_TOLERANCE:
        path.unlink(missing_ok=True)
        raise ExportError(f"{path.name}: ONNX output differs from torch by {diff:.2e} (limit {ONNX_TOLERANCE})")
    result.messages.append(f"{path.name}: checked; onnxruntime vs torch max abs difference {diff:.2e} at {w}x{h}")
