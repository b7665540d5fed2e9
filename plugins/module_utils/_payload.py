# Copyright: flexVDI storage team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Each file of a module's payload compiled once per run, not twice. Private to the collection.

Ansible runs a module from a zip of sources (AnsiballZ), which Python's zipimport compiles on
every run, and it compiles each file it imports twice: finding a module asks its loader for the
file name (``get_filename``), which zipimport answers by compiling the file, and loading it
compiles it again (``get_code``; CPython 3.8 to 3.13 alike). A no-op run of
flexvdi.storage.storage imports about 150 KB of the collection's source: its second compile
cost about 25 ms of CPU per host and run (of about 90 ms this module costs beyond ping).

``compile_once()`` keeps, in this process only, the code object of the first compile of a
file for the second: the same source and file name give the same code, compiled once.
A module calls it before it imports anything else of the collection. Nothing changes where
zipimport is not pure Python or has no ``_compile_source``: it then does nothing.
"""

from __future__ import annotations

import zipimport


def compile_once():
    compile_source = getattr(zipimport, "_compile_source", None)
    if not callable(compile_source) or getattr(compile_source, "flexvdi_compile_once", False):
        return
    first = {}

    def compile_source_once(*args):
        try:
            code = first.pop(args, None)
        except TypeError:  # unhashable arguments: not the (pathname, source) this expects
            return compile_source(*args)
        if code is None:
            code = compile_source(*args)
            first[args] = code
        return code

    compile_source_once.flexvdi_compile_once = True
    zipimport._compile_source = compile_source_once
