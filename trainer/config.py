"""Training configuration: dataclasses with the papers' defaults, read from TOML, overridden by ``key=value``.

Every setting has one dotted name (``optim.lr``, ``model.edge.arguments.base_channels``). A run folder holds
its own ``config.toml``, written by :func:`to_toml`, so a run describes itself and ``--resume`` reads it back.
Validation names the bad key and value; unknown keys get a "did you mean".
"""

from __future__ import annotations

import dataclasses
import difflib
import inspect
import math
import tomllib
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.errors import EngineError
from engine.networks import ARCHITECTURES
from trainer.masks import MaskConfig, MaskConfigError

STAGES = ("edge", "image", "structure", "image-on-predicted", "joint", "glcic", "completion")
ADVERSARIAL_KINDS = ("nsgan", "lsgan", "hinge")
AMP_MODES = ("auto", "on", "off")
LR_SCHEDULES = ("constant", "cosine")
# The architectures each part may use (the engine calls every image architecture as (image, edges, mask),
# every completion architecture, the "glcic" part, as (image, mask)).
COMPLETION_ARCHITECTURES = ("glcic", "pconv-unet", "deepgin", "context-encoder-ms")
STAGE_ARCHITECTURES: dict[str, tuple[str, ...]] = {"edge": ("edgeconnect-edge", "lama-ffc-edge"),
                                                   "image": ("edgeconnect-image", "lama-ffc"),
                                                   "glcic": COMPLETION_ARCHITECTURES}
# Completion architectures whose adversarial loss uses the same PatchGAN at two scales (full and half size).
MULTISCALE_DISCRIMINATOR_ARCHITECTURES = ("context-encoder-ms",)


STAGE_PARTS = {"edge": ("edge",), "image": ("image",), "structure": ("image",), "image-on-predicted": ("image",),
               "joint": ("edge", "image"), "glcic": ("glcic",),
               "completion": ("glcic",)}  # the networks each stage trains (model.glcic: the completion network)


class ConfigError(EngineError):
    """A configuration key or value is wrong; the message names it."""


@dataclass
class NetworkConfig:
    """One network: a registered architecture name and its constructor arguments."""

    architecture: str
    arguments: dict[str, Any]


def _edge_net() -> NetworkConfig:
    return NetworkConfig("edgeconnect-edge", {"base_channels": 64, "residual_blocks": 8, "use_spectral_norm": True})


def _image_net() -> NetworkConfig:
    return NetworkConfig("edgeconnect-image",
                         {"base_channels": 64, "residual_blocks": 8, "use_spectral_norm": False})


def _glcic_net() -> NetworkConfig:
    return NetworkConfig("glcic", {"base_channels": 64})


@dataclass
class ModelConfig:
    """The generators per part, and the discriminators' width (PatchGAN with spectral norm). ``glcic`` is the
    completion network (image and mask in, no edges) of the ``glcic`` and ``completion`` stages: GLCIC's own or
    another completion architecture (``pconv-unet``, ``deepgin``, ``context-encoder-ms``)."""

    edge: NetworkConfig = field(default_factory=_edge_net)
    image: NetworkConfig = field(default_factory=_image_net)
    glcic: NetworkConfig = field(default_factory=_glcic_net)
    discriminator_channels: int = 64
    discriminator_spectral_norm: bool = True


@dataclass
class DataConfig:
    """Where the photos are and how training samples are made from them."""

    train_dir: str = ""
    val_dir: str = ""  # fixed validation photos; empty = a held-out slice of train_dir
    size: int = 256
    edge_sigma: float = 2.0
    edge_sigma_range: list[float] = field(default_factory=list)  # [low, high]: random sigma per sample
    boundaries_dir: str = ""  # human boundary maps used as edge targets where present
    # image stages: share of samples whose guiding edges inside the hole are removed (of the rest, half lose
    # them in random 16 px cells), so the image model also fills well without a sketch or with a partial one
    edge_dropout: float = 0.0
    augment: bool = True
    # training crops: each photo's short side is scaled to a random length in [size, max_scale * size] first, so
    # a crop shows between the whole photo and a 1 / max_scale part of it
    max_scale: float = 1.5
    val_images: int = 16
    # NVIDIA-style irregular masks for the validation buckets: "auto" = masks.irregular_dir, else the shared
    # NVIDIA set when present; "" = none (rectangle and free-form buckets only); or a folder.
    val_irregular_dir: str = "auto"
    masks: MaskConfig = field(default_factory=MaskConfig)


