"""A user logs in through the real login page in headless Chromium."""

import pytest


@pytest.mark.django_db(transaction=True)
def test_rep_logs_in_and_sees_my_day(page, login, rep, snap):
    page.goto("/")
    assert "/accounts/login/" in page.url
    snap(page, "login")
    login(page, "rita")
    assert page.get_by_role("heading", name="My day").is_visible()


@pytest.mark.django_db(transaction=True)
def test_wrong_password_gets_a_clear_error(page, rep):
    page.goto("/accounts/login/")
    page.get_by_label("Username").fill("rita")
    page.get_by_label("Password").fill("nope")
    page.get_by_role("button", name="Log in").click()
    assert page.get_by_role("alert").is_visible()
    assert "/accounts/login/" in page.url
