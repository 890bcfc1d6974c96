"""What the tests share: helpers, and fixtures a test module imports or names in
`pytest_plugins`. Nothing here is a test, and no test module imports another."""

import pkgutil

import pytest

# pytest rewrites the asserts of test modules, conftest files and plugins only; these
# helpers assert too, and their failures should show the values as a test's own do. By
# module name: this package itself is mid-import here, and has no assert.
pytest.register_assert_rewrite(*(f"{__name__}.{m.name}" for m in pkgutil.iter_modules(__path__)))
