"""Toolbar and menu icons from qtawesome (Material Design Icons 6), with a blank fallback.

qtawesome renders its font glyphs with QPainter, so it works offscreen and under Xvfb alike; if the font
cannot load for any reason the editor still runs, with text-only buttons.
"""

from __future__ import annotations

import logging

from PySide6.QtGui import QGuiApplication, QIcon, QPalette

log = logging.getLogger(__name__)

NAMES = {
    "open": "mdi6.folder-open-outline",
    "save": "mdi6.content-save-outline",
    "save_as": "mdi6.content-save-edit-outline",
    "undo": "mdi6.undo",
    "redo": "mdi6.redo",
    "brush": "mdi6.brush",
    "eraser": "mdi6.eraser",
    "rectangle": "mdi6.selection-drag",
    "edge_pen": "mdi6.draw",
    "edge_eraser": "mdi6.pencil-off-outline",
    "pan": "mdi6.hand-back-right-outline",
    "predict_edges": "mdi6.vector-polyline",
    "fill": "mdi6.auto-fix",
    "cancel": "mdi6.stop-circle-outline",
    "compare": "mdi6.compare-horizontal",
    "zoom_in": "mdi6.magnify-plus-outline",
    "zoom_out": "mdi6.magnify-minus-outline",
    "fit": "mdi6.fit-to-screen-outline",
    "actual_size": "mdi6.numeric-1-box-outline",
    "mask_grow": "mdi6.arrow-expand-all",
    "mask_shrink": "mdi6.arrow-collapse-all",
    "mask_clear": "mdi6.selection-off",
    "mask_invert": "mdi6.invert-colors",
    "fine_tune": "mdi6.school-outline",
    "about": "mdi6.information-outline",
    "preferences": "mdi6.cog-outline",
}

_cache: dict[tuple[str, str], QIcon] = {}


def icon(key: str) -> QIcon:
    """The icon for ``key`` (see :data:`NAMES`) in the palette's text colour; empty if qtawesome is unavailable."""
    palette = QGuiApplication.palette()
    color = palette.color(QPalette.ButtonText).name()
    disabled = palette.color(QPalette.Disabled, QPalette.ButtonText).name()
    if (key, color) in _cache:
        return _cache[(key, color)]
    result = QIcon()
    name = NAMES.get(key)
    if name is not None:
        try:
            import qtawesome

            result = qtawesome.icon(name, color=color, color_disabled=disabled)
        except Exception as exc:  # missing font, old qtawesome: text-only buttons
            log.warning("icon %s unavailable: %s", name, exc)
    _cache[(key, color)] = result
    return result