@dataclass
class OptimConfig:
    """Adam with EdgeConnect's betas; the discriminators learn at ``d_lr_ratio`` times ``lr``."""

    lr: float = 1e-4
    # "constant", or "cosine": from lr at step 0 down to lr_final at optim.steps (an anneal at the end of a run)
    lr_schedule: str = "constant"
    lr_final: float = 0.0
    # steps over which the rate rises linearly to the schedule's from lr / warmup_steps: rebuilds Adam's moments
    # before the full rate, e.g. on a run started from a model file (--init), whose optimiser state is new
    warmup_steps: int = 0
    betas: list[float] = field(default_factory=lambda: [0.0, 0.9])
    d_lr_ratio: float = 0.1
    batch_size: int = 8
    steps: int = 10000
    ema_decay: float = 0.999  # 0 = no EMA of the generators
    amp: str = "auto"  # bf16 autocast; auto = where the device has native bf16 (engine.devices.bf16_autocast)
    grad_clip: float = 0.0  # 0 = no clipping
    seed: int = 0
    workers: int = -1  # data-loading processes; -1 = automatic

    def lr_at(self, step: int) -> float:
        """The generators' learning rate for the 0-based ``step`` (a function of the step, so resumes agree)."""
        warm = min(1.0, (step + 1) / self.warmup_steps) if self.warmup_steps > 0 else 1.0
        if self.lr_schedule == "constant":
            return warm * self.lr
        progress = min(max(step / self.steps, 0.0), 1.0)
        cosine = self.lr_final + (self.lr - self.lr_final) * 0.5 * (1.0 + math.cos(math.pi * progress))
        return warm * cosine


@dataclass
class LossConfig:
    """Loss weights (EdgeConnect's defaults) and kinds."""

    l1: float = 1.0
    feature_matching: float = 10.0
    adversarial: float = 0.1  # image generator
    edge_adversarial: float = 1.0  # edge generator (EdgeConnect weighs it 1)
    edge_bce: float = 0.0  # edge generator: binary cross-entropy against the truth's edges in the hole
    edge_dice: float = 0.0  # edge generator: 1 - Dice overlap with the truth's edges in the hole (crisp lines)
    style: float = 250.0
    perceptual: float = 0.1
    tv: float = 0.0
    adversarial_kind: str = "nsgan"
    hole_l1: float = 1.0
    valid_l1: float = 1.0
    vgg_weights: str = ""  # local VGG-19 file (torchvision layout); empty = no perceptual/style losses
    glcic_adversarial: float = 0.0004  # GLCIC's alpha
    ms_ssim: float = 0.0  # image part: weight of 1 - MS-SSIM of the composite against the truth (Zhao et al.)
    local_texture: float = 0.0  # completion stage: L1 between the image gradients of fill and truth in the hole
    low_band: float = 0.0  # image and completion parts: L1 of the blurred (sigma 2 px) composite against the truth


@dataclass
class ScheduleConfig:
    """How often things happen, in steps."""

    log_every: int = 10
    validate_every: int = 500
    checkpoint_every: int = 500
    keep_last: int = 3
    keep_best: bool = False  # also keep the best validated weights (trainer.loop.best_score); export uses them
    sample_grids: bool = True
    sample_count: int = 4
    # Stop (validate, checkpoint) once the training steps have used this many process CPU-seconds, all threads
    # counted, across resumes; 0 = no limit. Gives architectures the same compute in a comparison.
    cpu_budget_s: float = 0.0


@dataclass
class StageConfig:
    """What is trained. GLCIC: completion-only steps, then discriminator-only steps, then joint (the rest)."""

    name: str = "edge"
    glcic_completion_steps: int = -1  # -1 = 18% of the steps (90k of the paper's 500k)
    glcic_discriminator_steps: int = -1  # -1 = 2% of the steps (10k of 500k)
    glcic_local_size: int = 0  # side of the local discriminator's patch; 0 = half the training size

    def glcic_phases(self, steps: int) -> tuple[int, int]:
        """End steps of phase 1 and phase 2 (phase 3 runs to ``steps``)."""
        completion = self.glcic_completion_steps if self.glcic_completion_steps >= 0 else round(0.18 * steps)
        discriminator = (self.glcic_discriminator_steps if self.glcic_discriminator_steps >= 0
                         else round(0.02 * steps))
        return completion, completion + discriminator


