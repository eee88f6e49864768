"""The onnxruntime-web files the play page runs on, vendored in ``trainers/play/web/vendor/`` (nothing downloads at run time).

Two files of the npm package ``onnxruntime-web`` (MIT, Microsoft), at the pinned :data:`VERSION`:

* ``ort.wasm.bundle.min.mjs``: the WebAssembly build's JavaScript API as one ES module (about 77 kB);
* ``ort-wasm-simd-threaded.wasm``: its WebAssembly binary (about 14.8 MB; 3.8 MB compressed, as in a wheel).

That is the smallest set that runs a graph: the bundle already holds the Emscripten loader that the non-bundled build
fetches as a third file, and the page runs one thread (no worker, no cross-origin isolation needed). ``VENDOR.json``
records the version, the npm tarball's integrity string and each file's sha256; ``LICENSE`` is the package's MIT licence.
Maintainers refresh the files with npm (node and npm installed)::

    python -m trainers.play.vendor 1.31.1

which runs ``npm pack onnxruntime-web@VERSION`` in a temporary folder and copies the two files. A user never runs it.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path

#: the pinned onnxruntime-web release (npm)
VERSION = "1.31.1"
VENDOR_DIR = Path(__file__).resolve().parent / "web" / "vendor"
FILES = ("ort.wasm.bundle.min.mjs", "ort-wasm-simd-threaded.wasm")
RECORD = "VENDOR.json"
LICENSE_TEXT = """MIT License

Copyright (c) Microsoft Corporation.

Permission is hereby granted, free of charge, to any person obtaining a copy
of this software and associated documentation files (the "Software"), to deal
in the Software without restriction, including without limitation the rights
to use, copy, modify, merge, publish, distribute, sublicense, and/or sell
copies of the Software, and to permit persons to whom the Software is
furnished to do so, subject to the following conditions:

The above copyright notice and this permission notice shall be included in all
copies or substantial portions of the Software.

THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR
IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY,
FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE
AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER
LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM,
OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE
SOFTWARE.

This folder holds files of the npm package onnxruntime-web (https://www.npmjs.com/package/onnxruntime-web,
source: https://github.com/microsoft/onnxruntime, js/web), unmodified. The notices of the third-party code compiled
into the WebAssembly binary: https://github.com/microsoft/onnxruntime/blob/main/ThirdPartyNotices.txt
"""


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def vendored() -> dict:
    """``VENDOR.json``: what is vendored, checked against the files (a clear error if they are missing or changed)."""
    record_path = VENDOR_DIR / RECORD
    if not record_path.is_file():
        raise FileNotFoundError(f"{record_path} is missing: the play page's onnxruntime-web files are not installed. "
                                f"Reinstall gym-dream, or in a checkout run: python -m trainers.play.vendor {VERSION}")
    record = json.loads(record_path.read_text())
    for name, digest in record["files"].items():
        path = VENDOR_DIR / name
        if not path.is_file() or sha256(path) != digest:
            raise FileNotFoundError(f"{path} is missing or not the vendored onnxruntime-web {record['version']} file. "
                                    f"Restore it: python -m trainers.play.vendor {record['version']}")
    return record


def refresh(version: str = VERSION, out: Path = VENDOR_DIR) -> dict:
    """Fetch onnxruntime-web ``version`` with ``npm pack`` and copy :data:`FILES` into ``out`` (with VENDOR.json and LICENSE)."""
    if shutil.which("npm") is None:
        raise FileNotFoundError("npm is not installed: refreshing the vendored onnxruntime-web needs node and npm.")
    with tempfile.TemporaryDirectory(prefix="ort-web-") as tmp:
        packed = subprocess.run(["npm", "pack", f"onnxruntime-web@{version}", "--json"], cwd=tmp, check=True,
                                capture_output=True, text=True)
        info = json.loads(packed.stdout)[0]
        with tarfile.open(Path(tmp) / info["filename"]) as tar:
            for name in FILES:
                member = tar.getmember(f"package/dist/{name}")
                out.mkdir(parents=True, exist_ok=True)
                (out / name).write_bytes(tar.extractfile(member).read())
    record = {"package": "onnxruntime-web", "version": version, "license": "MIT", "npm_integrity": info.get("integrity"),
              "files": {name: sha256(out / name) for name in FILES},
              "bytes": {name: (out / name).stat().st_size for name in FILES}}
    (out / RECORD).write_text(json.dumps(record, indent=2) + "\n")
    (out / "LICENSE").write_text(LICENSE_TEXT)
    return record


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description="Refresh the vendored onnxruntime-web files of the play page (needs npm).")
    p.add_argument("version", nargs="?", default=VERSION, help=f"the onnxruntime-web release (default: {VERSION})")
    args = p.parse_args(argv)
    print(json.dumps(refresh(args.version), indent=2))


if __name__ == "__main__":
    main()
