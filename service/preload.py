"""What every `phoneline serve` worker starts with, loaded once: the fork server the workers
are forked from (service/serving.py) imports this module, and each worker forked from it finds
the service and its libraries imported, the language model loaded, the sign-in hash made and
the flow files read and checked (about 2 s of a processor that a spawned worker spent on its
own; the flows, 0.3 s, when a line still serves its seed file's text), shared with the others
until one of them writes to it. `kill -HUP` starts a new fork server, which imports it afresh.

Importing it does all that: a fork server runs nothing but imports."""

from __future__ import annotations

import contextlib
import gc
import os

try:
    from service.config import get_settings
    from service.flowengine.language import warm_up
    from service.lines.book import read_ahead
    from service.main import create_app_for_workers  # noqa: F401 (the whole service)
    from service.metrics import forget_process
    from service.staff.auth import prepare_sign_in
except Exception:
    # Broken code (a `kill -HUP` after a bad deploy): a worker forked from here imports it
    # again and fails at its start, as a spawned one would, and says why; the supervisor then
    # keeps the workers that run.
    pass
else:
    warm_up()
    prepare_sign_in()
    with contextlib.suppress(Exception):  # settings a worker will refuse, and say why
        read_ahead(get_settings().flows_dir)
    forget_process(os.getpid())  # it serves nothing: the values its imports made are no one's
    # What the workers are forked with lives as long as they do: out of the collector's full
    # passes, and not copied into each worker by them.
    gc.collect()
    gc.freeze()
