"""Model backends behind one verb: `generate(requests) -> generations`."""

from medprobe.backends._base import (
    Backend,
    BackendConfig,
    PermanentError,
    TransientError,
    create,
    parse_model,
    providers,
    register,
)

__all__ = ["Backend", "BackendConfig", "PermanentError", "TransientError", "create", "parse_model", "providers", "register"]
