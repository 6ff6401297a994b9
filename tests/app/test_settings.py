"""Preferences persist as JSON in the user folder and survive a damaged file."""

from __future__ import annotations

import json

from app.settings import MAX_RECENT, Settings, settings_path
from engine.devices import cpu_cores


def test_defaults_when_no_file(isolated_home):
    settings = Settings.load()
    assert settings.device == "auto" and settings.clear_mask_after_fill is True
    assert settings.cpu_threads >= 1 and settings.load_warning is None
    assert settings_path().parent == isolated_home


def test_round_trip(tmp_path):
    settings = Settings.load()
    settings.device = "cpu"
    settings.default_model = "telea"
    settings.brush_size = 77
    settings.mask_color = "#00ff00"
    settings.clear_mask_after_fill = False
    settings.cpu_threads = cpu_cores()  # the default is one fewer
    settings.add_recent(tmp_path / "a.jpg")
    settings.save()
    again = Settings.load()
    assert again == settings
    assert again.recent_files == [str((tmp_path / "a.jpg").resolve())]


def test_corrupt_file_resets_with_warning_and_keeps_a_backup():
    path = settings_path()
    path.write_text("{ not json", encoding="utf-8")
    settings = Settings.load()
    assert settings == Settings()
    assert settings.load_warning and "could not be read" in settings.load_warning
    backup = path.with_name("settings.json.bak")
    assert backup.read_text(encoding="utf-8") == "{ not json"
    settings.save()
    assert json.loads(path.read_text(encoding="utf-8"))["device"] == "auto"


def test_bad_values_fall_back_to_defaults():
    settings_path().write_text(json.dumps({"brush_size": "huge", "device": 3, "mask_opacity": 9, "cpu_threads": 10**5,
                                           "clear_mask_after_fill": False, "unknown": 1}), encoding="utf-8")
    settings = Settings.load()
    assert settings.brush_size == Settings().brush_size and settings.device == "auto"
    assert settings.mask_opacity == 1.0 and settings.clear_mask_after_fill is False
    assert settings.cpu_threads == cpu_cores()  # 100000 threads would crash torch
    settings_path().write_text(json.dumps({"mask_color": "reddish"}), encoding="utf-8")
    assert Settings.load().mask_color == Settings().mask_color  # not a colour: the default, not black


def test_old_file_with_removed_keys_loads_quietly_and_drops_them(caplog):
    path = settings_path()
    path.write_text(json.dumps({"version": 1, "device": "cpu", "brush_size": 12, "brush_hardness": 0.3}),
                    encoding="utf-8")
    with caplog.at_level("DEBUG", logger="app.settings"):
        settings = Settings.load()
    assert settings.load_warning is None and not caplog.records
    assert settings.device == "cpu" and settings.brush_size == 12
    assert not hasattr(settings, "brush_hardness") and not path.with_name("settings.json.bak").exists()
    settings.save()
    saved = json.loads(path.read_text(encoding="utf-8"))
    assert "brush_hardness" not in saved and saved["brush_size"] == 12


def test_recent_files_are_unique_and_bounded(tmp_path):
    settings = Settings()
    for i in range(MAX_RECENT + 3):
        settings.add_recent(tmp_path / f"{i}.png")
    settings.add_recent(tmp_path / "5.png")
    assert len(settings.recent_files) == MAX_RECENT
    assert settings.recent_files[0].endswith("5.png")
    assert len(set(settings.recent_files)) == MAX_RECENT
    (tmp_path / "5.png").write_bytes(b"x")
    assert settings.existing_recent() == [settings.recent_files[0]]
