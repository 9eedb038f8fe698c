"""The upload folder alone: the one check on file references, the clean-up of folders that
servers which are gone left behind, expiry and the byte bound; and bounded quoting."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from facestudio.app.messages import MAX_MESSAGE_CHARS, one_line, quote
from facestudio.app.uploads import (
    MARKER,
    PREFIX,
    UploadFolder,
    UploadRefusedError,
    UploadsFullError,
    remove_abandoned,
)
from facestudio.pipeline import limits


@pytest.fixture
def folder(tmp_path) -> UploadFolder:
    uploads = UploadFolder.create(max_bytes=10_000, ttl_s=60, parent=tmp_path)
    yield uploads
    uploads.remove()


def test_a_file_uploaded_into_the_folder_is_read(folder):
    (folder.path / "abc").mkdir()
    (folder.path / "abc" / "me.jpg").write_bytes(b"jpeg bytes")
    upload = folder.read(str(folder.path / "abc" / "me.jpg"))
    assert upload.name == "me.jpg" and upload.data == b"jpeg bytes"


def hostile(folder: UploadFolder, tmp_path: Path) -> list[object]:
    secret = tmp_path / "secret.jpg"
    secret.write_bytes(b"private")
    os.symlink(secret, folder.path / "link.jpg")
    os.mkfifo(folder.path / "pipe.jpg")
    (folder.path / "sub").mkdir()
    return [
        str(secret),
        os.path.relpath(secret),
        f"{folder.path}/../../{secret.name}",
        f"{folder.path}/sub/../../{MARKER}",
        str(folder.path / "link.jpg"),
        str(folder.path / "pipe.jpg"),
        str(folder.path / "sub"),
        str(folder.path),
        str(folder.path / "missing.jpg"),
        "/proc/self/environ",
        "/dev/zero",
        "http://127.0.0.1/x.jpg",
        f"file://{folder.path}/x.jpg",
        "data:image/png;base64,AAAA",
        str(folder.path / "x\0.jpg"),
        "",
        "a" * 5000,
        None,
        42,
        {"path": str(secret)},
    ]


def test_every_other_reference_is_refused_with_the_same_line(folder, tmp_path):
    messages = set()
    for reference in hostile(folder, tmp_path):
        with pytest.raises(UploadRefusedError) as refused:
            folder.read(reference)
        message = str(refused.value)
        assert "is not a file uploaded to this server" in message and len(message) < 300
        messages.add(message.split("'")[2])  # all but the quoted name
    assert len(messages) == 1


def test_a_file_over_the_upload_limit_is_refused_unread(folder, monkeypatch):
    monkeypatch.setattr(limits, "MAX_UPLOAD_BYTES", 4)
    (folder.path / "big.jpg").write_bytes(b"12345")
    with pytest.raises(UploadRefusedError):
        folder.read(str(folder.path / "big.jpg"))


def test_the_folder_is_private_and_marked_as_this_process(folder):
    assert folder.root.name.startswith(PREFIX) and (folder.root.stat().st_mode & 0o777) == 0o700
    assert json.loads((folder.root / MARKER).read_text())["pid"] == os.getpid()


def test_only_the_folders_of_servers_that_are_gone_are_removed(tmp_path, folder):
    gone = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    marker = json.loads((folder.root / MARKER).read_text())
    dead = tmp_path / f"{PREFIX}dead"
    (dead / "uploads").mkdir(parents=True)
    (dead / MARKER).write_text(json.dumps({**marker, "pid": int(gone.stdout)}))
    rebooted = tmp_path / f"{PREFIX}rebooted"
    rebooted.mkdir()
    (rebooted / MARKER).write_text(json.dumps({**marker, "boot": "another boot"}))
    reused = tmp_path / f"{PREFIX}reused"
    reused.mkdir()
    (reused / MARKER).write_text(json.dumps({**marker, "start": "0"}))  # our pid, not us
    unmarked = tmp_path / f"{PREFIX}unmarked"
    (unmarked / "uploads").mkdir(parents=True)
    (unmarked / "uploads" / "someone's.jpg").write_bytes(b"kept")
    empty = tmp_path / f"{PREFIX}empty"
    (empty / "uploads" / "vibe_edit_history").mkdir(parents=True)  # what gradio leaves
    linked = tmp_path / f"{PREFIX}linked"
    linked.mkdir()
    (linked / MARKER).symlink_to(dead / MARKER)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (tmp_path / f"{PREFIX}link-to-folder").symlink_to(elsewhere)
    removed = remove_abandoned(tmp_path)
    assert sorted(removed) == sorted([dead, rebooted, reused, empty])
    assert folder.root.exists() and linked.exists() and elsewhere.exists()
    assert (unmarked / "uploads" / "someone's.jpg").exists()


def test_uploads_expire_and_the_folder_has_a_byte_bound(folder):
    (folder.path / "a").mkdir()
    old, new = folder.path / "a" / "old.jpg", folder.path / "new.jpg"
    old.write_bytes(bytes(6000))
    new.write_bytes(bytes(3000))
    with pytest.raises(UploadsFullError) as full:
        folder.admit(2000)
    assert full.value.retry_after >= 1 and "limit is" in str(full.value)
    stale = time.time() - 120
    os.utime(old, (stale, stale))
    folder.sweep()
    assert not old.exists() and not (folder.path / "a").exists() and new.exists()
    folder.admit(2000)


def test_quotes_and_messages_are_bounded():
    assert quote("short") == "short"
    long = quote("9" * 60_000)
    assert len(long) <= 80 and "…" in long and quote("a\0b") == "a\\x00b"
    message = one_line("seed must be a number, got '" + "9" * 60_000 + "'\nuse 0 to 9")
    assert len(message) < 200 and message.endswith("use 0 to 9") and "\n" not in message
    assert len(one_line(" ".join(["word"] * 10_000))) <= MAX_MESSAGE_CHARS
