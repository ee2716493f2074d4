"""Build the onnxruntime Lambda layer for arm64 (Graviton) with pip alone: no Docker, no aarch64 machine.

pip downloads the manylinux aarch64 wheels for the Lambda's Python (cached in ``build/wheels``; a second
run downloads nothing), installs them without dependencies into ``build/python``, strips what an
InferenceSession never loads, and zips it as ``build/onnxruntime-layer.zip`` with ``python/`` at the root
(Lambda adds ``/opt/python`` to ``sys.path``). Prints the unzipped and zipped sizes.

Usage: python layers/onnxruntime/build.py [--python-version 3.14] [--platform TAG ...] [--build-dir DIR]
       (or python -m layers.onnxruntime.build)
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Final

LAYER_DIR: Final[Path] = Path(__file__).resolve().parent
REQUIREMENTS: Final[Path] = LAYER_DIR / "requirements.txt"
DEFAULT_BUILD_DIR: Final[Path] = LAYER_DIR / "build"
ZIP_NAME: Final[str] = "onnxruntime-layer.zip"
# The router runs on python3.14 arm64 (Runtime.PYTHON_3_14, Architecture.ARM_64).
DEFAULT_PYTHON_VERSION: Final[str] = "3.14"
DEFAULT_PLATFORMS: Final[tuple[str, ...]] = ("manylinux_2_28_aarch64", "manylinux2014_aarch64")
# Parts of the packages an InferenceSession never imports. onnxruntime's transformers/quantization/tools
# are offline optimisation and conversion utilities (they need onnx, sympy...); nothing in
# onnxruntime/__init__ or capi imports them. Paths are relative to python/.
STRIPPED_DIRS: Final[tuple[str, ...]] = ("onnxruntime/transformers", "onnxruntime/quantization", "onnxruntime/tools")
STRIPPED_DIR_NAMES: Final[frozenset[str]] = frozenset({"__pycache__", "tests"})
STRIPPED_SUFFIXES: Final[tuple[str, ...]] = (".pyc", ".pyi")
# A fixed timestamp makes the zip byte-identical across builds of the same wheels (stable asset hash).
ZIP_DATE_TIME: Final[tuple[int, int, int, int, int, int]] = (1980, 1, 1, 0, 0, 0)


def pinned(requirements: Path = REQUIREMENTS) -> dict[str, str]:
    """name → version from a requirements file that pins every line with ``==``."""
    pins: dict[str, str] = {}
    for raw in requirements.read_text(encoding="utf-8").splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        name, separator, version = line.partition("==")
        if not separator:
            raise SystemExit(f"{requirements}: {line!r} must be pinned with ==")
        pins[name.strip()] = version.strip()
    return pins


def platform_flags(python_version: str, platforms: Sequence[str]) -> list[str]:
    flags = ["--only-binary=:all:", "--implementation", "cp", "--python-version", python_version]
    for platform in platforms:
        flags += ["--platform", platform]
    return flags


def cached_wheels(wheels_dir: Path, pins: dict[str, str], python_version: str, arch: str) -> list[Path] | None:
    """The cached wheel of every pin for this Python and CPU, or None when one is missing."""
    abi = "cp" + python_version.replace(".", "")
    found: list[Path] = []
    for name, version in pins.items():
        stem = f"{name.replace('-', '_')}-{version}-"
        matches = sorted(wheels_dir.glob(f"{stem}*{abi}*{arch}*.whl")) if wheels_dir.is_dir() else []
        if not matches:
            return None
        found.append(matches[0])
    return found


def run(command: list[str]) -> None:
    print("+", " ".join(command), flush=True)
    subprocess.run(command, check=True)  # noqa: S603 - pip with arguments built here from pinned requirements


def download(wheels_dir: Path, python_version: str, platforms: Sequence[str]) -> list[Path]:
    pins = pinned()
    arch = "aarch64" if "aarch64" in platforms[0] else platforms[0].split("_", 2)[-1]
    wheels = cached_wheels(wheels_dir, pins, python_version, arch)
    if wheels is not None:
        print(f"wheels cached in {wheels_dir}: {', '.join(wheel.name for wheel in wheels)}")
        return wheels
    wheels_dir.mkdir(parents=True, exist_ok=True)
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check"]
    specs = [f"{name}=={version}" for name, version in pins.items()]
    run([*pip, "download", "--no-deps", *platform_flags(python_version, platforms), "-d", str(wheels_dir), *specs])
    wheels = cached_wheels(wheels_dir, pins, python_version, arch)
    if wheels is None:
        raise SystemExit(f"pip did not leave a {arch} wheel of every pin in {wheels_dir}")
    return wheels


def install(wheels: Iterable[Path], target: Path, python_version: str, platforms: Sequence[str]) -> None:
    if target.exists():
        shutil.rmtree(target)  # a clean target keeps builds idempotent (no leftovers of an older pin)
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    flags = platform_flags(python_version, platforms)
    run([*pip, "install", "--no-deps", "--no-compile", *flags, "--target", str(target), *map(str, wheels)])


def strip(target: Path) -> int:
    """Delete what Lambda never loads; returns the bytes removed."""
    removed = 0
    doomed = [target / relative for relative in STRIPPED_DIRS]
    doomed += [path for path in target.rglob("*") if path.is_dir() and path.name in STRIPPED_DIR_NAMES]
    for directory in doomed:
        if directory.is_dir():
            removed += tree_size(directory)
            shutil.rmtree(directory)
    for path in list(target.rglob("*")):
        if path.is_file() and path.suffix in STRIPPED_SUFFIXES:
            removed += path.stat().st_size
            path.unlink()
    # pip's `bin/` holds console scripts (numpy-config, onnxruntime_test) a layer cannot run anyway.
    if (target / "bin").is_dir():
        removed += tree_size(target / "bin")
        shutil.rmtree(target / "bin")
    return removed


def tree_size(root: Path) -> int:
    return sum(path.stat().st_size for path in root.rglob("*") if path.is_file() and not path.is_symlink())


def write_zip(python_dir: Path, zip_path: Path) -> None:
    zip_path.unlink(missing_ok=True)
    with zipfile.ZipFile(zip_path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        for path in sorted(python_dir.rglob("*")):
            if not path.is_file():
                continue
            info = zipfile.ZipInfo(str(Path("python") / path.relative_to(python_dir)), date_time=ZIP_DATE_TIME)
            info.external_attr = (path.stat().st_mode & 0o777 | 0o100000) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            with path.open("rb") as source, archive.open(info, "w") as destination:
                shutil.copyfileobj(source, destination, 1024 * 1024)


def build(
    build_dir: Path = DEFAULT_BUILD_DIR,
    python_version: str = DEFAULT_PYTHON_VERSION,
    platforms: Sequence[str] = DEFAULT_PLATFORMS,
) -> Path:
    """Build the layer zip into ``build_dir`` and return its path."""
    wheels = download(build_dir / "wheels", python_version, platforms)
    python_dir = build_dir / "python"
    install(wheels, python_dir, python_version, platforms)
    removed = strip(python_dir)
    zip_path = build_dir / ZIP_NAME
    write_zip(python_dir, zip_path)
    unzipped = tree_size(python_dir)
    print(f"stripped {removed / 1e6:.1f} MB (tests, caches, stubs, onnxruntime tools/transformers/quantization)")
    print(f"layer: {unzipped / 1e6:.1f} MB unzipped ({unzipped} bytes), {zip_path.stat().st_size / 1e6:.1f} MB zipped")
    print(f"wrote {zip_path}")
    return zip_path


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--python-version", default=DEFAULT_PYTHON_VERSION)
    parser.add_argument("--platform", action="append", dest="platforms", help="a pip --platform tag (repeatable)")
    parser.add_argument("--build-dir", type=Path, default=DEFAULT_BUILD_DIR)
    args = parser.parse_args(argv)
    os.environ.setdefault("PIP_NO_INPUT", "1")
    build(args.build_dir, args.python_version, args.platforms or DEFAULT_PLATFORMS)


if __name__ == "__main__":
    main()
