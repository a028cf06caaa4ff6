"""The contract (``yolo_crd``) is pure: models, names and compositions. It imports no I/O library and no other
component, and reads no file, so that every component can import it and a test of it needs nothing but Python.
The I/O that components share lives in ``yolo_io`` (the local store, Kubernetes credentials)."""

import ast
import json
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

import yolo_crd

CONTRACT = Path(yolo_crd.__file__).parent
#: Libraries that do I/O, and the other components: none may be loaded by importing the contract.
FORBIDDEN = {"sqlite3", "kubernetes", "boto3", "botocore", "urllib3", "httpx", "kopf", "fcntl",
             "yolo_api", "yolo_operator", "yolo_trainer"}
#: Calls that touch the file system.
FILE_IO = {"open", "read_text", "read_bytes", "write_text", "write_bytes", "exists", "is_file", "is_dir",
           "iterdir", "glob", "rglob", "mkdir", "unlink", "stat"}


def modules() -> list[str]:
    return [f"yolo_crd.{info.name}" for info in pkgutil.iter_modules([str(CONTRACT)])]


def test_importing_every_contract_module_loads_no_io_library_and_no_other_component() -> None:
    code = ("import json, sys\nbefore = set(sys.modules)\n" + "".join(f"import {m}\n" for m in modules())
            + "print(json.dumps(sorted(set(sys.modules) - before)))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    loaded = {name.split(".")[0] for name in json.loads(result.stdout)}
    assert not loaded & FORBIDDEN, sorted(loaded & FORBIDDEN)
    assert "yolo_crd.local_store" not in modules()  # the SQLite store is yolo_io's


def imports_and_calls(path: Path) -> tuple[set[str], set[str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    imported: set[str] = set()
    called: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module.split(".")[0])
        elif isinstance(node, ast.Call):
            func = node.func
            called.add(func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else "")
    return imported, called


#: Modules kept only until their last importer outside the contract moves (each reason names the change); strict:
#: once the change is made the test passes, the xfail fails, and the entry (and the module's I/O) must go.
PENDING: dict[str, str] = {}


@pytest.mark.parametrize("module", [
    pytest.param(name, marks=pytest.mark.xfail(strict=True, reason=PENDING[name])) if name in PENDING else name
    for name in sorted(path.name for path in CONTRACT.glob("*.py"))])
def test_no_contract_module_imports_io_or_touches_files(module: str) -> None:
    imported, called = imports_and_calls(CONTRACT / module)
    assert not imported & (FORBIDDEN | {"yolo_io", "os", "subprocess", "socket"}), (module, imported & FORBIDDEN)
    assert not called & FILE_IO, (module, called & FILE_IO)
