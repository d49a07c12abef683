"""Helpers for the metrics tests: the scrape token, parsing an exposition, finding programs."""

import os
import shutil

import pytest
from prometheus_client.parser import text_string_to_metric_families

TOKEN = "metrics-test-token-0123456789abcdef-XYZ"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def parse(text):
    """``{(sample name, frozenset of labels): value}`` of a text-format exposition."""
    samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


def value(samples, name, **labels):
    """One sample's value, or None when the exposition does not have it."""
    return samples.get((name, frozenset(labels.items())))


def names(samples):
    return {name for name, _ in samples}


def scrape(client, **headers):
    response = client.get("/metrics", headers={**AUTH, **headers})
    assert response.status_code == 200, response.content
    return parse(response.content.decode())


def program(name):
    """The path of a Debian program the test needs; skip without it, fail under CI=true."""
    path = shutil.which(name) or (
        f"/usr/bin/{name}" if os.path.exists(f"/usr/bin/{name}") else None
    )
    if path:
        return path
    message = f"{name} is not installed (Debian package 'prometheus'; .ci/run installs it)"
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)
