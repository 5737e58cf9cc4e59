"""Public names of a package, listed once in its ``__init__`` and imported on first use.

``kdtune.objectives`` pulls in torch and transformers; the CLI's ``--help`` should not wait
for them. A package's ``__init__`` names each public object and the submodule defining it::

    __getattr__, __dir__, __all__ = lazy_exports(__name__, {"load_splits": ".data", ...})

``from kdtune.objectives import load_splits`` then imports ``kdtune.objectives.data.dataset`` at
that moment (PEP 562), and ``import kdtune.objectives`` alone imports nothing.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any


def lazy_exports(
    package: str, exports: dict[str, str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]], list[str]]:
    """Module ``__getattr__``, ``__dir__`` and ``__all__`` for ``package``'s ``exports``.

    Args:
        package: the package's ``__name__``.
        exports: public name -> relative module that defines it (``".data"``).
    """

    def __getattr__(name: str) -> Any:
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(module, package), name)

    def __dir__() -> list[str]:
        return sorted(exports)

    return __getattr__, __dir__, sorted(exports)
