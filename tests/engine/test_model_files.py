"""Model files: round trip, refusal of pickles, and clear errors for broken files."""

from __future__ import annotations

import json
import pickle

import pytest
import torch

from engine.errors import ModelFileError
from engine.model_files import ModelCard, card_path, load_model, read_card, save_model, weights_path
from engine.networks import EdgeGenerator, ImageGenerator


def _card(name: str = "tiny", **kw) -> ModelCard:
    args = kw.pop("arguments", {"base_channels": 8, "residual_blocks": 1})
    return ModelCard(name=name, architecture="edgeconnect-image", arguments=args, stage="image",
                     resolution=64, **kw)


def test_round_trip_gives_identical_outputs(tmp_path):
    torch.manual_seed(0)
    net = ImageGenerator(8, 1).eval()
    path = save_model(net, _card(steps=12, data="synthetic"), tmp_path)
    loaded, card = load_model(path)
    assert card.steps == 12 and card.data == "synthetic"
    x, e, m = torch.rand(1, 3, 32, 36), torch.rand(1, 1, 32, 36), (torch.rand(1, 1, 32, 36) > 0.5).float()
    with torch.no_grad():
        assert torch.equal(net(x, e, m), loaded(x, e, m))


def test_spectral_norm_edge_model_round_trip(tmp_path):
    net = EdgeGenerator(8, 1).eval()
    card = ModelCard("edge", "edgeconnect-edge", {"base_channels": 8, "residual_blocks": 1}, "edge", 64)
    loaded, _ = load_model(save_model(net, card, tmp_path))
    x = torch.rand(1, 1, 24, 24)
    with torch.no_grad():
        assert torch.allclose(net(x, x, x), loaded(x, x, x))


def test_pickle_is_refused_and_never_run(tmp_path):
    path = save_model(ImageGenerator(8, 1), _card(), tmp_path)

    class Boom:
        def __reduce__(self):
            return (exec, ("raise SystemExit('pickle executed')",))

    weights_path(path).write_bytes(pickle.dumps(Boom(), protocol=4))
    with pytest.raises(ModelFileError, match="pickle"):
        load_model(path)


def test_torch_save_zip_is_refused(tmp_path):
    path = save_model(ImageGenerator(8, 1), _card(), tmp_path)
    torch.save(ImageGenerator(8, 1).state_dict(), weights_path(path))
    with pytest.raises(ModelFileError, match="zip archive"):
        load_model(path)


def test_truncated_file_names_the_file(tmp_path):
    path = save_model(ImageGenerator(8, 1), _card(), tmp_path)
    data = weights_path(path).read_bytes()
    weights_path(path).write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelFileError, match=r"tiny\.safetensors.*truncated"):
        load_model(path)


def test_empty_file(tmp_path):
    path = save_model(ImageGenerator(8, 1), _card(), tmp_path)
    weights_path(path).write_bytes(b"")
    with pytest.raises(ModelFileError, match="empty"):
        load_model(path)


def test_unknown_architecture(tmp_path):
    path = save_model(ImageGenerator(8, 1), _card(), tmp_path)
    raw = json.loads(card_path(path).read_text())
    raw["architecture"] = "stable-diffusion"
    card_path(path).write_text(json.dumps(raw))
    with pytest.raises(ModelFileError, match=r"tiny\.json: unknown architecture 'stable-diffusion'"):
        load_model(path)


def test_shape_mismatch_names_file_and_tensor(tmp_path):
    path = save_model(ImageGenerator(8, 1), _card(), tmp_path)
    raw = json.loads(card_path(path).read_text())
    raw["arguments"]["base_channels"] = 16
    card_path(path).write_text(json.dumps(raw))
    with pytest.raises(ModelFileError, match=r"tiny\.safetensors: shape mismatch"):
        load_model(path)


def test_bad_card_json(tmp_path):
    path = save_model(ImageGenerator(8, 1), _card(), tmp_path)
    card_path(path).write_text("{not json")
    with pytest.raises(ModelFileError, match="not valid JSON"):
        load_model(path)


def test_an_edge_models_operating_threshold_round_trips_and_is_checked(tmp_path):
    card = ModelCard("edge", "edgeconnect-edge", {"base_channels": 8, "residual_blocks": 1}, "edge", 64,
                     edge_threshold=0.3)
    path = save_model(EdgeGenerator(8, 1).eval(), card, tmp_path)
    assert read_card(card_path(path)).edge_threshold == 0.3
    raw = json.loads(card_path(path).read_text())
    del raw["edge_threshold"]  # a card written before the field existed
    card_path(path).write_text(json.dumps(raw))
    assert read_card(card_path(path)).edge_threshold is None
    for bad, message in ((1.5, "between 0 and 1"), ("0.3", "must be a number"), (float("nan"), "between 0 and 1")):
        card_path(path).write_text(json.dumps({**raw, "edge_threshold": bad}))
        with pytest.raises(ModelFileError, match=message):
            read_card(card_path(path))


def test_missing_card_fields(tmp_path):
    path = save_model(ImageGenerator(8, 1), _card(), tmp_path)
    card_path(path).write_text(json.dumps({"name": "tiny"}))
    with pytest.raises(ModelFileError, match="lacks architecture"):
        load_model(path)


def test_full_size_networks_match_the_paper():
    for cls in (EdgeGenerator, ImageGenerator):
        params = sum(p.numel() for p in cls(64, 8).parameters())
        assert 10.5e6 < params < 11.0e6


