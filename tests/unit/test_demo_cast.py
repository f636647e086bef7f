"""The demo in a real workspace pages only a person it can reach (audit25 L1).

``NIGHTSHIFT_DEMO_USER`` replaced Dana only: the secondary, Sam, stayed the made-up
``U0SAM``, paged in a real workspace where no such member exists, while the table said
"2 pages (DMs)". In a workspace NIGHTSHIFT_DEMO_USER plays every person of the story;
without it the made-up cast plays on (the demo says Slack will refuse their DMs, and the
table counts them apart); the shell keeps its cast (it can show a DM to anyone).
"""

from __future__ import annotations

import pytest
import yaml

from bot.cli import main
from bot.demo.story import Cast, demo_policy
from guards.config import parse_policy

pytestmark = pytest.mark.usefixtures("keep_logging")


def people(cast: Cast) -> tuple[set[str], set[str]]:
    """Whom the demo's policy can page (every rotation's users), and its admins."""
    policy = parse_policy(
        yaml.safe_load(demo_policy(job_url="http://x/run", channel="C0D", cast=cast))
    )
    paged = {user for rotation in policy.oncall.rotations for user in rotation.users}
    return paged, set(policy.admins)


def test_in_a_workspace_the_demo_user_plays_every_person() -> None:
    assert people(Cast.for_transport(shell=False, me="U0ME")) == ({"U0ME"}, {"U0ME"})


def test_in_a_workspace_without_a_demo_user_the_made_up_cast_plays_on() -> None:
    """The demo ran in a workspace with NIGHTSHIFT_DEMO_CHANNEL alone before: it still does
    (the user is optional), its pages to made-up members refused by Slack and counted apart."""
    assert Cast.for_transport(shell=False, me=None) == Cast()
    assert people(Cast()) == ({"U0DANA", "U0LEE", "U0SAM"}, {"U0DANA"})


def test_in_the_shell_the_story_keeps_its_cast() -> None:
    assert people(Cast.for_transport(shell=True, me=None)) == (
        {"U0DANA", "U0LEE", "U0SAM"},
        {"U0DANA"},
    )
    # NIGHTSHIFT_DEMO_USER set in the shell: you are Dana, as before
    assert people(Cast.for_transport(shell=True, me="U0ME")) == (
        {"U0ME", "U0LEE", "U0SAM"},
        {"U0ME"},
    )


@pytest.mark.parametrize(
    ("user", "said"),
    [
        ("dana", "NIGHTSHIFT_DEMO_USER='dana' is not a member id (U0123ABCD)"),
        ("<@U0ME>", "NIGHTSHIFT_DEMO_USER='<@U0ME>' is not a member id"),
        (None, "needs NIGHTSHIFT_DEMO_CHANNEL."),  # (the channel missing, below)
    ],
)
def test_in_a_workspace_the_demo_refuses_a_user_that_is_no_member_or_no_channel(
    user: str | None,
    said: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-1-2-abc")
    monkeypatch.setenv("SLACK_APP_TOKEN", "xapp-1-A1-2-abc")
    if user is None:
        monkeypatch.delenv("NIGHTSHIFT_DEMO_CHANNEL", raising=False)
        monkeypatch.setenv("NIGHTSHIFT_DEMO_USER", "U0ME")
    else:
        monkeypatch.setenv("NIGHTSHIFT_DEMO_CHANNEL", "C0DEMO")
        monkeypatch.setenv("NIGHTSHIFT_DEMO_USER", user)
    assert main(["demo"]) == 2
    out = capsys.readouterr()
    assert out.out == ""  # refused before the story starts
    assert said in out.err
    if user is None:
        assert "to play\n" in out.err and "made-up members" in out.err
    else:  # only what is wrong: the channel is set (recheck25_a L4)
        assert "NIGHTSHIFT_DEMO_CHANNEL" not in out.err, out.err
        assert "SLACK_*" not in out.err, out.err
        assert "set it to your\nmember id (U...: your profile" in out.err, out.err
        assert "or unset it: the story's made-up people play on" in out.err, out.err
