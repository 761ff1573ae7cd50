"""Import every module that defines tables, so ``Base.metadata`` is complete.

Each feature adds one import line here.
"""

from store import models  # noqa: F401
from store import deliveries  # noqa: F401
from store import name_counts  # noqa: F401
