"""Each area's ``__all__`` lists exactly its public names (httpx's test, for our packages)."""

from __future__ import annotations

import importlib

import pytest

AREAS = [
    "labelwise",
    "labelwise.core",
    "labelwise.backends",
    "labelwise.packaging",
    "labelwise.store",
    "labelwise.monitoring",
    "labelwise.evaluation",
    "labelwise.training",
    "labelwise.batch",
    "labelwise.service",
    "labelwise.reports",
    "labelwise.cli",
]


@pytest.mark.parametrize("name", AREAS)
def test_all_is_complete(name: str) -> None:
    module = importlib.import_module(name)
    for member in module.__all__:  # lazy areas bind a name on first use; every one must resolve
        getattr(module, member)
    public = sorted(
        member
        for member, value in vars(module).items()
        if not member.startswith("_") and not isinstance(value, type(module))
    )
    exported = [m for m in module.__all__ if not m.startswith("_")]
    assert sorted(exported) == public
    assert len(set(module.__all__)) == len(module.__all__)


def test_packaging_imports_only_core_and_backends() -> None:
    import subprocess
    import sys

    code = (
        "import sys, labelwise.packaging; "
        "bad = [m for m in sys.modules if m.split('.')[:2] in "
        "(['labelwise','service'], ['labelwise','batch'], ['labelwise','evaluation'], "
        "['labelwise','store'], ['labelwise','reports'], ['labelwise','cli'], ['labelwise','monitoring'], "
        "['labelwise','training'])]; "
        "print(bad); sys.exit(1 if bad else 0)"
    )
    assert subprocess.run([sys.executable, "-c", code], capture_output=True).returncode == 0


def test_the_command_starts_without_the_heavy_libraries() -> None:
    """`labelwise --help` and every command's start import none of them; each command imports
    what it runs."""
    import subprocess
    import sys

    heavy = ["sklearn", "scipy", "openai", "pandas", "pyarrow", "bentoml", "torch", "sqlalchemy"]
    code = (
        "import sys, labelwise.cli; "
        f"loaded = [m for m in {heavy!r} if m in sys.modules]; print(loaded); sys.exit(1 if loaded else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("name", [a for a in AREAS if a not in ("labelwise", "labelwise.cli")])
def test_public_names_are_sorted_and_listed_once(name: str) -> None:
    names = importlib.import_module(name).__all__
    assert len(set(names)) == len(names)
    assert list(names) == sorted(names), "keep __all__ sorted (ruff's isort order does not apply to it)"
