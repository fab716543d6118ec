"""The engine: runs (their stages in order), the scheduler, and the training loop stages share.

Importing it caps how long torch's OpenMP threads spin at a barrier before they sleep
(``GOMP_SPINCOUNT=10000``, about 0.1 ms), unless the environment sets ``GOMP_SPINCOUNT`` or
``OMP_WAIT_POLICY`` itself or torch is imported already (OpenMP reads them once, when torch
loads). By default they spin for much longer: when anything else wants the cores (another run,
the app, the store's writer thread, a test suite) a spinning thread keeps the thread it waits
for off its core, and training ran 5-15x slower on 2 shared cores. Capped, it runs as fast as
before on an idle machine and within ~1.3x of ``OMP_WAIT_POLICY=PASSIVE`` under contention,
where PASSIVE itself costs 10-25% on an idle machine (see BENCHMARKS.md, section 6).
"""

from __future__ import annotations

import os
import sys

if "torch" not in sys.modules and not {"GOMP_SPINCOUNT", "OMP_WAIT_POLICY"} & set(os.environ):
    os.environ["GOMP_SPINCOUNT"] = "10000"
