"""End the ``tradeloom`` command's process as Python's exit would, without its teardown.

Python's exit waits for the non-daemon threads (and runs the thread pools' exit hooks),
runs the ``atexit`` handlers, flushes stdout and stderr, and then deallocates every
module and object left. With pandas, numba, scikit-learn and ccxt loaded that last part
took 0.6-0.9 s of every command on a 2-core machine, after its work was done: journals
are committed and closed, files written and closed, before a command returns.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import sys
import threading
from typing import NoReturn

__all__ = ["leave"]


def leave(code: int) -> NoReturn:
    """Exit with ``code`` once the threads and exit handlers are done; skip the teardown.

    Call it from the main thread of a process that is a command (never from a library
    call: it ends the process). Where the interpreter has no thread shutdown hook to
    call, it exits the ordinary way.
    """
    shutdown = getattr(threading, "_shutdown", None)
    if shutdown is None or threading.current_thread() is not threading.main_thread():
        sys.exit(code)
    shutdown()  # joins non-daemon threads; thread pools' exit hooks
    atexit._run_exitfuncs()  # logging's flush, multiprocessing's children, finalizers
    for stream in (sys.stdout, sys.stderr):
        # a closed pipe: what was written is all there is
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    os._exit(code)
