"""tlcore: transfer learning on images, the library behind the dashboard.

Modules are imported by name (`from tlcore import train`); importing the package itself
only chooses the Keras backend, so `import tlcore` stays cheap.
"""
from __future__ import annotations

import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

__version__ = "0.1.0"
