"""The inspector (being written)."""

from __future__ import annotations


def inspect_adata(adata):
    raise NotImplementedError


def summarize_state(state):
    raise NotImplementedError
