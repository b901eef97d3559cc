from __future__ import annotations

from pathlib import Path

import pytest

from pli.settings import SettingsError, check_safety, load_settings


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
