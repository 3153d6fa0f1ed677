"""Third-party files the reports need, fetched from the npm registry at first use and cached.

Stryker's report schema and its standalone HTML bundle are JavaScript packages. They are never
committed here: `npm pack` downloads the pinned tarball into a cache outside the repository, we check
it against the integrity hash the registry published for that version, and keep only the one file
we need. Later calls read the cache and need neither npm nor the network.
"""

import base64
import hashlib
import io
import os
import shutil
import subprocess
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

from mutator.errors import UserError


@dataclass(frozen=True)
class NpmFile:
    package: str
    version: str
    integrity: str  # the registry's dist.integrity of the tarball: a pin on content, not just on name
    member: str  # path inside the tarball

    @property
    def spec(self) -> str:
        return f"{self.package}@{self.version}"


# One release of Stryker's monorepo: the bundle renders exactly the schema version it was built with.
ELEMENTS = NpmFile(
    "mutation-testing-elements",
    "3.8.4",
    "sha512-5CF1SNa7at5ZH33vEr+21wNebTSrtNIVvnzaUlxortHajOrIPaSLczIWvg6sI/fsExekQ7jookwf2cHftkckqQ==",
    "package/dist/mutation-test-elements.js",
)
REPORT_SCHEMA = NpmFile(
    "mutation-testing-report-schema",
    "3.8.4",
    "sha512-s4G71R6Lt/PpZ0cqeglIcgyBdzLM8E+SeCHZAPg1wkSsPtRBa4XfPzAozYKdiJk/TLbNEEb7En9t0/bveuPuxA==",
    "package/src/mutation-testing-report-schema.json",
)


def cache_dir() -> Path:
    """MUTATOR_CACHE_DIR if set, else the XDG cache (~/.cache/mutator/npm)."""
    if os.environ.get("MUTATOR_CACHE_DIR"):
        return Path(os.environ["MUTATOR_CACHE_DIR"]) / "npm"
    xdg = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(xdg) / "mutator" / "npm"


def cached_path(item: NpmFile) -> Path:
    return cache_dir() / f"{item.package}-{item.version}" / Path(item.member).name


def fetch(item: NpmFile) -> Path:
    """The cached file, downloading it with `npm pack` first if needed. UserError if impossible."""
    path = cached_path(item)
    if path.is_file():
        return path
    npm = shutil.which("npm")
    if npm is None:
        raise UserError(
            f"{item.spec} is not cached in {path.parent} and npm is not installed: "
            "install Node.js/npm once so it can be fetched"
        )
    with tempfile.TemporaryDirectory() as scratch:
        done = subprocess.run(
            [npm, "pack", item.spec, "--pack-destination", scratch, "--silent"],
            capture_output=True,
            text=True,
            cwd=scratch,  # keep npm away from any package.json in the caller's directory
        )
        tarballs = list(Path(scratch).glob("*.tgz"))
        if done.returncode != 0 or len(tarballs) != 1:
            last = (done.stderr.strip().splitlines() or ["no tarball written"])[-1]
            raise UserError(f"npm pack {item.spec} failed: {last}")
        data = tarballs[0].read_bytes()
    digest = "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode()
    if digest != item.integrity:
        raise UserError(f"npm pack {item.spec}: tarball does not match its pinned integrity hash")
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        content = tar.extractfile(item.member).read()
    path.parent.mkdir(parents=True, exist_ok=True)
    # Write then rename, so a concurrent reader never sees half a file.
    partial = path.with_suffix(path.suffix + f".{os.getpid()}.partial")
    partial.write_bytes(content)
    partial.replace(path)
    return path
