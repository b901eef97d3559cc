from __future__ import annotations

from pathlib import Path

import pytest

from messaging.kinds.notification import Channel
from messaging.signin_codes import RoutingCodeSender
from pli.settings import SettingsError, check_safety, load_settings
from pli.wiring import outside_senders, sms_sender


def test_the_settings_file_is_read_and_the_environment_wins(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    (tmp_path / "pli.toml").write_text('domain = "from-file.fr"\nmax_recipients = 7\n')
    monkeypatch.setenv("PLI_MAX_RECIPIENTS", "9")
    settings = load_settings(tmp_path)
    assert settings.domain == "from-file.fr"
    assert settings.max_recipients == 9
    assert settings.resolved_database_url.endswith(f"{tmp_path}/pli.db")


def test_an_unknown_setting_is_refused(tmp_path: Path):
    (tmp_path / "pli.toml").write_text("unknown_knob = 1\n")
    with pytest.raises(ValueError, match="unknown_knob"):
        load_settings(tmp_path)


def test_weak_key_derivation_is_refused_outside_demo_mode(tmp_path: Path):
    settings = load_settings(tmp_path, passphrase_opslimit=1, passphrase_memlimit=8192)
    with pytest.raises(SettingsError, match="passphrase_opslimit"):
        check_safety(settings)
    check_safety(load_settings(tmp_path, demo=True, passphrase_opslimit=1))


def test_listening_beyond_loopback_without_tls_is_refused(tmp_path: Path):
    with pytest.raises(SettingsError, match="not loopback"):
        check_safety(load_settings(tmp_path, host="0.0.0.0"))  # noqa: S104 - the point
    check_safety(load_settings(tmp_path))


def test_an_sms_gateway_needs_its_credentials_and_a_safe_url(tmp_path: Path):
    password = tmp_path / "sms-password"
    password.write_text("from-a-file\n")
    url = "http://127.0.0.1:13013/cgi-bin/sendsms"
    assert sms_sender(load_settings(tmp_path)) is None
    with pytest.raises(SettingsError, match="sms_gateway_password_file"):
        sms_sender(load_settings(tmp_path, sms_gateway_url=url, sms_gateway_username="pli"))
    with pytest.raises(SettingsError, match="sms_gateway_password_file"):
        sms_sender(
            load_settings(
                tmp_path,
                sms_gateway_url=url,
                sms_gateway_username="pli",
                sms_gateway_password_file=tmp_path / "missing",
            )
        )
    with pytest.raises(SettingsError, match="https"):
        sms_sender(
            load_settings(
                tmp_path,
                sms_gateway_url="http://sms.example.org/cgi-bin/sendsms",
                sms_gateway_username="pli",
                sms_gateway_password_file=password,
            )
        )
    sender = sms_sender(
        load_settings(
            tmp_path,
            sms_gateway_url=url,
            sms_gateway_username="pli",
            sms_gateway_password_file=password,
        )
    )
    assert sender is not None and "from-a-file" not in repr(sender)
    # With a gateway, codes for phones have a sender; without one, they have none.
    with_sms = load_settings(
        tmp_path,
        sms_gateway_url=url,
        sms_gateway_username="pli",
        sms_gateway_password_file=password,
        notice_smarthost="127.0.0.1",
    )
    codes = outside_senders(with_sms).codes
    assert isinstance(codes, RoutingCodeSender) and codes.handles(Channel.SMS)
    codes = outside_senders(load_settings(tmp_path, notice_smarthost="127.0.0.1")).codes
    assert isinstance(codes, RoutingCodeSender) and not codes.handles(Channel.SMS)
