# Copyright: flexVDI storage team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one place that runs external commands. Private to the collection.

Every command runs as an argument list (never a shell) with a C locale, so its output
parses the same everywhere.
"""

from __future__ import annotations

from ._errors import StorageError

C_LOCALE = {"LC_ALL": "C", "LANG": "C", "LANGUAGE": "C"}
SBIN_DIRS = ["/sbin", "/usr/sbin", "/usr/local/sbin"]


class Runner:
    """Runs commands through AnsibleModule.run_command and raises StorageError on failure."""

    def __init__(self, module):
        self.module = module

    def run(self, argv, what, check=True, data=None, timeout=None):
        """Run ``argv``; ``what`` names the object for the error message.

        ``timeout`` (seconds) bounds commands that read a shared disk, which a lost SAN path
        can block forever, or ask a daemon that may not answer (glusterd): coreutils timeout(1)
        stops them, and the error says so.
        """
        binary = self.module.get_bin_path(argv[0], required=False, opt_dirs=SBIN_DIRS)
        command = [binary or argv[0]] + list(argv[1:])
        if timeout is not None:
            if binary is None:
                raise StorageError("%s: %s cannot be run (not installed): install it, or fix PATH" % (what, argv[0]))
            limiter = self.module.get_bin_path("timeout", required=False, opt_dirs=SBIN_DIRS)
            if limiter:
                command = [limiter, "--kill-after=5", "%d" % timeout] + command
        try:
            rc, out, err = self.module.run_command(
                command, environ_update=C_LOCALE, data=data, check_rc=False, handle_exceptions=False
            )
        except OSError as exc:
            # A command that cannot start is a StorageError like any failure, so the plan is undone.
            raise StorageError(
                "%s: %s cannot be run (%s): install it, or fix PATH" % (what, argv[0], exc.strerror or exc)
            ) from exc
        if timeout is not None and rc in (124, 137):
            raise StorageError(
                "%s: %s did not finish within %d s (a disk behind a lost SAN or iSCSI path, or a daemon such "
                "as glusterd that does not answer, blocks it)" % (what, argv[0], timeout)
            )
        if check and rc != 0:
            lines = list(dict.fromkeys(line.strip() for line in (err or out or "").splitlines() if line.strip()))
            detail = "; ".join(lines)[-400:] or "no output"
            raise StorageError("%s: %s failed (rc=%d): %s" % (what, argv[0], rc, detail))
        return rc, out, err

    # mount(8) and umount(8): the only callers of these binaries.
    def has(self, binary):
        """Whether ``binary`` is installed (PATH and the sbin directories)."""
        return self.module.get_bin_path(binary, required=False, opt_dirs=SBIN_DIRS) is not None

    def mount(self, src, mount_point, fstype=None, opts=None, what="mount"):
        argv = ["mount"]
        if fstype and fstype not in ("auto", "none"):
            argv += ["-t", fstype]
        if opts:
            argv += ["-o", opts]
        argv += ["--", src, mount_point]
        return self.run(argv, what)

    def umount(self, mount_point, what="umount"):
        return self.run(["umount", "--", mount_point], what)
