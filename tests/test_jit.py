"""`tradeloom.jit.kernel` before numba is loaded: a lazy kernel, numba's at first use."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np

from tradeloom.jit import LazyKernel

_PROBE = textwrap.dedent(
    """
    import pickle, sys
    import numpy as np
    from tradeloom.jit import LazyKernel
    from tradeloom.plugins.features import rsi, smoothing
    assert "numba" not in sys.modules, "importing kernels imported numba"
    assert isinstance(rsi.rsi_step, LazyKernel) and isinstance(smoothing.wilder_step, LazyKernel)
    assert pickle.loads(pickle.dumps(rsi.rsi_step)) is rsi.rsi_step
    state = rsi.new_rsi_state()
    values = [rsi.rsi_step(state, c, 3) for c in (1.0, 2.0, 3.0, 2.5, 4.0)]
    assert "numba" in sys.modules
    # the module's global is numba's dispatcher from then on; compiling rsi_step (an
    # empty cache) typed the lazy kernels it calls through their _numba_type_
    assert type(rsi.rsi_step).__name__ == "CPUDispatcher"
    assert type(smoothing.wilder_step).__name__ == "CPUDispatcher"
    print(values)
    """
)


def test_kernels_import_numba_at_their_first_call_and_give_the_compiled_numbers(
    tmp_path: Path,
) -> None:
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path)}  # nothing cached: it compiles
    done = subprocess.run(
        [sys.executable, "-c", _PROBE],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        env=env,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[nan, nan, nan, 80.0, 89.47368421052632]"


def test_a_lazy_kernel_is_called_pickled_and_read_like_the_dispatcher() -> None:
    def _twice(x: float) -> float:
        return 2.0 * x

    lazy = LazyKernel(_twice)
    assert lazy.__name__ == "_twice"
    assert "not compiled yet" in repr(lazy)
    assert lazy(np.float64(1.5)) == 3.0
    assert lazy.py_func is _twice  # numba's dispatcher's own attribute
    assert lazy.signatures  # compiled for the float call
