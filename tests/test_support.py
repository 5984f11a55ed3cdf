"""The test harness's own rules: what counts as CI, ports held from the moment they are chosen."""

from __future__ import annotations

import socket

import pytest

from tests.conftest import under_ci
from tests.support.pgserver import reserved_port


@pytest.mark.parametrize("value", ["true", "1", "yes", "True", " on ", "github-actions"])
def test_ci_is_any_value_that_does_not_say_no(value: str) -> None:
    assert under_ci({"CI": value}) is True


@pytest.mark.parametrize("value", ["", "0", "false", "FALSE", "no", "off", "  "])
def test_ci_false_zero_or_empty_is_not_ci(value: str) -> None:
    assert under_ci({"CI": value}) is False
    assert under_ci({}) is False


def test_a_reserved_port_is_never_handed_out_and_a_server_can_still_listen_on_it() -> None:
    with reserved_port() as port:
        # Nobody asking the kernel for a free port gets it while it is held ...
        asked = []
        try:
            for _ in range(300):
                s = socket.socket()
                asked.append(s)
                s.bind(("127.0.0.1", 0))
            assert port not in {s.getsockname()[1] for s in asked}
        finally:
            for s in asked:
                s.close()
        # ... a program binding it without SO_REUSEADDR is refused ...
        with socket.socket() as plain, pytest.raises(OSError):
            plain.bind(("127.0.0.1", port))
        # ... and a server that sets SO_REUSEADDR, as PostgreSQL does, listens on it.
        with socket.socket() as server:
            server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            server.bind(("127.0.0.1", port))
            server.listen()
            with socket.create_connection(("127.0.0.1", port), timeout=5):
                conn, _ = server.accept()
                conn.close()
