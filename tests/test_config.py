"""The config file: limits are checked when the service starts, not when a bundle arrives."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.config import ConfigError, load_config


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "statewriter.yaml"
    path.write_text(text)
    return path


def test_limits_are_read_into_the_bundle_limits(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, "limits: {maxDepth: 100, maxDocumentBytes: 4096}\n"), env={})
    assert config.limits.max_depth == 100 and config.limits.max_document_bytes == 4096


@pytest.mark.parametrize("text", [
    "limits: {maxDepth: 401}\n",  # stored documents must always load again
    "limits: {maxDepth: 0}\n",
    "limits: {maxDepht: 10}\n",
])
def test_bad_limits_are_refused_at_start(tmp_path: Path, text: str) -> None:
    with pytest.raises(ConfigError):
        load_config(write(tmp_path, text), env={})
