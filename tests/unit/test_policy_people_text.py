"""Names and ids the policy gives Slack are checked at load (audit26 text 1 and 2).

A rotation named "night shift" loaded, then every start died building the default
escalation step `rotation:night shift` (a SIGHUP to it stopped a running server for
good); `<!channel>` in a rotation's name pinged the channel from every page; a name
where a member id belongs (`@dana`) paged nobody, as if she had left the workspace.
"""

from __future__ import annotations

from typing import Any

import pytest

from bot.alerts.escalation import Chain
from bot.escape import member_or_name, mentioned
from guards.config import PolicyError, parse_policy


def refused(data: dict[str, Any]) -> str:
    with pytest.raises(PolicyError) as caught:
        parse_policy(data)
    return str(caught.value)


@pytest.mark.parametrize(
    "name",
    [
        "night shift",
        "<!channel>",
        "prim\u202eary",
        "a\nb",
        "x" * 81,
        "",
        "on`call`",
        # review26 L5: italics in Slack; a bidi mark, a BOM, a soft hyphen, a no-break space
        "_primary_",
        "prim\u061cary",
        "\ufeffprimary",
        "pri\u00admary",
        "night\u00a0shift",
    ],
)
def test_a_rotation_name_that_is_not_one_plain_word_is_refused_naming_its_key(name):
    said = refused({"oncall": {"rotations": [{"name": name, "users": ["U01"]}]}})
    assert "oncall.rotations.0.name" in said
    assert "a rotation's name is one word of at most 80 characters" in said


@pytest.mark.parametrize("name", ["primary", "night-shift", "night_shift", "équipe", "SRE.eu"])
def test_plain_rotation_names_load_and_make_the_default_step(name):
    policy = parse_policy({"oncall": {"rotations": [{"name": name, "users": ["U01"]}]}})
    assert [step.notify for step in Chain.from_policy(policy).steps] == [f"rotation:{name}"]


@pytest.mark.parametrize(
    ("data", "key"),
    [
        ({"admins": ["dana"]}, "admins.0"),
        ({"admins": ["U0ADMIN", "<!channel>"]}, "admins.1"),
        ({"admins": ["u0admin"]}, "admins.0"),
        # too short for Slack: the bot would not mention it (bot.escape.MEMBER_ID)
        ({"admins": ["U1"]}, "admins.0"),
        ({"oncall": {"escalation": [{"notify": "user:W7"}]}}, "escalation.0.notify"),
        ({"oncall": {"rotations": [{"name": "ops", "users": ["@dana"]}]}}, "users.0"),
        ({"oncall": {"rotations": [{"name": "ops", "users": ["U01", "<@U02>"]}]}}, "users.1"),
        ({"oncall": {"escalation": [{"notify": "user:<!everyone>"}]}}, "escalation.0.notify"),
        ({"oncall": {"escalation": [{"notify": "user:dana"}]}}, "escalation.0.notify"),
    ],
)
def test_a_person_that_is_not_a_member_id_is_refused_saying_how_to_find_one(data, key):
    said = refused(data)
    assert key in said
    assert "is not a Slack member id: write one like U012ABCDEF" in said
    assert "Copy member ID" in said


def test_member_ids_load():
    policy = parse_policy(
        {
            "admins": ["U012ABCDEF", "W0GRID"],
            "oncall": {
                "rotations": [{"name": "ops", "users": ["U01", "U02"]}],
                "escalation": [{"notify": "rotation:ops"}, {"notify": "user:U0DANA"}],
            },
        }
    )
    assert policy.admins == ["U012ABCDEF", "W0GRID"]
    assert [s.notify for s in policy.oncall.escalation] == ["rotation:ops", "user:U0DANA"]


@pytest.mark.parametrize("member", ["U01", "W0GRID", "U012ABCDEF", "U" + "0" * 20])
def test_every_member_id_the_policy_takes_the_bot_mentions(member):
    policy = parse_policy({"admins": [member]})
    assert policy.admins == [member]
    assert member_or_name(member) == f"<@{member}>"
    assert mentioned(f"<@{member}>") == member


@pytest.mark.parametrize(
    ("channels", "key"),
    [
        ({"alerts": "<!channel>"}, "channels.alerts"),
        ({"digest": "ops alerts"}, "channels.digest"),
        ({"alerts_by_scope": {"acme": "<#C1|x>"}}, "channels.alerts_by_scope"),
    ],
)
def test_a_channel_with_markup_or_spaces_is_refused(channels, key):
    said = refused({"channels": channels})
    assert key in said and "no spaces, no Slack markup" in said


def test_an_escalation_step_naming_a_rotation_with_a_space_says_so():
    said = refused({"oncall": {"escalation": [{"notify": "rotation:Platform Primary"}]}})
    assert "oncall.escalation.0.notify" in said
    assert "'Platform Primary': a rotation name is one word" in said


def test_a_channel_name_of_eighty_characters_after_its_hash_loads():
    name = "#" + "a" * 80
    assert parse_policy({"channels": {"alerts": name}}).channels.alerts == name
    assert "channels.alerts" in refused({"channels": {"alerts": "#" + "a" * 81}})


def test_channel_ids_and_names_load():
    policy = parse_policy(
        {
            "channels": {
                "alerts": "C0ALERTS",
                "digest": "#ops-digest",
                "alerts_by_scope": {"acme": "team-acme"},
            }
        }
    )
    assert policy.channels.alerts_for("acme/alice") == "team-acme"
    assert policy.channels.digest == "#ops-digest"
