"""Package discovery for the folder-per-concern layout (DEVELOPERS.md); the metadata is in pyproject.toml.

The top-level `detectors/`, `models/` and `streams/` install as `amlwatch.detectors` and so on, so no
generic top-level name (`models`, `streams`) is claimed in site-packages. Every package under each root
is found here, so a new subpackage ships without editing a list (tests/packaging checks the wheel).
"""

from setuptools import find_packages, setup

ROOTS = {"amlwatch": "amlwatch", "amlwatch.detectors": "detectors", "amlwatch.models": "models",
         "amlwatch.streams": "streams"}


def packages() -> list[str]:
    found = []
    for name, folder in ROOTS.items():
        found.append(name)
        found.extend(f"{name}.{sub}" for sub in find_packages(where=folder))
    return sorted(set(found))


setup(package_dir=ROOTS, packages=packages())
