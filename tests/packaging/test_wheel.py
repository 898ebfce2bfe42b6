"""The wheel holds every module of the tree, and the import layers hold (DEVELOPERS.md).

The repository keeps `detectors/`, `models/` and `streams/` beside `amlwatch/` and installs them as
`amlwatch.detectors` and so on. A mapping written by hand once shipped wheels without a new
subpackage while a dev checkout imported it fine; here the wheel is built (offline, from a copy of the
tree with one extra subpackage no list names) and compared with the tree. import-linter then reads
the wheel's files, the only place where `amlwatch.detectors` is a folder of `amlwatch`.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
ROOTS = {"amlwatch": "amlwatch", "detectors": "amlwatch/detectors", "models": "amlwatch/models",
         "streams": "amlwatch/streams"}
PROBE = "streams/probe_subpackage"


def tree_modules(root: Path) -> set[str]:
    """Every module of the source tree, as its path inside the wheel."""
    found = set()
    for folder, installed in ROOTS.items():
        for path in (root / folder).rglob("*.py"):
            if "__pycache__" not in path.parts:
                found.add(f"{installed}/{path.relative_to(root / folder).as_posix()}")
    return found


def _can_build_in_place() -> bool:
    """setuptools >= 69 and wheel here (as .ci/run installs them): no isolated build env to fetch."""
    if importlib.util.find_spec("wheel") is None:
        return False
    import setuptools

    return int(setuptools.__version__.split(".")[0]) >= 69


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> tuple[Path, set[str]]:
    """The wheel of a copy of the tree with one new subpackage, and the modules that copy holds."""
    source = tmp_path_factory.mktemp("source")
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info")
    for folder in ROOTS:
        shutil.copytree(REPO / folder, source / folder, ignore=ignore)
    for name in ("pyproject.toml", "setup.py", "README.md"):
        shutil.copy(REPO / name, source / name)
    probe = source / PROBE
    probe.mkdir()
    (probe / "__init__.py").write_text('"""A subpackage nobody listed."""\n')
    (probe / "inner.py").write_text("VALUE = 1\n")
    out = tmp_path_factory.mktemp("dist")
    isolation = ["--no-build-isolation", "--no-index"] if _can_build_in_place() else []
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", *isolation, "-w", str(out),
                    str(source)], check=True, timeout=600, cwd=source)
    [wheel] = out.glob("amlwatch-*.whl")
    return wheel, tree_modules(source)


@pytest.fixture(scope="module")
def installed(built, tmp_path_factory) -> Path:
    """The wheel's files unpacked: what `pip install` puts in site-packages (pure Python)."""
    site = tmp_path_factory.mktemp("site")
    with zipfile.ZipFile(built[0]) as wheel:
        wheel.extractall(site)
    return site


def test_the_wheel_holds_every_module_of_the_tree_and_new_subpackages(built):
    wheel, modules = built
    names = set(zipfile.ZipFile(wheel).namelist())
    assert f"amlwatch/{PROBE}/inner.py" in modules, "the probe is part of the tree compared"
    missing = sorted(modules - names)
    assert not missing, f"modules left out of the wheel: {missing[:10]}"
    assert {"amlwatch/engine.py", "amlwatch/errors.py", "amlwatch/streams/checkpoint.py",
            "amlwatch/detectors/base.py"} <= names
    assert any(name.startswith("amlwatch/models/default/") for name in names), "the shipped model"
    assert not any(name.split("/")[0] in ("detectors", "models", "streams") for name in names), \
        "no generic top-level names claimed"


def lint_imports(site: Path, config: Path = REPO / "pyproject.toml") -> subprocess.CompletedProcess:
    """import-linter over the unpacked wheel, without the editable install's finder (python -S: no
    .pth files) and outside the checkout (whose amlwatch/ has no detectors/)."""
    pythonpath = os.pathsep.join([str(site), sysconfig.get_paths()["purelib"]])
    code = ("import sys; from importlinter.cli import lint_imports_command; "
            f"sys.argv = ['lint-imports', {str(config)!r}]; sys.exit(lint_imports_command())")
    return subprocess.run([sys.executable, "-S", "-c", code], env={**os.environ, "PYTHONPATH": pythonpath},
                          cwd=site, capture_output=True, text=True, timeout=300)


def test_the_import_layers_hold(installed):
    result = lint_imports(installed)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "amlwatch layers KEPT" in result.stdout
    assert "reporting above the detection core KEPT" in result.stdout
    assert "Analyzed" in result.stdout and "amlwatch.streams" not in result.stderr


def test_a_detector_importing_the_cli_breaks_the_layers(installed, tmp_path):
    site = tmp_path / "site"
    shutil.copytree(installed, site)
    windows = site / "amlwatch" / "detectors" / "windows.py"
    windows.write_text(windows.read_text() + "\nfrom amlwatch import cli,F401\n")
    result = lint_imports(site)
    assert result.returncode != 0
    assert "amlwatch layers BROKEN" in result.stdout
    assert "amlwatch.detectors.windows -> amlwatch.cli" in result.stdout


def test_the_config_importing_the_reporting_package_breaks_its_contract(installed, tmp_path):
    site = tmp_path / "site"
    shutil.copytree(installed, site)
    config = site / "amlwatch" / "config.py"
    config.write_text(config.read_text() + "\nfrom amlwatch.reporting import settings  # noqa: E402,F401\n")
    result = lint_imports(site)
    assert result.returncode != 0
    assert "reporting above the detection core BROKEN" in result.stdout
    assert "amlwatch.config -> amlwatch.reporting.settings" in result.stdout
