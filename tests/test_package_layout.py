"""The package's layout as a reader relies on it: imports point down (no circle), only the command line parses
arguments, the library never reaches up into the commands or the showcase, and the old module paths that docs showed
still work with a warning."""

import ast
import importlib
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

import diffusers_lumina_video


PACKAGE_DIR = Path(diffusers_lumina_video.__file__).parent
PACKAGE = PACKAGE_DIR.name
# The library: what a user's own code imports. It must not depend on the command line or the built-in models.
LIBRARY_PARTS = ("models", "pipelines", "loaders", "processors", "training", "evaluation", "utils")
LIBRARY_MODULES = ("conversion", "model_card", "_registration")
MOVED_MODULES = {
    "training.synthetic_shapes": "showcase.synthetic_shapes",
    "training.synthetic_flashes": "showcase.synthetic_flashes",
    "training.audio_vae": "showcase.audio_vae",
    "training.tiny_v2a_sources": "showcase.tiny_v2a_sources",
    "training.train_tiny_shapes": "showcase.train_tiny_shapes",
    "utils.tiny_random": "showcase.builtin_models",
    "evaluation.video_attributes": "showcase.shape_attributes",
    "evaluation.shapes_benchmark": "showcase.shapes_benchmark",
    "evaluation.run_shapes_benchmark": "showcase.run_shapes_benchmark",
}


def _module_files() -> dict[str, tuple[Path, bool]]:
    modules = {}
    for path in PACKAGE_DIR.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE_DIR.parent).with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        modules[".".join(parts[:-1] if is_package else parts)] = (path, is_package)
    return modules


def _imported_modules(name: str, path: Path, is_package: bool, known: set[str]) -> set[str]:
    """Every module of the package that `name` imports, at module level or inside a function alike."""
    imported = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".") if is_package else name.split(".")[:-1]
                base = base[: len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            for alias in node.names:
                submodule = f"{target}.{alias.name}"
                imported.add(submodule if submodule in known else target)
        elif isinstance(node, ast.Import):
            imported.update(alias.name for alias in node.names)
    return {module for module in imported if module in known and module != name}


def _import_graph() -> dict[str, set[str]]:
    modules = _module_files()
    return {name: _imported_modules(name, path, is_pkg, set(modules)) for name, (path, is_pkg) in modules.items()}


def _moved_module_names() -> set[str]:
    return {f"{PACKAGE}.{old}" for old in MOVED_MODULES}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on_stack, components = {}, {}, [], set(), []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for successor in graph[node]:
            if successor not in index:
                visit(successor)
                low[node] = min(low[node], low[successor])
            elif successor in on_stack:
                low[node] = min(low[node], index[successor])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                components.append(sorted(component))

    for node in graph:
        if node not in index:
            visit(node)
    return components


def test_no_import_circle():
    assert _cycles(_import_graph()) == []


def _is_library(name: str) -> bool:
    parts = name.split(".")
    return (
        len(parts) > 1
        and (parts[1] in LIBRARY_PARTS or parts[1] in LIBRARY_MODULES)
        and name not in (_moved_module_names())
    )


def test_the_library_does_not_import_the_command_line_or_the_showcase():
    upward = {
        name: sorted(target for target in targets if target.split(".")[1] in ("cli", "commands", "showcase", "demo"))
        for name, targets in _import_graph().items()
        if _is_library(name)
    }
    assert {name: targets for name, targets in upward.items() if targets} == {}


def test_only_commands_and_scripts_parse_arguments():
    """argparse belongs to the command line and to modules run as scripts, never to library code."""
    parsing = []
    for name, (path, _) in _module_files().items():
        source = path.read_text()
        is_script = 'if __name__ == "__main__":' in source
        if "import argparse" in source and not is_script and name.split(".")[1] not in ("cli", "commands"):
            parsing.append(name)
    assert parsing == []


@pytest.mark.parametrize("old, new", sorted(MOVED_MODULES.items()))
def test_an_old_module_path_is_the_moved_module_with_a_warning(old, new):
    sys.modules.pop(f"{PACKAGE}.{old}", None)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        old_module = importlib.import_module(f"{PACKAGE}.{old}")
    assert old_module is importlib.import_module(f"{PACKAGE}.{new}")
    messages = [str(warning.message) for warning in caught if warning.category is FutureWarning]
    assert any(f"moved to `{PACKAGE}.{new}`" in message for message in messages), messages


def test_an_old_script_path_still_runs_the_command():
    result = subprocess.run(
        [sys.executable, "-m", f"{PACKAGE}.training.train_tiny_shapes", "--help"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert f"python -m {PACKAGE}.showcase.train_tiny_shapes" in result.stdout
    assert f"moved to `{PACKAGE}.showcase.train_tiny_shapes`" in result.stderr
