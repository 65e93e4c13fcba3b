"""The default pod image, built locally from Debian's busybox-static: nothing is ever pulled.

`scripts/bootstrap` downloads the package (busybox-static conflicts with Debian's busybox, so it is not
installed, only unpacked here). The image holds the static busybox, a link per applet (sh, ip, ping, nc,
wget, httpd, ...) and a page for `httpd -h /var/www`; `docker import` turns it into an image.
"""

from __future__ import annotations

import io
import re
import subprocess
import tarfile
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import docker

DEFAULT_IMAGE = "netpol-lab/pod:busybox"
BUSYBOX_DEB = Path("/var/cache/netpol-lab/busybox-static.deb")
IDLE_COMMAND = ("/bin/sleep", "2147483647")  # the default image's pods idle; the lab's responder answers
INDEX_PAGE = b"netpol-lab pod\n"
DIRECTORIES = {"bin": 0o755, "dev": 0o755, "etc": 0o755, "proc": 0o555, "sys": 0o555, "tmp": 0o1777,
               "root": 0o700, "var": 0o755, "var/www": 0o755}  # fmt: skip


# Docker's image reference grammar without a registry port: path components, an optional tag or digest.
IMAGE_RE = re.compile(r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*"
                      r"(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(?:@sha256:[0-9a-f]{64})?$")
COMMAND_ARG_MAX = 4096


class ImageError(RuntimeError):
    pass


def container_problems(image: str | None, command: Sequence[str] | None) -> list[str]:
    """Pure: what is wrong with a pod's image and command, as 'field X: message' (empty when fine)."""
    problems = []
    if image is not None and (len(image) > 255 or not IMAGE_RE.match(image)):
        problems.append(f"field image: {image!r} is not a Docker image reference (name[:tag], lower-case path)")
    if command is not None:
        if not command:
            problems.append("field command: give at least the program to run, or leave command out")
        for i, arg in enumerate(command):
            if not isinstance(arg, str) or "\0" in arg or len(arg) > COMMAND_ARG_MAX:
                problems.append(f"field command[{i}]: must be text without NUL, at most {COMMAND_ARG_MAX} characters")
    return problems


def _dir(name: str, mode: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.mode = tarfile.DIRTYPE, mode
    return info


def rootfs_tar(busybox: bytes, applets: Iterable[str]) -> bytes:
    """Pure: the image's root file system as a tar archive."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        for name, mode in DIRECTORIES.items():
            tar.addfile(_dir(name, mode))
        files = {"bin/busybox": (busybox, 0o755), "var/www/index.html": (INDEX_PAGE, 0o644),
                 "etc/passwd": (b"root:x:0:0:root:/root:/bin/sh\n", 0o644),
                 "etc/group": (b"root:x:0:\n", 0o644)}  # fmt: skip
        for name, (data, mode) in files.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), mode
            tar.addfile(info, io.BytesIO(data))
        for applet in sorted(set(applets) - {"busybox"}):
            link = tarfile.TarInfo(f"bin/{applet}")
            link.type, link.linkname = tarfile.SYMTYPE, "busybox"
            tar.addfile(link)
    return out.getvalue()


def busybox_from_deb(deb: Path = BUSYBOX_DEB) -> tuple[bytes, list[str]]:
    """The static busybox binary inside the package, and the applets it lists."""
    if not deb.is_file():
        raise ImageError(f"{deb} is missing: run scripts/bootstrap (it downloads Debian's busybox-static)")
    fsys = subprocess.run(["dpkg-deb", "--fsys-tarfile", str(deb)], capture_output=True, check=True).stdout
    with tarfile.open(fileobj=io.BytesIO(fsys)) as tar:
        member = tar.extractfile("./bin/busybox")
        if member is None:
            raise ImageError(f"{deb} holds no ./bin/busybox")
        binary = member.read()
    with tempfile.TemporaryDirectory(prefix="netpol-lab-busybox-") as tmp:
        path = Path(tmp) / "busybox"
        path.write_bytes(binary)
        path.chmod(0o755)
        applets = subprocess.run([str(path), "--list"], capture_output=True, text=True, check=True).stdout.split()
    return binary, applets


def has_image(client: "docker.DockerClient", image: str) -> bool:
    import docker.errors

    try:
        client.images.get(image)
    except docker.errors.ImageNotFound:
        return False
    return True


def ensure_default_image(client: "docker.DockerClient") -> None:
    """Import the default image into the daemon unless it is there already."""
    if has_image(client, DEFAULT_IMAGE):
        return
    binary, applets = busybox_from_deb()
    repository, tag = DEFAULT_IMAGE.split(":")
    client.api.import_image_from_data(rootfs_tar(binary, applets), repository=repository, tag=tag,
                                      changes=['CMD ["/bin/sh"]'])
    if not has_image(client, DEFAULT_IMAGE):
        raise ImageError(f"docker import did not produce {DEFAULT_IMAGE}")