@pytest.mark.parametrize("length_bytes", [b"\x80\x05", b"\x80\x02", b"PK"])
def test_safetensors_whose_header_length_looks_like_pickle_magic_loads(tmp_path, length_bytes):
    # A real safetensors file whose 8-byte header length begins with pickle/zip magic must still load.
    path = save_model(ImageGenerator(8, 1), _card(), tmp_path)
    data = weights_path(path).read_bytes()
    old_length = int.from_bytes(data[:8], "little")
    new_length = int.from_bytes(length_bytes + b"\x01" + b"\x00" * 5, "little")
    assert new_length >= old_length
    header = data[8 : 8 + old_length] + b" " * (new_length - old_length)  # JSON allows trailing spaces
    weights_path(path).write_bytes(new_length.to_bytes(8, "little") + header + data[8 + old_length :])
    loaded, _ = load_model(path)
    assert set(loaded.state_dict()) == set(ImageGenerator(8, 1).state_dict())


def test_check_weights_file_reads_only_the_header_and_catches_damage(tmp_path):
    from engine.model_files import check_weights_file

    path = weights_path(save_model(ImageGenerator(8, 1), _card(), tmp_path))
    check_weights_file(path)  # a whole file passes
    whole = path.read_bytes()
    cases = {
        "truncated": whole[:-100],
        "extra bytes": whole + b"\0" * 16,
        "not JSON": whole[:8] + b"{" + b"\xff" * (int.from_bytes(whole[:8], "little") - 1) + whole[8 + int.from_bytes(
            whole[:8], "little"):],
        "no valid header": (10**12).to_bytes(8, "little") + whole[8:],
        "pickle": pickle.dumps({"a": 1}),
    }
    for expected, data in cases.items():
        path.write_bytes(data)
        with pytest.raises(ModelFileError, match=expected) as info:
            check_weights_file(path)
        assert str(path) in str(info.value)


@pytest.mark.parametrize(("field", "value", "expected"), [
    ("architecture", ["edgeconnect-image"], "'architecture' must be a string, got list"),
    ("companion", ["edge"], "'companion' must be a string or null, got list"),
    ("resolution", True, "'resolution' must be an integer, got bool"),
    ("validation", "good", "'validation' must be an object, got str"),
])
def test_card_fields_of_the_wrong_type_name_the_file(tmp_path, field, value, expected):
    path = save_model(ImageGenerator(8, 1), _card(), tmp_path)
    raw = json.loads(card_path(path).read_text())
    raw[field] = value
    card_path(path).write_text(json.dumps(raw))
    with pytest.raises(ModelFileError, match=expected) as info:
        load_model(path)
    assert "tiny.json" in str(info.value)


def test_a_card_asking_for_a_huge_network_fails_before_allocating_it(tmp_path, monkeypatch):
    import engine.model_files as model_files

    path = save_model(ImageGenerator(8, 1), _card(), tmp_path)
    raw = json.loads(card_path(path).read_text())
    raw["arguments"] = {"base_channels": 512, "residual_blocks": 1}  # about 300 MB of weights if built
    card_path(path).write_text(json.dumps(raw))
    devices = []
    real_build = model_files.build_network

    def build(*args, **kwargs):
        devices.append(torch.empty(0).device.type)  # where this build would put its tensors
        return real_build(*args, **kwargs)

    monkeypatch.setattr(model_files, "build_network", build)
    with pytest.raises(ModelFileError, match="shape mismatch"):
        load_model(path)
    assert devices == ["meta"]  # only the memory-free probe was built
    raw["arguments"] = {"base_channels": -8, "residual_blocks": 1}
    card_path(path).write_text(json.dumps(raw))
    with pytest.raises(ModelFileError, match=r"tiny\.json: argument 'base_channels' is -8, outside"):
        load_model(path)


def test_nan_weights_are_refused_naming_the_file(tmp_path):
    """Issue 17 #14: NaN weights filled the hole black with exit 0."""
    net = ImageGenerator(8, 1)
    with torch.no_grad():
        next(net.parameters()).fill_(float("nan"))
    path = save_model(net, _card(), tmp_path)
    with pytest.raises(ModelFileError, match="NaN or infinite") as info:
        load_model(path)
    assert str(weights_path(path)) in str(info.value)


def test_deeply_nested_card_is_a_clear_error(tmp_path):
    """Issue 17 #13: a deeply nested card raised RecursionError."""
    path = tmp_path / "deep.json"
    path.write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(ModelFileError, match="nested too deeply"):
        read_card(path)


def test_card_that_is_not_a_regular_file_is_not_read(tmp_path):
    """Issue 17 #8 and #13: a FIFO blocked every command; a link to /dev/zero was read without bound."""
    import os

    fifo = tmp_path / "fifo.json"
    os.mkfifo(fifo)
    with pytest.raises(ModelFileError, match="not a regular file"):
        read_card(fifo)
    link = tmp_path / "zero.json"
    link.symlink_to("/dev/zero")
    with pytest.raises(ModelFileError, match="not a regular file"):
        read_card(link)
    big = tmp_path / "big.json"
    big.write_bytes(b" " * 2_000_000)
    with pytest.raises(ModelFileError, match="over the limit"):
        read_card(big)


def test_absurd_architecture_arguments_are_refused_before_building(tmp_path):
    """Issue 17 #9: a card asking for 300,000 residual blocks cost minutes and gigabytes before its error."""
    path = save_model(ImageGenerator(8, 1), _card(), tmp_path)
    raw = json.loads(card_path(path).read_text())
    raw["arguments"]["residual_blocks"] = 300_000
    card_path(path).write_text(json.dumps(raw))
    with pytest.raises(ModelFileError, match="'residual_blocks' is 300000, outside"):
        read_card(path)
