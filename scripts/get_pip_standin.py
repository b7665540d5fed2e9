"""Offline stand-in for pip's get-pip.py, used by ansible-test.

ansible-test bootstraps pip into the virtual environments it manages (the import sanity test
makes some) by downloading get-pip-<version>.py from ci-files.testing.ansible.com, which this
network cannot reach. It first looks for ~/.ansible/test/cache/get_pip_<version>.py, so
scripts/setup.sh copies this file there, once for the pip version each installed
ansible-test asks for (the version is in its python_requirements.py).

ansible-test runs it as `python get_pip_X_Y.py [pip options] pip==X.Y [packages]
[--no-setuptools] [--no-wheel]`, like the real script: bootstrap pip with the interpreter's
own ensurepip, then let that pip install what was asked for from the package index.
"""

import subprocess
import sys

SKIP = {"--no-setuptools", "--no-wheel"}  # get-pip.py options that pip itself lacks


def main() -> int:
    args = [arg for arg in sys.argv[1:] if arg not in SKIP]
    subprocess.check_call([sys.executable, "-m", "ensurepip", "--default-pip"], stdout=subprocess.DEVNULL)
    return subprocess.call([sys.executable, "-m", "pip", "install", "--quiet", *args])


if __name__ == "__main__":
    sys.exit(main())
