# Run by the media_server role with /usr/bin/python3 -c: exit 0 when the Samba password of a
# user (read on standard input, one line) is already the one in the passdb of a given smb.conf
# and the account is enabled, 1 when it is not (or the user, the passdb or smb.conf does not
# exist yet), 3 on error. Arguments: smb.conf, user. Read-only: a passdb that does not exist is
# not opened (pdbedit would create it), so check mode changes nothing. The password and its
# hash never leave this process.
import os
import subprocess
import sys

ENV = dict(os.environ, LC_ALL="C")


def output(argv):
    proc = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=ENV, check=False, text=True)
    return proc.returncode, proc.stdout.strip()


def passdb_file(config):
    """The tdbsam file of config, or None for another passdb backend."""
    _rc, backend = output(["testparm", "-s", "--parameter-name=passdb backend", config])
    name, _colon, location = backend.partition(":")
    if name.strip() != "tdbsam":
        return None
    if location.strip():
        return location.strip()
    _rc, private_dir = output(["testparm", "-s", "--parameter-name=private dir", config])
    return os.path.join(private_dir, "passdb.tdb")


try:
    from samba.credentials import Credentials

    config, user = sys.argv[1], sys.argv[2]
    password = sys.stdin.read()
    if password.endswith("\n"):
        password = password[:-1]
    if not os.path.isfile(config):
        sys.exit(1)
    tdb = passdb_file(config)
    if tdb is not None and not os.path.isfile(tdb):
        sys.exit(1)
    rc, listed = output(["pdbedit", "-s", config, "-L", "-w", "-u", user])
    fields = listed.split(":")
    if rc != 0 or len(fields) < 5 or fields[0] != user:
        sys.exit(1)
    credentials = Credentials()
    credentials.set_password(password)
    matches = fields[3].upper() == credentials.get_nt_hash().hex().upper()
    sys.exit(0 if matches and "D" not in fields[4] else 1)
except SystemExit:
    raise
except Exception as exc:
    sys.stderr.write("cannot compare the Samba password: %s\n" % type(exc).__name__)
    sys.exit(3)
