"""Locale fallback: explicit fallbacks, then another region of the language, else an error."""

from __future__ import annotations

import pytest

from convo.voice.instructions import Gather, Hangup, Say
from convo.voice.locales import localize, resolve_locale

TELEFOON = ("nl-NL", "fr-BE", "de-DE", "en-GB")


def test_supported_locale_is_kept_and_spelled_as_supported() -> None:
    assert resolve_locale("nl-NL", TELEFOON) == "nl-NL"
    assert resolve_locale("nl_nl", TELEFOON) == "nl-NL"


def test_same_language_other_region() -> None:
    assert resolve_locale("fr-FR", TELEFOON) == "fr-BE"
    assert resolve_locale("nl-BE", TELEFOON) == "nl-NL"
    assert resolve_locale("en-US", TELEFOON) == "en-GB"
    assert resolve_locale("de", TELEFOON) == "de-DE"


def test_home_region_is_preferred() -> None:
    assert resolve_locale("fr-BE", ["fr-CA", "fr-FR"]) == "fr-FR"
    assert resolve_locale("en-AU", ["en-US", "en-GB"]) == "en-GB"
    assert resolve_locale("pt-BR", ["pt-PT", "pt-AO"]) == "pt-PT"
    assert resolve_locale("es-MX", ["es-US", "es-AR"]) == "es-AR"  # no home: alphabetical


def test_explicit_fallbacks_come_first() -> None:
    assert resolve_locale("fr-CH", ["fr-FR", "de-DE"], fallbacks=["de-DE"]) == "de-DE"
    assert resolve_locale("lb-LU", TELEFOON, fallbacks=["xx-XX", "de-DE"]) == "de-DE"


def test_no_fit_raises_with_what_was_tried() -> None:
    with pytest.raises(
        ValueError,
        match=r"no supported locale for 'es-ES' \(fallbacks tried: it-IT\); "
        r"supported: de-DE, en-GB, fr-BE, nl-NL",
    ):
        resolve_locale("es-ES", TELEFOON, fallbacks=["it-IT"])


def test_localize_records_the_requested_locale() -> None:
    out = localize(
        [
            Say("Bonjour", language="fr-FR"),
            Say("Hallo", language="nl-NL"),
            Say("Hi"),
            Gather(
                input=frozenset({"speech"}),
                speech_language="nl-BE",
                prompts=(Say("Tapez 1", language="fr-FR"),),
            ),
            Hangup(),
        ],
        TELEFOON,
    )
    assert out[0] == Say("Bonjour", language="fr-BE", requested_language="fr-FR")
    assert out[1] == Say("Hallo", language="nl-NL")
    assert out[2] == Say("Hi")
    gather = out[3]
    assert isinstance(gather, Gather)
    assert gather.speech_language == "nl-NL"
    assert gather.requested_speech_language == "nl-BE"
    assert gather.prompts == (Say("Tapez 1", language="fr-BE", requested_language="fr-FR"),)
    assert out[4] == Hangup()


def test_localize_uses_say_fallbacks_before_provider_fallbacks() -> None:
    says = [Say("Grüezi", language="gsw-CH", language_fallbacks=("de-DE",))]
    assert localize(says, TELEFOON)[0] == Say(
        "Grüezi", language="de-DE", language_fallbacks=("de-DE",), requested_language="gsw-CH"
    )
    provider = {"lb-LU": ["fr-BE"]}
    out = localize([Say("Moien", language="lb-LU")], TELEFOON, provider)
    assert out[0] == Say("Moien", language="fr-BE", requested_language="lb-LU")


def test_localize_error_names_the_instruction() -> None:
    with pytest.raises(
        ValueError,
        match=r"^instruction 1 \(Gather\) prompt 0 \(Say\): no supported locale for 'es-ES'",
    ):
        localize([Hangup(), Gather(prompts=(Say("Hola", language="es-ES"),))], TELEFOON)
