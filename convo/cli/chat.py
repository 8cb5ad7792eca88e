"""``convo chat``: talk to a flow in the terminal, by SMS or as a phone call."""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import sys
import time
from collections.abc import Sequence
from typing import Any

from convo.cli.args import bot_arg, parse_params, resolve_flow


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

    bot = bot_arg(args.bot)
    path = resolve_flow(args.flow, args.config)
    if bot is None and (path.parent / "bot.py").is_file():
        bot = bot_arg(str(path.parent / "bot.py"))
    tester = FlowTester.load(path, bot=bot, now=time.time())  # "tomorrow" means tomorrow
    spec = tester.spec
    params: dict[str, Any] = parse_params(args.param)
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
