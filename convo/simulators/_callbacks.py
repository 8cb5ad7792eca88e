"""What every simulator that calls convo back needs: one HTTP session, tracked tasks, and
the ``/_simulator/`` control API that ``convo simulator`` users (and tests) drive.

Automatic status callbacks run as tasks the simulator keeps; :meth:`CallbackSender.aclose`
(also run on the app's cleanup) cancels the ones still pending and closes the session, so a
test never leaves a callback in flight after its server stopped.

:class:`ControlApi` adds the control routes (not part of any provider's API):

* ``POST /_simulator/inbound`` ``{"from", "to", "text"}``: a simulated phone texts convo
  (delivered to convo's webhook, signed as the provider signs; Enco: queued for the poll);
* ``POST /_simulator/status`` ``{"message_id", "status"}``: a delivery receipt / status
  callback for a message the simulator accepted (``status`` defaults to ``delivered``;
  the provider's own status names and convo's ``delivered``/``undelivered``/``failed``/
  ``sent`` are accepted);
* ``GET /_simulator/sent``: what convo sent, oldest first, as ``{"messages": [{"message_id",
  "from", "to", "text", "status", ...}]}``.

Answers are JSON: ``{"status": <convo's HTTP status>, "url": ...}`` when convo was called
(a 401 from convo adds a ``hint``); 400 for a bad body, 404 for an unknown ``message_id``,
409 when the simulator has no webhook URL, 502 when convo cannot be reached.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Mapping
from typing import Any, Self

import aiohttp
from aiohttp import web

CONTROL_PREFIX = "/_simulator/"
SIGNATURE_HINT = (
    "convo refused the webhook's signature: start the simulator with the same convo.toml "
    "as convo serve (--config), so both use the same secret"
)


class CallbackSender:
    """Mixin state: call :meth:`_init_callbacks` from ``__init__`` after creating ``app``."""

    app: web.Application

    def _init_callbacks(self) -> None:
        self._tasks: set[asyncio.Task[Any]] = set()
        self._session: aiohttp.ClientSession | None = None
        self.app.on_cleanup.append(self._on_cleanup)

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession()
        return self._session

    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def aclose(self) -> None:
        """Cancel pending automatic callbacks and close the callback HTTP session."""
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _on_cleanup(self, _app: web.Application) -> None:
        await self.aclose()


class ControlApi(CallbackSender):
    """Mixin: the ``/_simulator/`` routes (module docstring). Call :meth:`_init_control`
    from ``__init__`` after creating ``app``; subclasses implement the three ``simulate_*``
    / ``sent_messages`` hooks."""

    @classmethod
    def from_config(
        cls,
        section: Mapping[str, Any],
        *,
        webhook_base: str | None = None,
        provider_name: str | None = None,
        auto_status: bool = False,
        status_delay: float = 0.5,
    ) -> Self:
        """The fake for convo's ``[providers.NAME]`` ``section``: the credentials and
        secrets convo uses (:meth:`config_options`), so each accepts the other."""
        named = {"provider_name": provider_name} if provider_name else {}
        make: Callable[..., Self] = cls
        return make(
            **cls.config_options(section),
            **named,
            webhook_base=webhook_base,
            auto_status=auto_status,
            status_delay=status_delay,
        )

    @classmethod
    def config_options(cls, section: Mapping[str, Any]) -> dict[str, Any]:
        """The constructor's credential arguments taken from a ``[providers.NAME]``
        section (development defaults where it has none)."""
        raise NotImplementedError

    def credentials(self) -> dict[str, str]:
        """What convo must be configured with to talk to this fake (secrets unmasked)."""
        raise NotImplementedError

    def _init_control(self) -> None:
        self._init_callbacks()
        router = self.app.router
        router.add_post(CONTROL_PREFIX + "inbound", self._control_inbound)
        router.add_post(CONTROL_PREFIX + "status", self._control_status)
        router.add_get(CONTROL_PREFIX + "sent", self._control_sent)

    async def simulate_inbound(self, sender: str, to: str, text: str) -> dict[str, Any]:
        """Make the phone ``sender`` text ``text`` to our number ``to``; the answer body."""
        raise NotImplementedError

    async def simulate_status(self, message_id: str, status: str) -> dict[str, Any]:
        """Report ``message_id`` (an id from :meth:`sent_messages`) as ``status``; raises
        ``KeyError`` for an unknown id, ``ValueError`` for an unknown status."""
        raise NotImplementedError

    def sent_messages(self) -> list[dict[str, Any]]:
        """What convo sent, oldest first, without credentials."""
        raise NotImplementedError

    async def _control_inbound(self, request: web.Request) -> web.Response:
        data = await _json_fields(request, ("from", "to", "text"))
        if isinstance(data, web.Response):
            return data
        return await _answer(self.simulate_inbound(data["from"], data["to"], data["text"]))

    async def _control_status(self, request: web.Request) -> web.Response:
        data = await _json_fields(request, ("message_id",), optional=("status",))
        if isinstance(data, web.Response):
            return data
        return await _answer(
            self.simulate_status(data["message_id"], data.get("status") or "delivered")
        )

    async def _control_sent(self, _request: web.Request) -> web.Response:
        return web.json_response({"messages": self.sent_messages()})


def webhook_answer(status: int | None, url: str | None, **extra: Any) -> dict[str, Any]:
    """A control answer for a call to convo: its HTTP status, the URL, a hint on 401."""
    body: dict[str, Any] = {"status": status, "url": url, **extra}
    if status == 401:
        body["hint"] = SIGNATURE_HINT
    return body


async def _json_fields(
    request: web.Request, required: tuple[str, ...], optional: tuple[str, ...] = ()
) -> dict[str, str] | web.Response:
    expected = ", ".join(f'"{name}"' for name in (*required, *optional))
    problem = web.json_response({"error": f"expected a JSON object with {expected}"}, status=400)
    try:
        data = await request.json()
    except ValueError:
        return problem
    if not isinstance(data, dict):
        return problem
    out: dict[str, str] = {}
    for name in (*required, *optional):
        value = data.get(name)
        if value is None and name in optional:
            continue
        if not isinstance(value, str) or (not value and name != "text"):
            return web.json_response(
                {"error": f"{name!r} is required and must be a string ({expected})"}, status=400
            )
        out[name] = value
    return out


async def _answer(action: Coroutine[Any, Any, dict[str, Any]]) -> web.Response:
    try:
        return web.json_response(await action)
    except KeyError as exc:
        return web.json_response({"error": str(exc.args[0] if exc.args else exc)}, status=404)
    except ValueError as exc:
        return web.json_response({"error": str(exc)}, status=400)
    except RuntimeError as exc:  # no webhook URL: nowhere to deliver
        return web.json_response({"error": str(exc)}, status=409)
    except (aiohttp.ClientError, TimeoutError) as exc:
        return web.json_response(
            {"error": f"convo could not be reached: {exc or type(exc).__name__}"}, status=502
        )
