"""The core's four wings import one way, env <- learn <- run <- data (DESIGN.md section 1), and the
public names stay importable from ``jaxrl_suite``."""

import ast
from pathlib import Path

import pytest

import jaxrl_suite

CORE = Path(jaxrl_suite.__file__).parent
WINGS = ("env", "learn", "run", "data")


def _imported_modules(path: Path) -> list[str]:
    """Every module a file imports, also inside functions (lazy imports count too)."""
    names = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.append(node.module)
            if node.module == "jaxrl_suite":  # from jaxrl_suite import wrappers
                names += [f"jaxrl_suite.{alias.name}" for alias in node.names]
    return [name for name in names if name == "jaxrl_suite" or name.startswith("jaxrl_suite.")]


def _wing_files():
    return sorted((wing, path) for wing in WINGS for path in (CORE / wing).glob("*.py"))


def test_every_core_module_lives_in_a_wing():
    loose = sorted(p.name for p in CORE.glob("*.py"))
    assert loose == ["__init__.py", "cli.py"], loose  # the command line sits above the wings


@pytest.mark.parametrize("wing,path", _wing_files(), ids=lambda x: getattr(x, "name", x))
def test_imports_run_one_way(wing, path):
    rank = WINGS.index(wing)
    bad = []
    for module in _imported_modules(path):
        parts = module.split(".")
        target = parts[1] if len(parts) > 1 else None
        if target not in WINGS or WINGS.index(target) > rank:
            bad.append(module)
    assert not bad, (f"jaxrl_suite/{wing}/{path.name} imports {bad}: a {wing}/ module may import "
                     f"only {', '.join(WINGS[:rank + 1])} (never the package top, the CLI, "
                     f"algos/ or envs/).")


def test_the_check_sees_a_bad_import(tmp_path):
    module = tmp_path / "bad.py"
    module.write_text("def f():\n    from jaxrl_suite.data.datasets import Dataset\n"
                      "from jaxrl_suite import cli\n")
    assert sorted(_imported_modules(module)) == ["jaxrl_suite", "jaxrl_suite.cli",
                                                 "jaxrl_suite.data.datasets"]


def test_public_names_from_the_top():
    for name in jaxrl_suite.__all__:
        assert getattr(jaxrl_suite, name) is not None, name
    from jaxrl_suite import RunOptions, harness, optim, run_training

    assert optim.adam is jaxrl_suite.learn.optim.adam
    assert run_training is harness.run_training and RunOptions is harness.RunOptions
    with pytest.raises(AttributeError, match="no attribute 'nonsense'"):
        jaxrl_suite.nonsense  # noqa: B018
