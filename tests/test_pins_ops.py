"""Pins for the ops area (issue #31): probes, metrics, status page, checks, logging, settings."""


def test_placeholder():
    assert True
