"""Import aiogram's Telegram types without building a validator for every one of them at once.

aiogram declares its ~300 types with `defer_build=True`, then forces `model_rebuild()` on each of
them at import to resolve their forward references. Each rebuild builds a validator holding the
whole graph of types it reaches (most reach Message, which reaches nearly everything), so the
import alone costs about 130 MB. Here the rebuild only records the namespace that resolves those
references; pydantic builds a type's validator the first time the type is used, from that same
namespace. The control bot uses a few dozen types, so it pays for those only.

Call `import_aiogram_lazily()` before anything imports aiogram (controlbot/__main__.py does).
"""

from __future__ import annotations

import importlib
import sys
from typing import Any

from pydantic import BaseModel


def import_aiogram_lazily() -> None:
    if "aiogram.types" in sys.modules:
        return  # too late: already built
    original = BaseModel.__dict__["model_rebuild"]
    namespace: dict[str, Any] = {}

    def record_namespace(
        cls: type[BaseModel], *args: Any, _types_namespace: Any = None, **kwargs: Any
    ) -> bool | None:
        if _types_namespace is None or not cls.__module__.startswith("aiogram."):
            result: bool | None = original.__func__(cls, *args, _types_namespace=_types_namespace, **kwargs)
            return result
        namespace.update(_types_namespace)
        return None

    BaseModel.model_rebuild = classmethod(record_namespace)  # type: ignore[method-assign,assignment,arg-type]
    try:
        importlib.import_module("aiogram.types")
    finally:
        BaseModel.model_rebuild = original  # type: ignore[method-assign]
    methods = importlib.import_module("aiogram.methods")
    namespace.update({name: getattr(methods, name) for name in methods.__all__})
    # pydantic resolves a type's forward references in its module's globals when it builds it on
    # first use; aiogram imports those names only for type checkers. Give every aiogram module
    # the names it lacks (the very objects it refers to), so any model, a generic
    # `Response[list[Update]]` made later included, builds as it would have at import.
    for name, module in list(sys.modules.items()):
        if name.startswith("aiogram.") and module is not None:
            for key, value in namespace.items():
                module.__dict__.setdefault(key, value)
