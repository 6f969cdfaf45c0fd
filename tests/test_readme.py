"""The README's commands run as written on a fresh clone: every ``edgeprune ...`` command in its fenced shell blocks
names a subcommand and options the command line has (checked with click, nothing is run), every script it runs
exists, the two set-up commands come first, and every file the README links to is in the repository."""

import re
import shlex
from pathlib import Path

import click
import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"


def shell_commands(text: str) -> list[str]:
    """The commands of the fenced ``sh``/``bash``/``shell`` blocks, one per line, ``a && b`` split into two."""
    commands = []
    for block in re.findall(r"^```(?:sh|bash|shell|console)\n(.*?)^```", text, re.M | re.S):
        for line in block.splitlines():
            line = re.split(r" #| [|>] ", line, maxsplit=1)[0].strip()  # no comment, pipe or redirection
            commands += [part.strip() for part in line.split("&&") if part.strip()]
    return commands


def edgeprune_invocations(commands: list[str]) -> list[list[str]]:
    """The arguments after ``edgeprune`` (or ``.venv/bin/edgeprune``) of every command that runs it."""
    return [shlex.split(c)[1:] for c in commands if Path(shlex.split(c)[0]).name == "edgeprune"]


def resolve(group: click.Group, args: list[str]) -> tuple[click.Command, list[str], str]:
    """The (sub)command ``args`` names, the arguments left for it, and its name as typed."""
    command, name = group, "edgeprune"
    while isinstance(command, click.Group):
        assert args and args[0] in command.commands, f"'{name} {args[:1]}': no such command"
        name += " " + args[0]
        command, args = command.commands[args[0]], args[1:]
    return command, args, name


def unknown_options(command: click.Command, args: list[str]) -> list[str]:
    known = {opt for p in command.params for opt in (*p.opts, *p.secondary_opts)} | {"--help"}
    return [a.split("=", 1)[0] for a in args if a.startswith("-") and a.split("=", 1)[0] not in known]


@pytest.fixture(scope="module")
def text():
    return README.read_text()


@pytest.fixture(scope="module")
def cli():
    from edgeprune.cli import cli

    return cli


def test_the_readme_is_short_and_starts_with_the_two_commands(text):
    lines = text.splitlines()
    assert len(lines) <= 260
    first = "\n".join(lines[:40])
    assert ('python3.11 -m venv .venv && .venv/bin/pip install -q -e ".[test]" && .venv/bin/edgeprune prune --model '
            "edsr --preset quick --out runs/edsr") in first
    assert ".venv/bin/python -m pytest" in first
    ci = (ROOT / ".ci" / "run").read_text()  # CI runs the README's two commands
    assert ".venv/bin/edgeprune prune --model edsr --preset quick --out runs/edsr" in ci
    assert ".venv/bin/python -m pytest" in ci


def test_every_edgeprune_command_in_the_readme_has_its_subcommand_and_options(text, cli):
    invocations = edgeprune_invocations(shell_commands(text))
    assert len(invocations) >= 8  # the scan finds the commands (prune, import, export, bench, calibrate, report)
    problems = []
    for args in invocations:
        try:
            command, rest, name = resolve(cli, args)
        except AssertionError as exc:
            problems.append(str(exc))
            continue
        problems += [f"'{name}': no option {o}" for o in unknown_options(command, rest)]
        try:  # click parses the arguments as it would on the command line (nothing is called)
            command.make_context(name, list(rest), resilient_parsing=True)
        except click.UsageError as exc:
            problems.append(f"'{name} {' '.join(rest)}': {exc.format_message()}")
    assert problems == []


def test_the_scripts_the_readme_runs_exist(text):
    commands = shell_commands(text)
    scripts = [tok for c in commands for tok in shlex.split(c) if tok.endswith((".py", ".sh")) and "/" in tok]
    assert [s for s in scripts if not (ROOT / s).is_file()] == []


def test_every_file_the_readme_links_exists(text):
    links = [target for target in re.findall(r"\]\(([^)\s]+)\)", text) if not re.match(r"[a-z]+://|#", target)]
    assert len(links) >= 5
    named = re.findall(r"`((?:edgeprune|tools|tests|examples|docs|keras_models|android_bench)/[\w./-]+\.\w+)`", text)
    missing = [p for p in [*links, *named] if not (ROOT / p.split("#")[0]).exists()]
    assert missing == []


def test_the_checks_would_find_a_wrong_command(cli):
    text = "```sh\nedgeprune prune --model edsr --no-such-option 1 --out x && edgeprune nosuch --json\n```\n"
    (args_a, args_b) = edgeprune_invocations(shell_commands(text))
    command, rest, _ = resolve(cli, args_a)
    assert unknown_options(command, rest) == ["--no-such-option"]
    with pytest.raises(AssertionError, match="no such command"):
        resolve(cli, args_b)


def test_every_benchmarks_section_the_readme_names_is_there(text):
    headings = [line.lstrip("#").strip().lower() for line in (ROOT / "BENCHMARKS.md").read_text().splitlines()
                if line.startswith("#")]
    flat = re.sub(r"\s*\n\s*", " ", text)
    cited = re.findall(r"BENCHMARKS\.md, \"([^\"]+)\"", flat) + re.findall(r"\| \"([^\"]+)\" \|", flat)
    assert len(cited) >= 4
    assert [c for c in cited if not any(c.lower() in h for h in headings)] == []
