"""``inpaint models``: the fill backends and the model files with their cards (no torch, no device)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from engine.cli_common import EXIT_OK, one_line
from engine.errors import EngineError


def _validation_summary(validation: dict[str, Any]) -> str:
    """One line: the step and the figures of the table's "all" row (or of its first row)."""
    if not validation:
        return "none recorded"
    table = validation.get("table")
    if isinstance(table, dict) and table:
        bucket = "all" if "all" in table else next(iter(table))
        row = table[bucket] if isinstance(table[bucket], dict) else {}
        figures = ", ".join(f"{k} {v:.3g}" for k, v in row.items() if isinstance(v, float))
        count = f" ({row['count']} cases)" if isinstance(row.get("count"), int) else ""
        step = f"step {validation['step']}, " if "step" in validation else ""
        return f"{step}{bucket}: {figures}{count}"
    parts = [f"{k} {v:.3g}" if isinstance(v, float) else f"{k} {v}"
             for k, v in list(validation.items())[:6] if isinstance(v, int | float | str) and len(str(v)) < 40]
    return ", ".join(parts) or "recorded (see the card)"


def scan_model_cards() -> list[dict[str, Any]]:
    """Every card in the bundled and user model folders, valid or not, as plain dicts (user wins on names)."""
    from engine.model_files import weights_path
    from engine.model_store import ModelStore

    entries: list[dict[str, Any]] = []
    for stored in ModelStore().scan():
        entry: dict[str, Any] = {"name": stored.name, "source": stored.source, "path": str(stored.path)}
        card = stored.card
        if stored.error or card is None:
            entry["error"] = " ".join((stored.error or f"{stored.path}: unreadable card").split())
        else:
            entry.update(name=card.name, stage=card.stage, architecture=card.architecture,
                         resolution=card.resolution, steps=card.steps, data=card.data, hardware=card.hardware,
                         companion=card.companion, license=card.license, description=card.description,
                         validation=card.validation,
                         size_mb=round(weights_path(stored.path).stat().st_size / 2**20, 2))
        entries.append(entry)
    names_user = {e["name"] for e in entries if e["source"] == "user" and "error" not in e}
    for e in entries:
        if e["source"] == "bundled" and e["name"] in names_user:
            e["shadowed"] = True
    return entries


def cmd_models(args: argparse.Namespace) -> int:
    from engine.backends import list_backends, resolve_model_name
    from engine.model_store import ModelStore
    from engine.paths import bundled_models_dir, user_models_dir

    cards = scan_model_cards()
    backends = []
    backend_error = default = None
    try:  # no Engine: listing needs neither torch nor a device, so this answers at once
        store = ModelStore()
        backends = list_backends(store)
        default = resolve_model_name(store, "default")
    except EngineError as exc:
        backend_error = one_line(exc)
    if args.json:
        doc = {"default": default, "backends": [vars(b) for b in backends], "model_files": cards,
               "bundled_dir": str(bundled_models_dir()), "user_dir": str(user_models_dir())}
        if backend_error:
            doc["backend_error"] = backend_error
        print(json.dumps(doc, indent=1, default=str))
        return EXIT_OK
    print(f"Fill backends (use with --model NAME; 'default' is {default}):")
    if backend_error:
        print(f"  (could not list: {backend_error})")
    for b in backends:
        if b.kind == "unavailable":
            print(f"  {b.name:<28} unavailable (see broken model files below)")
            continue
        tags = ["edge-guided" if b.uses_edges else "", "default" if b.name == default else ""]
        print(f"  {b.name:<28} {b.kind:<10} {b.source:<8} {' '.join(t for t in tags if t)}".rstrip())
    print(f"\nModel files (bundled: {bundled_models_dir()}; user: {user_models_dir()}):")
    good = [c for c in cards if "error" not in c]
    if not good:
        print("  none")
    for c in good:
        flag = "  (hidden by a user model of the same name)" if c.get("shadowed") else ""
        print(f"  {c['name']} [{c['source']}]{flag}")
        line = (f"    {c['stage']} model, architecture {c['architecture']}, working resolution {c['resolution']} px, "
                f"{c['steps']} training steps")
        if c.get("companion"):
            line += f", edge model {c['companion']}"
        print(line + f", {c['size_mb']} MB")
        if c.get("data"):
            print(f"    data: {c['data']}")
        if c.get("hardware"):
            print(f"    hardware: {c['hardware']}")
        print(f"    validation: {_validation_summary(c.get('validation') or {})}")
    broken = [c for c in cards if "error" in c]
    broken_names = {c["name"] for c in broken}
    # Usable files whose fill backend is still unavailable (e.g. an image model whose edge companion is broken).
    broken += [{"path": b.path or b.name, "source": b.source, "error": b.description}
               for b in backends if b.kind == "unavailable" and b.name not in broken_names]
    if broken:
        print("\nBroken model files (not offered):")
        for c in broken:
            print(f"  {Path(c['path']).name} [{c['source']}]: {c['error']}")
    return EXIT_OK
