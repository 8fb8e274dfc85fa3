"""Static assets: the manifest of a folder and the bytes the server asks for.

A file's hash is the first 32 hex digits of BLAKE3 over its base64 text
followed by its extension without the dot (the protocol's section 4.15), so
identical files are uploaded once, whatever their path.
"""

import base64
import fnmatch
import mimetypes
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from blake3 import blake3

from .errors import ProjectError

MAX_ASSET_BYTES = 25 * 1024 * 1024
# Read for their rules, never uploaded as files.
CONFIG_FILES = ("_headers", "_redirects")
IGNORE_FILE = ".assetsignore"


def asset_hash(data: bytes, path: str) -> str:
    extension = PurePosixPath(path).suffix.removeprefix(".")
    text = base64.b64encode(data) + extension.encode()
    return blake3(text).hexdigest()[:32]


def content_type(path: str) -> str:
    guessed, _encoding = mimetypes.guess_type(path, strict=False)
    if guessed is None:
        return "application/null"  # wrangler's label for "unknown"
    if guessed.startswith("text/") or guessed in {
        "application/javascript",
        "application/json",
    }:
        return f'{guessed}; charset="utf-8"'
    return guessed


@dataclass(frozen=True)
class AssetFile:
    path: str  # "/"-rooted POSIX path, the manifest key
    file: Path
    hash: str
    size: int


@dataclass
class AssetBundle:
    files: list[AssetFile]
    # _headers and _redirects go into the upload metadata's assets.config.
    rules: dict[str, str] = field(default_factory=dict)

    @property
    def manifest(self) -> dict[str, dict[str, object]]:
        return {f.path: {"hash": f.hash, "size": f.size} for f in self.files}

    def by_hash(self) -> dict[str, AssetFile]:
        return {f.hash: f for f in self.files}


def _ignored(relative: str, patterns: list[str]) -> bool:
    name = relative.rsplit("/", 1)[-1]
    for pattern in patterns:
        if "/" in pattern.strip("/"):
            if fnmatch.fnmatchcase(relative, pattern.strip("/")):
                return True
        elif fnmatch.fnmatchcase(name, pattern.strip("/")) or any(
            fnmatch.fnmatchcase(part, pattern.strip("/"))
            for part in relative.split("/")[:-1]
        ):
            return True
    return False


def collect(directory: Path) -> AssetBundle:
    """Every file under ``directory`` that belongs in the manifest."""
    if not directory.is_dir():
        raise ProjectError(f"The assets directory {directory} does not exist.")
    ignore = directory / IGNORE_FILE
    patterns = [
        line.strip()
        for line in (ignore.read_text().splitlines() if ignore.is_file() else [])
        if line.strip() and not line.lstrip().startswith("#")
    ]
    bundle = AssetBundle(files=[])
    for file in sorted(p for p in directory.rglob("*") if p.is_file()):
        relative = file.relative_to(directory).as_posix()
        if relative in CONFIG_FILES:
            bundle.rules[relative] = file.read_text()
            continue
        if relative == IGNORE_FILE or _ignored(relative, patterns):
            continue
        data = file.read_bytes()
        if len(data) > MAX_ASSET_BYTES:
            raise ProjectError(
                f"{relative} is {len(data):,} bytes; assets are at most "
                f"{MAX_ASSET_BYTES:,}."
            )
        bundle.files.append(
            AssetFile(
                path="/" + relative,
                file=file,
                hash=asset_hash(data, relative),
                size=len(data),
            )
        )
    return bundle
