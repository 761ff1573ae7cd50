"""Every table Signpost keeps, defined once, each classified by the personal data it holds.

Importing this package registers every table on ``Base.metadata``; retention, decommissioning, key
rotation and backup derive their lists from that metadata, never from a list written by hand.
"""

from store.tables import audit, delivery, lifecycle, people, register
from store.tables.base import Base

__all__ = ["Base", "audit", "delivery", "lifecycle", "people", "register"]
