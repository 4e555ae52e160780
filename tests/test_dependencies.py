"""pyproject.toml declares every package EEAP imports, and nothing it does not; demo-only packages sit in the extra."""

import ast
import sys

import tomllib

from tests.conftest import ROOT

# import name -> distribution name, where they differ
DISTRIBUTIONS = {
    "yaml": "pyyaml",
    "PIL": "pillow",
    "segmentation_models_pytorch": "segmentation-models-pytorch",
    "skimage": "scikit-image",
    "sklearn": "scikit-learn",
}
NEEDED_WITHOUT_IMPORT = {"wandb"}  # the W&B logger is Lightning's, which imports wandb itself
DEMO_USERS = {"babel", "num2words", "skimage", "sklearn", "django", "polib"}  # imported only by demo data sources
EXPORT_USERS = {"onnxruntime"}  # imported only by eeap export's runner; torch.onnx imports onnx and onnxscript
SWEEP_USERS = {"optuna"}  # imported only by eeap sweep
EXPLORE_USERS = {"gradio"}  # imported only by eeap explore (gradio_client, which the tests use, comes with it)
MEDICAL_USERS = {"nibabel", "monai"}  # imported only where volumes are read, segmented and scored
# logger extras: Lightning's loggers import them (mlflow needs sqlalchemy and alembic for its local SQLite store)
LOGGER_EXTRAS = {"tensorboard": {"tensorboard"}, "mlflow": {"mlflow-skinny", "sqlalchemy", "alembic"}}


def imported_packages() -> set[str]:
    """Top-level names of every package imported by EEAP's sources (eeap/ and tasks/), directly or by demo_import."""
    names = set()
    for folder in ("eeap", "tasks"):
        for path in (ROOT / folder).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Import):
                    names |= {alias.name.split(".")[0] for alias in node.names}
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names.add(node.module.split(".")[0])
                elif (
                    isinstance(node, ast.Call)
                    and getattr(node.func, "id", "") == "demo_import"
                    and isinstance(node.args[0], ast.Constant)
                ):
                    names.add(node.args[0].value.split(".")[0])
    return {n for n in names if n not in sys.stdlib_module_names and n not in ("eeap", "tasks", "__future__")}


def declared(requirements: list[str]) -> set[str]:
    return {r.split(">")[0].split("<")[0].split("=")[0].split("[")[0].strip().lower() for r in requirements}


def test_every_import_is_declared_and_every_declaration_imported():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    core, demos = declared(project["dependencies"]), declared(project["optional-dependencies"]["demos"])
    imported = {DISTRIBUTIONS.get(n, n).lower() for n in imported_packages()}
    demo_imports = {DISTRIBUTIONS.get(n, n).lower() for n in DEMO_USERS}
    export = declared(project["optional-dependencies"]["export"])
    assert EXPORT_USERS <= export and EXPORT_USERS <= imported
    imported -= EXPORT_USERS
    sweep = declared(project["optional-dependencies"]["sweep"])
    assert SWEEP_USERS == sweep and SWEEP_USERS <= imported, "the sweep extra holds exactly what eeap sweep imports"
    imported -= SWEEP_USERS
    explore = declared(project["optional-dependencies"]["explore"])
    assert EXPLORE_USERS == explore and EXPLORE_USERS <= imported, "the explore extra holds what eeap explore imports"
    imported -= EXPLORE_USERS
    medical = declared(project["optional-dependencies"]["medical"])
    assert MEDICAL_USERS == medical and MEDICAL_USERS <= imported, "the medical extra holds what the 3D path imports"
    imported -= MEDICAL_USERS
    for extra, packages in LOGGER_EXTRAS.items():
        assert declared(project["optional-dependencies"][extra]) == packages
    dev = project["optional-dependencies"]["dev"][0]  # eeap[...]: every extra, so that each one's tests run
    assert set(dev[dev.index("[") + 1 : -1].split(",")) == set(project["optional-dependencies"]) - {"dev"}
    assert imported - demo_imports <= core, f"imported but not declared: {sorted(imported - demo_imports - core)}"
    assert demo_imports <= demos and demos <= imported, "the demos extra holds exactly the demo sources' packages"
    assert core - NEEDED_WITHOUT_IMPORT <= imported, f"declared but never imported: {sorted(core - imported)}"
    assert not core & demos
