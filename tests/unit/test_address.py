"""orchestrator.scheduling.adapters.address: parsing what users type as a Ray address, and finding
the cluster token the way Ray 2.60 does (no Ray started here)."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.scheduling.adapters.address import AddressError, jobs_headers, parse, use_token


@pytest.mark.parametrize(
    "text, kind, host, port",
    [
        ("local", "local", "", 0),
        ("auto", "auto", "", 0),
        ("10.0.0.10:6379", "gcs", "10.0.0.10", 6379),
        ("head-1.example.org:6380", "gcs", "head-1.example.org", 6380),
        ("[::1]:6379", "gcs", "::1", 6379),
        ("http://10.0.0.10:8265", "jobs", "10.0.0.10", 8265),
        ("http://head/", "jobs", "head", 80),
        ("https://head", "jobs", "head", 443),
    ],
)
def test_addresses(text: str, kind: str, host: str, port: int) -> None:
    a = parse(text)
    assert (a.kind, a.host, a.port) == (kind, host, port)


@pytest.mark.parametrize(
    "text", ["foo", "", "10.0.0.10", ":6379", "h:0", "h:70000", "h:port", "http://", "a b:1"]
)
def test_not_addresses(text: str) -> None:
    with pytest.raises(AddressError, match=r"not a Ray address.*HOST:PORT"):
        parse(text, "ORCH_RAY_ADDRESS")


def test_ray_client_addresses_are_explained() -> None:
    with pytest.raises(AddressError, match=r"ray://.*not supported.*HOST:6379"):
        parse("ray://head:10001")


@pytest.fixture
def no_token(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for var in ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH"):
        # set, then delete: monkeypatch restores the variable (or its absence) afterwards,
        # also when use_token sets RAY_AUTH_MODE itself
        monkeypatch.setenv(var, "")
        monkeypatch.delenv(var)
    monkeypatch.setenv("HOME", str(tmp_path))
    return tmp_path


def test_token_turns_token_mode_on(no_token: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    addr = parse("h:6379")
    assert use_token(addr) is None and "RAY_AUTH_MODE" not in os.environ
    assert jobs_headers() == {}
    file = no_token / ".ray" / "auth_token"
    file.parent.mkdir()
    file.write_text("abc\n")
    assert use_token(addr) == str(file)
    assert os.environ["RAY_AUTH_MODE"] == "token"
    assert jobs_headers() == {"Authorization": "Bearer abc"}
    monkeypatch.setenv("RAY_AUTH_TOKEN", "xyz")  # Ray's order: the variable first
    assert use_token(addr) == "RAY_AUTH_TOKEN"
    assert jobs_headers() == {"Authorization": "Bearer xyz"}


def test_an_explicit_mode_is_respected(no_token: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")
    monkeypatch.setenv("RAY_AUTH_TOKEN", "xyz")
    assert use_token(parse("h:6379")) is None
    assert jobs_headers() == {}


def test_token_path_that_holds_nothing(no_token: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAY_AUTH_TOKEN_PATH", str(no_token / "missing"))
    with pytest.raises(AddressError, match=r"RAY_AUTH_TOKEN_PATH=.*missing: no token there"):
        use_token(parse("h:6379"))
    (no_token / "empty").write_text("")
    monkeypatch.setenv("RAY_AUTH_TOKEN_PATH", str(no_token / "empty"))
    with pytest.raises(AddressError, match="no token there"):
        use_token(parse("h:6379"))
