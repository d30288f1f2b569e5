"""Find one named file of a package on the Python package index pip is configured to use, and download it.

Nothing is installed or built: the index's project page is read (PEP 691 JSON, or the PEP 503 HTML page when the
index serves no JSON), the file is looked up by its exact name and streamed to disk with :mod:`urllib`. That is
the only way to get a source archive (``.tar.gz``) without running its build script, which
``pip download`` does even with ``--no-deps`` to prepare the package's metadata.

pip's settings apply where they concern finding the file: the index is ``PIP_INDEX_URL``, else ``index-url`` of
pip's configuration files (section ``download``, then ``global``), else pip's default index (credentials written in
it are sent to its host); the CA bundle is ``PIP_CERT`` / pip's ``cert`` setting when set. Proxies come from the
environment (``HTTPS_PROXY``, ``NO_PROXY``), which urllib honours; pip's own ``proxy`` setting, ``.netrc`` and
keyring credentials are not used. The caller checks the file's pinned sha256 before opening it.
"""

from __future__ import annotations

import base64
import functools
import json
import os
import re
import ssl
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urldefrag, urljoin, urlsplit, urlunsplit

from pyramid_bert.errors import DataError

#: Seconds a connection or one read may stall before the download is abandoned.
TIMEOUT_SECONDS = 60
#: Largest archive we download (the largest pinned one is 84 MB); a bigger response is cut off with an error.
MAX_ARCHIVE_BYTES = 1 << 30
JSON_TYPE = "application/vnd.pypi.simple.v1+json"
ACCEPT = f"{JSON_TYPE}, application/vnd.pypi.simple.v1+html;q=0.2, text/html;q=0.1"
_CHUNK = 1 << 20


def index_url() -> str:
    """The simple-API URL of the index pip would use (see the module docstring); DataError when none is known."""
    configured = os.environ.get("PIP_INDEX_URL", "").strip() or _pip_setting("index-url")
    if configured:
        return configured.split()[0]
    default = _pip_facts().get("default_index")
    if not default:
        raise DataError(
            "cannot tell which package index to use (pip is not installed here): set PIP_INDEX_URL to the "
            "index's simple URL"
        )
    return str(default)


def _pip_setting(name: str) -> str | None:
    """``name`` from pip's configuration (environment, then section ``download``, then ``global``), if any."""
    settings = _pip_facts().get("settings") or {}
    for section in (":env:", "download", "global"):
        value = settings.get(f"{section}.{name}")
        if value:
            return str(value)
    return None


# Run in a child process: importing pip's internals here would load the standard library's distutils into this
# process, after which setuptools (and so torch.compile, which imports it) fails to import.
_PIP_QUERY = """
import json
from pip._internal.configuration import Configuration
from pip._internal.models.index import PyPI
settings = {}
try:
    configuration = Configuration(isolated=False)
    configuration.load()
    settings = {key: str(value) for key, value in configuration.items()}
except Exception:  # an unreadable pip.conf: pip itself would refuse it
    pass
print(json.dumps({"settings": settings, "default_index": PyPI.simple_url}))
"""


@functools.cache
def _pip_facts() -> dict[str, Any]:
    """pip's configuration settings and its default index, asked of pip in a child process (empty without pip)."""
    try:
        completed = subprocess.run(
            [sys.executable, "-c", _PIP_QUERY], capture_output=True, text=True, timeout=TIMEOUT_SECONDS, check=True
        )
        return json.loads(completed.stdout)
    except (OSError, subprocess.SubprocessError, json.JSONDecodeError):
        return {}


def project_url(index: str, package: str) -> str:
    """The index page of ``package``: ``<index>/<normalised name>/`` (PEP 503 name normalisation)."""
    return urljoin(index.rstrip("/") + "/", re.sub(r"[-_.]+", "-", package).lower() + "/")


def download_file(package: str, filename: str, destination: Path, *, index: str | None = None) -> Path:
    """Download the file ``filename`` of ``package`` from the package index into ``destination``; return its path.

    ``index`` defaults to :func:`index_url`; ``user:password@`` in it is sent as basic authentication to the
    index's host only. Raises DataError when the index cannot be reached, does not list the file, or the file is
    larger than :data:`MAX_ARCHIVE_BYTES`.
    """
    index, auth = _split_credentials(index or index_url())
    page = project_url(index, package)
    files = list_files(page, auth)
    if filename not in files:
        listed = ", ".join(sorted(files)[-8:]) or "none"
        raise DataError(f"the package index page {page} lists no file {filename} (files listed: {listed})")
    destination.mkdir(parents=True, exist_ok=True)
    target = destination / filename
    with _open_url(files[filename], accept="*/*", auth=auth) as response, target.open("wb") as stream:
        written = 0
        while chunk := _read(response, files[filename]):
            written += len(chunk)
            if written > MAX_ARCHIVE_BYTES:
                raise DataError(f"{files[filename]} is larger than {MAX_ARCHIVE_BYTES} bytes; refusing to download it")
            stream.write(chunk)
    return target


