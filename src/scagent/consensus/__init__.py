"""Consensus clustering and grounded interpretation: several members, one typed run, evidence-bound claims.

:func:`consensus` clusters with several members and combines them (``kmode`` or
``coassoc``); :func:`write_run` / :func:`load_run` write and verify the typed run folder;
:func:`interpret_run` interprets a verified run under hard evidence invariants. See
``docs/consensus.md``.
"""

from __future__ import annotations

from scagent.consensus.align import align_labels, relabel_by_size
from scagent.consensus.interpret import BANNER_LLM, BANNER_NO_LLM, interpret_run
from scagent.consensus.members import DEFAULT_MEMBERS, MEMBER_METHODS, parse_members
from scagent.consensus.operators import OPERATORS, coassoc, kmode, pairwise_nmi
from scagent.consensus.run import ConsensusResult, TypedRun, consensus, load_run, write_run

__all__ = [
    "BANNER_LLM",
    "BANNER_NO_LLM",
    "DEFAULT_MEMBERS",
    "MEMBER_METHODS",
    "OPERATORS",
    "ConsensusResult",
    "TypedRun",
    "align_labels",
    "coassoc",
    "consensus",
    "interpret_run",
    "kmode",
    "load_run",
    "pairwise_nmi",
    "parse_members",
    "relabel_by_size",
    "write_run",
]
