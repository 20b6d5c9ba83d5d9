"""`ratecard serve`: the engine over HTTP (see `ratecard.http`), run by uvicorn."""

from __future__ import annotations

import argparse
import json
import os
import re
from decimal import Decimal
import sys
from pathlib import Path

from ..errors import RatecardError

OPTIONS_ENV = "RATECARD_SERVE_OPTIONS"  # how `--workers N` hands the options to each worker process


def port_arg(text: str) -> int:
    if not re.fullmatch(r"[0-9]{1,5}", text) or int(text) > 65535:
        raise argparse.ArgumentTypeError(f"expected a port from 0 to 65535, got {text!r}")
    return int(text)


def size_arg(text: str) -> int:
    if not re.fullmatch(r"[0-9]{1,10}", text) or not 1024 <= int(text) <= 1 << 30:
        raise argparse.ArgumentTypeError(f"expected a number of bytes from 1024 to {1 << 30}, got {text!r}")
    return int(text)


def depth_arg(text: str) -> int:
    if not re.fullmatch(r"[0-9]{1,3}", text) or not 2 <= int(text) <= 200:
        raise argparse.ArgumentTypeError(f"expected a nesting depth from 2 to 200, got {text!r}")
    return int(text)


def seconds_arg(text: str) -> float:
    if not re.fullmatch(r"[0-9]{1,4}(\.[0-9]{1,3})?", text) or Decimal(text) > 3600:
        raise argparse.ArgumentTypeError(f"expected seconds from 0 to 3600, e.g. 1 or 0.25, got {text!r}")
    return float(text)  # a duration for the server's clock, not money


def workers_arg(text: str) -> int:
    if not re.fullmatch(r"[0-9]{1,2}", text) or not 1 <= int(text) <= 64:
        raise argparse.ArgumentTypeError(f"expected a number of server processes from 1 to 64, got {text!r}")
    return int(text)


def _options(args) -> dict:
    from ..ledger import DB_ENV, DEFAULT_DB

    from ..discovery import choose, configured_db, select
    from ..errors import ProblemsError, RatecardError

    # The same discovery as every command: each --rules folder at any depth (or a rule set's name),
    # else every rule set under ./rules, else the shipped ones.
    selection = select(args.rules)
    if selection.problems:
        raise ProblemsError(selection.problems, "no rule sets to serve")
    folders = [str(p) for p in selection.sets]
    try:
        default = choose(None).path.resolve()
    except RatecardError:
        default = None  # several local rule sets and none named the default: the first one found
    # The default first, when it is among them: it is what status and quote use unnamed.
    folders.sort(key=lambda f: not args.rules and Path(f).resolve() != default)
    db = Path(args.db or os.environ.get(DB_ENV) or configured_db()[0] or DEFAULT_DB)
    return {"rules": folders, "db": str(db), "tokens": args.tokens, "usage": list(args.usage),
            "max_body": args.max_body, "max_depth": args.max_depth, "reload_interval": args.reload_interval,
            "status_ttl": args.status_ttl}


def _app_from(options: dict):
    from ..http.app import ServeOptions, build_server, create_app
    from ..http.auth import Tokens

    tokens = Tokens.load(options["tokens"])
    opts = ServeOptions(rules=tuple(options["rules"]), db=Path(options["db"]), tokens=tokens,
                        usage=tuple(options["usage"]), max_body=options["max_body"], max_depth=options["max_depth"],
                        reload_interval=options["reload_interval"], status_ttl=options["status_ttl"])
    return create_app(build_server(opts))


def app_from_env():
    """The application of one worker process (`--workers N`): built from the options the parent set."""
    return _app_from(json.loads(os.environ[OPTIONS_ENV]))


def cmd_serve(args) -> int:
    try:
        import uvicorn
    except ImportError:
        raise RatecardError("ratecard serve needs the serve extra: pip install 'ratecard[serve]'") from None
    options = _options(args)
    app = _app_from(options)  # in this process too: bad rules or tokens stop the start here, listed
    server = app.state.ratecard
    names = ", ".join(f"{n} ({s.rules.fingerprint[:19]})" for n, s in server.rules.current().sets.items())
    print(f"ratecard serve: rule sets {names}; ledger {options['db']}; http://{args.host}:{args.port}",
          file=sys.stderr)
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        print(f"ratecard serve: listening on {args.host}, beyond this machine; put TLS in front of it",
              file=sys.stderr)
    from ..http.transport import NoDelayHTTP

    config = dict(host=args.host, port=args.port, log_level="warning", access_log=False, server_header=False,
                  date_header=False, lifespan="off", http=NoDelayHTTP)
    if args.workers > 1:
        os.environ[OPTIONS_ENV] = json.dumps(options)
        uvicorn.run("ratecard.cli.serve:app_from_env", factory=True, workers=args.workers, **config)
    else:
        uvicorn.run(app, **config)
    return 0
