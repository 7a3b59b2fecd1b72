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
