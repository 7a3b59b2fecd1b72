"""One in-process model load at a time.

While transformers (or sentence-transformers on top of it) loads a model it swaps process-wide state
(torch's weight initialisers, the default device for new tensors), so a second load in another thread
at the same moment comes out with empty "meta" weights: measured, an embedding model loading while a
base model was dequantised failed that save three times out of three. Every in-process load of a
transformers model holds this lock; the trainer runs in its own process and needs none.
"""

from __future__ import annotations

import threading

MODEL_LOADS = threading.RLock()


def peak_rss_bytes() -> int:
    """This process's own peak resident memory. On Linux from ``VmHWM`` (the high-water mark of
    this program's memory map): ``ru_maxrss`` also counts the parent a process was started from
    (it survives exec), so a trainer started by the app would report at least the app's peak."""
    import resource
    import sys

    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak) * (1 if sys.platform == "darwin" else 1024)  # bytes on macOS, KiB elsewhere
