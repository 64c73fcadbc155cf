"""kubernetes_asyncio.client, .client.api and .client.models made lazy: a name is imported when first used.

The generated client's package `__init__` files import every API class and every model (about 800 modules):
99 MiB of the operator's 110 MiB at start (README "Scale"), of which the operator uses a few dozen classes.
kopf imports `kubernetes_asyncio.client` too whenever it is installed (kopf/_cogs/helpers/thirdparty.py), so
the cost is paid before any of our code runs unless these packages are lazy first. `install` puts in their place
module objects whose `__getattr__` (PEP 562, https://peps.python.org/pep-0562/, as Scientific Python's SPEC 1
lazy loading does) imports the submodule that defines a name, read from the package's own `__init__` lines
(`from kubernetes_asyncio.client.models.v1_pod import V1Pod`), so every name resolves to the same class as
before. The client's deserializer looks model classes up by name (`getattr(kubernetes_asyncio.client.models,
"V1Pod")`), which loads only the models an answer holds.

Installed from `zoo_operator/__init__.py`, so before kube.py or kopf import the client. If the client was
imported already (a program that imported it first), nothing changes.
"""

from __future__ import annotations

import importlib
import importlib.machinery
import importlib.util
import re
import sys
import types
from pathlib import Path
from typing import Any

PACKAGE = "kubernetes_asyncio.client"
LAZY = (PACKAGE, f"{PACKAGE}.api", f"{PACKAGE}.models")
_FROM = re.compile(r"^from (kubernetes_asyncio\.client[\w.]*) import (\w+)\s*$", re.MULTILINE)
_VERSION = re.compile(r'^__version__ = "([^"]+)"', re.MULTILINE)


def exported(init_source: str) -> dict[str, str]:
    """Name -> defining module, from a generated package `__init__`'s `from <module> import <Name>` lines."""
    return {name: module for module, name in _FROM.findall(init_source)}


def lazy_package(name: str, path: Path) -> types.ModuleType:
    """A package module for `name` at `path` whose exported names import on first use."""
    init = path / "__init__.py"
    source = init.read_text()
    names = exported(source)
    mod = types.ModuleType(name)
    spec = importlib.machinery.ModuleSpec(name, None, is_package=True)
    spec.submodule_search_locations = [str(path)]
    mod.__spec__, mod.__path__, mod.__file__ = spec, [str(path)], str(init)
    version = _VERSION.search(source)
    if version:
        mod.__version__ = version.group(1)  # type: ignore[attr-defined]

    def __getattr__(attr: str) -> Any:
        if attr in names:
            value = getattr(importlib.import_module(names[attr]), attr)
            setattr(mod, attr, value)
            return value
        if not attr.startswith("_"):  # a submodule (client.rest): import it as the real package would have
            try:
                return importlib.import_module(f"{name}.{attr}")
            except ModuleNotFoundError:
                pass
        raise AttributeError(f"module {name!r} has no attribute {attr!r}")

    mod.__getattr__ = __getattr__  # type: ignore[method-assign]
    mod.__dir__ = lambda: sorted({*names, *vars(mod)})  # type: ignore[method-assign]
    mod.__all__ = sorted(names)  # type: ignore[attr-defined]
    return mod


def install() -> bool:
    """Make the client's packages lazy unless the client is imported already; True when installed now."""
    if PACKAGE in sys.modules or "kubernetes_asyncio" in sys.modules:
        return False
    top = importlib.util.find_spec("kubernetes_asyncio")
    if top is None or not top.submodule_search_locations:
        return False
    root = Path(next(iter(top.submodule_search_locations))) / "client"
    for name in LAZY:
        sys.modules[name] = lazy_package(name, root.joinpath(*name.split(".")[2:]))
    # The top package next: its __init__ imports .config, whose kube_config imports ApiClient from the client;
    # started from a submodule import instead, that cycle would meet a half-imported api_client.
    importlib.import_module("kubernetes_asyncio")
    return True
