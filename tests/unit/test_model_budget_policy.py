"""``budgets.models`` in the policy: keys are model names counted undated and in lower
case; a bad key, window or amount refuses the start, naming its key path."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.cli import main
from guards.config import parse_policy


def test_keys_are_normalised_as_reservations_count_models():
    policy = parse_policy(
        {
            "budgets": {
                "models": {
                    "Claude-Opus-4-1-20250805": {"day": "50.00", "month": "$1,000"},
                    "gpt-4o-latest": {"total": 5},
                    "llama3:8b": {"week": "0"},  # $0: that model refused outright
                }
            }
        }
    )
    assert policy.budgets.models == {
        "claude-opus-4-1": {"day": 50_000_000, "month": 1_000_000_000},
        "gpt-4o": {"total": 5_000_000},
        "llama3:8b": {"week": 0},
    }
    assert parse_policy({}).budgets.models == {}


@pytest.mark.parametrize(
    ("models", "said"),
    [
        (
            {"claude-opus-4-1": {"daily": "50"}},
            "budgets.models.claude-opus-4-1.daily: unknown window 'daily'; windows are day,"
            " week, month, total",
        ),
        (
            {"claude-opus-4-1": {"day": "-5"}},
            "budgets.models.claude-opus-4-1.day: '-5' is negative",
        ),
        ({"claude-opus-4-1": {"day": "NaN"}}, "budgets.models.claude-opus-4-1.day: 'NaN' is not"),
        (
            {"claude-opus-4-1": {"day": float("inf")}},
            "budgets.models.claude-opus-4-1.day: inf is not",
        ),
        (
            {"<!channel>": {"day": "5"}},
            "budgets.models.<!channel>: '<!channel>' is not a model name: a model name is letters,",
        ),
        (
            {"gpt-4o": {"day": "5"}, "GPT-4o-2024-08-06": {"day": "9"}},
            "budgets.models.GPT-4o-2024-08-06: 'GPT-4o-2024-08-06' and 'gpt-4o' are one model"
            " (counted as 'gpt-4o': a snapshot's date, -latest and case do not count);"
            " keep one key",
        ),
        ({"gpt-4o": 5}, "budgets.models.gpt-4o: a mapping of keys"),
        # review23 M2: no window caps nothing, and was taken without a word
        (
            {"claude-opus-4-1": None},
            "budgets.models.claude-opus-4-1: no window given, so it caps nothing: give at"
            " least one of day, week, month, total (as claude-opus-4-1: {day: 50.00}), or"
            " leave the key out",
        ),
        ({"gpt-4o": {}}, "budgets.models.gpt-4o: no window given, so it caps nothing"),
    ],
)
def test_a_bad_model_budget_refuses_the_start_naming_its_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], models: dict[str, object], said: str
) -> None:
    import yaml

    config = tmp_path / "nightshift.yml"
    config.write_text(
        yaml.safe_dump({"budgets": {"models": models}}, sort_keys=False), encoding="utf-8"
    )
    db = tmp_path / "ns.db"
    assert main(["run", "--config", str(config), "--db", str(db)]) == 2
    err = capsys.readouterr().err
    assert said in err, err
    assert not db.exists()  # nothing was started or written
