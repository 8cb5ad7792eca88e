"""What several commands share: ``--param K=V`` pairs, ``--bot`` and the ``FLOW`` argument."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any


def parse_params(pairs: Sequence[str]) -> dict[str, str]:
    """``--param NAME=VALUE`` pairs as a dict; a pair without ``=`` exits with usage."""
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


def bot_arg(ref: str | None) -> Any:
    """The bot a ``--bot`` argument names (``path/to/bot.py`` or ``module:attr``), or None."""
    if ref is None:
        return None
    from convo.bot import load_bot

    return load_bot(ref)


def positive_seconds(text: str) -> float:
    """An argparse ``type``: a positive number of seconds (``--timeout 45``)."""
    import argparse
    import math

    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seconds, got {text!r}") from None
    if not (value > 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(f"expected a positive number of seconds, got {text!r}")
    return value
