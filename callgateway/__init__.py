"""CallGateway: an AI voice gateway that answers the phone for medical clinics."""

from __future__ import annotations


def __getattr__(name: str) -> str:
    # Looked up on demand: the installed distribution's version (from the git tag it was
    # built at, setuptools-scm), without an importlib.metadata scan on every import.
    if name == "__version__":
        from importlib.metadata import PackageNotFoundError, version

        try:
            return version("callgateway")
        except PackageNotFoundError:
            return "0.0.0+unknown"
    raise AttributeError(name)
