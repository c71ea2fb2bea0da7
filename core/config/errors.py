"""Configuration problems and the error that carries them."""

from __future__ import annotations

from dataclasses import dataclass

from core.errors import Pay2SlayError


@dataclass(frozen=True)
class ConfigProblem:
    """One invalid, missing or unknown configuration value.

    `key` is the dotted path from the section down (`payout.reset_tz`), `source` the file or
    environment variable the value came from, `expected` what the key accepts and `message`
    what is wrong. None of the four ever contains a configured value.
    """

    key: str
    source: str
    expected: str
    message: str

    def __str__(self) -> str:
        return f"{self.key} (from {self.source}): {self.message}. Expected {self.expected}."


class ConfigError(Pay2SlayError):
    """The configuration cannot be used; `problems` lists every reason found."""

    def __init__(self, problems: list[ConfigProblem]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(str(problem) for problem in self.problems))
