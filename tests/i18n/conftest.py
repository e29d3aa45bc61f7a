"""The contract fixtures (eager Celery, the shipped template, a signer) for the German pages."""

from tests.contracts.conftest import (  # noqa: F401 (fixtures)
    _media_and_celery,
    default_template,
    run_on_commit,
    signer,
)
from tests.rooms.conftest import plan_template  # noqa: F401 (fixture)
