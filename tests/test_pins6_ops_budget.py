"""The time each probe check may take (``portal.health.checks.PortalTimeout``): the library
waits ``timeout + 1`` s, so the budget decides how long a balancer's probe can hang."""

from datetime import timedelta

import pytest

from portal.health.checks import readiness_checks, status_checks


@pytest.mark.parametrize(
    "seconds, budget",
    [
        (2, 1.75),  # the setting less the render margin (0.25 s)
        (1, 0.75),
        (0.4, 0.2),  # half the setting once the margin would take more than half
        (0.3, 0.15),
    ],
)
def test_every_check_gets_the_setting_less_the_margin_but_at_least_half(settings, seconds, budget):
    """``/ready`` must answer within ``PORTAL_HEALTH_CHECK_TIMEOUT_SECONDS + 1`` s: a budget
    larger than the setting (margin added, or doubled) would let a probe outlast it."""
    settings.PORTAL_HEALTH_CHECK_TIMEOUT_SECONDS = seconds
    checks = [*readiness_checks(), *status_checks()]
    assert {check.name: check.timeout for check in checks} == {
        check.name: timedelta(seconds=budget) for check in checks
    }
