"""The instructor's `make execute` is deterministic: re-running it changes nothing."""

import shutil

import pytest

from tools.notebooks import chapter_notebooks, execute


@pytest.mark.parametrize("path", chapter_notebooks()[:1], ids=lambda p: p.name)
def test_re_executing_an_unchanged_chapter_reproduces_the_committed_file_byte_for_byte(path, tmp_path):
    copy = tmp_path / path.name
    shutil.copy(path, copy)
    execute(copy)
    assert copy.read_bytes() == path.read_bytes(), (
        f"re-executing {path.name} changed it: outputs or metadata are not deterministic"
    )
