"""convo.toml + environment -> Settings, and the errors for bad configuration."""

from __future__ import annotations

from pathlib import Path

import pytest

from convo.config import Secret, load_settings, parse_settings
from convo.exceptions import ConfigError
from convo.store.urls import SUPPORTED

TOML = """
[server]
port = 9000
public_url = "https://bot.example.com/"
api_token = "${CONVO_API_TOKEN}"

[store]
url = "memory://"

[flows]
paths = ["flows", "more"]

[[lines]]
number = "0470 00 01 00"
provider = "vonage"
flow = "appointment"

[[lines]]
number = "AcmeDental"
provider = "telefoon_sms"
flow = "faq"
channels = ["sms", "voice"]

[providers.vonage]
api_key = "abcd1234"
api_secret = "${VONAGE_API_SECRET}"
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "convo.toml"
    path.write_text(text)
    return path


def test_reads_file_and_expands_env(tmp_path: Path) -> None:
    env = {"CONVO_API_TOKEN": "tok", "VONAGE_API_SECRET": "very-secret"}
    s = load_settings(write(tmp_path, TOML), env=env)
    assert (s.server.host, s.server.port) == ("127.0.0.1", 9000)
    assert s.server.public_url == "https://bot.example.com"
    assert s.server.api_token == Secret("tok") and s.server.api_token.reveal() == "tok"
    assert s.store.url == "memory://"
    assert s.flows.paths == ("flows", "more")
    assert [(x.number, x.provider, x.flow, x.channels) for x in s.lines] == [
        ("+32470000100", "vonage", "appointment", ("sms",)),
        ("AcmeDental", "telefoon_sms", "faq", ("sms", "voice")),
    ]
    assert s.providers["vonage"]["api_secret"] == "very-secret"
    assert s.provider_names() == ["vonage", "telefoon_sms"]
    shown = repr(s)
    assert "very-secret" not in shown and "tok'" not in shown and "abcd1234" not in shown


def test_config_file_from_environment_and_defaults(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    flows = tmp_path / "flows"
    flows.mkdir()
    for fid in ("zeta", "alpha"):
        (flows / f"{fid}.yaml").write_text(f"flow: {fid}\nchannels: [sms, voice]\n")
    (flows / "alpha.test.yaml").write_text("flow: alpha\n")
    defaults = load_settings(env={})
    assert defaults.source == "<defaults>"
    assert defaults.store.url == "sqlite:///var/convo.db"
    assert [(x.number, x.flow, x.provider, x.channels) for x in defaults.lines] == [
        ("+32460000101", "alpha", "sandbox", ("sms", "voice")),
        ("+32460000102", "zeta", "sandbox", ("sms", "voice")),
    ]
    other = tmp_path / "other.toml"
    other.write_text("[server]\nport = 1234\n")
    assert load_settings(env={"CONVO_CONFIG": str(other)}).server.port == 1234
    write(tmp_path, "[server]\nport = 4321\n")
    assert load_settings(env={}).server.port == 4321


def test_with_server_overrides_and_keeps_derived_public_url() -> None:
    s = parse_settings({}, env={}).with_server(host="0.0.0.0", port=9999)
    assert s.server.public_url == "http://0.0.0.0:9999"
    fixed = parse_settings({"server": {"public_url": "https://x.example"}}, env={})
    assert fixed.with_server(port=1).server.public_url == "https://x.example"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[server]\nport = 'abc'\n", "convo.toml: [server] port: expected an integer, got 'abc'"),
        ("[server]\nport = 70000\n", "[server] port: expected at least 0 and at most 65535"),
        ("[server]\nprot = 1\n", "[server] prot: unknown key"),
        ("[servr]\n", "unknown table [servr]"),
        ("[store]\nurl = 'mysql://x'\n", "[store] url: mysql:// is not a known store (supported:"),
        ("[flows]\npaths = 'flows'\n", "[flows] paths: expected a list of strings"),
        ("[server]\napi_token = 5\n", "[server] api_token: expected a string, got a int"),
        ("[[lines]]\nnumber = '+32470000100'\nprovider = 'x'\n", "[[lines]] #1 flow: missing"),
        ("[[lines]]\nnumber = '12'\nprovider = 'x'\nflow = 'f'\n", "[[lines]] #1 number:"),
        (
            "[[lines]]\nnumber='+32470000100'\nprovider='x'\nflow='f'\nchannels=['fax']\n",
            "[[lines]] #1 channels: expected a non-empty list of sms and voice",
        ),
        (
            "[providers.vonage]\napi_secret = '${NOPE}'\n",
            "[providers.vonage] api_secret: environment variable NOPE is not set",
        ),
        ("[server\n", "invalid TOML"),
        ("[outbox]\nmax_attempts = 0\n", "[outbox] max_attempts: expected at least 1"),
        ("[outbox]\nconcurrency = 0\n", "[outbox] concurrency: expected at least 1"),
        (
            "[[lines]]\nnumber = '+32470000100'\nprovider = 'vonagee'\nflow = 'f'\n",
            "[[lines]] #1 provider: unknown provider 'vonagee' (did you mean 'vonage'?); "
            "known providers: enco, sandbox, sandbox_voice, telefonie_sms, telefoon_sms, "
            "telefoon_voice, twilio, twilio_voice, vonage, vonage_voice",
        ),
        ("[providers.telefon_sms]\napi_key = 'k'\n", "[providers.telefon_sms]: unknown provider"),
        (
            "[providers.mine]\ntype = 'enko'\n",
            "[providers.mine]: unknown provider 'enko' (did you mean 'enco'?)",
        ),
    ],
)
def test_bad_config_names_file_key_and_expectation(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_settings(path, env={})
    assert message in str(info.value)
    assert str(path) in str(info.value)


STORE_SUPPORTED = f"(supported: {SUPPORTED})"


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("redis://", f"redis:// is not supported yet {STORE_SUPPORTED}"),
        ("postgresql://x", "the postgresql:// URL names no database; write postgresql://"),
        ("ftp://", f"ftp:// is not a known store {STORE_SUPPORTED}"),
        ("sqlite://nopath", "'sqlite://nopath' has no file path; write sqlite:///relative/"),
        ("memory://x", "'memory://x': memory:// takes nothing after it"),
    ],
)
def test_bad_store_url_fails_at_load_in_one_line(tmp_path: Path, url: str, message: str) -> None:
    path = write(tmp_path, f"[store]\nurl = '{url}'\n")
    with pytest.raises(ConfigError) as info:
        load_settings(path, env={})
    assert str(info.value).startswith(f"{path}: [store] url: {message}")
    assert "\n" not in str(info.value)
    with pytest.raises(ConfigError, match=r"^convo\.toml: \[store\] url: "):
        parse_settings({"store": {"url": url}}, env={})


@pytest.mark.parametrize(
    "url",
    ["memory://", "sqlite:///var/convo.db", "sqlite:////srv/c.db", "postgresql://u:p@db:5432/c"],
)
def test_good_store_urls_load(url: str) -> None:
    assert parse_settings({"store": {"url": url}}, env={}).store.url == url


def test_a_postgresql_url_may_come_from_the_environment() -> None:
    url = "postgresql://convo:s3cret@db.internal:5432/convo"
    raw = {"store": {"url": "${CONVO_DATABASE_URL}"}}
    assert parse_settings(raw, env={"CONVO_DATABASE_URL": url}).store.url == url


@pytest.mark.parametrize(
    ("value", "seconds"),
    [(3600, 3600.0), (1.5, 1.5), ("90", 90.0), ("12h", 43200.0), ("30d", 2592000.0)],
)
def test_seen_retention_takes_seconds_or_a_duration(value: object, seconds: float) -> None:
    store = parse_settings({"store": {"seen_retention": value}}, env={}).store
    assert store.seen_retention == seconds


def test_seen_retention_defaults_to_30_days() -> None:
    assert parse_settings({}, env={}).store.seen_retention == 30 * 86400.0


@pytest.mark.parametrize("value", [0, -5, "0s", "soon", True, [30]])
def test_bad_seen_retention_names_file_and_key(value: object) -> None:
    with pytest.raises(ConfigError) as info:
        parse_settings({"store": {"seen_retention": value}}, source="c.toml", env={})
    assert str(info.value).startswith(
        "c.toml: [store] seen_retention: expected a duration above 0 (seconds, or e.g. 12h, 30d)"
    )


def test_secret_values_never_appear_in_errors(tmp_path: Path) -> None:
    path = write(tmp_path, "[server]\napi_token = ['hunter2']\n")
    with pytest.raises(ConfigError) as info:
        load_settings(path, env={})
    assert "hunter2" not in str(info.value)


def test_missing_explicit_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="configuration file not found"):
        load_settings(tmp_path / "nope.toml", env={})


def test_provider_option_errors_name_the_file(tmp_path: Path) -> None:
    import httpx

    from convo.runtime.wiring import build_providers

    path = write(
        tmp_path,
        "[[lines]]\nnumber = '+32470000100'\nprovider = 'vonage'\nflow = 'f'\n"
        "[providers.vonage]\napi_key = 'k'\napi_secret = 's'\nsignature_secret = 'x'\n"
        "signature_method = 'sha3'\n",
    )
    settings = load_settings(path, env={})
    with pytest.raises(ConfigError) as info:
        build_providers(settings, httpx.AsyncClient(), "sms")
    assert str(info.value).startswith(f"{path}: [providers.vonage] signature_method: ")


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("", 86400.0),
        ("max_age = 90\n", 90.0),
        ("max_age = '24h'\n", 86400.0),
        ("max_age = '2d'\n", 172800.0),
    ],
)
def test_outbox_max_age_is_seconds_or_a_duration(tmp_path: Path, text: str, seconds: float) -> None:
    settings = load_settings(write(tmp_path, "[outbox]\n" + text), env={})
    assert settings.outbox.max_age == seconds


@pytest.mark.parametrize("value", ["0", "-5", "'soon'", "'inf'", "true"])
def test_a_bad_outbox_max_age_is_refused(tmp_path: Path, value: str) -> None:
    with pytest.raises(ConfigError, match=r"\[outbox\] max_age: expected a duration above 0"):
        load_settings(write(tmp_path, f"[outbox]\nmax_age = {value}\n"), env={})


@pytest.mark.parametrize(
    ("text", "backlog", "lag"),
    [
        ("", 10_000, 60.0),
        ("max_backlog = 500\nmax_lag = '2m'\n", 500, 120.0),
        ("max_backlog = 0\nmax_lag = 0\n", 0, 0.0),  # both limits off
    ],
)
def test_outbox_backpressure_limits(tmp_path: Path, text: str, backlog: int, lag: float) -> None:
    settings = load_settings(write(tmp_path, "[outbox]\n" + text), env={})
    assert (settings.outbox.max_backlog, settings.outbox.max_lag) == (backlog, lag)


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("max_backlog = -1", r"\[outbox\] max_backlog: expected at least 0, got -1"),
        ("max_backlog = 'many'", r"\[outbox\] max_backlog: expected an integer"),
        ("max_lag = -5", r"\[outbox\] max_lag: expected a duration of 0 or more"),
        ("max_lag = 'soon'", r"\[outbox\] max_lag: expected a duration of 0 or more"),
    ],
)
def test_bad_outbox_backpressure_limits_are_refused(tmp_path: Path, text: str, error: str) -> None:
    with pytest.raises(ConfigError, match=error):
        load_settings(write(tmp_path, f"[outbox]\n{text}\n"), env={})


@pytest.mark.parametrize(
    ("text", "limit"), [("", 10_000), ("max_pending_turns = 50", 50), ("max_pending_turns = 0", 0)]
)
def test_the_pending_turns_limit(tmp_path: Path, text: str, limit: int) -> None:
    settings = load_settings(write(tmp_path, f"[webhooks]\n{text}\n"), env={})
    assert settings.webhooks.max_pending_turns == limit


def test_a_negative_pending_turns_limit_is_refused(tmp_path: Path) -> None:
    error = r"\[webhooks\] max_pending_turns: expected at least 0, got -1"
    with pytest.raises(ConfigError, match=error):
        load_settings(write(tmp_path, "[webhooks]\nmax_pending_turns = -1\n"), env={})


def test_outbox_max_attempts_is_still_accepted_but_no_longer_ends_retrying(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from convo.retry import RetryPolicy

    old = load_settings(write(tmp_path, "[outbox]\nmax_attempts = 5\n"), env={})
    assert old.outbox.max_attempts == 5
    with caplog.at_level("WARNING", "convo.outbox"):
        policy = RetryPolicy.from_settings(old.outbox)
    assert policy.max_age == 86400.0
    assert any("max_attempts is deprecated" in r.getMessage() for r in caplog.records)
    assert load_settings(write(tmp_path, "")).outbox.max_attempts is None


def test_trusted_proxies_are_addresses_or_networks() -> None:
    settings = parse_settings(
        {"server": {"trusted_proxies": ["10.0.0.0/8", "192.0.2.7", "fd00::/8"]}},
        source="c.toml",
        env={},
    )
    assert [str(n) for n in settings.server.trusted_proxies] == [
        "10.0.0.0/8",
        "192.0.2.7/32",
        "fd00::/8",
    ]
    assert parse_settings({}, source="c.toml", env={}).server.trusted_proxies == ()
    with pytest.raises(
        ConfigError, match=r"c\.toml: \[server\] trusted_proxies: 'nginx' is not an IP address"
    ):
        parse_settings({"server": {"trusted_proxies": ["nginx"]}}, source="c.toml", env={})


def test_outbox_claim_lease_and_server_workers() -> None:
    settings = parse_settings(
        {"outbox": {"claim_lease": 30}, "server": {"workers": 4}}, source="c.toml", env={}
    )
    assert (settings.outbox.claim_lease, settings.server.workers) == (30.0, 4)
    assert parse_settings({}, source="c.toml", env={}).outbox.claim_lease == 120.0
    with pytest.raises(ConfigError, match=r"c.toml: \[outbox\] claim_lease: expected a number"):
        parse_settings({"outbox": {"claim_lease": 0}}, source="c.toml", env={})
    with pytest.raises(ConfigError, match=r"\[server\] workers: expected at least 1, got 0"):
        parse_settings({"server": {"workers": 0}}, source="c.toml", env={})
