"""Exceptions the engine raises with messages meant for people."""


class EngineError(Exception):
    """Base class: the message is shown to the user as is."""


class ImageFileError(EngineError):
    """An image file could not be read or written."""


class ModelFileError(EngineError):
    """A model file is missing, corrupt, refused (pickle) or does not match its card."""


class MaskError(EngineError):
    """A mask does not fit the image or is otherwise unusable."""


class FillCancelled(EngineError):
    """The caller cancelled a fill."""
