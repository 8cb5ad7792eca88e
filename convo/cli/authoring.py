"""Commands for flow authors that need no server: ``validate``, ``test``, ``graph``,
``segments``."""

from __future__ import annotations

import argparse
import json
import sys

from convo.cli.args import bot_arg, resolve_flow


def cmd_validate(args: argparse.Namespace) -> int:
    from convo.flow.loader import check_flow, discover

    bot = bot_arg(args.bot)
    files = discover(args.paths)
    errors = 0
    for path in files:
        # A bot.py beside the flow is its bot (as for `convo chat` and `convo test`).
        local = bot or (
            bot_arg(str(path.parent / "bot.py")) if (path.parent / "bot.py").is_file() else None
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
