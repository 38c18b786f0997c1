"""Node type registry: importing this package registers every type module listed here."""

import importlib

NODE_TYPE_MODULES = [
    "noop",
    "sql",
    "sql_assign",
    "data_sync",
    "condition",
    "http",
    "wait",
    "dependency_check",
    "subflow",
    "foreach",
]

_loaded = False


def load_all() -> None:
    global _loaded
    if _loaded:
        return
    for name in NODE_TYPE_MODULES:
        importlib.import_module(f"{__name__}.{name}")
    _loaded = True
