"""Record of the file or variable each configuration value came from, for problem messages."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Provenance:
    """Sources of configuration values, by dotted key such as `integrations.banano.signer`.

    `sources` maps a key to the file or environment variable that set it. A key without its
    own entry inherits the entry of its nearest parent. `references` maps a key to the
    variable named by its `${NAME}` reference. `unset` contains the keys whose reference named
    a variable that was not set.
    """

    sources: dict[str, str] = field(default_factory=dict)
    references: dict[str, str] = field(default_factory=dict)
    unset: set[str] = field(default_factory=set)

    def source_of(self, key: str) -> str:
        """Return the file or variable that set `key`, or "" when nothing is recorded."""
        parts = key.split(".")
        while parts:
            source = self.sources.get(".".join(parts))
            if source is not None:
                return source
            parts.pop()
        return ""

    def forget_below(self, key: str) -> None:
        """Drop what is recorded for `key` and its children, because a new value replaced it."""
        prefix = f"{key}."
        for recorded in (self.sources, self.references):
            for name in [name for name in recorded if name == key or name.startswith(prefix)]:
                del recorded[name]
        self.unset = {name for name in self.unset if name != key and not name.startswith(prefix)}
