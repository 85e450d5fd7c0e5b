"""The one exception tree of the reconciler.

    ReconcilerError                      everything the CLI reports as a one-line error
    ├── ConfigError                      bad input; carries file, line and column
    │   └── ConfigErrors                 several ConfigErrors reported together
    ├── RuleSyntaxError                  a rule tree the rule library cannot process
    ├── UnsafePlanError                  a safety limit refused the plan (exit 3)
    ├── StalePlanError                   a saved plan no longer matches the live state
    ├── ApplyFailed                      one or more changes failed during apply
    ├── ConvergenceError                 the re-read after apply still shows changes
    └── ProviderError                    anything a provider reports
        ├── AuthError                    credentials refused
        ├── NotFound                     the object does not exist (any more)
        ├── RateLimited                  the platform kept answering "slow down"
        ├── ConflictError                state changed underneath us, or duplicate names
        ├── PlatformOwned                the platform owns the object: left alone, not failed
        └── ApiError                     any other failed call: method, URL, status, body

The CLI catches only ``ReconcilerError``; anything else is a bug and keeps its traceback.
This module imports nothing from the package.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

__all__ = [
    "ApiError",
    "ApplyFailed",
    "AuthError",
    "ConfigError",
    "ConfigErrors",
    "ConflictError",
    "ConvergenceError",
    "NotFound",
    "PlatformOwned",
    "ProviderError",
    "RateLimited",
    "ReconcilerError",
    "RuleSyntaxError",
    "StalePlanError",
    "UnsafePlanError",
]


class ReconcilerError(Exception):
    """Root of every error the reconciler reports to users."""

    exit_code: int = 1

    def lines(self) -> list[str]:
        """The message as one or more one-line reports."""
        return [str(self)]


class ConfigError(ReconcilerError):
    """Invalid input, pointing at ``file:line:column`` when the position is known."""

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        line: int | None = None,
        column: int | None = None,
    ) -> None:
        self.message = message
        self.file = file
        self.line = line
        self.column = column
        super().__init__(self.location_prefix() + message)

    def location_prefix(self) -> str:
        if self.file is None:
            return ""
        parts = [self.file]
        if self.line is not None:
            parts.append(str(self.line))
            if self.column is not None:
                parts.append(str(self.column))
        return ":".join(parts) + ": "


MAX_REPORTED = 100
"""Most problems :meth:`ConfigErrors.lines` lists one by one; the rest are counted."""


class ConfigErrors(ConfigError):
    """Every problem found in one run, reported together, each on its own line."""

    def __init__(self, errors: Sequence[ConfigError]) -> None:
        self.errors = list(errors)
        first = self.errors[0] if self.errors else None
        super().__init__(
            "\n".join(str(e) for e in self.errors),
            file=None,
            line=first.line if first else None,
        )

    def lines(self) -> list[str]:
        """The first :data:`MAX_REPORTED` errors, then how many more there are (all of them
        stay in ``errors``)."""
        shown = [str(e) for e in self.errors[:MAX_REPORTED]]
        more = len(self.errors) - len(shown)
        if more:
            shown.append(f"... and {more:,} more problems (the first {MAX_REPORTED} are shown)")
        return shown

    @classmethod
    def raise_if_any(cls, errors: Iterable[ConfigError]) -> None:
        found = list(errors)
        if len(found) == 1:
            raise found[0]
        if found:
            raise cls(found)


class RuleSyntaxError(ReconcilerError):
    """A rule tree that cannot be processed (for example, too large to convert)."""


class UnsafePlanError(ReconcilerError):
    """The plan trips a safety limit and was not acknowledged."""

    exit_code = 3


class StalePlanError(ReconcilerError):
    """A saved plan was made from a live state that has changed since."""


class ApplyFailed(ReconcilerError):
    """Apply ran, but at least one change failed or was skipped."""


class ConvergenceError(ReconcilerError):
    """After apply, planning again still shows changes: the target did not converge."""


class ProviderError(ReconcilerError):
    """Anything a provider reports.

    ``rule_paths`` names the rules the platform rejected, as paths inside the segment's
    YAML mapping (e.g. ``("rules", 2, "any", 0)``), so the applier can point at each line.
    """

    rule_paths: tuple[tuple[str | int, ...], ...] = ()


class AuthError(ProviderError):
    """The platform refused the credentials."""


class NotFound(ProviderError):
    """The object does not exist on the platform."""


class RateLimited(ProviderError):
    """The platform kept rate limiting past the retry budget."""


class ConflictError(ProviderError):
    """The live state conflicts with the change: it moved since the plan, or names clash."""


class PlatformOwned(ProviderError):
    """The platform owns this object and refuses every change to it (for example Campaign
    Monitor's system segments). The applier leaves it alone: skipped, not failed."""


class ApiError(ProviderError):
    """A failed API call, described without any secret."""

    def __init__(
        self,
        message: str,
        *,
        method: str | None = None,
        url: str | None = None,
        status: int | None = None,
        body: str | None = None,
    ) -> None:
        self.method = method
        self.url = url
        self.status = status
        self.body = body
        detail = " ".join(p for p in (method, url) if p)
        if status is not None:
            detail = f"{detail} -> {status}" if detail else str(status)
        text = f"{message} ({detail})" if detail else message
        if body:
            text += f": {body}"
        super().__init__(text)
