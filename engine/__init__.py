"""Inpaint Studio engine: networks, model files, the fill pipeline, image I/O and the CLI. No Qt here."""
