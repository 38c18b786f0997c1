"""The metrics tests drive real runs with the operations tests' in-process engine."""

from tests.operations.conftest import engine  # noqa: F401 - fixture
from tests.operations.helpers import script  # noqa: F401 - registers the scripted node type
