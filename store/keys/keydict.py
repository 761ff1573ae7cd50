"""The key file's keys by id, indexing as it changes the few that are not derived ones.

A key file holds ~9,000 derived birth-date and month keys (ids "d…", "m…") and a few others: the
master KEKs ("k…") and the chain states ("~…"). Lookups by chain state (a chain's cutoff, the
generations held) were a walk of every key, once per candidate of a batch match and once per
distinct key id of ``keys rotate``; they read ``others`` instead. Every way a dict changes
keeps it right (``KeyRing`` makes any dict it is given one of these)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

DERIVED_PREFIXES = ("d", "m")  # keychain.is_derived


class KeyDict(dict[str, bytes]):
    def __init__(self, *args: Any, **kwargs: bytes) -> None:
        super().__init__(*args, **kwargs)
        self._others = dict.fromkeys(k for k in dict.keys(self) if k[:1] not in DERIVED_PREFIXES)

    def others(self) -> list[str]:
        """The ids of the keys that are not derived ones (master KEKs, chain states), in the order
        the key file holds them."""
        return list(self._index())

    def _index(self) -> dict[str, None]:
        try:
            return self._others
        except AttributeError:  # made by copy or pickle, without __init__: its items come after
            self._others = dict.fromkeys(k for k in dict.keys(self) if k[:1] not in DERIVED_PREFIXES)
            return self._others

    def __setitem__(self, key: str, value: bytes) -> None:
        super().__setitem__(key, value)
        if key[:1] not in DERIVED_PREFIXES:
            self._index()[key] = None

    def __delitem__(self, key: str) -> None:
        super().__delitem__(key)
        self._index().pop(key, None)

    def pop(self, key: str, *default: Any) -> Any:
        self._index().pop(key, None)
        return super().pop(key, *default)

    def popitem(self) -> tuple[str, bytes]:
        key, value = super().popitem()
        self._index().pop(key, None)
        return key, value

    def clear(self) -> None:
        super().clear()
        self._index().clear()

    def setdefault(self, key: str, default: bytes = b"") -> bytes:
        if key not in self:
            self[key] = default
        return self[key]

    def update(self, *args: Any, **kwargs: bytes) -> None:
        """As ``dict.update``, in C: an install or a key file's copy adds ~9,000 derived keys, and
        setting each through ``__setitem__`` cost more than the rest of the copy. Only the added
        keys that are not derived ones are indexed (from another ``KeyDict``'s index when it has one)."""
        index = self._index()
        for other in (*args, kwargs):
            if isinstance(other, KeyDict):
                dict.update(self, other)
                index.update(other._index())
                continue
            added: dict[str, bytes] = dict(other.items() if isinstance(other, Mapping) else other)
            dict.update(self, added)
            index.update((key, None) for key in added if key[:1] not in DERIVED_PREFIXES)

    def __ior__(self, other: Any) -> KeyDict:  # type: ignore[override,misc]
        self.update(other)
        return self

    def copy(self) -> KeyDict:
        return KeyDict(self)

    __copy__ = copy  # copy.copy: an index of its own (the instance's, shared, would follow the copy's changes)


def others(keks: Mapping[str, bytes]) -> list[str]:
    """``KeyDict.others`` of a key file's keys (any other mapping is walked)."""
    if isinstance(keks, KeyDict):
        return keks.others()
    return [k for k in keks if k[:1] not in DERIVED_PREFIXES]