def list_files(page: str, auth: tuple[str, str] | None = None) -> dict[str, str]:
    """``{file name: download URL}`` of one project page of a simple index (PEP 691 JSON or PEP 503 HTML);
    ``auth``: see :func:`_split_credentials`."""
    with _open_url(page, accept=ACCEPT, auth=auth) as response:
        body = response.read()
        content_type = response.headers.get_content_type()
        base = response.geturl()
    if content_type == JSON_TYPE:
        try:
            entries = [(entry["filename"], entry["url"]) for entry in json.loads(body)["files"]]
        except (ValueError, KeyError, TypeError) as error:
            raise DataError(f"the package index page {page} is not valid PEP 691 JSON ({error})") from None
    else:
        parser = _LinkParser()
        parser.feed(body.decode("utf-8", errors="replace"))
        entries = parser.links
    return {name: urldefrag(urljoin(base, url)).url for name, url in entries}


class _LinkParser(HTMLParser):
    """The ``(file name, href)`` of every anchor of a PEP 503 page; the name is the anchor's text."""

    def __init__(self) -> None:
        super().__init__()
        self.links: list[tuple[str, str]] = []
        self._href: str | None = None
        self._text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            self._href, self._text = dict(attrs).get("href"), []

    def handle_data(self, data: str) -> None:
        if self._href is not None:
            self._text.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "a" and self._href is not None:
            name = "".join(self._text).strip() or urlsplit(self._href).path.rsplit("/", 1)[-1]
            self.links.append((name, self._href))
            self._href = None


@contextmanager
def _open_url(url: str, *, accept: str, auth: tuple[str, str] | None = None) -> Iterator[Any]:
    """An open response for ``url`` (proxies from the environment, pip's CA bundle, :data:`TIMEOUT_SECONDS`);
    ``auth`` ``(host, Authorization header)`` is sent when ``url`` is on that host."""
    headers = {"Accept": accept, "User-Agent": "pyramid-bert"}
    if auth is not None and urlsplit(url).netloc == auth[0]:
        headers["Authorization"] = auth[1]
    request = urllib.request.Request(url, headers=headers)
    try:
        response = urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS, context=_tls_context())
    except urllib.error.HTTPError as error:
        raise DataError(f"the package index answered HTTP {error.code} ({error.reason}) for {_redacted(url)}") from None
    except (urllib.error.URLError, OSError, ValueError) as error:
        reason = getattr(error, "reason", error)
        raise DataError(
            f"could not reach {_redacted(url)} ({reason}); is the package index reachable? (PIP_INDEX_URL names a "
            "mirror, HTTPS_PROXY a proxy)"
        ) from None
    with response:
        yield response


def _read(response: Any, url: str) -> bytes:
    try:
        return response.read(_CHUNK)
    except OSError as error:  # a timeout or a dropped connection mid-download
        raise DataError(f"downloading {_redacted(url)} failed ({error}); is the package index reachable?") from None


def _tls_context() -> ssl.SSLContext:
    """The default TLS context, trusting pip's configured CA bundle (``PIP_CERT`` / ``cert``) when there is one."""
    bundle = os.environ.get("PIP_CERT", "").strip() or _pip_setting("cert")
    if bundle and not Path(bundle).is_file():
        raise DataError(f"pip's CA bundle (PIP_CERT / cert setting) {bundle} does not exist")
    return ssl.create_default_context(cafile=bundle or None)


def _split_credentials(url: str) -> tuple[str, tuple[str, str] | None]:
    """``url`` without ``user:password@``, and ``(host, basic Authorization header)`` when it had them (urllib
    does not send credentials written in a URL)."""
    parts = urlsplit(url)
    userinfo, at, host = parts.netloc.rpartition("@")
    if not at:
        return url, None
    user, _, password = userinfo.partition(":")
    token = base64.b64encode(f"{unquote(user)}:{unquote(password)}".encode()).decode("ascii")
    return urlunsplit(parts._replace(netloc=host)), (host, f"Basic {token}")


def _redacted(url: str) -> str:
    """``url`` without any ``user:password@`` part, for messages."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))
