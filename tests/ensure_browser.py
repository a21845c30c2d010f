"""Make sure a Chromium exists for the widget tests: Debian's package, installed if missing.

Playwright's own browser download needs hosts these machines cannot reach, so the tests drive
Debian's ``chromium`` instead. Without root or apt, the browser tests skip with a reason.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys


def main() -> int:
    if shutil.which("chromium"):
        return 0
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        print(
            "ensure_browser: chromium is missing and cannot be installed here; browser tests will skip", file=sys.stderr
        )
        return 0
    print("ensure_browser: installing Debian's chromium for the widget tests", file=sys.stderr)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for cmd in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "chromium"]):
        if subprocess.run(cmd, env=env).returncode != 0:
            print(f"ensure_browser: {' '.join(cmd)} failed; browser tests will skip", file=sys.stderr)
            return 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
