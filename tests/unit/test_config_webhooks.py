"""The policy's `webhooks:` and the escalation step `notify: webhook:NAME`: a good block
loads, and each bad value stops start-up naming its key."""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

import pytest
import yaml

from guards.config import PolicyError, load_policy, parse_policy
from guards.config_webhooks import SecretEmpty, SecretUnreadable
from guards.config_webhooks import Webhook as WebhookConfig

SECRET_ENV = "NIGHTSHIFT_TEST_HOOK_SECRET"


@pytest.fixture(autouse=True)
def _env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(SECRET_ENV, "s3cret")
    monkeypatch.delenv("NIGHTSHIFT_TEST_UNSET", raising=False)
    monkeypatch.setenv("NIGHTSHIFT_TEST_EMPTY", "")


def with_hooks(hooks: Any, *steps: str) -> dict[str, Any]:
    return {
        "webhooks": hooks,
        "oncall": {
            "rotations": [{"name": "primary", "users": ["U01"]}],
            "escalation": [{"notify": "rotation:primary"}]
            + [{"notify": s, "after": "5m"} for s in steps],
        },
    }


def refusal(data: dict[str, Any]) -> str:
    with pytest.raises(PolicyError) as info:
        parse_policy(data)
    return str(info.value)


def test_a_good_block_loads():
    policy = parse_policy(
        with_hooks(
            {
                "pagerduty": {"url": "https://events.example/hook", "secret_env": SECRET_ENV},
                "ntfy": {"url": "http://127.0.0.1:8080/topic", "timeout": "3s"},
            },
            "webhook:pagerduty",
            "webhook:ntfy",
        )
    )
    pd, ntfy = policy.webhooks["pagerduty"], policy.webhooks["ntfy"]
    assert (pd.url, pd.timeout, pd.secret()) == ("https://events.example/hook", 10, "s3cret")
    assert (ntfy.timeout, ntfy.secret_env, ntfy.secret()) == (3, None, None)
    assert [s.notify for s in policy.oncall.escalation][1:] == ["webhook:pagerduty", "webhook:ntfy"]
    assert "s3cret" not in policy.model_dump_json()  # the secret never sits in the policy


@pytest.mark.parametrize(
    ("hook", "said"),
    [
        ({}, "webhooks.pd.url: Field required"),
        # (a refused url is not echoed: its path or query may hold a key; review23 M3)
        ({"url": "ftp://files.example/x"}, "webhooks.pd.url: a webhook url is http:// or"),
        ({"url": "ftp://files.example/x"}, "(its scheme is 'ftp')"),
        ({"url": "https:///path"}, "webhooks.pd.url: the url names no host"),
        ({"url": "example.com/hook"}, "webhooks.pd.url: a webhook url is http:// or https://"),
        ({"url": "https://x.example:99999/"}, "port is not a number from 1 to 65535 (host and"),
        ({"url": "https://u:p@x.example/"}, "webhooks.pd.url: a webhook url carries no user"),
        ({"url": "https://x.example/a b"}, "webhooks.pd.url: write the url percent-encoded"),
        (
            {"url": "https://x.example/", "secret_env": "NIGHTSHIFT_TEST_UNSET"},
            "webhooks.pd.secret_env: the environment variable NIGHTSHIFT_TEST_UNSET is not set",
        ),
        (
            {"url": "https://x.example/", "secret_env": "NIGHTSHIFT_TEST_EMPTY"},
            "webhooks.pd.secret_env: the environment variable NIGHTSHIFT_TEST_EMPTY is empty",
        ),
        (
            {"url": "https://x.example/", "secret_env": "hunter2 is my secret"},
            "webhooks.pd.secret_env: 'hunter2 is my secret': secret_env is the NAME",
        ),
        ({"url": "https://x.example/", "secrt": "X"}, "webhooks.pd.secrt: unknown key (did you"),
        ({"url": "https://x.example/", "timeout": "2m"}, "webhooks.pd.timeout: 120s is too long"),
        ({"url": "https://x.example/", "timeout": "0s"}, "webhooks.pd.timeout: '0s' is out of"),
        ({"url": 5}, "webhooks.pd.url: Input should be a valid string"),
    ],
)
def test_each_bad_value_is_refused_naming_its_key(hook: dict[str, Any], said: str):
    assert said in refusal(with_hooks({"pd": hook}))


