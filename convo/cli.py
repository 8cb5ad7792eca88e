"""The ``convo`` command. Each subcommand imports what it needs lazily, so
``convo segments`` never pays for aiohttp and ``convo validate`` never opens a store.

Exit codes: 0 success, 1 the thing checked failed (validation errors, failing tests),
2 bad usage or configuration (argparse's own convention).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from convo.exceptions import ConvoError

if TYPE_CHECKING:
    from convo.erasure import ErasureReport


def _params(pairs: Sequence[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise SystemExit(f"convo: --param expects NAME=VALUE, got {pair!r}")
        out[name] = value
    return out


def resolve_flow(ref: str, config: str | None) -> Path:
    """The flow file a ``FLOW`` argument names: a path to a flow file (relative to the
    current directory), or a flow id in ``flows.paths`` of the configuration (``--config``,
    else ``$CONVO_CONFIG``, else ``./convo.toml``, else ``./flows``). See
    :mod:`convo.flow.catalog` for the rules."""
    from convo.flow.catalog import FlowCatalog, flow_file, is_path_ref

    if is_path_ref(ref):  # a path needs no configuration: `convo chat x.yaml` anywhere
        return flow_file(Path(ref))
    return FlowCatalog.from_config(config).resolve(ref)


def _load_bot(ref: str | None) -> Any:
    if ref is None:
        return None
    from convo.bot import load_bot

    return load_bot(ref)


# -- commands -------------------------------------------------------------------------------


def cmd_validate(args: argparse.Namespace) -> int:
    from convo.flow.loader import check_flow, discover

    bot = _load_bot(args.bot)
    files = discover(args.paths)
    errors = 0
    for path in files:
        # A bot.py beside the flow is its bot (as for `convo chat` and `convo test`).
        local = bot or (
            _load_bot(str(path.parent / "bot.py")) if (path.parent / "bot.py").is_file() else None
        )
        hooks = local.hook_names() if local else None
        spec, diagnostics = check_flow(path, hooks=hooks)
        if spec is not None:
            from convo.flow.lint import sms_warnings

            diagnostics = [*diagnostics, *sms_warnings(spec, max_parts=args.max_parts)]
        for d in diagnostics:
            print(d)
            errors += d.severity == "error"
    status = "ok" if not errors else f"{errors} error(s)"
    print(f"{len(files)} flow file(s) checked: {status}", file=sys.stderr)
    return 1 if errors or not files else 0


def cmd_test(args: argparse.Namespace) -> int:
    from convo.testing import Summary, run_files

    summary = Summary()
    for result in run_files(args.paths, config=args.config):
        if result.passed:
            summary.passed += 1
            if args.verbose:
                print(f"PASS {result.case.where}")
        else:
            summary.failed += 1
            print(f"FAIL {result.failure}")
    print(summary)
    return 0 if summary.failed == 0 and summary.passed > 0 else 1


def cmd_graph(args: argparse.Namespace) -> int:
    from convo.flow.loader import load_flow
    from convo.flow.machine import FlowMachine

    print(FlowMachine(load_flow(resolve_flow(args.flow, args.config))).mermaid(), end="")
    return 0


def _example_value(param: Any, contact: str) -> Any:
    if param.example is not None:
        return param.example
    if param.type == "date":
        return (dt.date.today() + dt.timedelta(days=3)).isoformat()
    if param.type == "number":
        return 1
    if param.type == "bool":
        return True
    if param.type == "phone":
        return contact
    return param.name.replace("_", " ").title()


def cmd_chat(args: argparse.Namespace) -> int:
    from convo.testing import FlowTester

    bot = _load_bot(args.bot)
    path = resolve_flow(args.flow, args.config)
    if bot is None and (path.parent / "bot.py").is_file():
        bot = _load_bot(str(path.parent / "bot.py"))
    tester = FlowTester.load(path, bot=bot, now=time.time())  # "tomorrow" means tomorrow
    spec = tester.spec
    params: dict[str, Any] = _params(args.param)
    for name, param in spec.params.items():
        if param.required and name not in params:
            params[name] = _example_value(param, args.sender)
            print(f"(param {name} not given: using {params[name]!r})", file=sys.stderr)
    if args.channel == "voice":
        return asyncio.run(_voice_chat(tester, args, params))
    chat = tester.dialogue(number=args.sender, lang=args.lang, params=params)
    interactive = sys.stdin.isatty()
    print(f"{spec.id}: {spec.description or ''}".rstrip(": "), file=sys.stderr)
    print(
        "Type a reply; /wait 24h lets time pass, /state shows the state, /quit ends.",
        file=sys.stderr,
    )

    async def talk() -> int:
        for text in await chat.start():
            print(f"bot> {text}")
        while not chat.ended:
            try:
                prompt = "you> " if interactive else ""
                line = (
                    await asyncio.to_thread(input, prompt)
                    if interactive
                    else (await asyncio.to_thread(sys.stdin.readline))
                )
            except EOFError:
                break
            if not interactive and line == "":
                break
            line = line.rstrip("\n")
            if line.strip() == "/quit":
                break
            if line.startswith("/wait"):
                replies = await chat.wait(line.removeprefix("/wait").strip() or "1h")
            elif line.strip() == "/state":
                s = chat.session
                print(json.dumps(s.to_json() if s else None, ensure_ascii=False, indent=2))
                continue
            else:
                if not interactive:
                    print(f"you> {line}")
                replies = await chat.send(line)
            for text in replies:
                print(f"bot> {text}")
            if chat.session is not None and chat.session.status.value == "handoff":
                print("(handed over to a person)", file=sys.stderr)
                break
        print("(conversation ended)" if chat.ended else "(bye)", file=sys.stderr)
        return 0

    return asyncio.run(talk())


def show_instructions(document: Sequence[Any]) -> list[str]:
    """One line per instruction, the way a caller experiences them."""
    from convo.voice.instructions import Conference, Dial, Gather, Hangup, Record, Say

    lines: list[str] = []
    for item in document:
        prompts = item.prompts if isinstance(item, Gather) else (item,)
        for p in prompts:
            if isinstance(p, Say):
                voice = f", {p.voice}" if p.voice else ""
                lines.append(f"bot [{p.language}{voice}]> {p.text}")
        if isinstance(item, Gather):
            keys = f"{item.num_digits} key(s)" if item.num_digits else "keys, # to end"
            lines.append(f"  (waiting {item.timeout:g}s for {keys} or speech; '.' = silence)")
        elif isinstance(item, Dial):
            lines.append(f"  (dialling {item.target}; type busy, no-answer or ok)")
        elif isinstance(item, Record):
            lines.append(f"  (recording up to {item.max_length}s after a beep; type anything)")
        elif isinstance(item, Conference):
            lines.append(f"  (joining conference room {item.room})")
        elif isinstance(item, Hangup):
            lines.append("  (the bot hangs up)")
    return lines


async def _voice_chat(tester: Any, args: argparse.Namespace, params: dict[str, Any]) -> int:
    """A phone call in the terminal: prompts with their locale, digits or typed speech in."""
    from convo.voice.instructions import Dial, Gather, Hangup, Record

    call = tester.call(number=args.sender, lang=args.lang, params=params or None)
    document = await call.answer()
    interactive = sys.stdin.isatty()
    print("Digits or words answer; '.' is silence; /quit hangs up.", file=sys.stderr)
    while True:
        print("\n".join(show_instructions(document)))
        if (
            not document
            or isinstance(document[-1], Hangup)
            or not any(isinstance(i, Gather | Dial | Record) for i in document)
        ):
            break
        try:
            line = (
                await asyncio.to_thread(input, "you> ")
                if interactive
                else (await asyncio.to_thread(sys.stdin.readline))
            )
        except EOFError:
            line = ""
        if (line == "" and not interactive) or line.strip() == "/quit":
            await call.hang_up()
            break
        text = line.strip()
        if not interactive:
            print(f"you> {text}")
        if any(isinstance(i, Dial) for i in document):
            status = {"busy": "busy", "no-answer": "no-answer", "failed": "failed"}
            document = await call.dial_result(status.get(text, "completed"))
        elif any(isinstance(i, Record) for i in document):
            document = await call.recording("file:///dev/null" if text else None)
        elif text == ".":
            document = await call.silence()
        elif text and set(text) <= set("0123456789*#"):
            document = await call.press(text)
        else:
            document = await call.speak(text)
    await call.hang_up()
    print("(call ended)", file=sys.stderr)
    return 0


def cmd_segments(args: argparse.Namespace) -> int:
    from convo.sms.segments import analyze, non_gsm_chars

    info = analyze(args.text)
    if args.json:
        print(json.dumps(info.to_json()))
        return 0
    print(
        f"{info.encoding}: {info.characters} characters, {info.units} units, "
        f"{info.parts} part(s) of {info.per_part}, {info.remaining} left"
    )
    forcing = non_gsm_chars(args.text)
    if forcing:
        print(f"UCS-2 because of: {' '.join(forcing)}")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from convo.config import load_settings
    from convo.web.server import serve

    settings = load_settings(args.config)
    settings = settings.with_server(host=args.host, port=args.port)
    asyncio.run(serve(settings, bot=_load_bot(args.bot)))
    return 0


def cmd_call(args: argparse.Namespace) -> int:
    """``convo call FLOW --to N``: place an outbound call that runs FLOW (convo.dialer);
    prints the provider's call id. The running server answers the call."""
    from convo.config import load_settings
    from convo.dialer import place_call

    settings = load_settings(args.config)
    flow = args.flow
    if Path(flow).suffix in (".yaml", ".yml"):
        flow = str(resolve_flow(flow, args.config))
    call_id = asyncio.run(
        place_call(
            settings,
            flow,
            to=args.to,
            line=args.line,
            params=_params(args.param),
            lang=args.lang,
            bot=_load_bot(args.bot),
        )
    )
    print(call_id)
    return 0


