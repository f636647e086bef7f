"""Scenario fixtures: the fake Slack Web API and signed Slack requests.

(``pytest_plugins`` is only allowed in the root conftest, so the fixtures are imported.)
"""

from tests.fakes.fixtures import fake_slack, slack_http

__all__ = ["fake_slack", "slack_http"]
