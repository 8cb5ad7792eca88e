"""The web console in a real browser (Debian's chromium, driven by Playwright) against a
real convo server on loopback: sign in, the sandbox phone (texts and a keypad call), the
live conversation list, a transcript, erasure, and the flows and outbox pages."""

from __future__ import annotations

import json
import re
import urllib.request
from typing import Any

from playwright.sync_api import BrowserContext, Page, expect

from convo.store.base import MessageQuery

from .conftest import TOKEN, Server


def line_of(server: Server, flow: str) -> str:
    """The sandbox default line of ``flow`` (one line per example flow)."""
    return next(line.number for line in server.settings.lines if line.flow == flow)


def text(server: Server, sender: str, line: str, body: str) -> dict[str, Any]:
    """A simulated phone texts a sandbox line over the sandbox API (not the console)."""
    request = urllib.request.Request(
        server.url + "/sandbox/messages",
        data=json.dumps({"from": sender, "to": line, "text": body}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())  # type: ignore[no-any-return]


def test_sign_in_with_the_admin_token(
    server: Server, page: Page, context: BrowserContext, shot: Any
) -> None:
    page.goto(server.url + "/console/flows")
    expect(page).to_have_url(re.compile(r"/console/signin\?next=/console/flows"))
    page.fill("input[name=token]", "not-the-token")
    page.click("#signin-form button[type=submit]")
    expect(page.get_by_role("alert")).to_have_text("That is not the admin token.")
    shot(page, "console-signin")
    page.fill("input[name=token]", TOKEN)
    page.click("#signin-form button[type=submit]")
    expect(page).to_have_url(re.compile(r"/console/flows$"))
    expect(page.locator("h1")).to_have_text("Flows")
    (cookie,) = [c for c in context.cookies() if c["name"] == "convo_console"]
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    assert TOKEN not in cookie["value"]
    page.click("header .signout button")
    page.goto(server.url + "/console/outbox")
    expect(page).to_have_url(re.compile(r"/console/signin"))


def test_sign_in_from_a_url_fragment(server: Server, page: Page) -> None:
    page.goto(server.url + f"/console/signin#token={TOKEN}")
    expect(page).to_have_url(re.compile(r"/console/conversations$"))  # fragment gone


def test_sandbox_phone_texts_a_line_and_sees_the_replies(
    server: Server, signed_in: Page, shot: Any
) -> None:
    page = signed_in
    faq_line = line_of(server, "faq")
    page.goto(server.url + f"/console/phone?line=%2B{faq_line[1:]}&number=%2B32470555001")
    page.fill("#sms-text", "hallo")
    page.click("#sms-form button[type=submit]")
    thread = page.locator("#thread")
    expect(thread.locator("li.inbound .bubble")).to_have_text(["hallo"])
    expect(thread.locator("li.outbound .bubble").first).to_contain_text("Welkom!")
    expect(page.locator("#sms-text")).to_have_value("")
    page.fill("#sms-text", "1")
    page.click("#sms-form button[type=submit]")
    expect(thread.locator("li.outbound .bubble").last).to_contain_text("maandag tot vrijdag")
    expect(thread.locator("li.outbound .status").last).to_have_text("delivered")
    shot(page, "console-phone-sms")


def test_keypad_call_hears_each_prompt_as_text(server: Server, signed_in: Page, shot: Any) -> None:
    page = signed_in
    voice_line = line_of(server, "support_line")  # its calls go through sandbox_voice
    page.goto(server.url + f"/console/phone?line=%2B{voice_line[1:]}&number=%2B32470555002")
    page.click("button.call")
    log = page.locator("#call-log")
    expect(log.locator("li.say").first).to_contain_text("Voor Nederlands, druk 1.")
    expect(log.locator("li.say .locale").first).to_have_text("nl-NL")
    page.click("button.key[data-key='1']")  # a one-key menu: sent at once
    expect(log.locator("li.caller")).to_have_text(["you press 1"])
    expect(log.locator("li.say").last).to_contain_text("Druk 1 voor onze openingsuren")
    page.click("button.key[data-key='1']")
    expect(log).to_contain_text("We zijn open van maandag tot vrijdag")
    shot(page, "console-phone-call")
    if page.locator("#keypad").count():
        page.click("#call-state button.danger")  # hang up
    expect(log.locator("li.ended")).to_have_count(1)
    rows, _ = server.run(_voice_sessions(server, voice_line))
    assert [(r.session.key.contact, r.session.status.value) for r in rows] == [
        ("+32470555002", "ended")
    ]
    # the call is in the caller's transcript: what they pressed, what the call said
    page.goto(server.url + "/console/contacts/%2B32470555002")
    transcript = page.locator("ol.transcript")
    expect(transcript.locator("li.inbound .bubble")).to_have_text(["1", "1"])
    expect(transcript.locator("li.outbound .bubble").first).to_contain_text(
        "Voor Nederlands, druk 1."
    )
    expect(transcript.locator("li.outbound .bubble").first).to_contain_text("[waits for 1 key")
    expect(transcript).to_contain_text("We zijn open van maandag tot vrijdag")


async def _voice_sessions(server: Server, line: str) -> Any:
    from convo.store.base import ConversationQuery

    return await server.app[_runtime_key()].store.list_conversations(ConversationQuery(line=line))


def _runtime_key() -> Any:
    from convo.web.state import RUNTIME

    return RUNTIME


def test_a_new_conversation_appears_in_the_live_list(
    server: Server, signed_in: Page, shot: Any
) -> None:
    page = signed_in
    row = page.locator("tr[data-contact='+32470555003']")
    expect(row).to_have_count(0)
    text(server, "+32470555003", line_of(server, "faq"), "hallo")  # meanwhile, over the sandbox API
    expect(row).to_have_count(1, timeout=8_000)  # no reload: the list refreshes itself
    expect(row).to_contain_text("faq")
    expect(row).to_contain_text("menu")
    expect(row.locator("td.text")).to_contain_text("Welkom!")
    page.select_option("select[name=flow]", "appointment")
    page.click(".filters button[type=submit]")
    expect(row).to_have_count(0)
    page.select_option("select[name=flow]", "faq")
    page.click(".filters button[type=submit]")
    expect(row).to_have_count(1)
    shot(page, "console-conversations")


def test_transcript_and_erasure(server: Server, signed_in: Page, shot: Any) -> None:
    page = signed_in
    number = "+32470555004"
    text(server, number, line_of(server, "faq"), "hallo")
    text(server, number, line_of(server, "faq"), "2")
    page.goto(server.url + "/console/contacts/%2B32470555004")
    transcript = page.locator("ol.transcript")
    expect(transcript.locator("li.inbound .bubble")).to_have_text(["hallo", "2"])
    expect(transcript.locator("li.outbound .bubble").first).to_contain_text("Welkom!")
    expect(transcript.locator("li.outbound .bubble").last).to_contain_text("Wetstraat 16")
    expect(transcript.locator("li.outbound .status").first).to_have_text("delivered")
    expect(page.locator("table.list")).to_contain_text("ended")
    shot(page, "console-contact")

    page.click("text=Erase this contact…")
    expect(page.locator("h1")).to_have_text(f"Erase {number}?")
    page.click("button.danger:has-text('Erase')")
    expect(page.get_by_role("status")).to_contain_text("Removed 1 conversation(s), 4 message(s)")
    _, total = server.run(
        server.app[_runtime_key()].store.list_messages(MessageQuery(number=number))
    )
    assert total == 0
    page.goto(server.url + "/console/contacts/%2B32470555004")
    expect(page.locator("ol.transcript li.empty")).to_have_text("No messages.")


def test_flows_show_their_graph_and_drop_off(server: Server, signed_in: Page, shot: Any) -> None:
    page = signed_in
    text(server, "+32470555005", line_of(server, "faq"), "hallo")
    page.goto(server.url + "/console/flows?period=24h")
    faq = page.locator("#flow-faq")
    expect(faq.locator("g.step")).to_have_count(5)
    menu = faq.locator("g.step[data-step='menu']")
    expect(menu.locator(".reached")).not_to_have_text("0")
    expect(faq.locator("text.edge-label").first).to_be_visible()
    expect(faq.locator(".anytime")).to_contain_text("STOP")
    shot(page, "console-flows")


def test_outbox_page(server: Server, signed_in: Page, shot: Any) -> None:
    page = signed_in
    page.goto(server.url + "/console/outbox?view=dead")
    expect(page.locator(".tabs a.current")).to_have_text("dead (0)")
    expect(page.locator("td.empty")).to_have_text("No dead messages.")
