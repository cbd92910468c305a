"""How long work reports progress: a plain callback, so the core never imports a UI.

``progress(description, done, total)``; ``total`` 0 means "unknown" (a spinner). The CLI
turns it into a rich bar on a terminal or periodic one-line updates in a log.
"""

from __future__ import annotations

from collections.abc import Callable

ProgressCallback = Callable[[str, int, int], None]


def offset(progress: ProgressCallback | None, done_before: int, part: int, total: int) -> ProgressCallback | None:
    """A callback for one part of a larger job: the part's own ``done / total`` (in whatever
    units it counts: continuations, tokens) becomes ``part`` units of the whole job's ``total``,
    after ``done_before``."""
    if progress is None:
        return None

    def report(desc: str, done: int, own_total: int) -> None:
        share = part * done // own_total if own_total else 0
        progress(desc, done_before + min(part, share), total)

    return report
