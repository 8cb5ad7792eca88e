"""Commands for flow authors that need no server: ``validate``, ``test``, ``graph``,
``segments``. ``validate --provider NAME`` is the one that goes on the network: it asks that
provider of the config to count the flows' texts."""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING

from convo.cli.args import bot_arg, resolve_flow

if TYPE_CHECKING:
    from convo.exceptions import Diagnostic
    from convo.flow.spec import FlowSpec


def cmd_validate(args: argparse.Namespace) -> int:
    from convo.flow.loader import check_flow, discover

    bot = bot_arg(args.bot)
    files = discover(args.paths)
    errors = 0
    specs: list[FlowSpec] = []
    for path in files:
        # A bot.py beside the flow is its bot (as for `convo chat` and `convo test`).
        local = bot or (
            bot_arg(str(path.parent / "bot.py")) if (path.parent / "bot.py").is_file() else None
        )
        hooks = local.hook_names() if local else None
        spec, diagnostics = check_flow(path, hooks=hooks)
        if spec is not None:
            specs.append(spec)
            from convo.flow.lint import sms_warnings

            diagnostics = [*diagnostics, *sms_warnings(spec, max_parts=args.max_parts)]
        for d in diagnostics:
            print(d)
            errors += d.severity == "error"
    if args.provider is not None:
        errors += _provider_counts(args, specs)
    status = "ok" if not errors else f"{errors} error(s)"
    print(f"{len(files)} flow file(s) checked: {status}", file=sys.stderr)
    return 1 if errors or not files else 0


def _provider_counts(args: argparse.Namespace, specs: list[FlowSpec]) -> int:
    """``validate --provider NAME``: the provider's count of every SMS text of ``specs``
    (``convo.flow.lint.provider_part_warnings``), printed; returns the number of errors.
    ``ConfigError`` for a provider that is not configured or cannot count texts."""
    import asyncio

    from convo.config import load_settings
    from convo.exceptions import ConfigError
    from convo.flow.lint import CountsParts, provider_part_warnings
    from convo.providers.http import provider_client
    from convo.providers.registry import create_provider

    settings = load_settings(args.config)
    name = args.provider
    if name not in settings.providers:
        known = ", ".join(sorted(settings.providers)) or "none"
        raise ConfigError(f"{settings.source}: no [providers.{name}] (configured: {known})")

    async def count() -> tuple[list[Diagnostic], int]:
        async with provider_client() as client:
            provider = create_provider(
                name, settings.providers[name], client, public_url=settings.server.public_url
            )
            try:
                if not isinstance(provider, CountsParts):
                    raise ConfigError(f"provider {name!r} cannot count a text's SMS parts")
                found: list[Diagnostic] = []
                asked = 0
                for spec in specs:
                    diagnostics, n = await provider_part_warnings(
                        spec, provider, max_parts=args.max_parts
                    )
                    found += diagnostics
                    asked += n
                return found, asked
            finally:
                await provider.aclose()

    diagnostics, asked = asyncio.run(count())
    for d in diagnostics:
        print(d)
    print(f"{name} counted {asked} distinct SMS text(s)", file=sys.stderr)
    return sum(d.severity == "error" for d in diagnostics)


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
