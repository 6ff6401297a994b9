"""Fixtures of the development scripts' tests (``tools/``, run from the checkout): the engine's tiny models."""

from tests.engine.conftest import _tiny_models_master, tiny_models_dir  # noqa: F401 (fixtures)
