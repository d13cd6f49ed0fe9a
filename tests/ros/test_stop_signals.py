"""stop_on_signals: SIGINT/SIGTERM start the ordered stop once, whatever the process inherited."""

from __future__ import annotations

import os
import signal

import pytest

from bremen_robot.ros.stop_signals import stop_on_signals


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_the_first_signal_interrupts_a_second_is_ignored_and_handlers_come_back(sig, capsys):
    before = signal.signal(signal.SIGINT, signal.SIG_IGN)  # as a shell's background job inherits it
    try:
        term_before = signal.getsignal(signal.SIGTERM)
        raised = 0
        with stop_on_signals():
            try:
                os.kill(os.getpid(), sig)
                signal.sigtimedwait([], 0.05)  # let the handler run here, not later
            except KeyboardInterrupt:
                raised += 1
            os.kill(os.getpid(), sig)  # during the stop: reported, not raised
            signal.sigtimedwait([], 0.05)
        assert raised == 1
        assert "already stopping the graph in order" in capsys.readouterr().err
        assert signal.getsignal(signal.SIGINT) == signal.SIG_IGN
        assert signal.getsignal(signal.SIGTERM) == term_before
    finally:
        signal.signal(signal.SIGINT, before)


def test_once_a_stop_has_begun_for_another_reason_a_signal_no_longer_interrupts(capsys):
    with stop_on_signals() as stopping:
        stopping.begin()  # e.g. the budget was used up and the graph is being stopped
        os.kill(os.getpid(), signal.SIGINT)
        signal.sigtimedwait([], 0.05)
    assert "already stopping the graph in order" in capsys.readouterr().err
