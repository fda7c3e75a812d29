"""salesplan: a Jupyter workbench that turns a company's sales records into a plan."""

from salesplan.errors import (
    SalesplanDataError,
    SalesplanDataWarning,
    SalesplanError,
    SalesplanWarning,
)

__version__ = "0.1.0"

__all__ = [
    "SalesplanError",
    "SalesplanDataError",
    "SalesplanWarning",
    "SalesplanDataWarning",
    "__version__",
]
