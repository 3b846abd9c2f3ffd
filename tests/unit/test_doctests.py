"""The examples in docstrings are run, so they stay true: every module of ``streaming`` and ``app.core``."""
from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import app.core
import streaming

MODULES = sorted(name for package in (streaming, app.core)
                 for _, name, _ in pkgutil.walk_packages(package.__path__, package.__name__ + "."))


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_hold(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE, verbose=False)
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples in {name} failed (see above)"


def test_the_examples_are_found():
    finder = doctest.DocTestFinder()
    examples = sum(len(t.examples) for name in MODULES for t in finder.find(importlib.import_module(name)))
    assert examples >= 10
