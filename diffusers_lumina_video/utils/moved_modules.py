"""Old module paths that documented commands and imports used, kept working after their modules moved.

An old path imported as a module becomes the new module itself (same objects, so `isinstance` and monkeypatching
agree); run with `python -m`, it runs the new module's command. Either way a `FutureWarning` names the new path.
"""

import importlib
import runpy
import sys
import warnings


def redirect_moved_module(old_name: str, new_name: str) -> None:
    """Called from the module at an old path with its `__name__` (`"__main__"` under `python -m`)."""
    shown_name = old_name if old_name != "__main__" else "this module path"
    warnings.warn(
        f"{shown_name} moved to `{new_name}`; the old path will be removed in a future release.",
        FutureWarning,
        stacklevel=3,
    )
    if old_name == "__main__":
        runpy.run_module(new_name, run_name="__main__", alter_sys=True)
    else:
        sys.modules[old_name] = importlib.import_module(new_name)
