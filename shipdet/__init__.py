"""shipdet: ship detection in satellite imagery.

The core package holds what every part shares: the `Detections` type, box geometry, tiling and seam merging,
georeferencing and the typed errors. Training (`shipdet.train`), serving (`shipdet.serve`) and dataset
conversion (`shipdet.datasets`) live in the repository's top-level folders of those names.
"""

from shipdet.detections import Detections
from shipdet.errors import ShipdetError

__all__ = ["Detections", "ShipdetError"]
__version__ = "0.1.0"
