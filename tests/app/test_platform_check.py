from __future__ import annotations

from app import main as app_main
from app.platform_check import XCB_LIBRARIES, check_platform, uses_xcb


def test_missing_xcb_libraries_are_named_with_the_apt_command():
    message = check_platform({"DISPLAY": ":0"}, loadable=lambda s: s not in ("libxcb-cursor.so.0",
                                                                             "libxcb-icccm.so.4"))
    assert message is not None
    assert "libxcb-cursor.so.0" in message and "libxcb-icccm.so.4" in message
    assert "apt-get install -y libxcb-cursor0 libxcb-icccm4" in message
    assert "libxcb-shape" not in message


def test_nothing_to_say_when_all_load_or_qt_does_not_use_xcb():
    assert check_platform({"DISPLAY": ":0"}, loadable=lambda s: True) is None
    assert check_platform({"DISPLAY": ":0", "QT_QPA_PLATFORM": "offscreen"}, loadable=lambda s: False) is None
    assert not uses_xcb({}, platform="linux")
    assert not uses_xcb({"DISPLAY": ":0"}, platform="darwin")
    assert uses_xcb({"DISPLAY": ":0"}, platform="linux")
    assert len(XCB_LIBRARIES) >= 7


def test_inpaint_gui_prints_one_message_and_exits_nonzero(monkeypatch, capsys):
    monkeypatch.setattr(app_main.QApplication, "instance", staticmethod(lambda: None))
    monkeypatch.setattr("app.platform_check.check_platform", lambda: "inpaint-gui: missing libxcb-cursor.so.0")
    assert app_main.main([]) == 2
    assert "libxcb-cursor.so.0" in capsys.readouterr().err
