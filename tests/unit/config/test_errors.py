"""Each kind of bad configuration fails with its own message naming key, source and fix."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from core.config import ConfigProblem

if TYPE_CHECKING:
    from tests.unit.config.conftest import EditConfig, LoadProblems


def only(problems: list[ConfigProblem]) -> ConfigProblem:
    assert len(problems) == 1, [str(problem) for problem in problems]
    return problems[0]


@pytest.mark.parametrize(
    ("file_name", "anchor", "key"),
    [
        ("payout.yaml", "batch_size: 0\n", "payout.surprise"),
        ("payout.yaml", "reset_rule:\n", "payout.reset_rule.surprise"),
        ("integrations.yaml", "chain_env: testnet\n", "integrations.surprise"),
        ("integrations.yaml", "rate_limits:\n", "integrations.rate_limits.surprise"),
        ("integrations.yaml", "abuse_heuristics:\n", "integrations.abuse_heuristics.surprise"),
        ("integrations.yaml", "banano:\n", "integrations.banano.surprise"),
        ("integrations.yaml", "discord:\n", "integrations.discord.surprise"),
        ("integrations.yaml", "database:\n", "integrations.database.surprise"),
        ("integrations.yaml", "server:\n", "integrations.server.surprise"),
        ("integrations.yaml", "observability:\n", "integrations.observability.surprise"),
        ("product.yaml", 'org_name: "Example Org"\n', "product.surprise"),
        ("product.yaml", "feature_flags:\n", "product.feature_flags.surprise"),
    ],
)
def test_unknown_key_rejected(
    edit_config: EditConfig,
    load_problems: LoadProblems,
    config_dir: Path,
    file_name: str,
    anchor: str,
    key: str,
) -> None:
    indent = "  " if key.count(".") == 2 else ""
    edit_config(file_name, anchor, f"{anchor}{indent}surprise: 1\n")

    problem = only(load_problems())

    assert problem.key == key
    assert problem.message == "unknown key"
    assert problem.source == str(config_dir / file_name)
    assert problem.expected.startswith("one of the keys ")


def test_unknown_key_suggests_close_name(
    edit_config: EditConfig, load_problems: LoadProblems
) -> None:
    edit_config("payout.yaml", "scheduler_minutes:", "scheduler_minute:")
    problems = load_problems()
    unknown = next(problem for problem in problems if problem.key == "payout.scheduler_minute")
    assert unknown.message == "unknown key (did you mean scheduler_minutes?)"
    missing = next(problem for problem in problems if problem.key == "payout.scheduler_minutes")
    assert missing.message == "missing key"
    assert missing.expected == "a number of minutes from 1 to 10080 (one week)"


@pytest.mark.parametrize(
    ("file_name", "old", "new", "key", "message", "expected"),
    [
        (
            "payout.yaml",
            "scheduler_minutes: 20",
            "scheduler_minutes: twenty",
            "payout.scheduler_minutes",
            "not an integer",
            "a number of minutes from 1 to 10080 (one week)",
        ),
        (
            "integrations.yaml",
            "dry_run: true",
            "dry_run: maybe",
            "integrations.dry_run",
            "not true or false",
            "true or false",
        ),
        (
            "integrations.yaml",
            "oauth_scopes: [identify, guilds]",
            "oauth_scopes: identify",
            "integrations.oauth_scopes",
            "not a list",
            "a non-empty list of Discord OAuth2 scope names",
        ),
        (
            "product.yaml",
            'app_name: "Pay2Slay Faucet"',
            "app_name: [Pay2Slay]",
            "product.app_name",
            "not a string",
            "a non-empty string",
        ),
        (
            "payout.yaml",
            "settlement_order: random",
            "settlement_order: newest_first",
            "payout.settlement_order",
            "not one of the allowed values",
            "random or oldest_first",
        ),
        (
            "payout.yaml",
            "  lower_readings: 3",
            "  lower_readings: 0",
            "payout.reset_rule.lower_readings",
            "must be at least 1",
            "an integer from 1 to 1000000",
        ),
        (
            "integrations.yaml",
            "  port: 8000",
            "  port: 70000",
            "integrations.server.port",
            "must be at most 65535",
            "a TCP port from 0 to 65535",
        ),
        (
            "integrations.yaml",
            "  log_level: INFO",
            "  log_level: LOUD",
            "integrations.observability.log_level",
            "not one of the allowed values",
            "DEBUG, INFO, WARNING, ERROR or CRITICAL",
        ),
        (
            "integrations.yaml",
            'discord_guild_id: ""',
            'discord_guild_id: "12ab"',
            "integrations.discord_guild_id",
            "not a Discord ID of 17 to 20 digits",
            'a Discord ID (17 to 20 digits), or "" when not set',
        ),
        (
            "integrations.yaml",
            'node_rpc: ""',
            'node_rpc: "ftp://127.0.0.1/rpc"',
            "integrations.node_rpc",
            "not an http:// or https:// URL with a host",
            'an http:// or https:// URL, or "" for none',
        ),
        (
            "integrations.yaml",
            '  work_threshold: "fffffe0000000000"',
            "  work_threshold: 0000000000000000",
            "integrations.banano.work_threshold",
            'write the threshold as 16 hexadecimal digits in quotes, e.g. "fffffe0000000000"; '
            "digits alone read as a number, in YAML and in P2S_ variables alike",
            "16 hexadecimal digits in quotes",
        ),
        (
            "integrations.yaml",
            "  work_sources: [node, local]",
            "  work_sources: [node, node]",
            "integrations.banano.work_sources",
            "a work source is listed twice",
            "a non-empty list of node, work_server, do_work and local, without repeats",
        ),
        (
            "integrations.yaml",
            '  explorer_block_url: "https://creeper.banano.cc/hash/{block_hash}"',
            '  explorer_block_url: "https://creeper.banano.cc/hash/{hash}"',
            "integrations.banano.explorer_block_url",
            "the URL has no {block_hash} placeholder",
            'a URL that contains {block_hash}, or "" for no links',
        ),
        (
            "integrations.yaml",
            "  signer: local",
            "  signer: remote",
            "integrations.banano.signer",
            "not one of the allowed values",
            "local or node_wallet",
        ),
        (
            "product.yaml",
            "default_locale: en",
            "default_locale: English!",
            "product.default_locale",
            "not a language tag",
            "a language tag such as en, de or pt-BR",
        ),
    ],
)
def test_invalid_value_rejected(
    edit_config: EditConfig,
    load_problems: LoadProblems,
    config_dir: Path,
    file_name: str,
    old: str,
    new: str,
    key: str,
    message: str,
    expected: str,
) -> None:
    edit_config(file_name, old, new)

    problem = only(load_problems())

    assert problem.key == key
    assert problem.message == message
    assert problem.expected == expected
    assert problem.source == str(config_dir / file_name)


def test_section_of_wrong_type(edit_config: EditConfig, load_problems: LoadProblems) -> None:
    edit_config("payout.yaml", "  lower_readings: 3\n", "")
    edit_config("payout.yaml", "reset_rule:", "reset_rule: 5")
    problem = only(load_problems())
    assert problem.key == "payout.reset_rule"
    assert problem.message == "not a mapping of keys to values"
    assert problem.expected == "a mapping with the keys lower_readings"


def test_negative_amount_rejected(edit_config: EditConfig, load_problems: LoadProblems) -> None:
    edit_config(
        "payout.yaml", "payout_amount_ban_per_kill: 2.1", "payout_amount_ban_per_kill: -2.1"
    )
    edit_config("integrations.yaml", "min_operator_balance_ban: 50", "min_operator_balance_ban: -1")

    problems = {problem.key: problem for problem in load_problems()}

    assert problems["payout.payout_amount_ban_per_kill"].message == "must be greater than 0"
    assert problems["integrations.min_operator_balance_ban"].message == "must be at least 0"
    assert len(problems) == 2


def test_amount_finer_than_raw_rejected(
    edit_config: EditConfig, load_problems: LoadProblems
) -> None:
    # 30 decimal places: one digit more than raw can hold.
    amount = "0." + "0" * 29 + "1"
    edit_config(
        "payout.yaml", "payout_amount_ban_per_kill: 2.1", f"payout_amount_ban_per_kill: {amount}"
    )

    problem = only(load_problems())

    assert problem.key == "payout.payout_amount_ban_per_kill"
    assert problem.message == (
        "The amount '1E-30' has more than 29 decimals, which is finer than 1 raw. "
        "Round it to 29 decimals or fewer"
    )
    assert problem.expected == (
        "an amount of BAN greater than 0 and at most 10000, with at most 29 decimal places"
    )


def test_amount_above_maximum_rejected(
    edit_config: EditConfig, load_problems: LoadProblems
) -> None:
    edit_config(
        "integrations.yaml", "min_operator_balance_ban: 50", "min_operator_balance_ban: 1e10"
    )
    problem = only(load_problems())
    assert problem.key == "integrations.min_operator_balance_ban"
    assert problem.message == "must be at most 1000000000"


def test_not_a_number_amount_rejected(edit_config: EditConfig, load_problems: LoadProblems) -> None:
    edit_config(
        "payout.yaml", "payout_amount_ban_per_kill: 2.1", "payout_amount_ban_per_kill: .nan"
    )
    problem = only(load_problems())
    assert problem.key == "payout.payout_amount_ban_per_kill"
    assert problem.message == "not a finite number"


def test_invalid_time_zone_rejected(edit_config: EditConfig, load_problems: LoadProblems) -> None:
    edit_config("payout.yaml", "reset_tz: UTC", "reset_tz: Mars/Olympus_Mons")
    problem = only(load_problems())
    assert problem.key == "payout.reset_tz"
    assert problem.message == "not a known IANA time zone"
    assert problem.expected == "an IANA time zone name such as UTC or Europe/Berlin"


def test_time_zone_path_rejected(edit_config: EditConfig, load_problems: LoadProblems) -> None:
    edit_config("payout.yaml", "reset_tz: UTC", "reset_tz: ../../etc/passwd")
    assert only(load_problems()).message == "not a known IANA time zone"


def test_missing_file_reported(config_dir: Path, load_problems: LoadProblems) -> None:
    (config_dir / "product.yaml").unlink()
    problem = only(load_problems())
    assert problem.key == "product"
    assert problem.source == str(config_dir / "product.yaml")
    assert problem.message == "file not found"


def test_unreadable_file_reported(config_dir: Path, load_problems: LoadProblems) -> None:
    (config_dir / "payout.yaml").unlink()
    (config_dir / "payout.yaml").mkdir()
    problem = only(load_problems())
    assert problem.key == "payout"
    assert problem.message.startswith("cannot read the file (")


def test_non_utf8_file_reported(config_dir: Path, load_problems: LoadProblems) -> None:
    (config_dir / "payout.yaml").write_bytes(b"reset_tz: \xff\xfe\n")
    assert only(load_problems()).message == "the file is not UTF-8 text"


def test_invalid_yaml_reported(edit_config: EditConfig, load_problems: LoadProblems) -> None:
    edit_config("product.yaml", "default_locale: en", "default_locale: [en")
    problem = only(load_problems())
    assert problem.key == "product"
    assert problem.message.startswith("invalid YAML at line ")
    assert "column" in problem.message


def test_duplicate_key_reported(edit_config: EditConfig, load_problems: LoadProblems) -> None:
    edit_config("payout.yaml", "batch_size: 0\n", "batch_size: 0\nbatch_size: 5\n")
    problem = only(load_problems())
    assert problem.key == "payout"
    assert "found duplicate key 'batch_size'" in problem.message
    assert problem.message.startswith("invalid YAML at line 17, column 1")


def test_list_file_reported(config_dir: Path, load_problems: LoadProblems) -> None:
    (config_dir / "product.yaml").write_text("- app_name\n", encoding="utf-8")
    problem = only(load_problems())
    assert problem.message == "the file contains a list instead of a mapping"


def test_problems_from_all_files_listed(
    config_dir: Path, edit_config: EditConfig, load_problems: LoadProblems
) -> None:
    (config_dir / "product.yaml").unlink()
    edit_config("payout.yaml", "reset_tz: UTC", "reset_tz: Nowhere")
    edit_config("integrations.yaml", "chain_env: testnet", "chain_env: moon")

    keys = [problem.key for problem in load_problems()]

    assert sorted(keys) == ["integrations.chain_env", "payout.reset_tz", "product"]


def test_work_server_without_url_rejected(
    edit_config: EditConfig, load_problems: LoadProblems
) -> None:
    edit_config("integrations.yaml", "work_sources: [node, local]", "work_sources: [work_server]")
    problem = only(load_problems())
    assert problem.key == "integrations.banano.work_server_url"
    assert problem.message == "empty while banano.work_sources lists work_server"


def test_problem_line_format(edit_config: EditConfig, load_problems: LoadProblems) -> None:
    edit_config("payout.yaml", "reset_tz: UTC", "reset_tz: Nowhere")
    problem = only(load_problems())
    assert str(problem) == (
        f"payout.reset_tz (from {problem.source}): not a known IANA time zone. "
        "Expected an IANA time zone name such as UTC or Europe/Berlin."
    )


def test_invalid_representative_rejected(
    edit_config: EditConfig, load_problems: LoadProblems
) -> None:
    # A well-formed address whose last character breaks the checksum.
    address = "ban_1" + "1" * 58 + "2"
    edit_config("integrations.yaml", 'representative: ""', f"representative: {address}")
    problem = only(load_problems())
    assert problem.key == "integrations.banano.representative"
    assert problem.message == "not a valid ban_ address"
