"""Deal email fixtures: the contract fixtures (built-in provider, eager Celery, media in tmp)."""

from tests.contracts.conftest import (  # noqa: F401 (fixtures)
    _media_and_celery,
    default_template,
    run_on_commit,
    termed_deal,
)
