"""Data shipped with Inpaint Studio: ``models/`` holds the bundled model files and their cards.

A package only so that the data travels in the wheel and is found the same way in a checkout, an editable
install and an installed wheel (``importlib.resources.files("resources") / "models"``; see
``engine.paths.bundled_models_dir``). It holds no code.
"""
