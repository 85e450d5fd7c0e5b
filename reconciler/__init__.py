"""Declarative, GitOps-style reconciler for email subscriber lists and segments.

The public API: load a configuration, plan against live state, apply, report.
"""

from __future__ import annotations

__version__ = "0.1.0"

from .errors import (
    ApiError,
    ApplyFailed,
    AuthError,
    ConfigError,
    ConfigErrors,
    ConflictError,
    ConvergenceError,
    NotFound,
    ProviderError,
    RateLimited,
    ReconcilerError,
    RuleSyntaxError,
    StalePlanError,
    UnsafePlanError,
)
from .plan import Action, ApplyResult, Change, DriftReport, Plan

__all__ = [
    "Action",
    "ApiError",
    "ApplyFailed",
    "ApplyResult",
    "AuthError",
    "Change",
    "ConfigError",
    "ConfigErrors",
    "ConflictError",
    "ConvergenceError",
    "DriftReport",
    "NotFound",
    "Plan",
    "ProviderError",
    "RateLimited",
    "ReconcilerError",
    "RuleSyntaxError",
    "StalePlanError",
    "UnsafePlanError",
    "__version__",
]
