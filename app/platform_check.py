"""Before any QApplication exists: can Qt's xcb platform plugin load on this machine?

On a bare Debian/Ubuntu the plugin's X11 libraries are missing and Qt aborts the process (exit 134) with
a message that names one library at a time. This check finds all of them at once with ``ctypes`` and
lets ``inpaint-gui`` print one message naming them and the command that installs them. No Qt import.
"""

from __future__ import annotations

import ctypes
import os
import sys

# soname the xcb plugin (Qt 6.5+) loads -> the Debian/Ubuntu package that ships it
XCB_LIBRARIES: dict[str, str] = {
    "libxcb-cursor.so.0": "libxcb-cursor0",
    "libxcb-icccm.so.4": "libxcb-icccm4",
    "libxcb-keysyms.so.1": "libxcb-keysyms1",
    "libxcb-shape.so.0": "libxcb-shape0",
    "libxcb-render-util.so.0": "libxcb-render-util0",
    "libxcb-image.so.0": "libxcb-image0",
    "libxkbcommon-x11.so.0": "libxkbcommon-x11-0",
    "libEGL.so.1": "libegl1",
    "libGL.so.1": "libgl1",
}


def _loadable(soname: str) -> bool:
    try:
        ctypes.CDLL(soname)
    except OSError:
        return False
    return True


def uses_xcb(environ: dict[str, str] | None = None, platform: str | None = None) -> bool:
    """True when Qt will pick its xcb plugin: Linux, QT_QPA_PLATFORM unset or xcb, and an X display."""
    env = os.environ if environ is None else environ
    if (platform or sys.platform) != "linux":
        return False
    requested = env.get("QT_QPA_PLATFORM", "").split(":")[0].strip()
    if requested and requested != "xcb":
        return False
    if not requested and env.get("WAYLAND_DISPLAY") and not env.get("DISPLAY"):
        return False
    return bool(env.get("DISPLAY")) or requested == "xcb"


def missing_xcb_libraries(loadable=_loadable) -> list[str]:
    """The sonames of XCB_LIBRARIES that cannot be loaded."""
    return [soname for soname in XCB_LIBRARIES if not loadable(soname)]


def missing_libraries_message(missing: list[str]) -> str:
    packages = " ".join(XCB_LIBRARIES[s] for s in missing)
    return (f"inpaint-gui: Qt's X11 platform plugin cannot load: missing {', '.join(missing)}.\n"
            f"On Debian/Ubuntu install them with:  sudo apt-get install -y {packages}\n"
            "(other distributions: install the packages that provide these libraries; "
            "or run without a window with QT_QPA_PLATFORM=offscreen)")


def check_platform(environ: dict[str, str] | None = None, loadable=_loadable) -> str | None:
    """The message to print when the editor's window cannot open here, else None."""
    if not uses_xcb(environ):
        return None
    missing = missing_xcb_libraries(loadable)
    return missing_libraries_message(missing) if missing else None
