"""Notification fixtures: the contract fixtures (eager Celery, media in tmp, shipped template)."""

from tests.contracts.conftest import (  # noqa: F401 (fixtures)
    _media_and_celery,
    default_template,
    run_on_commit,
    signer,
    termed_deal,
)
