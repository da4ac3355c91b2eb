"""The Procfile and the systemd units (deploy/systemd/): each command starts, and the units are valid."""

from __future__ import annotations

import shlex
import shutil
import subprocess

import pytest

from tests.conftest import ROOT
from tests.deploy.commands import assert_command_starts

UNITS = ROOT / "deploy" / "systemd"
# Where the units expect the project (with its .venv) on a machine.
INSTALLED_AT = "/srv/statustracker"
PROCESSES = {"web", "worker", "beat", "consumer"}


def _procfile() -> dict[str, str]:
    processes = {}
    for line in (ROOT / "Procfile").read_text().splitlines():
        name, _, command = line.partition(":")
        processes[name.strip()] = command.strip()
    return processes


def _unit_settings(path) -> list[tuple[str, str, str]]:
    """(section, key, value) of every setting, in order; a unit may repeat a key."""
    settings, section = [], ""
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("["):
            section = line.strip("[]")
        else:
            key, _, value = line.partition("=")
            settings.append((section, key, value))
    return settings


def test_the_procfile_runs_each_process_with_a_command_that_starts():
    processes = _procfile()

    assert set(processes) == PROCESSES
    for command in processes.values():
        assert_command_starts(shlex.split(command))


def test_each_unit_command_starts_and_the_units_restart_and_are_confined():
    units = {
        path.name: dict((key, value) for _, key, value in _unit_settings(path)) for path in UNITS.glob("*.service")
    }
    commands = [
        value
        for path in UNITS.glob("*.service")
        for section, key, value in _unit_settings(path)
        if key in ("ExecStart", "ExecStartPre")
    ]

    processes = {name: unit for name, unit in units.items() if name != "statustracker-migrate.service"}
    assert set(processes) == {
        "statustracker-web.service",
        "statustracker-worker@.service",
        "statustracker-beat.service",
        "statustracker-consumer@.service",
    }
    assert len(commands) == 6  # four processes, collectstatic before the web server, and migrate
    for command in commands:
        # The instance name (a queue, a number) and the host name, as systemd fills them in.
        argv = shlex.split(command.replace("%I", "statustracker").replace("%i", "1").replace("%H", "host"))
        assert argv[0].startswith(f"{INSTALLED_AT}/.venv/bin/"), argv
        assert_command_starts(argv)
    for name, unit in processes.items():
        assert unit["Restart"] == "always", name
        assert unit["WantedBy"] == unit["PartOf"] == "statustracker.target"
    # Migrations run once, when started by hand, never on their own.
    assert (units["statustracker-migrate.service"]["Type"], "Restart" in units["statustracker-migrate.service"]) == (
        "oneshot",
        False,
    )
    assert "WantedBy" not in units["statustracker-migrate.service"]
    for name, unit in units.items():
        assert unit["EnvironmentFile"] == "/etc/statustracker/statustracker.env", name
        assert unit["WorkingDirectory"] == INSTALLED_AT, name
        assert unit["User"] == "statustracker", name
        assert (unit["NoNewPrivileges"], unit["ProtectSystem"], unit["CapabilityBoundingSet"]) == ("yes", "strict", "")
        assert unit["Environment"] == "STATUSTRACKER_VAR_DIR=/var/lib/statustracker"
        assert unit["StateDirectory"] == "statustracker"
    # Celery's warm shutdown: SIGTERM to the main process only, time for the longest task (150 s).
    assert units["statustracker-worker@.service"]["KillMode"] == "mixed"
    assert int(units["statustracker-worker@.service"]["TimeoutStopSec"]) > 150


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
def test_systemd_analyze_verify_finds_nothing_to_report(tmp_path):
    # Given the units as installed, with this checkout (and its .venv) where they expect the project,
    # since systemd-analyze checks that each command's program exists
    for path in [*UNITS.glob("*.service"), UNITS / "statustracker.target"]:
        (tmp_path / path.name).write_text(path.read_text().replace(INSTALLED_AT, str(ROOT)))
    # and an instance of each template unit
    for template, instance in (("statustracker-worker@", "statustracker"), ("statustracker-consumer@", "1")):
        (tmp_path / f"{template}{instance}.service").write_text((tmp_path / f"{template}.service").read_text())
    units = [
        "statustracker-web.service",
        "statustracker-beat.service",
        "statustracker-worker@statustracker.service",
        "statustracker-consumer@1.service",
        "statustracker-migrate.service",
        "statustracker.target",
    ]

    # When systemd verifies them
    result = subprocess.run(
        ["systemd-analyze", "verify", *(str(tmp_path / unit) for unit in units)],
        capture_output=True,
        text=True,
        timeout=60,
    )

    # Then it reports nothing: no unknown key, no bad value, no missing program
    assert (result.returncode, result.stdout + result.stderr) == (0, "")
