"""User-facing errors.

Every failure a user can cause (bad input, a wrong recipe, an unreachable Hub) raises a subclass of
:class:`EsZooError`; the CLI prints its message and exits non-zero, without a traceback.
"""

from __future__ import annotations


class EsZooError(Exception):
    """A problem the user can fix; the message says what and where."""


class RecipeError(EsZooError):
    """A recipe or override that does not match the schema."""


class CorpusError(EsZooError):
    """A corpus that is missing, unreadable, malformed or too small."""


class HubUnreachableError(EsZooError):
    """A Hub id that cannot be resolved (offline, no network, or no such repo)."""


class RunDirError(EsZooError):
    """An output folder that already holds a different run, or a run that cannot resume."""


class FirstProcessFailed(RunDirError):
    """Raised on the other processes of a launch when the first one stopped during setup; the first
    process has printed the reason, so the CLI prints nothing more for these."""


class TrainingError(EsZooError):
    """Training cannot continue (for example a NaN loss); the last good checkpoint is intact."""


class ObjectiveError(EsZooError):
    """Input that a pretraining objective cannot corrupt (too short, or a tokenizer without the
    special tokens the objective needs)."""
