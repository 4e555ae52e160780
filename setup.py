"""Package discovery for setuptools (the metadata is in pyproject.toml).

The repository keeps its agreed top level, ``eeap/``, ``tasks/`` and ``configs/``, and installs them as one package:
``eeap``, ``eeap.tasks`` (from ``tasks/``) and ``eeap.configs`` (from ``configs/``: the shipped YAML files, one
folder per concern, as package data). Every package under each is found here, so a new folder needs no edit to a list.
"""

from setuptools import find_namespace_packages, find_packages, setup

ROOTS = {"eeap": "eeap", "eeap.tasks": "tasks", "eeap.configs": "configs"}
CODE = ["eeap", *(f"eeap.{p}" for p in find_packages("eeap"))]
CODE += ["eeap.tasks", *(f"eeap.tasks.{p}" for p in find_packages("tasks"))]
CONFIGS = ["eeap.configs", *(f"eeap.configs.{p}" for p in find_namespace_packages("configs"))]

setup(
    packages=sorted(CODE + CONFIGS),
    package_dir=ROOTS,
    package_data={"eeap": ["kernels/*.cpp", "py.typed"], **{name: ["*.yaml"] for name in CONFIGS}},
)
