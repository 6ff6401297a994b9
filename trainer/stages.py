"""What one training step does, per stage: EdgeConnect ``edge``, ``image``, ``image-on-predicted``, ``joint``,
GLCIC's three phases, and ``completion`` (any completion network on pixel and optional adversarial losses).

A stage owns its generator/discriminator pairs (:class:`GanPart`), their Adam optimizers and EMA copies,
and exposes ``train_step(batch, step) -> losses`` and ``infer(batch) -> outputs`` for validation. The loop
around it (data, logging, checkpoints) is the same for every stage.

Every step computes the discriminator loss (fake detached) and the generator loss (through the
discriminator, whose parameters are frozen for it) from the same forward pass, back-propagates both and then
steps both optimizers, as EdgeConnect does. The generator loss goes through the plain discriminator module,
not its DDP wrapper, so DDP only reduces the discriminator's own gradients.
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from engine.devices import bf16_autocast
from engine.networks import build_network, in_preferred_layout
from engine.networks.edgeconnect import complete_edges, edge_guided_fill, merge_hole_edges
from trainer.config import MULTISCALE_DISCRIMINATOR_ARCHITECTURES, NetworkConfig, TrainConfig
from trainer.discriminators import GlobalLocalDiscriminator, MultiScalePatchDiscriminator, PatchDiscriminator
from trainer.distributed import DistContext, unwrap
from trainer.losses import (
    AdversarialLoss,
    edge_bce_loss,
    edge_dice_loss,
    feature_matching_loss,
    local_texture_loss,
    low_band_l1,
    masked_l1,
    ms_ssim,
    total_variation_loss,
)

Batch = dict[str, torch.Tensor]


def set_requires_grad(module: nn.Module, flag: bool) -> None:
    for p in module.parameters():
        p.requires_grad_(flag)


@contextlib.contextmanager
def frozen(module: nn.Module) -> Iterator[nn.Module]:
    """``module`` with its parameters temporarily not requiring gradients."""
    set_requires_grad(module, False)
    try:
        yield module
    finally:
        set_requires_grad(module, True)


def adam(params, lr: float, betas: tuple, device: torch.device) -> torch.optim.Adam:
    """Adam, fused into one kernel where torch has it for the device (CPU, CUDA): 6 -> 1.3 ms a step for the
    1.6 M-parameter structure model on the CPU; the state it keeps is the same as the unfused one's."""
    return torch.optim.Adam(params, lr=lr, betas=betas, fused=device.type in ("cpu", "cuda"))


@dataclass
class GanPart:
    """A generator, its optional discriminator, their optimizers and the generator's EMA copy."""

    name: str  # "edge", "image" or "glcic"
    network: NetworkConfig
    generator: nn.Module  # DDP-wrapped when distributed
    g_opt: torch.optim.Optimizer
    discriminator: nn.Module | None = None
    d_opt: torch.optim.Optimizer | None = None
    ema: nn.Module | None = None
    pending: dict[str, torch.Tensor] = field(default_factory=dict)

    @property
    def g(self) -> nn.Module:
        return unwrap(self.generator)

    @property
    def d(self) -> nn.Module | None:
        return unwrap(self.discriminator) if self.discriminator is not None else None

    def inference_generator(self) -> nn.Module:
        """The EMA generator if kept, else the live one."""
        return self.ema if self.ema is not None else self.g

    def state_dict(self) -> dict[str, Any]:
        state: dict[str, Any] = {"g": self.g.state_dict(), "g_opt": self.g_opt.state_dict()}
        if self.d is not None and self.d_opt is not None:
            state["d"] = self.d.state_dict()
            state["d_opt"] = self.d_opt.state_dict()
        if self.ema is not None:
            state["ema"] = self.ema.state_dict()
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.g.load_state_dict(state["g"])
        self.g_opt.load_state_dict(state["g_opt"])
        if self.d is not None and self.d_opt is not None:
            self.d.load_state_dict(state["d"])
            self.d_opt.load_state_dict(state["d_opt"])
        if self.ema is not None:
            self.ema.load_state_dict(state["ema"] if "ema" in state else self.g.state_dict())

    @torch.no_grad()
    def update_ema(self, decay: float, step: int) -> None:
        """EMA of the generator's parameters (decay warmed up as ``(1 + t) / (10 + t)``); buffers copied."""
        if self.ema is None:
            return
        d = min(decay, (1.0 + step) / (10.0 + step))
        for p_ema, p in zip(self.ema.parameters(), self.g.parameters()):
            p_ema.lerp_(p.detach(), 1.0 - d)
        for b_ema, b in zip(self.ema.buffers(), self.g.buffers()):
            b_ema.copy_(b)


