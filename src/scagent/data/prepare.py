"""Bring data into the state a step needs (being written)."""

from __future__ import annotations


def ensure_ready_for(adata, state, needs):
    raise NotImplementedError


def get_counts(adata, state=None):
    raise NotImplementedError
