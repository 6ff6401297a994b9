"""The harmonic prefill and the image generator that refines it."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from engine.networks import build_network
from engine.networks.prefill import harmonic_fill


def _hole(h: int, w: int, box: tuple[int, int, int, int]) -> torch.Tensor:
    mask = torch.zeros(1, 1, h, w)
    y0, y1, x0, x1 = box
    mask[..., y0:y1, x0:x1] = 1.0
    return mask


def test_known_pixels_are_kept_and_hole_content_is_ignored():
    torch.manual_seed(0)
    image = torch.rand(2, 3, 40, 56)
    mask = _hole(40, 56, (10, 30, 12, 40)).expand(2, 1, 40, 56)
    other = image * (1 - mask) + torch.rand_like(image) * mask
    fill = harmonic_fill(image, mask)
    assert torch.equal(fill * (1 - mask), image * (1 - mask))
    assert torch.allclose(fill, harmonic_fill(other, mask))


def test_fill_solves_laplace_exactly_enough_for_a_linear_ramp():
    """A linear ramp is harmonic, so the fill of any hole in it is the ramp itself."""
    x = torch.linspace(0, 1, 64).view(1, 1, 1, 64).expand(1, 3, 48, 64).contiguous()
    mask = _hole(48, 64, (8, 40, 20, 44))
    fill = harmonic_fill(x, mask)
    assert (fill - x).abs().max() < 0.02


def test_fill_beats_the_hole_mean_of_the_border_on_a_smooth_gradient_pair():
    """Two colours meeting across a hole: each side of the hole takes its own side's colour."""
    image = torch.zeros(1, 3, 32, 32)
    image[..., :, 16:] = 1.0
    mask = _hole(32, 32, (8, 24, 4, 28))
    fill = harmonic_fill(image, mask)
    assert fill[0, 0, 16, 6] < 0.25 and fill[0, 0, 16, 25] > 0.75
    assert 0.3 < fill[0, 0, 16, 16] < 0.7


def test_everything_masked_gives_a_finite_fill():
    fill = harmonic_fill(torch.rand(1, 3, 16, 16), torch.ones(1, 1, 16, 16))
    assert torch.isfinite(fill).all()


def test_prefill_generator_starts_at_the_harmonic_fill_and_keeps_range():
    torch.manual_seed(0)
    net = build_network("edgeconnect-image", {"base_channels": 8, "residual_blocks": 1, "prefill": True,
                                               "resize_upsampling": True}).eval()
    image = torch.rand(1, 3, 32, 48)
    mask = _hole(32, 48, (8, 24, 10, 30))
    with torch.no_grad():
        out = net(image, torch.zeros(1, 1, 32, 48), mask)
    assert torch.allclose(out, harmonic_fill(image, mask).clamp(0, 1))
    with torch.no_grad():
        net.net.decoder[-1].bias.fill_(5.0)
        out = net(image, torch.zeros(1, 1, 32, 48), mask)
    assert out.min() >= 0 and out.max() <= 1


def test_resize_upsampling_has_no_transposed_convs_and_keeps_the_shape():
    net = build_network("edgeconnect-image", {"base_channels": 8, "residual_blocks": 1, "resize_upsampling": True})
    assert not any(isinstance(m, torch.nn.ConvTranspose2d) for m in net.modules())
    out = net(torch.rand(1, 3, 36, 44), torch.zeros(1, 1, 36, 44), _hole(36, 44, (4, 20, 4, 20)))
    assert out.shape == (1, 3, 36, 44)


def test_prefill_generator_trains_through_the_zero_initialised_last_layer():
    torch.manual_seed(0)
    net = build_network("edgeconnect-image", {"base_channels": 8, "residual_blocks": 1, "prefill": True})
    image = torch.rand(2, 3, 24, 24)
    mask = _hole(24, 24, (6, 18, 6, 18)).expand(2, 1, 24, 24)
    optim = torch.optim.Adam(net.parameters(), lr=2e-3)
    losses = []
    for _ in range(40):
        loss = ((net(image, torch.zeros(2, 1, 24, 24), mask) - image).abs() * mask).mean()
        optim.zero_grad()
        loss.backward()
        optim.step()
        losses.append(loss.item())
    assert np.mean(losses[-3:]) < 0.9 * losses[0]


def test_onnx_export_fills_a_large_hole_at_a_size_other_than_traced(tmp_path):
    """The pyramid depth is fixed, so the exported graph solves big holes at sizes it was not traced at."""
    pytest.importorskip("onnxruntime")
    import onnxruntime as ort

    class Fill(torch.nn.Module):
        def forward(self, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
            return harmonic_fill(image, mask)

    path = tmp_path / "fill.onnx"
    torch.onnx.export(Fill(), (torch.rand(1, 3, 32, 32), torch.zeros(1, 1, 32, 32)), str(path),
                      input_names=["image", "mask"], output_names=["fill"], opset_version=17, dynamo=False,
                      dynamic_axes={n: {2: "h", 3: "w"} for n in ("image", "mask", "fill")})
    image = torch.rand(1, 3, 300, 420)
    mask = _hole(300, 420, (20, 280, 30, 400))
    expected = harmonic_fill(image, mask).numpy()
    got = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(
        None, {"image": image.numpy(), "mask": mask.numpy()})[0]
    assert np.abs(got - expected).max() < 1e-4
