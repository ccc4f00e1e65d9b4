"""Reading single-cell data from every common format into AnnData (being written)."""

from __future__ import annotations


def read(path, **opts):
    raise NotImplementedError


def read_many(paths, sample_names=None, **opts):
    raise NotImplementedError
