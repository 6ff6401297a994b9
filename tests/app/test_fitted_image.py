"""FittedImageLabel: the image follows the label's size, keeps its aspect and is enlarged at most MAX_ZOOM x."""

from __future__ import annotations

from PySide6.QtCore import QSize
from PySide6.QtGui import QColor, QPixmap

from app.fitted_image import MAX_ZOOM, FittedImageLabel


def _pixmap(width: int, height: int) -> QPixmap:
    pixmap = QPixmap(width, height)
    pixmap.fill(QColor("teal"))
    return pixmap


def test_the_image_fits_the_label_and_follows_its_resizes(qtbot) -> None:
    label = FittedImageLabel("placeholder")
    qtbot.addWidget(label)
    label.show()  # a hidden widget gets its resize events only when shown
    label.resize(300, 100)
    label.set_image(_pixmap(400, 200))
    assert label.pixmap().size() == QSize(200, 100)  # height-bound, aspect 2:1 kept
    label.resize(150, 400)
    assert label.pixmap().size() == QSize(150, 75)  # width-bound now
    assert label.source().size() == QSize(400, 200)  # the source is kept unscaled


def test_small_images_are_enlarged_at_most_max_zoom(qtbot) -> None:
    label = FittedImageLabel()
    qtbot.addWidget(label)
    label.resize(2000, 2000)
    label.set_image(_pixmap(100, 50))
    assert label.pixmap().size() == QSize(int(100 * MAX_ZOOM), int(50 * MAX_ZOOM))


def test_clear_image_shows_the_placeholder_again(qtbot) -> None:
    label = FittedImageLabel()
    qtbot.addWidget(label)
    label.set_image(_pixmap(10, 10))
    label.clear_image("nothing yet")
    assert label.source().isNull() and label.pixmap().isNull() and label.text() == "nothing yet"
    label.resize(50, 50)  # a resize without an image draws nothing
    assert label.pixmap().isNull()
