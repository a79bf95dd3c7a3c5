"""`fer.source: url`: a download over HTTP(S) that fails unless every byte arrived."""
from __future__ import annotations

import http.client
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from ...errors import PipelineError
from ...io import atomic_path
from . import BLOCK_SIZE


def redact_url(url: str) -> str:
    """The URL without user info, query or fragment, which may carry tokens."""
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urllib.parse.urlunsplit((parts.scheme, host, parts.path, "", ""))


def download(url: str, dest: Path, timeout: float = 60.0) -> Path:
    """Download ``url`` to ``dest`` with a progress bar; fail unless every byte arrived."""
    from tqdm import tqdm

    shown = redact_url(url)
    request = urllib.request.Request(url, headers={"User-Agent": "staged-fer"})
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as exc:
        raise PipelineError(f"`fer.url`: {shown} answered HTTP {exc.code} {exc.reason}; check the address") from None
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise PipelineError(f"`fer.url`: cannot download {shown} ({reason}); check the address and the "
                            f"network, or use `fer.source: file`") from None
    with response:
        length = response.headers.get("Content-Length")
        total = int(length) if length and length.isdigit() else None
        got = 0
        with atomic_path(dest) as tmp, open(tmp, "wb") as fh, \
                tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024, desc=f"download {Path(shown).name}") as bar:
            while True:
                try:
                    block = response.read(BLOCK_SIZE)
                except (http.client.IncompleteRead, OSError) as exc:
                    raise PipelineError(f"download of {shown} interrupted after {got} bytes "
                                        f"({type(exc).__name__}); rerun the stage") from None
                if not block:
                    break
                fh.write(block)
                got += len(block)
                bar.update(len(block))
            if total is not None and got != total:
                raise PipelineError(f"download of {shown} interrupted: {got} of {total} bytes arrived; "
                                    f"rerun the stage")
            if got == 0:
                raise PipelineError(f"download of {shown}: the server sent an empty file")
    return dest
