"""Packaging: the folder mapping works in the editable install and from a built wheel."""

from __future__ import annotations

import pathlib
import subprocess
import sys

import pytest
import tomllib

ROOT = pathlib.Path(__file__).resolve().parents[1]
MAPPED = {"jaxrl_suite": "jaxrl_suite", "jaxrl_suite.envs": "envs",
          "jaxrl_suite.algos": "algos", "jaxrl_suite.meta": "meta"}


def test_editable_install_maps_the_three_folders():
    import jaxrl_suite.algos
    import jaxrl_suite.envs
    import jaxrl_suite.meta

    for module in (jaxrl_suite, jaxrl_suite.envs, jaxrl_suite.algos, jaxrl_suite.meta):
        folder = MAPPED[module.__name__]
        assert pathlib.Path(module.__file__).resolve() == ROOT / folder / "__init__.py"


def test_every_package_folder_is_listed_in_pyproject():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(config["packages"])
    assert config["package-dir"] == MAPPED
    for package, folder in MAPPED.items():
        for init in (ROOT / folder).rglob("__init__.py"):
            relative = init.parent.relative_to(ROOT / folder)
            name = ".".join([package, *relative.parts])
            assert name in listed, f"{name} ({init.parent}) is missing from pyproject packages"


@pytest.mark.slow
def test_built_wheel_installs_and_imports(tmp_path):
    wheel_dir, target = tmp_path / "wheel", tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--quiet",
         "-w", str(wheel_dir), str(ROOT)],
        check=True,
    )
    (wheel,) = wheel_dir.glob("jaxrl_suite-*.whl")
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "--quiet", "--target", str(target),
         str(wheel)],
        check=True,
    )
    probe = (
        "import jaxrl_suite, jaxrl_suite.envs, jaxrl_suite.algos, jaxrl_suite.meta, pathlib\n"
        "mods = (jaxrl_suite, jaxrl_suite.envs, jaxrl_suite.algos, jaxrl_suite.meta)\n"
        "print('\\n'.join(str(pathlib.Path(m.__file__).resolve()) for m in mods))\n"
        "print(len(jaxrl_suite.registered_envs()))\n"
    )
    # -I would drop site-packages (jax); instead put the wheel's target first and run from /.
    result = subprocess.run(
        [sys.executable, "-c", f"import sys; sys.path.insert(0, {str(target)!r})\n" + probe],
        check=True, capture_output=True, text=True, cwd="/",
    )
    *paths, count = result.stdout.split()
    subfolders = ("", "envs", "algos", "meta")
    expected = [target / "jaxrl_suite" / sub / "__init__.py" for sub in subfolders]
    assert [pathlib.Path(p) for p in paths] == [e.resolve() for e in expected]
    assert int(count) > 40
