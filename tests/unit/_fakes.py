"""A stand-in for AnsibleModule in the unit tests of the engine's plans (OCFS2, Gluster)."""

from __future__ import annotations


class FakeModule:
    """Enough of AnsibleModule for Host: params, check/diff mode, and commands answered from a
    table (``answer``: by the command's name; a subclass may key them otherwise)."""

    def __init__(self, params, answers):
        self.params = params
        self.check_mode = True
        self._diff = True
        self.answers = answers
        self.commands = []
        self.warnings = []

    def get_bin_path(self, name, required=False, opt_dirs=None):
        return "/usr/sbin/" + name

    def run_command(self, argv, environ_update=None, data=None, check_rc=False, handle_exceptions=True):
        argv = [a.rsplit("/", 1)[-1] if a.startswith("/usr/sbin/") else a for a in argv]
        if argv[0] == "timeout":
            argv = argv[3:]
        self.commands.append(argv)
        return self.answer(argv)

    def answer(self, argv):
        return self.answers.get(argv[0], (0, "", ""))

    def warn(self, msg):
        self.warnings.append(msg)
