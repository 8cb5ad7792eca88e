"""The ``convo`` command. Each subcommand imports what it needs lazily, so
``convo segments`` never pays for aiohttp and ``convo validate`` never opens a store.

Exit codes: 0 success, 1 the thing checked failed (validation errors, failing tests),
2 bad usage or configuration (argparse's own convention).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any

from convo import logs
from convo.cli import calls, campaigns, contacts, db, outbox
from convo.cli.args import positive_seconds, resolve_flow
from convo.cli.authoring import cmd_graph, cmd_segments, cmd_test, cmd_validate
from convo.cli.chat import cmd_chat, show_instructions
from convo.cli.operate import cmd_call, cmd_erase, cmd_serve, cmd_simulator
from convo.exceptions import ConvoError

__all__ = ["build_parser", "main", "resolve_flow", "show_instructions", "version"]

DESCRIPTION = "Two-way SMS conversations and voice IVR, driven by YAML flow files."


def build_parser() -> argparse.ArgumentParser:
    # --config is accepted before or after the subcommand (`convo serve --config x.toml`).
    config = argparse.ArgumentParser(add_help=False)
    config.add_argument(
        "--config",
        default=argparse.SUPPRESS,
        help="convo.toml (default: $CONVO_CONFIG, else ./convo.toml)",
    )
    parser = argparse.ArgumentParser(prog="convo", description=DESCRIPTION, parents=[config])
    parser.add_argument("--version", action="version", version=f"convo {version()}")
    sub = parser.add_subparsers(dest="command", required=True)
    sub_add = sub.add_parser

    def add_parser(name: str, **kwargs: Any) -> argparse.ArgumentParser:
        return sub_add(name, parents=[config], **kwargs)

    sub.add_parser = add_parser  # type: ignore[method-assign]  # every subcommand takes --config

    p = sub.add_parser(
        "serve",
        help="run the webhook server",
        description="Run the webhook server: provider webhooks, the admin API, /metrics and "
        "the health routes, until SIGINT or SIGTERM (then a graceful stop). SIGHUP reloads "
        "the flows. Command-line options override convo.toml.",
    )
    p.add_argument("--host", help="address to listen on (default: [server] host, 127.0.0.1)")
    p.add_argument("--port", type=int, help="port to listen on (default: [server] port, 8080)")
    p.add_argument("--bot", help="bot hooks: path/to/bot.py or module:attr")
    p.add_argument(
        "--reload",
        action="store_true",
        help="reload the flows when a file under flows.paths changes (as SIGHUP does)",
    )
    p.add_argument(
        "--log-format",
        choices=logs.FORMATS,
        help="log lines as text or one JSON object per line (default: [logging] format, text)",
    )
    p.add_argument(
        "--log-level",
        type=str.lower,
        choices=logs.LEVELS,
        help="lowest level logged (default: [logging] level, info)",
    )
    p.add_argument("--no-access-log", action="store_true", help="no log line per HTTP request")
    p.add_argument(
        "--show-numbers",
        action="store_true",
        help="log phone numbers in full (default: masked, +32470****00)",
    )
    p.add_argument(
        "--admin-token-file",
        metavar="PATH",
        help="turn the admin API on with the token kept in PATH, made (mode 0600) if missing",
    )
    p.add_argument(
        "--workers",
        type=int,
        metavar="N",
        help="serve with N processes on one port (default: [server] workers, else 1); "
        "above 1 needs a PostgreSQL store",
    )
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser(
        "chat",
        help="talk to a flow in the terminal",
        description="Talk to a flow in the terminal. Commands: /wait 24h, /state, /quit; "
        "on a voice call '.' is silence.",
    )
    p.add_argument("flow", help="flow id or path")
    p.add_argument("--lang", help="the contact's language (default: the flow's first)")
    p.add_argument(
        "--from",
        dest="sender",
        default="+32470000001",
        help="the contact's number (+32470000001)",
    )
    p.add_argument(
        "--param", action="append", default=[], metavar="K=V", help="a flow param (repeatable)"
    )
    p.add_argument(
        "--channel", choices=["sms", "voice"], default="sms", help="a text chat or a call (sms)"
    )
    p.add_argument("--bot", help="bot hooks: path/to/bot.py or module:attr")
    p.set_defaults(func=cmd_chat)

    p = sub.add_parser(
        "validate",
        help="check flow files",
        description="Check flow files; print file:line:col: message per problem, exit 1 on errors.",
    )
    p.add_argument("paths", nargs="+", help="flow files, or folders to search for them")
    p.add_argument("--bot", help="check hook names against this bot")
    p.add_argument(
        "--max-parts", type=int, default=3, help="warn when an SMS text needs more parts (3)"
    )
    p.add_argument(
        "--provider",
        metavar="NAME",
        help="also ask [providers.NAME] of the config to count every SMS text (enco: /length)",
    )
    p.set_defaults(func=cmd_validate)

    p = sub.add_parser(
        "test",
        help="run conversation-test files",
        description="Run conversation-test files. A test's flow: is a path relative to the "
        "test file, or a flow id found beside the test file or in flows.paths of the config.",
    )
    p.add_argument("paths", nargs="+", help="test files, or folders to search for them")
    p.add_argument("-v", "--verbose", action="store_true", help="print each test as it runs")
    p.set_defaults(func=cmd_test)

    p = sub.add_parser("graph", help="print a Mermaid state diagram of a flow")
    p.add_argument("flow", help="flow id or path")
    p.set_defaults(func=cmd_graph)

    p = sub.add_parser("segments", help="SMS encoding and parts of a text")
    p.add_argument("text", help="the text (quote it)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=cmd_segments)

    p = sub.add_parser("call", help="start a flow by calling someone (outbound call)")
    p.add_argument("flow", help="flow id (in flows.paths: the server runs the call)")
    p.add_argument("--to", required=True, help="the number to call")
    p.add_argument("--line", help="our number to call from (default: first voice line)")
    p.add_argument(
        "--param", action="append", default=[], metavar="K=V", help="a flow param (repeatable)"
    )
    p.add_argument("--lang", help="the flow language to speak")
    p.add_argument("--bot", help="bot hooks: path/to/bot.py or module:attr")
    p.add_argument(
        "--timeout",
        type=positive_seconds,
        default=30.0,
        metavar="SECONDS",
        help="how long the callee's phone rings before the call is not answered (30)",
    )
    p.add_argument(
        "--record",
        action="store_true",
        help="record the whole call (you must have the callee's consent; GDPR)",
    )
    p.add_argument(
        "--tts-language", metavar="LOCALE", help="the provider's default speech locale (nl-NL)"
    )
    p.set_defaults(func=cmd_call)

    p = sub.add_parser(
        "erase",
        help="forget a contact (GDPR), here and at the providers",
        description="Forget a contact in the store and at the providers that can delete "
        "messages; exit 1 if a provider deletion failed, 2 for a bad number.",
    )
    p.add_argument("number", help="the contact's phone number")
    p.set_defaults(func=cmd_erase)

    outbox.add_parsers(sub, config)
    db.add_parsers(sub, config)
    contacts.add_parsers(sub, config)
    calls.add_parsers(sub, config)
    campaigns.add_parsers(sub, config)

    p = sub.add_parser(
        "simulator",
        help="run a fake of a provider's API",
        description="Serve a fake of PROVIDER's API, plus a control API under /_simulator/. "
        "With a config it uses [providers.PROVIDER]'s credentials and server.public_url.",
    )
    p.add_argument("provider", help="vonage, telefoon_sms, telefonie_sms, enco, telefoon_voice")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (127.0.0.1)")
    p.add_argument(
        "--port", type=int, help="default: the port of the provider's base_url, else 9000"
    )
    p.add_argument(
        "--webhook-url",
        "--webhook",
        dest="webhook_url",
        help="base URL of convo's webhooks (default: server.public_url, else "
        "http://127.0.0.1:8080)",
    )
    p.add_argument(
        "--auto-deliver",
        action="store_true",
        help="send a 'delivered' receipt for every accepted message (SMS providers)",
    )
    p.add_argument(
        "--auto-deliver-delay",
        type=float,
        default=0.5,
        metavar="SECONDS",
        help="how long after the send that receipt comes (0.5)",
    )
    p.set_defaults(func=cmd_simulator)
    return parser


def version() -> str:
    """convo's installed version (the package metadata's)."""
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as installed

    try:
        return installed("convo")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown"


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if not hasattr(args, "config"):  # --config given neither before nor after the command
        args.config = None
    try:
        code: int = args.func(args)
    except ConvoError as exc:
        print(f"convo: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return code