class Stage:
    """Base: builds the parts, runs the optimizer steps, holds the shared loss modules."""

    name = ""
    part_names: tuple[str, ...] = ()
    uses_edges = True
    produces_edges = False
    best_metric = "hole_psnr"  # the validation column ``schedule.keep_best`` maximises (edge models: F-measure)

    def __init__(self, config: TrainConfig, ctx: DistContext, perceptual: nn.Module | None = None) -> None:
        self.config = config
        self.ctx = ctx
        self.device = ctx.device
        self.adv = AdversarialLoss(config.losses.adversarial_kind)
        self.perceptual = perceptual.to(self.device) if perceptual is not None else None
        self.amp = bf16_autocast(config.optim.amp, self.device)
        self.parts: dict[str, GanPart] = {name: self._build_part(name) for name in self.part_names}
        self.frozen_edge: nn.Module | None = None

    # --- building -------------------------------------------------------------------------------------------
    def _discriminator(self, part: str) -> nn.Module | None:
        cfg = self.config
        if part == "edge":
            if cfg.losses.edge_adversarial == 0 and cfg.losses.feature_matching == 0:
                return None
            return PatchDiscriminator(2, cfg.model.discriminator_channels, cfg.model.discriminator_spectral_norm)
        if part == "image":
            if cfg.losses.adversarial == 0 and cfg.losses.feature_matching == 0:
                return None
            return PatchDiscriminator(3, cfg.model.discriminator_channels, cfg.model.discriminator_spectral_norm)
        size = cfg.data.size
        local = cfg.stage.glcic_local_size or max(8, (size // 2) // 4 * 4)
        return GlobalLocalDiscriminator(size, local, 3, cfg.model.discriminator_channels, use_spectral_norm=False)

    def _build_part(self, name: str) -> GanPart:
        cfg = self.config
        network: NetworkConfig = getattr(cfg.model, name)
        generator = in_preferred_layout(build_network(network.architecture, network.arguments).to(self.device))
        betas = tuple(cfg.optim.betas)
        g_opt = adam(generator.parameters(), cfg.optim.lr, betas, self.device)
        wrapped = self.ctx.wrap(generator)  # DDP: rank 0's initial weights and buffers on every rank
        ema = copy.deepcopy(generator).eval() if cfg.optim.ema_decay > 0 else None  # after the sync
        if ema is not None:
            set_requires_grad(ema, False)
        disc = self._discriminator(name)
        d_opt = None
        if disc is not None:
            disc = disc.to(self.device)
            d_opt = adam(disc.parameters(), cfg.optim.lr * cfg.optim.d_lr_ratio, betas, self.device)
            disc = self.ctx.wrap(disc)
        return GanPart(name, network, wrapped, g_opt, disc, d_opt, ema)

    def load_initial(self, part: str, state: dict[str, torch.Tensor]) -> None:
        """Start ``part``'s generator (and EMA) from a model file's tensors."""
        p = self.parts[part]
        p.g.load_state_dict(state)
        if p.ema is not None:
            p.ema.load_state_dict(state)

    # --- state ----------------------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        state: dict[str, Any] = {"parts": {name: part.state_dict() for name, part in self.parts.items()}}
        if self.frozen_edge is not None:
            state["frozen_edge"] = self.frozen_edge.state_dict()
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for name, part in self.parts.items():
            part.load_state_dict(state["parts"][name])
        if self.frozen_edge is not None and "frozen_edge" in state:
            self.frozen_edge.load_state_dict(state["frozen_edge"])

    def train(self) -> None:
        for part in self.parts.values():
            part.generator.train()
            if part.discriminator is not None:
                part.discriminator.train()

    @contextlib.contextmanager
    def eval_mode(self) -> Iterator[None]:
        """Generators in eval mode (no spectral-norm power iteration, BatchNorm running stats), then back."""
        for part in self.parts.values():
            part.g.eval()
        try:
            yield
        finally:
            for part in self.parts.values():
                part.g.train()

    # --- stepping -------------------------------------------------------------------------------------------
    def autocast(self) -> contextlib.AbstractContextManager:
        if not self.amp:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=torch.bfloat16)

    def _apply(self, step: int, losses: list[tuple[GanPart, torch.Tensor | None, torch.Tensor | None]]) -> None:
        """Back-propagate every (part, generator loss, discriminator loss), then clip and step all optimizers
        at the learning rate the schedule gives ``step``."""
        clip = self.config.optim.grad_clip
        lr = self.config.optim.lr_at(step)
        for part, g_loss, d_loss in losses:
            part.g_opt.zero_grad(set_to_none=True)
            if part.d_opt is not None:
                part.d_opt.zero_grad(set_to_none=True)
            if d_loss is not None:
                d_loss.backward()
            if g_loss is not None:
                g_loss.backward()
        for part, g_loss, d_loss in losses:
            if d_loss is not None and part.d_opt is not None:
                if clip > 0:
                    torch.nn.utils.clip_grad_norm_(part.discriminator.parameters(), clip)
                _set_lr(part.d_opt, lr * self.config.optim.d_lr_ratio)
                part.d_opt.step()
            if g_loss is not None:
                if clip > 0:
                    torch.nn.utils.clip_grad_norm_(part.generator.parameters(), clip)
                _set_lr(part.g_opt, lr)
                part.g_opt.step()
                part.update_ema(self.config.optim.ema_decay, step)

    def train_step(self, batch: Batch, step: int) -> dict[str, float]:
        raise NotImplementedError

    # --- the two EdgeConnect parts --------------------------------------------------------------------------
    def edge_losses(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor, dict[str, float]]:
        """Edge generator: adversarial + feature matching on (gray, edges) pairs (EdgeConnect), and/or the
        supervised terms on the hole (``edge_bce``, ``edge_dice``). Returns (g, d, probs, logs)."""
        part = self.parts["edge"]
        w = self.config.losses
        gray, edges, mask = batch["gray"], batch["edges"], batch["mask"]
        with self.autocast():
            logits = part.generator(gray, batch["known_edges"], mask)
        probs = torch.sigmoid(logits.float())
        g_loss, d_loss, logs = probs.new_zeros(()), None, {}
        if part.discriminator is not None:
            real_in = torch.cat([gray, edges], dim=1)
            fake_in = torch.cat([gray, probs], dim=1)
            with self.autocast():
                both_logits, both_feats = part.discriminator(torch.cat([real_in, fake_in.detach()]))
                with frozen(part.d):
                    g_logits, g_feats = part.d(fake_in)
            n = gray.shape[0]
            d_loss = self.adv.discriminator_loss(both_logits[:n], both_logits[n:])
            real_feats = [f[:n].detach() for f in both_feats]
            g_adv = self.adv.generator_loss(g_logits)
            g_fm = feature_matching_loss(real_feats, g_feats)
            g_loss = w.edge_adversarial * g_adv + w.feature_matching * g_fm
            logs = {"edge/g_adv": g_adv.item(), "edge/g_fm": g_fm.item(), "edge/d": d_loss.item()}
        if w.edge_bce > 0:
            bce = edge_bce_loss(logits.float(), edges, mask)
            g_loss = g_loss + w.edge_bce * bce
            logs["edge/bce"] = bce.item()
        if w.edge_dice > 0:
            dice = edge_dice_loss(probs, edges, mask)
            g_loss = g_loss + w.edge_dice * dice
            logs["edge/dice"] = dice.item()
        return g_loss, d_loss, probs, logs

    def image_losses(self, batch: Batch, edges: torch.Tensor
                     ) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor, dict[str, float]]:
        """Image generator: L1 (hole/valid) + adversarial + feature matching + perceptual/style + TV."""
        part = self.parts["image"]
        w = self.config.losses
        image, mask = batch["image"], batch["mask"]
        known = batch.get("valid")
        with self.autocast():
            out = part.generator(image, edges, mask).float()
        l1 = masked_l1(out, image, mask, w.hole_l1, w.valid_l1, known=known)
        g_loss = w.l1 * l1
        logs = {"image/g_l1": l1.item()}
        d_loss = None
        if part.discriminator is not None:
            n = image.shape[0]
            with self.autocast():
                both_logits, both_feats = part.discriminator(torch.cat([image, out.detach()]))
                with frozen(part.d):
                    g_logits, g_feats = part.d(out)
            d_loss = self.adv.discriminator_loss(both_logits[:n], both_logits[n:])
            g_adv = self.adv.generator_loss(g_logits)
            g_fm = feature_matching_loss([f[:n].detach() for f in both_feats], g_feats)
            g_loss = g_loss + w.adversarial * g_adv + w.feature_matching * g_fm
            logs.update({"image/g_adv": g_adv.item(), "image/g_fm": g_fm.item(), "image/d": d_loss.item()})
        if self.perceptual is not None and (w.perceptual > 0 or w.style > 0):
            with self.autocast():
                perc, style = self.perceptual(out, image)
            g_loss = g_loss + w.perceptual * perc + w.style * style
            logs.update({"image/g_perceptual": float(perc), "image/g_style": float(style)})
        if w.ms_ssim > 0:
            composite = out * mask + image * (1 - mask)
            similarity = ms_ssim(composite, image)
            g_loss = g_loss + w.ms_ssim * (1.0 - similarity)
            logs["image/ms_ssim"] = similarity.item()
        if w.low_band > 0:
            low = low_band_l1(out * mask + image * (1 - mask), image, mask)
            g_loss = g_loss + w.low_band * low
            logs["image/g_low_band"] = low.item()
        if w.tv > 0:
            merged = out * mask + image * (1 - mask)
            tv = total_variation_loss(merged, mask)
            g_loss = g_loss + w.tv * tv
            logs["image/g_tv"] = tv.item()
        return g_loss, d_loss, out, logs

    @torch.no_grad()
    def predicted_edges(self, model: nn.Module, batch: Batch) -> torch.Tensor:
        """Edge probabilities from ``model``, merged with the known edges outside the hole."""
        with self.autocast():
            return complete_edges(model, batch["gray"], batch["known_edges"], batch["mask"])

    @torch.no_grad()
    def infer(self, batch: Batch) -> dict[str, torch.Tensor]:
        """Validation outputs with the EMA (or live) generators: ``edges`` (probabilities) and/or ``image``."""
        raise NotImplementedError