def cmd_erase(args: argparse.Namespace) -> int:
    """``convo erase NUMBER``: forget a contact here and at the providers that can delete
    messages (convo.erasure); prints the report. Exit 0 done, 1 a provider deletion failed
    (the report lists it), 2 a bad number."""
    from convo.config import load_settings
    from convo.erasure import e164, erase_contact
    from convo.runtime import ERASER, Runtime

    settings = load_settings(args.config)
    try:
        contact = e164(args.number)  # a bad number: nothing is opened
    except ValueError as exc:
        print(f"convo: {exc}", file=sys.stderr)
        return 2

    async def erase() -> ErasureReport:
        async with Runtime(settings, parts=ERASER) as runtime:
            return await erase_contact(runtime.store, runtime.providers, contact)

    report = asyncio.run(erase())
    print(report.describe())
    return 1 if report.failed else 0


def cmd_simulator(args: argparse.Namespace) -> int:
    """``convo simulator PROVIDER``: serve a fake of the provider's API. With a config the
    simulator uses ``[providers.PROVIDER]``'s credentials and ``server.public_url``
    (convo.simulators._launch); it prints them on start, secrets masked."""
    from aiohttp import web

    from convo.config import load_settings
    from convo.simulators._launch import plan

    if args.auto_deliver_delay < 0:
        raise ConvoError("--auto-deliver-delay: expected a number of seconds >= 0")
    launch = plan(
        args.provider,
        load_settings(args.config),
        host=args.host,
        port=args.port,
        webhook_url=args.webhook_url,
        auto_deliver=args.auto_deliver,
        delay=args.auto_deliver_delay,
    )
    for line in launch.describe():
        print(line, file=sys.stderr, flush=True)
    web.run_app(launch.simulator.app, host=launch.host, port=launch.port, print=None)
    return 0


