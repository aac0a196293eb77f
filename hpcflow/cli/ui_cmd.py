"""``hpcflow ui``: the web dashboard, served on this machine for a browser reached through
``ssh -L``; it prints the URL with its access token once, and how to forward it."""

from __future__ import annotations

import contextlib
import dataclasses
import getpass
import signal
import socket
from pathlib import Path

import click

#: The laptop's port the printed ``ssh -L`` line forwards.
LOCAL_PORT = 8765


def _names_of(bind: str) -> frozenset[str]:
    """The Host names a browser may use for ``bind``: the address itself, and for a wildcard
    (0.0.0.0, ::) this machine's names and addresses (any other name is refused)."""
    names = {bind.lower()}
    if bind in ("0.0.0.0", "::", ""):
        for name in (socket.gethostname(), socket.getfqdn()):
            names.add(name.lower())
            with contextlib.suppress(OSError):
                names.update(socket.gethostbyname_ex(name)[2])
    return frozenset(names)


def _stop(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


@click.command()
@click.option("--port", type=click.IntRange(0, 65535), default=0, show_default=True,
              help="TCP port (0: a free one the system picks; a fixed one may be taken by "
                   "another user of a shared login node).")
@click.option("--bind", default="127.0.0.1", show_default=True, metavar="ADDRESS",
              help="Address to listen on (keep 127.0.0.1 and use ssh -L).")
@click.option("--socket", "socket_path", type=click.Path(dir_okay=False, path_type=Path),
              default=None, metavar="PATH",
              help="Serve on a Unix socket (created 0600, in a folder only you can write) "
                   "instead of a port.")
@click.option("--quiet", is_flag=True, help="Do not print each request.")
def ui(port: int, bind: str, socket_path: Path | None, quiet: bool) -> None:
    """A web dashboard of this home's workflows: lists, graphs, steps, logs, actions.

    Nothing is served without the token in the printed URL (other users of this machine
    can connect to 127.0.0.1 too). Stop it with Ctrl-C."""
    try:
        from hpcflow.ui.api import Api
        from hpcflow.ui.auth import Guard
        from hpcflow.ui.server import make_server
    except ImportError as exc:  # an install without the package data or an extra
        raise click.ClickException(f"the dashboard cannot start: {exc}; install "
                                   "'hpcflow[ui]'") from None
    from hpcflow.settings import home

    where = home()
    api = Api(where)
    guard = Guard(hosts=_names_of(bind))
    server = make_server(api, guard, bind=bind, port=port,
                         socket_path=socket_path.expanduser().absolute() if socket_path
                         else None, quiet=quiet)
    if socket_path is None:
        bound = server.server_address[1]  # type: ignore[index]
        # the cookie is named after the port, now known: two dashboards, two cookies
        guard = dataclasses.replace(guard, cookie_name=f"hpcflow_ui_{bound}")
        server.RequestHandlerClass.guard = guard  # type: ignore[attr-defined]
        shown = f"[{bind}]" if ":" in bind else bind
        click.echo(f"hpcflow ui for {where} on http://{shown}:{bound}/")
        click.echo(f"  open:  http://localhost:{bound}/?token={guard.token}")
        target = f"{LOCAL_PORT}:{shown if bind not in ('0.0.0.0', '::') else '127.0.0.1'}" \
                 f":{bound}"
    else:
        click.echo(f"hpcflow ui for {where} on the Unix socket {socket_path}")
        target = f"{LOCAL_PORT}:{socket_path.expanduser().absolute()}"
    click.echo(f"  from your laptop: ssh -N -L {target} {getpass.getuser()}@{_this_host()}")
    click.echo(f"  then open: http://localhost:{LOCAL_PORT}/?token={guard.token}")
    click.echo("  (the token is shown only here; Ctrl-C stops the dashboard)", err=True)
    signal.signal(signal.SIGTERM, _stop)  # as Ctrl-C: the socket file is removed
    try:
        server.serve_forever(poll_interval=0.5)
    except KeyboardInterrupt:
        click.echo("hpcflow ui stopped", err=True)
    finally:
        server.server_close()
        api.close()
        if socket_path is not None:
            socket_path.expanduser().absolute().unlink(missing_ok=True)


def _this_host() -> str:
    """This machine's name as a laptop reaches it: the fully qualified name, unless the
    resolver maps that to a loopback name (``/etc/hosts`` on many machines)."""
    fqdn = socket.getfqdn()
    return socket.gethostname() if fqdn.split(".")[0] in ("localhost", "") else fqdn
