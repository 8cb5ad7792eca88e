"""Choosing a text-to-speech locale a provider actually has.

A flow asks for a locale per language (``nl: {locale: nl-BE}``); a provider supports a
fixed set (Telefoon Voice: nl-NL, fr-BE, de-DE, en-GB). :func:`resolve_locale` picks, in
this order: the asked locale itself; the explicit fallbacks (the flow's, then the
provider's); another region of the same language, preferring the language's "home" region
(``fr-BE`` -> ``fr-FR``, ``de-AT`` -> ``de-DE``, ``en-US`` -> ``en-GB`` when there is no
``en-EN``); and raises ``ValueError`` when nothing fits, rather than read Dutch with a French
voice.

Tags compare case-insensitively and ``_`` counts as ``-`` (``nl_nl`` is ``nl-NL``); the
result is always spelled as in ``supported``. :func:`localize` applies this to a list of
call instructions and records the substitution on each changed Say/Gather.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Mapping, Sequence

from convo.voice.instructions import Dial, Gather, Instruction, Say

# A language's "home" region when it is not simply the language code in upper case.
_HOME_REGION = {"en": "GB", "sv": "SE", "da": "DK", "cs": "CZ", "el": "GR", "ja": "JP"}


def _norm(tag: str) -> str:
    return tag.strip().replace("_", "-").lower()


def _language(tag: str) -> str:
    return _norm(tag).split("-", 1)[0]


def resolve_locale(
    requested: str, supported: Collection[str], fallbacks: Sequence[str] = ()
) -> str:
    """The locale to use for ``requested``, spelled as in ``supported``.

    Tries ``requested``, then each of ``fallbacks`` in order, then another region of the
    same language (home region first, then alphabetical). Raises ``ValueError`` naming the
    requested locale and the supported ones when none fits.
    """
    by_norm = {_norm(tag): tag for tag in supported}
    for candidate in (requested, *fallbacks):
        found = by_norm.get(_norm(candidate))
        if found is not None:
            return found
    language = _language(requested)
    if language:
        home = f"{language}-{_HOME_REGION.get(language, language)}".lower()
        if home in by_norm:
            return by_norm[home]
        same = sorted(norm for norm in by_norm if norm.split("-", 1)[0] == language)
        if same:
            return by_norm[same[0]]
    raise ValueError(
        f"no supported locale for {requested!r}"
        + (f" (fallbacks tried: {', '.join(fallbacks)})" if fallbacks else "")
        + f"; supported: {', '.join(sorted(supported))}"
    )


def localize(
    instructions: Sequence[Instruction],
    supported: Collection[str],
    fallbacks: Mapping[str, Sequence[str]] | None = None,
) -> list[Instruction]:
    """Copies of ``instructions`` whose Say, Gather-speech and Dial locales are all in
    ``supported``.

    ``fallbacks`` maps an asked locale to the provider's preferred substitutes; a Say's own
    ``language_fallbacks`` are tried before them. A replaced locale is kept in
    ``requested_language`` (Say, Dial) or ``requested_speech_language`` (Gather). An empty
    language means the provider's default and is left alone. Raises ``ValueError`` (with
    the instruction index) when a locale has no substitute.
    """
    provider_fallbacks = {_norm(k): tuple(v) for k, v in (fallbacks or {}).items()}

    def pick(tag: str, own: Sequence[str], where: str) -> str:
        try:
            return resolve_locale(tag, supported, (*own, *provider_fallbacks.get(_norm(tag), ())))
        except ValueError as exc:
            raise ValueError(f"{where}: {exc}") from None

    def say(item: Say, where: str) -> Say:
        if not item.language:
            return item
        chosen = pick(item.language, item.language_fallbacks, where)
        if chosen == item.language:
            return item
        if _norm(chosen) == _norm(item.language):  # only the spelling changed
            return dataclasses.replace(item, language=chosen)
        return dataclasses.replace(
            item,
            language=chosen,
            requested_language=item.requested_language or item.language,
        )

    out: list[Instruction] = []
    for index, item in enumerate(instructions):
        where = f"instruction {index} ({type(item).__name__})"
        if isinstance(item, Say):
            out.append(say(item, where))
        elif isinstance(item, Gather):
            prompts = tuple(
                say(p, f"{where} prompt {i} (Say)") if isinstance(p, Say) else p
                for i, p in enumerate(item.prompts)
            )
            speech = item.speech_language
            requested = item.requested_speech_language
            if speech:
                chosen = pick(speech, (), f"{where} speech_language")
                if _norm(chosen) != _norm(speech):
                    requested = requested or speech
                speech = chosen
            out.append(
                dataclasses.replace(
                    item,
                    prompts=prompts,
                    speech_language=speech,
                    requested_speech_language=requested,
                )
            )
        elif isinstance(item, Dial) and item.language:
            chosen = pick(item.language, (), f"{where} language")
            requested = item.requested_language
            if _norm(chosen) != _norm(item.language):
                requested = requested or item.language
            out.append(dataclasses.replace(item, language=chosen, requested_language=requested))
        else:
            out.append(item)
    return out