def build_parser() -> argparse.ArgumentParser:
    # --config is accepted before or after the subcommand (`convo serve --config x.toml`).
    config = argparse.ArgumentParser(add_help=False)
    config.add_argument(
        "--config",
        default=argparse.SUPPRESS,
        help="convo.toml (default: $CONVO_CONFIG, else ./convo.toml)",
    )
    parser = argparse.ArgumentParser(
        prog="convo", description=__doc__.splitlines()[0], parents=[config]
    )
    sub = parser.add_subparsers(dest="command", required=True)
    sub_add = sub.add_parser

    def add_parser(name: str, **kwargs: Any) -> argparse.ArgumentParser:
        return sub_add(name, parents=[config], **kwargs)

    sub.add_parser = add_parser  # type: ignore[method-assign]  # every subcommand takes --config

    p = sub.add_parser("serve", help="run the webhook server")
    p.add_argument("--host")
    p.add_argument("--port", type=int)
    p.add_argument("--bot", help="bot hooks: path/to/bot.py or module:attr")
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("chat", help="talk to a flow in the terminal")
    p.add_argument("flow", help="flow id or path")
    p.add_argument("--lang")
    p.add_argument("--from", dest="sender", default="+32470000001")
    p.add_argument("--param", action="append", default=[], metavar="K=V")
    p.add_argument("--channel", choices=["sms", "voice"], default="sms")
    p.add_argument("--bot")
    p.set_defaults(func=cmd_chat)

    p = sub.add_parser("validate", help="check flow files")
    p.add_argument("paths", nargs="+")
    p.add_argument("--bot", help="check hook names against this bot")
    p.add_argument(
        "--max-parts", type=int, default=3, help="warn when an SMS text needs more parts (3)"
    )
    p.set_defaults(func=cmd_validate)

    p = sub.add_parser(
        "test",
        help="run conversation-test files",
        description="Run conversation-test files. A test's flow: is a path relative to the "
        "test file, or a flow id found beside the test file or in flows.paths of the config.",
    )
    p.add_argument("paths", nargs="+", help="test files, or folders to search for them")
    p.add_argument("-v", "--verbose", action="store_true")
    p.set_defaults(func=cmd_test)

    p = sub.add_parser("graph", help="print a Mermaid state diagram of a flow")
    p.add_argument("flow")
    p.set_defaults(func=cmd_graph)

    p = sub.add_parser("segments", help="SMS encoding and parts of a text")
    p.add_argument("text")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_segments)

    p = sub.add_parser("call", help="start a flow by calling someone (outbound call)")
    p.add_argument("flow", help="flow id (in flows.paths: the server runs the call)")
    p.add_argument("--to", required=True, help="the number to call")
    p.add_argument("--line", help="our number to call from (default: first voice line)")
    p.add_argument("--param", action="append", default=[], metavar="K=V")
    p.add_argument("--lang", help="the flow language to speak")
    p.add_argument("--bot", help="bot hooks: path/to/bot.py or module:attr")
    p.set_defaults(func=cmd_call)

    p = sub.add_parser("erase", help="forget a contact (GDPR), here and at the providers")
    p.add_argument("number", help="the contact's phone number")
    p.set_defaults(func=cmd_erase)

    p = sub.add_parser(
        "simulator",
        help="run a fake of a provider's API",
        description="Serve a fake of PROVIDER's API, plus a control API under /_simulator/. "
        "With a config it uses [providers.PROVIDER]'s credentials and server.public_url.",
    )
    p.add_argument("provider", help="vonage, telefoon_sms, telefonie_sms, enco, telefoon_voice")
    p.add_argument("--host", default="127.0.0.1")
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


if __name__ == "__main__":
    sys.exit(main())
