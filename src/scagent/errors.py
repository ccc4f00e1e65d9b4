"""One exception hierarchy for scagent: every error has a stable exit code and a one-line remedy.

The CLI prints ``error: <message> — <remedy>`` and exits with ``exit_code``; scripts may
rely on the codes below, which never change meaning once released.

==== ===============================  ==================================================
code class                             meaning
==== ===============================  ==================================================
1    ScagentError                      unexpected failure inside scagent
2    InvalidParameterError             a parameter is unknown, of the wrong type or out of range
3    InputNotFoundError                a path that was given does not exist
4    UnsupportedFormatError            the file type is not one scagent reads
5    CorruptInputError                 the file exists but cannot be parsed (truncated, corrupt)
6    InvalidDataError                  the data is readable but unusable (empty, NaN/Inf, negative counts)
7    DataStateError                    the data is not in the state a step needs (e.g. no raw counts)
8    MissingPrerequisiteError          a step needs earlier steps that have not been run
9    ProjectError                      the project folder or its project.json is missing or invalid
10   StoreCorruptionError              an object in the snapshot store failed its hash check
11   ProjectLockedError                another process holds the project lock
12   IncompatibleVersionError          the project was written by a newer scagent
13   UnknownToolError                  no tool with that id is registered
14   RefNotFoundError                  a branch, step or snapshot reference does not exist
15   KnowledgeError                    a marker / gene-set / ontology file is malformed
16   LLMError                          the LLM backend failed after retries
17   MissingDependencyError            an optional dependency (extra) is not installed
130  StepInterruptedError              the step was interrupted (Ctrl-C); nothing was written
==== ===============================  ==================================================
"""

from __future__ import annotations

__all__ = [
    "EXIT_CODES",
    "CorruptInputError",
    "DataStateError",
    "IncompatibleVersionError",
    "InputNotFoundError",
    "InvalidDataError",
    "InvalidParameterError",
    "KnowledgeError",
    "LLMError",
    "MissingDependencyError",
    "MissingPrerequisiteError",
    "ProjectError",
    "ProjectLockedError",
    "RefNotFoundError",
    "ScagentError",
    "StepInterruptedError",
    "StoreCorruptionError",
    "UnknownToolError",
    "UnsupportedFormatError",
]


class ScagentError(Exception):
    """Base class of every error scagent raises on purpose.

    Parameters
    ----------
    message
        What went wrong, naming the offending input.
    remedy
        One line telling the user what to do; defaults to the class remedy.
    """

    exit_code: int = 1
    default_remedy: str = "re-run with --debug and report the traceback"

    def __init__(self, message: str, remedy: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.remedy = remedy or self.default_remedy

    def one_line(self) -> str:
        """The line the CLI prints: ``<message> — <remedy>``."""
        return f"{self.message} — {self.remedy}"


class InvalidParameterError(ScagentError, ValueError):
    exit_code = 2
    default_remedy = "check the parameter name and its allowed range (see --help)"


class InputNotFoundError(ScagentError, FileNotFoundError):
    exit_code = 3
    default_remedy = "check the path; relative paths are resolved from the current folder"


class UnsupportedFormatError(ScagentError, ValueError):
    exit_code = 4
    default_remedy = "use .h5ad, .zarr, .loom, .h5 (10x), a 10x matrix folder, .csv or .tsv"


class CorruptInputError(ScagentError, ValueError):
    exit_code = 5
    default_remedy = "the file is truncated or corrupt; re-export or re-download it"


class InvalidDataError(ScagentError, ValueError):
    exit_code = 6
    default_remedy = "fix the data at its source; scagent will not guess"


class DataStateError(ScagentError, ValueError):
    exit_code = 7
    default_remedy = "run `scagent inspect FILE` to see what state the data is in"


class MissingPrerequisiteError(ScagentError):
    exit_code = 8
    default_remedy = "run the missing steps first, or pass --auto to run them"


class ProjectError(ScagentError):
    exit_code = 9
    default_remedy = "run `scagent init` in this folder, or fix .scagent/project.json"


class StoreCorruptionError(ScagentError):
    exit_code = 10
    default_remedy = (
        "the snapshot store is damaged; check out an earlier snapshot or restore .scagent/"
    )


class ProjectLockedError(ScagentError):
    exit_code = 11
    default_remedy = "another scagent process is writing this project; wait for it to finish"


class IncompatibleVersionError(ScagentError):
    exit_code = 12
    default_remedy = "upgrade scagent (pip install -U scagent) to open this project"


class UnknownToolError(ScagentError, KeyError):
    exit_code = 13
    default_remedy = "run `scagent tools` to list the registered tools"

    def __str__(self) -> str:  # KeyError would otherwise quote the message
        return self.message


class RefNotFoundError(ScagentError, KeyError):
    exit_code = 14
    default_remedy = "run `scagent branch list` to see branches and steps"

    def __str__(self) -> str:
        return self.message


class KnowledgeError(ScagentError, ValueError):
    exit_code = 15
    default_remedy = "check the marker / gene-set file format (see `scagent knowledge --help`)"


class LLMError(ScagentError):
    exit_code = 16
    default_remedy = "check the backend, key and base URL, or use --llm offline"


class MissingDependencyError(ScagentError, ImportError):
    exit_code = 17
    default_remedy = "pip install 'scagent[all]'"


class StepInterruptedError(ScagentError):
    """Raised in place of KeyboardInterrupt once a step has been rolled back.

    Not a KeyboardInterrupt subclass on purpose: the CLI framework turns those into a bare
    "Aborted!", and the user must learn that nothing was written.
    """

    exit_code = 130
    default_remedy = "the step was interrupted; the project is as it was before, run it again"


def _collect() -> dict[str, int]:
    out = {}
    stack: list[type[ScagentError]] = [ScagentError]
    while stack:
        cls = stack.pop()
        out[cls.__name__] = cls.exit_code
        stack.extend(cls.__subclasses__())
    return out


#: Exit code of every error class, by class name (documented in ``docs/errors.md``).
EXIT_CODES: dict[str, int] = _collect()
