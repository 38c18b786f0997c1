"""The metrics tests drive real runs with the operations tests' in-process engine."""

# Registers the alert tasks: main's dispatch looks a task up by its registered name, which
# fails in a process that never imported operations.tasks (reported; the engine branch
# sends by name with app.send_task instead).
import operations.tasks  # noqa: F401
from tests.operations.conftest import engine  # noqa: F401 - fixture
from tests.operations.helpers import script  # noqa: F401 - registers the scripted node type
