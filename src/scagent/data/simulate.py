"""Ground-truth simulator of raw UMI counts (being written)."""

from __future__ import annotations


def simulate(*args, **kwargs):
    raise NotImplementedError
