"""`fer.source: kaggle`: Kaggle's fer2013.tar.gz, downloaded with the kaggle package."""
from __future__ import annotations

import contextlib
import io
from pathlib import Path

from ...errors import PipelineError

KAGGLE_FILE = "fer2013.tar.gz"


def authenticated_api():
    """An authenticated kaggle API; its own output (help text) is kept off the terminal."""
    sink = io.StringIO()
    try:
        with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
            from kaggle.api.kaggle_api_extended import KaggleApi
            api = KaggleApi()
            api.authenticate()
    except SystemExit:
        raise PipelineError(
            "`fer.source: kaggle` needs Kaggle credentials and none were found: create an API token at "
            "https://www.kaggle.com/settings/api and save it as ~/.kaggle/kaggle.json (or "
            "~/.kaggle/access_token), or set KAGGLE_USERNAME and KAGGLE_KEY, or KAGGLE_API_TOKEN") from None
    except Exception as exc:  # noqa: BLE001 - the kaggle client raises many types; none may leak a secret
        raise PipelineError(f"`fer.source: kaggle`: authentication failed ({type(exc).__name__}); "
                            f"check your Kaggle credentials") from None
    return api


def download(competition: str, folder: Path) -> Path:
    """Download the competition's fer2013.tar.gz into ``folder``; the path of the file."""
    api = authenticated_api()
    try:
        api.competition_download_file(competition, KAGGLE_FILE, path=str(folder), quiet=False)
    except (Exception, SystemExit) as exc:  # noqa: BLE001 - see authenticated_api
        status = getattr(getattr(exc, "response", None), "status_code", None)
        detail = f"HTTP {status}" if status else type(exc).__name__
        raise PipelineError(
            f"kaggle: downloading {KAGGLE_FILE} of competition {competition!r} (`fer.kaggle_competition`) "
            f"failed ({detail}); accept the competition's rules on kaggle.com, or use `fer.source: file`") from None
    found = sorted(p for p in folder.iterdir() if p.is_file())
    if len(found) != 1:
        raise PipelineError(f"kaggle: expected one downloaded file in {folder}, found {[p.name for p in found]}")
    return found[0]
