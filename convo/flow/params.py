"""Checking the params a flow is started with against its ``params`` declaration."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from convo.exceptions import FlowRuntimeError
from convo.flow.spec import FlowSpec, Param

_TRUE = {"1", "true", "yes", "ja", "oui", "on"}
_FALSE = {"0", "false", "no", "nee", "non", "nein", "off"}


def _coerce(flow: str, param: Param, value: Any) -> Any:
    where = f"flow {flow!r}: param {param.name!r}"
    if param.type == "number":
        if isinstance(value, int | float) and not isinstance(value, bool):
            return value
        try:
            text = str(value).replace(",", ".")
            return int(text) if text.lstrip("-").isdigit() else float(text)
        except ValueError:
            raise FlowRuntimeError(f"{where}: expected a number, got {value!r}") from None
    if param.type == "date":
        if isinstance(value, dt.date):
            return value.isoformat()
        try:
            return dt.date.fromisoformat(str(value)).isoformat()
        except ValueError:
            raise FlowRuntimeError(f"{where}: expected a date YYYY-MM-DD, got {value!r}") from None
    if param.type == "bool":
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in _TRUE | _FALSE:
            return text in _TRUE
        raise FlowRuntimeError(f"{where}: expected true or false, got {value!r}")
    if param.type == "phone":
        from convo.sms.phone import normalize

        return normalize(str(value))
    return value if isinstance(value, str) else str(value)


def check_params(
    spec: FlowSpec, given: Mapping[str, Any], *, inbound: bool = False
) -> dict[str, Any]:
    """Validate and coerce ``given`` against the flow's declared params.

    Unknown names and missing required params raise ``FlowRuntimeError`` naming the flow
    and the param. A conversation a stranger opens (``inbound=True``) cannot supply params:
    optional ones get their defaults, and a flow with required params cannot be started
    that way.
    """
    unknown = sorted(set(given) - set(spec.params))
    if unknown:
        declared = ", ".join(sorted(spec.params)) or "none"
        raise FlowRuntimeError(
            f"flow {spec.id!r}: unknown param(s) {', '.join(unknown)} (declared: {declared})"
        )
    out: dict[str, Any] = {}
    for name, param in spec.params.items():
        if name in given and given[name] is not None:
            out[name] = _coerce(spec.id, param, given[name])
        elif param.required:
            how = " (it cannot be started by an inbound message)" if inbound else ""
            raise FlowRuntimeError(f"flow {spec.id!r}: param {name!r} is required{how}")
        else:
            out[name] = param.default
    return out
