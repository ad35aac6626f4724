"""References into modules that are imported only when called: the registry names every torch
constructor and lesson function this way, so importing it (to list the models) imports no torch."""
import importlib
from dataclasses import dataclass


@dataclass(frozen=True)
class LazyRef:
    """module.name, imported on the first call (and cached by Python's import system after that)."""
    module: str
    name: str

    def resolve(self):
        return getattr(importlib.import_module(self.module), self.name)

    def __call__(self, *args, **kwargs):
        return self.resolve()(*args, **kwargs)

    @property
    def __name__(self) -> str:
        return self.name


@dataclass(frozen=True)
class LazyModule:
    """A stand-in for a module: LazyModule("training.models").CourseCNN is a LazyRef; nothing is imported."""
    module: str

    def __getattr__(self, name: str) -> LazyRef:
        if name.startswith("__"):  # copy/pickle probing dunders: not module attributes
            raise AttributeError(name)
        return LazyRef(self.module, name)
