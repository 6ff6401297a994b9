"""At startup: offer the sessions of editors that did not close cleanly, and restore the one accepted.

:func:`offer_recovery` asks through the prompter, restores into the editor's document (with
:func:`app.session.recover`) and hands the session over to the editor's own autosaver before the old one is
removed. The window only reports the outcome.
"""

from __future__ import annotations

import logging

from app import session as session_module
from app import session_slots
from app.document import Document
from app.file_ops import FileOps
from app.prompts import Prompter

log = logging.getLogger(__name__)


def offer_recovery(document: Document, files: FileOps, autosaver: session_module.AutoSaver,
                   prompter: Prompter) -> bool:
    """Offer the orphaned sessions, newest first; True if one was recovered (any others stay for the next start).

    Declining removes that session. One that cannot be restored is never deleted here: damaged files are
    set aside (``damaged-<id>``), and one whose photo cannot be reached now (a drive not mounted) is
    kept and offered again next time.
    """
    recovered_one = False
    for orphan in session_slots.claim_orphans():
        if recovered_one:
            orphan.release(clear=False)
            continue
        recovered_one = _offer(orphan, document, files, autosaver, prompter)
    return recovered_one


def _offer(orphan: session_slots.SessionSlot, document: Document, files: FileOps,
           autosaver: session_module.AutoSaver, prompter: Prompter) -> bool:
    summary = session_module.session_summary(orphan.folder) or {}
    photo = summary.get("photo_path") or "an unsaved photo"
    when = summary.get("saved_at", "")
    steps = summary.get("history_steps", 0)
    question = (f"The editor did not close cleanly last time.\n\nRecover the session with {photo} "
                f"({steps} edit{'s' if steps != 1 else ''}, saved {when})?")
    if not prompter.confirm("Recover session", question, default=True):
        orphan.release(clear=True)
        return False
    try:
        recovered = session_module.recover(document, orphan.folder)
    except session_module.SessionDamaged as exc:
        kept = orphan.set_aside()
        prompter.error("Cannot recover the session", f"{exc}\n\nIts files were kept in {kept}.")
        return False
    except session_module.SessionError as exc:
        orphan.release(clear=False)
        prompter.error("Cannot recover the session",
                       f"{exc}\n\nThe session is kept and will be offered again at the next start.")
        return False
    files.save_target = recovered.save_target  # before the hand-over: that snapshot must carry it too
    files._original_confirmed = False
    try:  # this editor's own session takes over before the old one is removed
        saved = autosaver.save_sync()
    except Exception as exc:  # disk full...: keep the old one rather than lose both
        log.warning("could not save the recovered session: %s", exc)
        saved = None
    orphan.release(clear=saved is not None)
    if recovered.messages:
        prompter.warning("Session recovered", "\n".join(recovered.messages))
    return True
