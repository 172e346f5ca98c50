"""Every command the README gives runs as written: each is parsed by what would run it.

Commands are taken from the README's fenced ``bash`` blocks and from inline code that starts
with ``python`` or ``snakemake``. Python scripts and modules have their arguments parsed by their
own argparse parser (stopped right after parsing, so no benchmark runs); Snakemake commands run
as a dry run (``-n``), with the demo config where they name no config; pytest commands collect.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
DEMO_CONFIG = REPO / "resources" / "configs" / "demo.yaml"

# Runs a script or module with argparse stopped right after its arguments are parsed.
PARSE_ONLY = r"""
import argparse, runpy, sys
original = argparse.ArgumentParser.parse_args
def parse_args(self, args=None, namespace=None):
    original(self, args, namespace)  # exits 2 naming a bad argument
    print("bioprobe-readme-test: parsed")
    raise SystemExit(0)
argparse.ArgumentParser.parse_args = parse_args
kind, target, *rest = sys.argv[1:]
sys.argv = [target, *rest]
sys.path.insert(0, {workflow!r})
if kind == "module":
    runpy.run_module(target, run_name="__main__", alter_sys=True)
else:
    runpy.run_path(target, run_name="__main__")
print("bioprobe-readme-test: no argument parser ran")
raise SystemExit(3)
"""


def readme_commands() -> list[str]:
    text = README.read_text()
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", text, flags=re.S):
        for line in block.splitlines():
            line = line.split(" #")[0].strip()
            if line and not line.startswith("#"):
                commands.append(line)
    prose = re.sub(r"```.*?```", "", text, flags=re.S)
    for code in re.findall(r"`([^`\n]+)`", prose):
        if re.match(r"^(python|snakemake) ", code) and "..." not in code:
            commands.append(code.strip())
    return list(dict.fromkeys(commands))


def run(cmd: list[str], cwd: Path = REPO, timeout: int = 600) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(REPO / "workflow"))
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, env=env, timeout=timeout)


def check_python(args: list[str]) -> None:
    if args[:2] == ["-m", "pytest"]:
        proc = run([sys.executable, "-m", "pytest", *args[2:], "--collect-only", "-q", "-p", "no:cacheprovider"])
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
        assert re.search(r"\d+ tests? collected", proc.stdout), proc.stdout[-2000:]
        return
    if args[0] == "-m":
        kind, target, rest = "module", args[1], args[2:]
    else:
        kind, target, rest = "script", str(REPO / args[0]), args[1:]
        assert Path(target).is_file(), f"{args[0]} does not exist"
        if "argparse" not in Path(target).read_text():
            assert not rest, f"{args[0]} takes no arguments, the README gives {rest}"
            compile(Path(target).read_text(), target, "exec")
            return
    code = PARSE_ONLY.format(workflow=str(REPO / "workflow"))
    proc = run([sys.executable, "-c", code, kind, target, *rest])
    assert proc.returncode == 0 and "bioprobe-readme-test: parsed" in proc.stdout, proc.stdout[-2000:] + proc.stderr[-3000:]


def check_snakemake(args: list[str], tmp_path: Path) -> None:
    if "--report" in args:
        # a report needs a finished run (test_workflow.py makes one from the demo): here the rest of
        # the command must plan, and the report's file name must be an HTML file
        at = args.index("--report")
        assert args[at + 1].endswith((".html", ".zip")), args
        args = args[:at] + args[at + 2:]
    extra = [] if any(a in ("--configfile", "--configfiles") for a in args) else ["--configfile", str(DEMO_CONFIG)]
    cmd = [sys.executable, "-m", "snakemake", *args, *extra, "-n", "--directory", str(tmp_path)]
    proc = run(cmd)
    assert proc.returncode == 0, f"{' '.join(cmd)}:\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}"


def test_the_readme_gives_the_commands_this_test_knows():
    commands = readme_commands()
    assert "snakemake --cores 8 --resources gpu=1" in commands
    assert "python bench/bench_embed.py --long-only --long-minutes 30" in commands
    assert all(c.split()[0] in ("pip", "python", "snakemake", "export") for c in commands), commands


@pytest.mark.parametrize("command", readme_commands())
def test_readme_command_parses(command, tmp_path):
    args = shlex.split(command)
    if args[0] == "pip":
        # pip install -e '.[test]': the extra it names exists
        extras = re.findall(r"\[(\w+)\]", command)
        assert extras and all(f"\n{e} = [" in (REPO / "pyproject.toml").read_text() for e in extras), command
    elif args[0] == "export":
        # export NAME=<what to fill in>: a variable the workflow or a profile reads
        assert re.fullmatch(r"export [A-Z][A-Z0-9_]*=\S.*", command), command
        name = command.split()[1].split("=")[0]
        assert any(name in p.read_text() for p in [*(REPO / "profiles").rglob("*.yaml"), *(REPO / "workflow").rglob("*.py")]), \
            f"{name}: read by no profile and no workflow code"
    elif args[0] == "python":
        check_python(args[1:])
    else:
        check_snakemake(args[1:], tmp_path)