@dataclass
class InitConfig:
    """Model files to start from (fine-tuning); the image-on-predicted stage's frozen edge model is ``edge``."""

    edge: str = ""
    image: str = ""
    glcic: str = ""


@dataclass
class InternalConfig:
    """Internal fine-tuning on one photo: crops of its known area, with holes that avoid the user's mask."""

    photo: str = ""
    mask: str = ""
    # [low, high]: scales of the training crops (crop px per photo px; 1 = the photo's own resolution), e.g.
    # the scales the engine fills the user's hole at; empty = every scale from 1 down to "the short side fits".
    scale: list[float] = field(default_factory=list)


@dataclass
class RunConfig:
    """Where the run lives and what runs it."""

    out: str = ""
    resume: bool = False
    device: str = "auto"  # auto, cpu, cuda, cuda:N, mps
    name: str = ""  # base name of exported models; empty = the run folder's name
    command: str = ""  # the command line that started the run (recorded in model cards)


@dataclass
class TrainConfig:
    """Everything a run needs."""

    run: RunConfig = field(default_factory=RunConfig)
    stage: StageConfig = field(default_factory=StageConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    losses: LossConfig = field(default_factory=LossConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    init: InitConfig = field(default_factory=InitConfig)
    internal: InternalConfig = field(default_factory=InternalConfig)


# --- reading -----------------------------------------------------------------------------------------------

def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def all_keys(cls: type = TrainConfig, prefix: str = "") -> list[str]:
    """Every dotted key a config accepts (free-form argument tables excluded)."""
    keys = []
    for name, hint in _hints(cls).items():
        dotted = f"{prefix}{name}"
        keys.append(dotted)
        if dataclasses.is_dataclass(hint):
            keys.extend(all_keys(hint, dotted + "."))
    return keys


def _unknown(key: str, candidates: list[str]) -> ConfigError:
    """An unknown-key error suggesting the closest key of the same table, else of the whole config."""
    section, _, leaf = key.rpartition(".")
    siblings = [c for c in candidates if c.rpartition(".")[0] == section]
    close = [f"{section}.{m}" if section else m
             for m in difflib.get_close_matches(leaf, [c.rpartition(".")[2] for c in siblings], n=1, cutoff=0.6)]
    close = close or difflib.get_close_matches(key, candidates, n=1, cutoff=0.6)
    hint = f" (did you mean '{close[0]}'?)" if close else ""
    return ConfigError(f"unknown config key '{key}'{hint}")


def _coerce(value: Any, hint: Any, key: str) -> Any:
    """Check ``value`` against the annotation ``hint``; ints are accepted where floats are wanted."""
    origin = typing.get_origin(hint)
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{key}: expected true or false, got {value!r}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{key}: expected an integer, got {value!r}")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{key}: expected a number, got {value!r}")
        if not math.isfinite(value):
            raise ConfigError(f"{key}: expected a finite number, got {value!r}")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise ConfigError(f"{key}: expected a string, got {value!r}")
        return value
    if origin is list:
        if not isinstance(value, list):
            raise ConfigError(f"{key}: expected a list, got {value!r}")
        (item,) = typing.get_args(hint)
        return [_coerce(v, item, f"{key}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: expected a table, got {value!r}")
        return dict(value)
    raise ConfigError(f"{key}: unsupported setting type {hint!r}")


def _merge(current: Any, raw: dict[str, Any], prefix: str) -> Any:
    """Apply the keys of ``raw`` onto a copy of the dataclass ``current``."""
    hints = _hints(type(current))
    merged = dataclasses.replace(current)
    if isinstance(current, NetworkConfig) and raw.get("architecture", current.architecture) != current.architecture:
        merged.arguments = {}  # another architecture: the old one's arguments do not apply (its defaults do)
        current = merged
    for key, value in raw.items():
        if key not in hints:
            raise _unknown(prefix + key, all_keys(TrainConfig))
        hint = hints[key]
        if dataclasses.is_dataclass(hint):
            if not isinstance(value, dict):
                raise ConfigError(f"{prefix}{key}: expected a table, got {value!r}")
            setattr(merged, key, _merge(getattr(current, key), value, prefix + key + "."))
        elif typing.get_origin(hint) is dict and key == "arguments":
            args = dict(getattr(current, key))
            if not isinstance(value, dict):
                raise ConfigError(f"{prefix}{key}: expected a table, got {value!r}")
            args.update(value)
            setattr(merged, key, args)
        else:
            setattr(merged, key, _coerce(value, hint, prefix + key))
    return merged


def config_from_dict(raw: dict[str, Any], base: TrainConfig | None = None) -> TrainConfig:
    """Merge a (TOML-shaped) dict onto ``base`` (defaults if None); not yet validated."""
    return _merge(base or TrainConfig(), raw, "")


def read_toml(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read the config file ({exc})") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc})") from None


def resolve_config_path(name: str) -> Path:
    """A config file path, or the name of a built-in one (``trainer/configs/NAME.toml``, e.g. ``structure``)."""
    builtin = Path(__file__).resolve().parent / "configs" / f"{name}.toml"
    if not Path(name).exists() and "/" not in name and builtin.is_file():
        return builtin
    return Path(name)


def load_config(path: str | Path, base: TrainConfig | None = None) -> TrainConfig:
    """Read a TOML config file onto ``base`` (defaults if None)."""
    return config_from_dict(read_toml(path), base)


def parse_value(text: str) -> Any:
    """A ``--set`` value: TOML syntax (``3``, ``1e-4``, ``true``, ``[0.5, 0.9]``, ``"x"``), else a bare string."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def override_dict(assignments: list[str]) -> dict[str, Any]:
    """``["optim.lr=1e-4", ...]`` as a nested dict."""
    nested: dict[str, Any] = {}
    for item in assignments:
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ConfigError(f"--set {item!r}: expected key=value, e.g. optim.lr=1e-4")
        parts = key.split(".")
        node = nested
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"--set {item!r}: {part} is set twice")
        node[parts[-1]] = parse_value(text.strip())
    return nested


def apply_overrides(config: TrainConfig, assignments: list[str]) -> TrainConfig:
    """Apply ``key=value`` overrides to ``config`` (returns a new config)."""
    return config_from_dict(override_dict(assignments), config)


# --- validation ----------------------------------------------------------------------------------------------

def _check_arguments(key: str, net: NetworkConfig, allowed: tuple[str, ...]) -> None:
    if net.architecture not in allowed:
        raise ConfigError(f"{key}.architecture: must be one of {', '.join(allowed)} for this part, "
                          f"got {net.architecture!r}")
    cls = ARCHITECTURES[net.architecture]
    params = {n: p for n, p in inspect.signature(cls.__init__).parameters.items() if n != "self"}
    for name, value in net.arguments.items():
        if name not in params:
            close = difflib.get_close_matches(name, list(params), n=1, cutoff=0.6)
            hint = f" (did you mean '{key}.arguments.{close[0]}'?)" if close else ""
            raise ConfigError(f"unknown config key '{key}.arguments.{name}'{hint}")
        default = params[name].default
        if isinstance(default, bool):
            if not isinstance(value, bool):
                raise ConfigError(f"{key}.arguments.{name}: expected true or false, got {value!r}")
        elif isinstance(default, int) and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise ConfigError(f"{key}.arguments.{name}: expected a positive integer, got {value!r}")


def _positive(key: str, value: float, allow_zero: bool = False) -> None:
    if value < 0 or (value == 0 and not allow_zero):
        what = "zero or more" if allow_zero else "more than zero"
        raise ConfigError(f"{key}: must be {what}, got {value!r}")


def _choice(key: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        close = difflib.get_close_matches(value, choices, n=1, cutoff=0.5)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        raise ConfigError(f"{key}: {value!r} is not one of {', '.join(choices)}{hint}")


def validate(config: TrainConfig, need_data: bool = True) -> TrainConfig:
    """Check every value; raise :class:`ConfigError` naming the first bad one. Returns ``config``."""
    _choice("stage.name", config.stage.name, STAGES)
    _choice("optim.amp", config.optim.amp, AMP_MODES)
    _choice("losses.adversarial_kind", config.losses.adversarial_kind, ADVERSARIAL_KINDS)
    for part in ("edge", "image", "glcic"):
        _check_arguments(f"model.{part}", getattr(config.model, part), STAGE_ARCHITECTURES[part])
    _positive("model.discriminator_channels", config.model.discriminator_channels)
    if config.data.size < 16 or config.data.size % 4:
        raise ConfigError(f"data.size: must be a multiple of 4 of at least 16, got {config.data.size}")
    _positive("data.edge_sigma", config.data.edge_sigma, allow_zero=True)
    sigmas = config.data.edge_sigma_range
    if sigmas and (len(sigmas) != 2 or not 0 <= sigmas[0] <= sigmas[1]):
        raise ConfigError(f"data.edge_sigma_range: expected [low, high] with 0 <= low <= high, "
                          f"got {config.data.edge_sigma_range}")
    _positive("data.val_images", config.data.val_images, allow_zero=True)
    if not config.data.max_scale >= 1:
        raise ConfigError(f"data.max_scale: must be at least 1, got {config.data.max_scale}")
    if not 0 <= config.data.edge_dropout <= 1:
        raise ConfigError(f"data.edge_dropout: must be between 0 and 1, got {config.data.edge_dropout}")
    try:
        config.data.masks.validate("data.masks.")
    except MaskConfigError as exc:
        raise ConfigError(str(exc)) from None
    _positive("optim.lr", config.optim.lr)
    _choice("optim.lr_schedule", config.optim.lr_schedule, LR_SCHEDULES)
    if not 0 <= config.optim.lr_final <= config.optim.lr:
        raise ConfigError(f"optim.lr_final: must be between 0 and optim.lr ({config.optim.lr}), "
                          f"got {config.optim.lr_final!r}")
    if not 0 <= config.optim.warmup_steps < max(config.optim.steps, 1):
        raise ConfigError(f"optim.warmup_steps: must be 0 (off) or more and fewer than optim.steps "
                          f"({config.optim.steps}), got {config.optim.warmup_steps!r}")
    if len(config.optim.betas) != 2 or not all(0 <= b < 1 for b in config.optim.betas):
        raise ConfigError(f"optim.betas: expected two numbers in [0, 1), got {config.optim.betas}")
    _positive("optim.d_lr_ratio", config.optim.d_lr_ratio)
    _positive("optim.batch_size", config.optim.batch_size)
    _positive("optim.steps", config.optim.steps)
    if not 0 <= config.optim.ema_decay < 1:
        raise ConfigError(f"optim.ema_decay: must be in [0, 1) (0 = off), got {config.optim.ema_decay}")
    _positive("optim.grad_clip", config.optim.grad_clip, allow_zero=True)
    if config.optim.workers < -1:
        raise ConfigError(f"optim.workers: must be -1 (automatic) or more, got {config.optim.workers}")
    for name in ("l1", "feature_matching", "adversarial", "edge_adversarial", "edge_bce", "edge_dice", "style",
                 "perceptual", "tv", "hole_l1", "valid_l1", "glcic_adversarial", "ms_ssim", "local_texture",
                 "low_band"):
        _positive(f"losses.{name}", getattr(config.losses, name), allow_zero=True)
    edge_terms = (config.losses.edge_adversarial, config.losses.feature_matching, config.losses.edge_bce,
                  config.losses.edge_dice)
    if config.stage.name in ("edge", "joint") and not any(edge_terms):
        raise ConfigError("the edge generator has no loss: set losses.edge_adversarial, losses.feature_matching, "
                          "losses.edge_bce or losses.edge_dice above zero")
    for name in ("log_every", "validate_every", "checkpoint_every"):
        _positive(f"schedule.{name}", getattr(config.schedule, name))
    _positive("schedule.keep_last", config.schedule.keep_last)
    _positive("schedule.sample_count", config.schedule.sample_count)
    if not math.isfinite(config.schedule.cpu_budget_s) or config.schedule.cpu_budget_s < 0:
        raise ConfigError(f"schedule.cpu_budget_s: must be 0 (no limit) or a positive number of CPU-seconds, "
                          f"got {config.schedule.cpu_budget_s}")
    if config.stage.name == "glcic":
        _, p2 = config.stage.glcic_phases(config.optim.steps)
        if p2 > config.optim.steps:
            raise ConfigError(f"stage.glcic_completion_steps + stage.glcic_discriminator_steps ({p2}) exceed "
                              f"optim.steps ({config.optim.steps})")
        local = config.stage.glcic_local_size
        if local and (local % 4 or not 8 <= local <= config.data.size):
            raise ConfigError(f"stage.glcic_local_size: must be a multiple of 4 between 8 and data.size, got {local}")
    if (config.stage.name == "completion" and config.model.glcic.architecture in MULTISCALE_DISCRIMINATOR_ARCHITECTURES
            and (config.losses.adversarial or config.losses.feature_matching) and config.data.size < 48):
        raise ConfigError(f"data.size: {config.model.glcic.architecture}'s two-scale PatchGAN needs crops of at "
                          f"least 48 px (24 at half size), got {config.data.size}")
    if config.stage.name == "image-on-predicted" and not config.init.edge:
        raise ConfigError("init.edge: the image-on-predicted stage needs a trained edge model (--init EDGE_MODEL)")
    if config.stage.name != "glcic" and config.data.size < 24:
        raise ConfigError(f"data.size: the PatchGAN discriminators need crops of at least 24 px, "
                          f"got {config.data.size}")
    used = set(STAGE_PARTS.get(config.stage.name, ())) | ({"edge"} if config.stage.name == "image-on-predicted"
                                                          else set())
    for name in ("edge", "image", "glcic"):
        path = getattr(config.init, name)
        if path and name not in used:
            raise ConfigError(f"init.{name}: the {config.stage.name} stage does not use a {name} model, so "
                              f"{Path(path).name} would be ignored (it trains: {', '.join(sorted(used))})")
        if path and not config.run.resume and not Path(path).with_suffix(".json").is_file():
            raise ConfigError(f"init.{name}: model card not found: {Path(path).with_suffix('.json')}")
    if config.losses.vgg_weights and not Path(config.losses.vgg_weights).is_file():
        raise ConfigError(f"losses.vgg_weights: file not found: {config.losses.vgg_weights}")
    if not config.run.out:
        raise ConfigError("run.out: no run folder given (--out RUN_DIR)")
    scale = config.internal.scale
    if scale and not (len(scale) == 2 and 0 < scale[0] <= scale[1] <= 4):
        raise ConfigError(f"internal.scale: expected [low, high] with 0 < low <= high <= 4, got {scale}")
    if config.internal.photo or config.internal.mask:
        for name in ("photo", "mask"):
            value = getattr(config.internal, name)
            if not value:
                raise ConfigError(f"internal.{name}: internal fine-tuning needs both a photo and its mask")
            if not Path(value).is_file():
                raise ConfigError(f"internal.{name}: file not found: {value}")
    elif need_data:
        if not config.data.train_dir:
            raise ConfigError("data.train_dir: no photo folder given (--data DIR)")
        if not Path(config.data.train_dir).is_dir():
            raise ConfigError(f"data.train_dir: folder not found: {config.data.train_dir}")
    if config.data.val_dir and not Path(config.data.val_dir).is_dir():
        raise ConfigError(f"data.val_dir: folder not found: {config.data.val_dir}")
    if config.data.val_irregular_dir not in ("", "auto") and not Path(config.data.val_irregular_dir).is_dir():
        raise ConfigError(f"data.val_irregular_dir: folder not found: {config.data.val_irregular_dir}")
    if config.data.boundaries_dir and not Path(config.data.boundaries_dir).is_dir():
        raise ConfigError(f"data.boundaries_dir: folder not found: {config.data.boundaries_dir}")
    return config


# --- writing -------------------------------------------------------------------------------------------------

def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, str):
        return _toml_string(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{_toml_key(k)} = {toml_value(v)}" for k, v in value.items()) + " }"
    raise TypeError(f"cannot write {type(value).__name__} to TOML")


def _toml_string(text: str) -> str:
    out = ['"']
    for ch in text:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def _toml_key(key: str) -> str:
    return key if key and all(c.isalnum() or c in "-_" for c in key) else _toml_string(key)


def _toml_table(obj: Any, path: str, lines: list[str]) -> None:
    scalars, tables = [], []
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        (tables if dataclasses.is_dataclass(value) else scalars).append((f.name, value))
    if path and scalars:
        lines.append(f"[{path}]")
    for name, value in scalars:
        lines.append(f"{_toml_key(name)} = {toml_value(value)}")
    if path and scalars:
        lines.append("")
    for name, value in tables:
        _toml_table(value, f"{path}.{name}" if path else name, lines)


def to_toml(config: TrainConfig) -> str:
    """The config as TOML text that :func:`load_config` reads back to an equal config."""
    lines = ["# Inpaint Studio training configuration (written by the trainer; edit and pass with --config)", ""]
    _toml_table(config, "", lines)
    return "\n".join(lines).rstrip() + "\n"