@pytest.mark.parametrize(
    "url",
    [
        "https://admin:hunter2@pager.example:99999/x",  # a bad port, checked after the user
        "ftp://admin:hunter2@pager.example/x",
        "https://admin:hunter2@/x",
        "https://admin:hunter2\\@pager.example/x",
        "https://pager.example/hook/KEY0123456?token=QSECRET0 x",
        "https://pager.example:0/hook/KEY0123456?token=QSECRET0",
        "gopher://pager.example/hook/KEY0123456?token=QSECRET0",
        "https://pägér.example/hook/KEY0123456?token=QSECRET0",
        "hunter2/hook/KEY0123456?token=QSECRET0",
    ],
)
def test_a_refused_url_never_echoes_its_password_path_or_query(url: str):
    said = refusal(with_hooks({"pd": {"url": url}}))
    assert "webhooks.pd.url: " in said, said
    for secret in ("hunter2", "admin", "KEY0123456", "QSECRET0", "token="):
        assert secret not in said, said


def test_a_refused_url_names_its_host():
    said = refusal(with_hooks({"pd": {"url": "https://pager.example:99999/hook/KEY0123456"}}))
    assert "(host and port: pager.example:99999)" in said, said
    assert "KEY0123456" not in said


def test_a_step_naming_an_undefined_webhook_lists_the_known_ones():
    hooks = {"pagerduty": {"url": "https://x.example/"}, "ntfy": {"url": "https://y.example/"}}
    said = refusal(with_hooks(hooks, "webhook:pagerdty"))
    assert (
        "oncall.escalation.1.notify: unknown webhook 'pagerdty'; webhooks are ntfy, pagerduty"
        in (said)
    )
    none = refusal(with_hooks({}, "webhook:pagerduty"))
    assert "oncall.escalation.1.notify: unknown webhook 'pagerduty'; define it under webhooks:" in (
        none
    )


def test_an_undefined_webhook_is_named_beside_another_sections_mistake():
    data = with_hooks({}, "webhook:pager")
    data["budgets"] = 5
    said = refusal(data)
    assert "budgets: a mapping of keys" in said
    assert "oncall.escalation.1.notify: unknown webhook 'pager'" in said


@pytest.mark.parametrize("name", ["", "a b", "-x", "x" * 65, "<!channel>", "pagér"])
def test_a_webhook_name_is_one_plain_word(name: str):
    said = refusal(with_hooks({name: {"url": "https://x.example/"}}))
    assert "a webhook's name is one word" in said
    step = refusal(with_hooks({}, f"webhook:{name}"))
    assert "oncall.escalation.1.notify" in step


def test_a_step_kind_that_does_not_exist_names_the_webhook_kind_too():
    said = refusal(with_hooks({}, "hook:pager"))
    assert "notify is rotation:NAME, user:ID, webhook:NAME or channel" in said


def test_webhooks_must_be_a_mapping_of_names():
    assert "webhooks: " in refusal({"webhooks": ["https://x.example/"]})


def test_a_secret_file_is_read_at_each_delivery_not_kept_in_the_policy(tmp_path: Path):
    path = tmp_path / "pd.secret"
    path.write_text("  s3cret-from-file\n")
    policy = parse_policy(
        with_hooks({"pd": {"url": "https://x.example/", "secret_file": str(path)}})
    )
    hook = policy.webhooks["pd"]
    assert hook.secret() == "s3cret-from-file"  # surrounding whitespace is not the secret
    assert "s3cret" not in policy.model_dump_json()
    path.write_text("rotated-s3cret")
    assert hook.secret() == "rotated-s3cret"  # no reload needed
    path.write_text("")
    with pytest.raises(SecretUnreadable, match=f"the secret_file {path} is empty"):
        hook.secret()


@pytest.mark.parametrize(
    ("content", "said"),
    [
        (None, "webhooks.pd.secret_file: cannot read the secret_file {path} (No such file"),
        (b"\xff\xfe", "webhooks.pd.secret_file: the secret_file {path} is not UTF-8 text"),
        ("x" * 5000, "webhooks.pd.secret_file: the secret_file {path} is longer than 4096"),
    ],
)
def test_a_secret_file_giving_no_secret_is_refused_naming_the_file(
    tmp_path: Path, content: str | bytes | None, said: str
):
    path = tmp_path / "pd.secret"
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        path.write_text(content)
    got = refusal(with_hooks({"pd": {"url": "https://x.example/", "secret_file": str(path)}}))
    assert said.format(path=path) in got, got
    assert "x" * 50 not in got  # what the file holds is never shown


