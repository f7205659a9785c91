"""`phoneline simulate --sms` answers keywords as the real line does (opt-outs kept in memory)."""

from __future__ import annotations

from typer.testing import CliRunner

from service.cli import app as cli_app
from service.flowengine import Flow
from service.simulator import Simulation


def test_the_terminal_texter_switches_to_spanish_stops_and_gets_nothing() -> None:
    result = CliRunner().invoke(cli_app, ["simulate", "--sms"], input="HOLA\n1\nSTOP\nhi\n")
    assert result.exit_code == 0, result.output
    before_stop, after_stop = result.output.split("> STOP")
    assert "Línea de Segunda Opinión de VCU Massey" in before_stop
    assert "Una segunda opinión es una manera importante de participar" in before_stop
    confirmation, after_hi = after_stop.split("> hi")
    assert "No le enviaremos más mensajes" in confirmation
    assert "nothing is sent" in after_hi
    assert "---" not in after_hi


def test_the_simulation_keeps_the_opt_out_until_start(flow: Flow) -> None:
    texter = Simulation(flow, "sms")
    texter.begin()
    assert "No more messages will be sent" in "\n".join(texter.send("stop"))
    assert texter.opted_out
    assert texter.send("2") == ["[nothing is sent: this number opted out (START to opt back in)]"]
    assert texter.send("STOP") == texter.send("2")  # no second confirmation
    assert "subscribed" in "\n".join(texter.send("start"))
    assert "Your doctor can't recommend a colleague?" in "\n".join(texter.send("2"))
    assert "(804) 828-7999" in "\n".join(texter.send("help"))
    calling = texter.send("CALL")
    assert calling[-1] == "[calls the texter back and connects them to +18048287999]"
