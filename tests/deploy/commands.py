"""Checks that a process's command line would start: its program, subcommand and options exist.

One check for the Procfile, the systemd units and the ECS task definitions, so that none of them
names a management command, a Celery subcommand, a gunicorn option or an application that is not
there. Each command is parsed by the program's own parser (Django's, Celery's click commands,
gunicorn's argparse), without starting anything.
"""

from __future__ import annotations

import importlib
import shlex
import warnings
from pathlib import Path

import pytest
from celery.app.utils import find_app
from celery.bin.base import CLIContext
from celery.bin.celery import celery as celery_command
from django.core.management import get_commands, load_command_class
from gunicorn.config import Config as GunicornConfig


def assert_command_starts(argv: list[str]) -> None:
    program = Path(argv[0]).name
    if program == "sh":
        assert argv[1] == "-c", argv
        for command in shell_commands(argv[2]):
            assert_command_starts(command)
    elif program in ("python", "python3"):
        assert argv[1] == "manage.py", f"{argv}: only management commands are run with python"
        _assert_management_command(argv[2:])
    elif program == "celery":
        _assert_celery_command(argv[1:])
    elif program == "gunicorn":
        _assert_gunicorn_command(argv[1:])
    else:
        pytest.fail(f"{argv}: no check for program {program!r}")


def shell_commands(script: str) -> list[list[str]]:
    """The commands of a ``cmd && cmd && exec cmd`` script, without its assignments and exports."""
    commands: list[list[str]] = [[]]
    for token in shlex.split(script):
        if token == "&&":
            commands.append([])
        else:
            commands[-1].append(token)
    result = []
    for command in commands:
        if command[0] == "exec":
            command = command[1:]
        is_assignment = len(command) == 1 and command[0].split("=", 1)[0].isidentifier() and "=" in command[0]
        if command[0] == "export" or is_assignment:
            continue
        result.append(command)
    return result


def _assert_management_command(args: list[str]) -> None:
    name, options = args[0], args[1:]
    commands = get_commands()
    assert name in commands, f"manage.py has no command {name!r}"
    parser = load_command_class(commands[name], name).create_parser("manage.py", name)
    # Outside the command line Django's parser raises CommandError instead of exiting.
    parser.parse_args(options)


def _assert_celery_command(args: list[str]) -> None:
    context = celery_command.make_context("celery", list(args))
    app = find_app(context.params["app"])
    assert app.main == "statustracker", f"-A {context.params['app']} is not the project's Celery app"
    context.obj = CLIContext(app=app, no_color=True, workdir=None, quiet=True)
    with warnings.catch_warnings():
        # Click 8.2 keeps the subcommand in protected_args (deprecated); Click 9 will keep it in args.
        warnings.simplefilter("ignore", DeprecationWarning)
        subcommand_name, *options = [*context.protected_args, *context.args]
    subcommand = celery_command.get_command(context, subcommand_name)
    assert subcommand is not None, f"celery has no command {subcommand_name!r}"
    # Parses and checks every option (queues, log level, concurrency) as the real start would.
    subcommand.make_context(subcommand_name, options, parent=context)


def _assert_gunicorn_command(args: list[str]) -> None:
    try:
        parsed = GunicornConfig().parser().parse_args(args)
    except SystemExit:
        pytest.fail(f"gunicorn refuses {args}")
    (application,) = parsed.args
    module_name, _, variable = application.partition(":")
    module = importlib.import_module(module_name)
    assert callable(getattr(module, variable or "application", None)), f"{application} names no WSGI application"
