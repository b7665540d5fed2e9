"""A bytecode cache for Ansible's module payloads, on the lab's guests only.

Ansible runs every module from a zip that Python's zipimport compiles from source on each
run: milliseconds on real hardware, about a second per module under QEMU's software
emulation (AnsiballZ_ping.py on a lab guest: 2.5 s, 1.5 s with this cache). molecule/lab's
prepare puts this file and a .pth that imports it on each guest, so zipimport keeps what it
compiles under /var/cache/flexvdi-lab-pyc (root's, 0700), keyed by a hash of the source.
Nothing of the collection changes, and any error falls back to compiling. A cached code
object keeps the file name of the run that compiled it (a payload directory that Ansible
has removed since), which only tracebacks show.
"""

import zipimport

_CACHE = "/var/cache/flexvdi-lab-pyc"
_compile = zipimport._compile_source


def _cached_compile(pathname, source):
    try:
        import hashlib
        import marshal
        import os
        import sys

        if os.geteuid() != 0:
            return _compile(pathname, source)
        key = hashlib.sha256(source).hexdigest()
        path = f"{_CACHE}/{key}.{sys.implementation.cache_tag}.{sys.flags.optimize}"
        try:
            with open(path, "rb") as f:
                if os.fstat(f.fileno()).st_uid == 0:
                    return marshal.loads(f.read())
        except FileNotFoundError:
            pass
        code = _compile(pathname, source)
        st = os.stat(_CACHE)
        if st.st_uid == 0 and not st.st_mode & 0o077:
            tmp = f"{path}.{os.getpid()}"
            with open(tmp, "wb") as f:
                f.write(marshal.dumps(code))
            os.replace(tmp, path)
        return code
    except Exception:
        return _compile(pathname, source)


zipimport._compile_source = _cached_compile