@pytest.mark.parametrize(
    ("hook", "said"),
    [
        ({"secret_file": ""}, "webhooks.pd.secret_file: secret_file is the PATH of a file"),
        ({"secret_file": "a\x00b"}, "webhooks.pd.secret_file: secret_file is the PATH"),
        ({"secret_file": 5}, "webhooks.pd.secret_file: Input should be a valid string"),
        ({"secret_file": "{dir}"}, "webhooks.pd.secret_file: the secret_file {dir} is not a reg"),
        (
            {"secret_env": SECRET_ENV, "secret_file": "{file}"},
            "webhooks.pd: give the signing secret one way: secret_env (an environment",
        ),
    ],
)
def test_a_bad_secret_file_key_is_refused(tmp_path: Path, hook: dict[str, Any], said: str):
    good = tmp_path / "good.secret"
    good.write_text("s3cret")
    filled = {
        k: v.format(dir=tmp_path, file=good) if isinstance(v, str) else v for k, v in hook.items()
    }
    got = refusal(with_hooks({"pd": {"url": "https://x.example/", **filled}}))
    assert said.format(dir=tmp_path) in got, got


@pytest.mark.parametrize("content", ["", " \n"])
def test_an_empty_secret_file_at_start_warns_and_holds_its_deliveries(
    tmp_path: Path, content: str, caplog: pytest.LogCaptureFixture
):
    """review25 L7: a start during a rewrite of the file no longer fails the whole start
    (budgets and breakers with it); a missing file still does (a typo)."""
    path = tmp_path / "pd.secret"
    path.write_text(content)
    with caplog.at_level("WARNING", logger="guards.config_webhooks"):
        policy = parse_policy(
            with_hooks({"pd": {"url": "https://x.example/", "secret_file": str(path)}})
        )
    assert f"the secret_file {path} is empty" in caplog.text
    assert "deliveries are held" in caplog.text
    with pytest.raises(SecretEmpty):  # never sent unsigned
        policy.webhooks["pd"].secret()


def test_a_fifo_as_secret_file_is_refused_without_waiting_for_a_writer(tmp_path: Path):
    """review25 L5: open() of a FIFO waits for a writer: the start (or a delivery) hung."""
    fifo = tmp_path / "pd.secret"
    os.mkfifo(fifo)
    said: list[str] = []

    def load() -> None:
        said.append(
            refusal(with_hooks({"pd": {"url": "https://x.example/", "secret_file": str(fifo)}}))
        )

    reader = threading.Thread(target=load, daemon=True)
    reader.start()
    reader.join(timeout=10)
    assert not reader.is_alive(), "reading the FIFO blocked"
    assert f"the secret_file {fifo} is not a regular file" in said[0], said


def test_a_relative_secret_file_is_read_from_the_policy_files_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    etc = tmp_path / "etc"
    etc.mkdir()
    (etc / "pd.secret").write_text("s3cret")
    config = etc / "nightshift.yml"
    config.write_text(
        yaml.safe_dump(
            with_hooks({"pd": {"url": "https://x.example/", "secret_file": "pd.secret"}})
        )
    )
    monkeypatch.chdir(tmp_path)  # not where the file is
    hook = load_policy(config).webhooks["pd"]
    assert hook.secret_file == str(etc / "pd.secret")
    assert hook.secret() == "s3cret"
    copy = tmp_path / "snapshot.yml"  # a reload reads a copy, elsewhere: base says where
    copy.write_text(config.read_text())
    assert load_policy(copy, base=etc).webhooks["pd"].secret_file == str(etc / "pd.secret")


def test_a_recorded_secret_env_no_longer_set_is_no_secret_not_unsigned(
    monkeypatch: pytest.MonkeyPatch,
):
    """review25 M4: a webhook taken out with its variable: its resolve went unsigned."""
    monkeypatch.delenv("GONE_SECRET", raising=False)
    hook = WebhookConfig.model_construct(
        url="https://bridge.example/h", secret_env="GONE_SECRET", secret_file=None, timeout=5
    )
    with pytest.raises(SecretUnreadable, match="variable GONE_SECRET is no longer set"):
        hook.secret()
