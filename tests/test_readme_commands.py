"""README and CLI stay together: every command has one entry in Commands naming all its options."""

from __future__ import annotations

import re
from pathlib import Path

import click
import pytest

from fleettickets.cli import cli

README = Path(__file__).resolve().parents[1] / "README.md"
# Options every command accepts after its name; the Commands introduction covers them.
EVERYWHERE = {"--help", "-h", "--verbose", "-v", "--quiet", "-q"}


def commands(group: click.Group, prefix: tuple[str, ...] = ()) -> dict[str, click.Command]:
    found: dict[str, click.Command] = {}
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            found.update(commands(command, (*prefix, name)))
        else:
            found[" ".join((*prefix, name))] = command
    return found


def long_options(command: click.Command) -> list[str]:
    names = []
    for param in command.params:
        if isinstance(param, click.Option):
            longs = [o for o in param.opts if o.startswith("--")] or param.opts
            names += [o for o in longs if o not in EVERYWHERE]
    return names


def commands_section() -> str:
    text = README.read_text()
    return text.split("\n## Commands\n", 1)[1].split("\n## ", 1)[0]


def entries() -> dict[str, str]:
    """Entry text by command path, from the `### fleettickets <command>` headings."""
    parts = re.split(r"^### fleettickets (.+)$", commands_section(), flags=re.M)
    found: dict[str, str] = {}
    for name, body in zip(parts[1::2], parts[2::2], strict=True):
        assert name.strip() not in found, f"README has two entries for {name}"
        found[name.strip()] = body
    return found


def test_every_command_has_exactly_one_entry_and_every_entry_a_command() -> None:
    assert sorted(entries()) == sorted(commands(cli))


@pytest.mark.parametrize("path", sorted(commands(cli)))
def test_every_option_of_a_command_is_in_its_entry(path: str) -> None:
    body = entries()[path]
    missing = [o for o in long_options(commands(cli)[path]) if not re.search(re.escape(o) + r"(?![\w-])", body)]
    assert missing == [], f"README entry for {path} does not mention {missing}"


def test_every_entry_shows_a_real_example() -> None:
    for path, body in entries().items():
        assert f"$ fleettickets {path}" in body, f"README entry for {path} has no example run"


def test_the_global_options_are_introduced() -> None:
    intro = commands_section().split("\n### ", 1)[0]
    for option in long_options(cli) + ["--version", "-v", "-q"]:
        assert option in intro, option


def test_every_command_shown_in_the_readme_exists() -> None:
    known = set(commands(cli)) | {name for name, c in cli.commands.items() if isinstance(c, click.Group)}
    # A command line is one in code: after a shell prompt, in backquotes, or a task's command.
    shown = re.findall(r"(?:\$ |`)fleettickets (?:-\S+ )*([a-z][a-z-]*)", README.read_text())
    assert len(shown) > 20
    for name in shown:
        assert name in known, f"README shows `fleettickets {name}`, which is no command"
