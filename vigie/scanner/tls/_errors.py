"""The failures sslyze and nassl raise when a server misbehaves or the network fails."""

from __future__ import annotations

from nassl._nassl import OpenSSLError
from nassl.ssl_client import ClientCertificateRequested
from sslyze.connection_helpers.tls_connection import NoCiphersAvailableBugInSSlyze
from sslyze.errors import ConnectionToServerFailed, ConnectionToServerTimedOut, TlsHandshakeTimedOut
from sslyze.plugins.robot._robot_tester import ServerDoesNotSupportRsa

# What a job may raise; sslyze's own workers hand these to the scan command,
# which decides what they mean.
JOB_FAILURES: tuple[type[Exception], ...] = (
    ConnectionToServerFailed,
    ClientCertificateRequested,
    NoCiphersAvailableBugInSSlyze,
    ServerDoesNotSupportRsa,
    OSError,
    OpenSSLError,
)
# What a scan command may raise once it has its jobs' outcomes: the probe failed.
# ValueError and RuntimeError are sslyze's "should never happen" on odd servers.
PROBE_FAILURES: tuple[type[Exception], ...] = (*JOB_FAILURES, ValueError, RuntimeError)
TIMEOUTS: tuple[type[Exception], ...] = (
    ConnectionToServerTimedOut,
    TlsHandshakeTimedOut,
    TimeoutError,
)
