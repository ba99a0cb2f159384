"""Demo data of analytics: the rollups rebuilt in full once every other app's demo data is in
(analytics is the last app in INSTALLED_APPS, so `demo_setup` calls this last), so that `make
run` shows every chart with the demo's year of history. Run again, it rebuilds the same tables.
"""

from __future__ import annotations

from collections.abc import Callable


def demo_extend(*, log: Callable[[str], None] = print) -> None:
    from .services import refresh_run, refresh_start

    refresh = refresh_start(full=True, trigger="demo", queue=False)
    refresh = refresh_run(refresh_id=refresh.pk)
    log(f"analytics: rollups rebuilt in full ({refresh.status}), figures as of {refresh.as_of}")
