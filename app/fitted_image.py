"""A label that shows an image scaled to fit its current size (aspect kept, never above 2x), rescaled on resize."""

from __future__ import annotations

from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QPixmap, QResizeEvent
from PySide6.QtWidgets import QLabel, QSizePolicy, QWidget

MAX_ZOOM = 2.0  # small sample grids are enlarged up to this factor, no more (they would only get blurry)


class FittedImageLabel(QLabel):
    """``set_image(pixmap)`` keeps the source; what is drawn is the source scaled to fit the label."""

    def __init__(self, placeholder: str = "", parent: QWidget | None = None) -> None:
        super().__init__(placeholder, parent)
        self.setAlignment(Qt.AlignCenter)
        self.setWordWrap(True)
        self.setSizePolicy(QSizePolicy.Ignored, QSizePolicy.Ignored)  # the layout decides; the image follows
        self._source = QPixmap()

    def source(self) -> QPixmap:
        """The image as given (not scaled)."""
        return self._source

    def set_image(self, pixmap: QPixmap) -> None:
        self._source = QPixmap(pixmap)
        self._rescale()

    def clear_image(self, placeholder: str) -> None:
        self._source = QPixmap()
        self.setPixmap(QPixmap())
        self.setText(placeholder)

    def fitted_size(self, available: QSize) -> QSize:
        """Size the source is drawn at in ``available``: fits, keeps its aspect, at most ``MAX_ZOOM`` x."""
        if self._source.isNull():
            return QSize()
        limit = self._source.size() * MAX_ZOOM
        bounded = QSize(min(available.width(), limit.width()), min(available.height(), limit.height()))
        return self._source.size().scaled(bounded, Qt.KeepAspectRatio)

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        self._rescale()

    def _rescale(self) -> None:
        if self._source.isNull():
            return
        size = self.fitted_size(self.contentsRect().size())
        if size.width() > 0 and size.height() > 0:
            self.setPixmap(self._source.scaled(size, Qt.KeepAspectRatio, Qt.SmoothTransformation))
