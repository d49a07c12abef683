"""Pins for the JSON upload API's corners (issue #31, the parts area): each test kills
mutants of ``tests/mutant_area_parts.py`` that the feature's own tests let through."""
