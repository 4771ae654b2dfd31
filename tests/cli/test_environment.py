"""What the CLI takes from its surroundings: a terminal and NO_COLOR, shell completion, PROVISION_SANDBOX."""

from __future__ import annotations

import json
import os
import pty
import re
import socket
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = Path(sys.executable).with_name("provision")  # the console script, as a user (and completion) runs it
COLOUR = re.compile(r"\x1b\[(?:\d+;)*3[0-9](?:;\d+)*m")  # an SGR sequence that sets a foreground colour


def on_terminal(*args: str, env: dict[str, str]) -> str:
    """Run `provision ARGS` with stdout and stderr on a pseudo-terminal; everything it wrote."""
    # rich reads FORCE_COLOR (even empty) and NO_COLOR: only what the test gives counts
    inherited = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "FORCE_COLOR")}
    main, child = pty.openpty()
    try:
        subprocess.run([sys.executable, "-m", "provision", *args], stdin=subprocess.DEVNULL, stdout=child,
                       stderr=child, env={**inherited, "TERM": "xterm-256color", **env}, cwd=ROOT, timeout=120)
    finally:
        os.close(child)
    chunks = []
    while True:
        try:
            chunk = os.read(main, 65536)
        except OSError:  # EIO: the terminal's other side is closed and everything was read
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(main)
    return b"".join(chunks).decode(errors="replace")


def test_colour_on_a_terminal_and_none_with_no_color(tmp_path: Path) -> None:
    plan = tmp_path / "plan.yaml"
    plan.write_text("version: 1\nname: demo\nazure:\n  locaton: westeurope\n")
    coloured = on_terminal("azure", "plan", str(plan), env={})
    assert "did you mean 'location'" in coloured
    assert COLOUR.search(coloured), "a terminal should get colour (else this test proves nothing)"
    plain = on_terminal("azure", "plan", str(plan), env={"NO_COLOR": "1"})
    assert "did you mean 'location'" in plain
    assert not COLOUR.search(plain), repr(plain)


def test_shell_completion_offers_commands_and_options() -> None:
    def complete(words: str) -> list[str]:
        env = {**os.environ, "_PROVISION_COMPLETE": "complete_bash", "COMP_WORDS": words,
               "COMP_CWORD": str(len(words.split()) - (0 if words.endswith(" ") else 1))}
        result = subprocess.run([str(SCRIPT)], capture_output=True, text=True, env=env, timeout=60)
        assert result.returncode == 0, result.stderr
        return result.stdout.split()

    assert complete("provision az") == ["azure"]
    assert "plan" in complete("provision azure ")
    assert "--detailed-exitcode" in complete("provision azure plan x.yaml --")
    assert complete("provision azure plan x.yaml --output ") == ["text", "json"]
    shown = subprocess.run([str(SCRIPT), "--show-completion"], capture_output=True, text=True,
                           env={**os.environ, "SHELL": "/bin/bash"}, timeout=60)
    assert shown.returncode == 0 and "_PROVISION_COMPLETE" in shown.stdout


def test_a_stopped_sandbox_behind_provision_sandbox_is_reported_at_once(tmp_path: Path) -> None:
    """sandbox.json outlives `provision sandbox serve`: a command must say so, not retry for minutes."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # free once closed: nothing listens there
    described = {"url": f"https://127.0.0.1:{port}", "ca_bundle": str(tmp_path / "ca.pem"),
                 "tenant_id": "00000000-0000-0000-0000-000000000001",
                 "subscription_id": "00000000-0000-0000-0000-000000000002",
                 "client_id": "00000000-0000-0000-0000-000000000003", "client_secret": "secret",
                 "state_dir": str(tmp_path), "gcp_project": "sandbox-project"}
    (tmp_path / "sandbox.json").write_text(json.dumps(described))
    result = subprocess.run([sys.executable, "-m", "provision", "azure", "plan", "playbooks/azure-ohif.yaml"],
                            capture_output=True, text=True, stdin=subprocess.DEVNULL, cwd=ROOT, timeout=60,
                            env={**os.environ, "NO_COLOR": "1", "PROVISION_SANDBOX": str(tmp_path / "sandbox.json")})
    assert result.returncode == 1
    assert f"no sandbox answers at https://127.0.0.1:{port}" in result.stderr
    assert "provision sandbox serve" in result.stderr and "Traceback" not in result.stderr


def test_sandbox_serve_on_a_port_in_use_is_a_one_line_error(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run([sys.executable, "-m", "provision", "sandbox", "serve", "--state", str(tmp_path),
                                 "--port", str(port)], capture_output=True, text=True, timeout=60,
                                env={**os.environ, "NO_COLOR": "1"})
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr.startswith(f"Error: cannot start the sandbox on port {port}: ")
    assert "hint: choose another --port" in result.stderr and "Traceback" not in result.stderr
