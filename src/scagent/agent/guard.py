"""The gene-name guard: the agent never prints a gene that is neither in the data nor in a tool result.

A language model may name genes that the data does not hold (a real gene that was not
measured, an outdated alias, or an invented one). Before the model's text is printed,
every token shaped like a gene symbol is checked:

* in ``var_names`` or in a tool result of this conversation: kept;
* an alias or a case variant of a gene in the data (``CD56`` -> ``NCAM1``): corrected;
* otherwise: replaced by ``[gene not in the data]``; the name itself is never printed.

A token counts as a gene claim when it is an official symbol scagent knows offline
(GENCODE human, MGI mouse), a known alias, or is shaped like one with a digit
(``FAKE1``); common upper-case words of the trade (PCA, UMAP, QC, DE) are not genes.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

__all__ = ["GeneGuard", "GuardReport"]

#: Upper-case words in analysis talk that are not gene claims even where they collide
#: with a symbol or alias (e.g. ``PCA`` is an alias, ``CAF`` too).
NOT_GENES = frozenset(
    """
    A I AN AND ARE AS AT BE BY DO IF IN IS IT NO NOT OF ON OR SO THE TO UP WE OK
    QC DE DEG DEGS PCA PC UMAP TSNE HVG HVGS KNN UMI UMIS MT RNA DNA CDNA MRNA SCRNA SC
    ARI NMI AUC FDR LFC FC LOG CPM TPM CP10K SNN MAD PBMC PBMCS CAF CAFS NK ILC DC DCS
    PDC MDC TREG TREGS ID IDS LLM API JSON CSV HTML OBS VAR GPU CPU USA UK EU
    WT KO HD COPD TB HIV COVID SARS TCR BCR MHC HLA GO KEGG GSEA ORA MSIGDB
    ES ESC IPSC MSC HSC HSPC EC ECS SMC NB ML AI NB
    I II III IV V VI VII VIII IX X
    """.split()
)

_TOKEN = re.compile(r"(?<![\w\-/.])([A-Za-z][A-Za-z0-9]*(?:[\-.][A-Za-z0-9]+)*)(?![\w\-/])")
_UPPER_WITH_DIGIT = re.compile(r"^[A-Z][A-Z0-9]*\d[A-Z0-9]*(?:-[A-Z0-9]+)?$")
_MOUSE_WITH_DIGIT = re.compile(r"^[A-Z][a-z][a-z0-9]*\d[a-z0-9]*$")
_PLACEHOLDER = "[gene not in the data]"
#: Embedding axes and versions, shaped like genes with digits but never genes.
_NOT_GENE_SHAPES = re.compile(r"^(?:PC|UMAP|TSNE|DC|LD|V|R|GPT|CP|P|Q|S|G|T|N|H)\d+$", re.I)


@dataclass
class GuardReport:
    """What the guard did to one text."""

    text: str
    corrected: dict[str, str] = field(default_factory=dict)
    removed: int = 0

    @property
    def changed(self) -> bool:
        return bool(self.corrected) or self.removed > 0

    def note(self) -> str:
        """A line for the user; never names a removed gene."""
        parts = []
        if self.corrected:
            parts.append(
                "corrected "
                + ", ".join(f"{a} -> {b}" for a, b in self.corrected.items())
                + " to the names in the data"
            )
        if self.removed:
            parts.append(
                f"removed {self.removed} gene name{'s' if self.removed > 1 else ''} that "
                "the data does not hold and no tool reported"
            )
        return "gene check: " + "; ".join(parts) if parts else ""


class GeneGuard:
    """Checks gene names in text against the data's genes and the genes tools reported.

    Parameters
    ----------
    var_names
        The genes of the data.
    species
        ``human`` or ``mouse`` (for aliases and the offline symbol lists); guessed from
        the data when ``None``.
    """

    def __init__(self, var_names: Iterable[str], species: str | None = None) -> None:
        self.genes = {str(g) for g in var_names}
        self._upper = {g.upper(): g for g in self.genes}
        self.allowed: set[str] = set()
        if species not in ("human", "mouse"):
            species = (
                "mouse"
                if sum(g[:1].isupper() and g[1:2].islower() for g in list(self.genes)[:500]) > 250
                else "human"
            )
        self.species = species

    def allow(self, genes: Iterable[str]) -> None:
        """Genes that a tool result named (printable even when not in var_names)."""
        self.allowed.update(str(g) for g in genes)

    def allow_from_text(self, text: str) -> None:
        """Allow every gene-shaped token of a tool result's text."""
        self.allow(m.group(1) for m in _TOKEN.finditer(text))

    def update_genes(self, var_names: Iterable[str]) -> None:
        self.genes = {str(g) for g in var_names}
        self._upper = {g.upper(): g for g in self.genes}

    # ------------------------------------------------------------------ checks
    def _known_symbol(self, token: str) -> bool:
        from scagent.knowledge import genes as kg

        try:
            return kg.is_official_symbol(token, self.species)
        except Exception:  # the symbol tables are optional data; shape rules still apply
            return False

    def _alias_targets(self, token: str) -> list[str]:
        from scagent.knowledge import genes as kg

        try:
            return kg.resolve_alias(token, self.species)
        except Exception:
            return [token]

    def is_gene_claim(self, token: str) -> bool:
        """Whether ``token`` reads as a gene name."""
        if token.upper() in NOT_GENES or _NOT_GENE_SHAPES.match(token):
            return False
        if len(token) < 2:
            return False
        if token in self.genes or token in self.allowed:
            return True
        if token.upper() in self._upper and any(c.isdigit() for c in token):
            # "cd8b" for CD8B; words without a digit ("was" vs WAS) stay words.
            return True
        shaped = bool(_UPPER_WITH_DIGIT.match(token) or _MOUSE_WITH_DIGIT.match(token))
        if self._known_symbol(token):
            # Title-case English words ("Cell", "Data") are mouse symbols for some genes;
            # only treat them as genes when upper case (human) or shaped with a digit.
            return token.isupper() or shaped
        targets = self._alias_targets(token)
        if token.isupper() and targets and targets != [token.upper()]:
            return True
        return shaped

    def check(self, text: str) -> GuardReport:
        """Return ``text`` with every gene claim kept, corrected or replaced."""
        report = GuardReport(text)
        out: list[str] = []
        last = 0
        for m in _TOKEN.finditer(text):
            token = m.group(1)
            if not self.is_gene_claim(token):
                continue
            replacement = self._fix(token, report)
            if replacement is None:
                continue
            out.append(text[last : m.start(1)])
            out.append(replacement)
            last = m.end(1)
        out.append(text[last:])
        report.text = "".join(out)
        return report

    def _fix(self, token: str, report: GuardReport) -> str | None:
        """None keeps the token; otherwise its replacement."""
        if token in self.genes or token in self.allowed:
            return None
        if token.upper() in self._upper:  # case variant of a gene in the data
            fixed = self._upper[token.upper()]
            report.corrected[token] = fixed
            return fixed
        present = [t for t in self._alias_targets(token) if t in self.genes]
        if present:
            fixed = "/".join(present)
            report.corrected[token] = fixed
            return fixed
        report.removed += 1
        return _PLACEHOLDER