EDGE_DROPOUT_CELL = 16


def _set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = lr


def drop_hole_edges(edges: torch.Tensor, mask: torch.Tensor, rate: float) -> torch.Tensor:
    """Training guides without a full sketch: a share ``rate`` of the samples lose every edge inside the hole;
    of the rest, half lose the hole's edges in half of the 16 px cells (a partial sketch) and half keep them all
    (torch's RNG, so a resume repeats it)."""
    if rate <= 0:
        return edges
    n, _, h, w = edges.shape
    draw = torch.rand(n, 1, 1, 1, device=edges.device)
    cells = torch.rand(n, 1, -(-h // EDGE_DROPOUT_CELL), -(-w // EDGE_DROPOUT_CELL), device=edges.device) < 0.5
    cells = cells.to(edges.dtype).repeat_interleave(EDGE_DROPOUT_CELL, 2).repeat_interleave(EDGE_DROPOUT_CELL, 3)
    cells = cells[..., :h, :w]
    partial = rate + (1 - rate) / 2
    keep = torch.where(draw < rate, torch.zeros_like(cells), torch.where(draw < partial, cells,
                                                                           torch.ones_like(cells)))
    hole = mask.to(edges.dtype)
    return edges * (1 - hole) + edges * hole * keep


class EdgeStage(Stage):
    """Trains the edge generator alone."""

    name = "edge"
    part_names = ("edge",)
    produces_edges = True

    def train_step(self, batch: Batch, step: int) -> dict[str, float]:
        g_loss, d_loss, _, logs = self.edge_losses(batch)
        self._apply(step, [(self.parts["edge"], g_loss, d_loss)])
        return logs

    @torch.no_grad()
    def infer(self, batch: Batch) -> dict[str, torch.Tensor]:
        return {"edges": self.predicted_edges(self.parts["edge"].inference_generator(), batch)}


class ImageStage(Stage):
    """Trains the image generator guided by the truth's Canny edges in the hole (a simulated sketch, dropped out
    per ``data.edge_dropout``) and the photo's known edges around it, as a fill feeds them."""

    name = "image"
    part_names = ("image",)

    def guide(self, batch: Batch) -> torch.Tensor:
        """The photo's known edges outside the hole, the truth's inside (a full sketch)."""
        return merge_hole_edges(batch["known_edges"], batch["edges"], batch["mask"])

    def train_step(self, batch: Batch, step: int) -> dict[str, float]:
        guide = drop_hole_edges(self.guide(batch), batch["mask"], self.config.data.edge_dropout)
        g_loss, d_loss, _, logs = self.image_losses(batch, guide)
        self._apply(step, [(self.parts["image"], g_loss, d_loss)])
        return logs

    @torch.no_grad()
    def infer(self, batch: Batch) -> dict[str, torch.Tensor]:
        edges = self.guide(batch)
        with self.autocast():
            out = self.parts["image"].inference_generator()(batch["image"], edges, batch["mask"]).float()
        return {"edges": edges, "image": out}


class ImageOnPredictedStage(ImageStage):
    """Trains the image generator on the frozen edge model's edges (merged with the known edges)."""

    name = "image-on-predicted"

    def __init__(self, config: TrainConfig, ctx: DistContext, perceptual: nn.Module | None = None) -> None:
        super().__init__(config, ctx, perceptual)
        net = config.model.edge
        self.frozen_edge = build_network(net.architecture, net.arguments).to(self.device).eval()
        set_requires_grad(self.frozen_edge, False)

    def guide(self, batch: Batch) -> torch.Tensor:
        return self.predicted_edges(self.frozen_edge, batch)


class JointStage(Stage):
    """Trains both: the edge generator on its losses, the image generator on its (detached) predicted edges."""

    name = "joint"
    part_names = ("edge", "image")
    produces_edges = True

    def train_step(self, batch: Batch, step: int) -> dict[str, float]:
        eg, ed, probs, logs = self.edge_losses(batch)
        merged = merge_hole_edges(batch["known_edges"], probs.detach(), batch["mask"])
        ig, idl, _, ilogs = self.image_losses(batch, merged)
        logs.update(ilogs)
        self._apply(step, [(self.parts["edge"], eg, ed), (self.parts["image"], ig, idl)])
        return logs

    @torch.no_grad()
    def infer(self, batch: Batch) -> dict[str, torch.Tensor]:
        with self.autocast():
            edges, out = edge_guided_fill(self.parts["edge"].inference_generator(),
                                          self.parts["image"].inference_generator(), batch["image"],
                                          batch["gray"], batch["known_edges"], batch["mask"])
        return {"edges": edges, "image": out.float()}


class StructureStage(ImageStage):
    """The structure model of the default fill: trained like the image stage (truth edges with drop-out), but
    validated as the editor uses it without a sketch, on the photo's known edges only (no edge inside the hole),
    which is also what the engine feeds it (engine.backends: sketch-guided architectures)."""

    name = "structure"
    best_metric = "lowband_psnr"  # what the model is for; the copied texture supplies the detail

    @torch.no_grad()
    def infer(self, batch: Batch) -> dict[str, torch.Tensor]:
        edges = batch["known_edges"]
        with self.autocast():
            out = self.parts["image"].inference_generator()(batch["image"], edges, batch["mask"]).float()
        return {"edges": edges, "image": out}


class GlcicStage(Stage):
    """GLCIC: phase 1 completion network with the hole MSE only; phase 2 the global+local discriminator only;
    phase 3 both (MSE + ``losses.glcic_adversarial`` x adversarial)."""

    name = "glcic"
    part_names = ("glcic",)
    uses_edges = False

    def phase(self, step: int) -> int:
        p1, p2 = self.config.stage.glcic_phases(self.config.optim.steps)
        return 1 if step < p1 else 2 if step < p2 else 3

    def train_step(self, batch: Batch, step: int) -> dict[str, float]:
        part = self.parts["glcic"]
        image, mask = batch["image"], batch["mask"]
        phase = self.phase(step)
        train_g = phase in (1, 3)
        if train_g:
            with self.autocast():
                out = part.generator(image, mask).float()
        else:
            with torch.no_grad(), self.autocast():
                out = part.g(image, mask).float()
        completed = out * mask + image * (1 - mask)
        hole = mask.expand_as(image)
        mse = ((out - image) ** 2 * hole).sum() / hole.sum().clamp_min(1.0)
        logs: dict[str, float] = {"glcic/g_mse": mse.item()}
        g_loss = mse if train_g else None
        d_loss = None
        if phase in (2, 3):
            boxes = part.d.hole_boxes(mask)
            with self.autocast():
                real_logits, _ = part.discriminator(image, boxes=boxes)
                fake_logits, _ = part.discriminator(completed.detach(), boxes=boxes)
            d_loss = self.adv.discriminator_loss(real_logits, fake_logits)
            logs["glcic/d"] = d_loss.item()
            if phase == 3:
                with self.autocast(), frozen(part.d):
                    g_logits, _ = part.d(completed, boxes=boxes)
                g_adv = self.adv.generator_loss(g_logits)
                g_loss = g_loss + self.config.losses.glcic_adversarial * g_adv
                logs["glcic/g_adv"] = g_adv.item()
        self._apply(step, [(part, g_loss, d_loss)])
        return logs

    @torch.no_grad()
    def infer(self, batch: Batch) -> dict[str, torch.Tensor]:
        with self.autocast():
            out = self.parts["glcic"].inference_generator()(batch["image"], batch["mask"]).float()
        return {"image": out}


def _per_scale(logits: torch.Tensor | list[torch.Tensor]) -> list[torch.Tensor]:
    return logits if isinstance(logits, list) else [logits]


class CompletionStage(Stage):
    """Any completion network (``model.glcic``: image and mask in) on its paper's kind of recipe: L1 (hole /
    valid weights), optional MS-SSIM, TV, local texture (``losses.local_texture``), perceptual and style (with a
    VGG file), and, when ``losses.adversarial`` or ``losses.feature_matching`` is above zero, a PatchGAN on the
    completed image: at two scales for the multi-scale-discriminator architectures (``context-encoder-ms``),
    one scale otherwise. Adversarial terms are averaged over the scales."""

    name = "completion"
    part_names = ("glcic",)
    uses_edges = False

    def _discriminator(self, part: str) -> nn.Module | None:
        cfg = self.config
        if cfg.losses.adversarial == 0 and cfg.losses.feature_matching == 0:
            return None
        channels, sn = cfg.model.discriminator_channels, cfg.model.discriminator_spectral_norm
        if cfg.model.glcic.architecture in MULTISCALE_DISCRIMINATOR_ARCHITECTURES:
            return MultiScalePatchDiscriminator(3, channels, sn, scales=2)
        return PatchDiscriminator(3, channels, sn)

    def train_step(self, batch: Batch, step: int) -> dict[str, float]:
        part = self.parts["glcic"]
        w = self.config.losses
        image, mask = batch["image"], batch["mask"]
        with self.autocast():
            out = part.generator(image, mask).float()
        completed = out * mask + image * (1 - mask)
        l1 = masked_l1(out, image, mask, w.hole_l1, w.valid_l1, known=batch.get("valid"))
        g_loss = w.l1 * l1
        logs = {"completion/g_l1": l1.item()}
        if w.ms_ssim > 0:
            similarity = ms_ssim(completed, image)
            g_loss = g_loss + w.ms_ssim * (1.0 - similarity)
            logs["completion/ms_ssim"] = similarity.item()
        if w.low_band > 0:
            low = low_band_l1(completed, image, mask)
            g_loss = g_loss + w.low_band * low
            logs["completion/g_low_band"] = low.item()
        if w.tv > 0:
            tv = total_variation_loss(completed, mask)
            g_loss = g_loss + w.tv * tv
            logs["completion/g_tv"] = tv.item()
        if w.local_texture > 0:
            texture = local_texture_loss(out, image, mask)
            g_loss = g_loss + w.local_texture * texture
            logs["completion/g_texture"] = texture.item()
        if self.perceptual is not None and (w.perceptual > 0 or w.style > 0):
            with self.autocast():
                perc, style = self.perceptual(completed, image)
            g_loss = g_loss + w.perceptual * perc + w.style * style
            logs.update({"completion/g_perceptual": float(perc), "completion/g_style": float(style)})
        d_loss = None
        if part.discriminator is not None:
            n = image.shape[0]
            with self.autocast():
                both_logits, both_feats = part.discriminator(torch.cat([image, completed.detach()]))
                with frozen(part.d):
                    g_logits, g_feats = part.d(completed)
            both, fakes = _per_scale(both_logits), _per_scale(g_logits)
            d_loss = sum(self.adv.discriminator_loss(b[:n], b[n:]) for b in both) / len(both)
            g_adv = sum(self.adv.generator_loss(f) for f in fakes) / len(fakes)
            g_fm = feature_matching_loss([f[:n].detach() for f in both_feats], g_feats)
            g_loss = g_loss + w.adversarial * g_adv + w.feature_matching * g_fm
            logs.update({"completion/g_adv": g_adv.item(), "completion/g_fm": g_fm.item(),
                         "completion/d": d_loss.item(), "completion/d_scales": float(len(both))})
        self._apply(step, [(part, g_loss, d_loss)])
        return logs

    infer = GlcicStage.infer  # the same image + mask network in the same part


STAGE_CLASSES: dict[str, type[Stage]] = {
    "edge": EdgeStage,
    "image": ImageStage,
    "structure": StructureStage,
    "image-on-predicted": ImageOnPredictedStage,
    "joint": JointStage,
    "glcic": GlcicStage,
    "completion": CompletionStage,
}


def build_stage(config: TrainConfig, ctx: DistContext, perceptual: nn.Module | None = None) -> Stage:
    return STAGE_CLASSES[config.stage.name](config, ctx, perceptual)
