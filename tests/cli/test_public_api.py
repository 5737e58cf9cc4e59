"""Each package's public names are listed once, in its ``__init__``, and all of them resolve."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

PACKAGES = ["kdtune.study", "kdtune.objectives", "kdtune.storage"]


@pytest.mark.parametrize("package", PACKAGES)
def test_every_public_name_resolves(package):
    mod = importlib.import_module(package)
    assert mod.__all__, package
    for name in mod.__all__:
        assert getattr(mod, name) is not None, f"{package}.{name}"
    with pytest.raises(AttributeError):
        mod.no_such_name  # noqa: B018


def test_importing_the_packages_loads_no_torch():
    code = ("import sys, kdtune, kdtune.study, kdtune.objectives; "
            "print('torch' in sys.modules, 'transformers' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["False", "False"]
