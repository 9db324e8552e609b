"""``safework watermark pki``: init, issue and keygen write what they say, 0600 keys, and never overwrite
unless asked."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from safework.core.cli import main
from safework.watermark.commands.pki import ROLE_CHOICES, pki_group
from safework.watermark.security.pki import ROLES, PkiError, client_tls, server_tls
from safework.watermark.security.signing import SigningKey, SigningKeyFileError


def _run(*args: str) -> Result:
    return CliRunner().invoke(pki_group, list(args))


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_init_issue_and_refusals(tmp_path: Path) -> None:
    folder = tmp_path / "pki"
    result = _run("init", "--dir", str(folder))
    assert result.exit_code == 0, result.output
    assert f"wrote {folder / 'ca.pem'}" in result.output and "fingerprint sha256 " in result.output
    assert _mode(folder / "ca.key") == 0o600

    result = _run(
        "issue", "--dir", str(folder), "--name", "ttp", "--role", "ttp", "--host", "10.0.0.5", "--json"
    )
    assert result.exit_code == 0, result.output
    record = json.loads(result.output)
    assert record["cert"] == str(folder / "ttp.pem") and record["key"] == str(folder / "ttp.key")
    assert (
        record["role"] == "ttp"
        and record["hosts"] == ["10.0.0.5"]
        and len(record["fingerprint_sha256"]) == 64
    )
    assert _mode(folder / "ttp.key") == 0o600

    result = _run("issue", "--dir", str(folder), "--name", "vendor-a", "--role", "vendor")
    assert result.exit_code == 0, result.output
    assert "hosts 127.0.0.1, localhost" in result.output
    server_tls(folder, "ttp").credentials()  # core's TLS loader accepts what the CLI wrote
    client_tls(folder, "vendor-a").credentials()

    before = (folder / "ttp.pem").read_bytes()
    refused = _run("issue", "--dir", str(folder), "--name", "ttp", "--role", "ttp")
    assert refused.exit_code != 0 and isinstance(refused.exception, PkiError)
    assert "ttp.pem" in str(refused.exception) and "--overwrite" in str(refused.exception)
    assert (folder / "ttp.pem").read_bytes() == before
    refused = _run("init", "--dir", str(folder))
    assert isinstance(refused.exception, PkiError) and "ca.pem" in str(refused.exception)

    result = _run("issue", "--dir", str(folder), "--name", "ttp", "--role", "ttp", "--overwrite")
    assert result.exit_code == 0 and (folder / "ttp.pem").read_bytes() != before
    assert _mode(folder / "ttp.key") == 0o600


def test_bad_role_is_rejected_by_click(tmp_path: Path) -> None:
    result = _run("issue", "--dir", str(tmp_path), "--name", "x", "--role", "boss")
    assert result.exit_code == 2 and "ttp" in result.output and "vendor" in result.output
    assert ROLE_CHOICES == ROLES


def test_keygen(tmp_path: Path) -> None:
    out = tmp_path / "vendor-a.signing.pem"
    result = _run("keygen", "--out", str(out), "--json")
    assert result.exit_code == 0, result.output
    record = json.loads(result.output)
    key = SigningKey.load(out)
    assert record == {"key_file": str(out), "key_id": key.key_id, "public_key": key.public_bytes().hex()}
    assert _mode(out) == 0o600
    refused = _run("keygen", "--out", str(out))
    assert isinstance(refused.exception, SigningKeyFileError) and "--overwrite" in str(refused.exception)
    assert SigningKey.load(out).key_id == key.key_id
    result = _run("keygen", "--out", str(out), "--overwrite")
    assert result.exit_code == 0 and f"wrote {out}" in result.output
    assert f"key id {SigningKey.load(out).key_id}" in result.output


def test_registered_under_safework_watermark(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    try:
        main(["watermark", "pki", "issue", "--dir", str(tmp_path), "--name", "ttp", "--role", "ttp"])
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    err = capsys.readouterr().err
    assert code == 2 and "ca.pem does not exist" in err and "pki init" in err
