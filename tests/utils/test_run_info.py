"""Run metadata: the commit a run records is the one it started with."""

import subprocess

from pointsd.utils.run_info import git_commit


def _git(repo, *args):
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=repo, check=True,
                   capture_output=True)


def test_commit_is_read_once_per_process(tmp_path):
    _git(tmp_path, "init", "-q")
    (tmp_path / "f.txt").write_text("a")
    _git(tmp_path, "add", "f.txt")
    _git(tmp_path, "commit", "-qm", "first")
    first = subprocess.run(["git", "rev-parse", "HEAD"], cwd=tmp_path, capture_output=True, text=True).stdout.strip()
    assert git_commit(tmp_path) == first
    (tmp_path / "f.txt").write_text("b")
    _git(tmp_path, "commit", "-qam", "second")
    assert git_commit(tmp_path) == first  # a run that started at `first` keeps saying so
