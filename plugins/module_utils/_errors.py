# Copyright: flexVDI storage team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one exception type of flexvdi.storage. Private to the collection."""

from __future__ import annotations


class StorageError(Exception):
    """A refusal or failure that a module reports with fail_json.

    The message names the object, the cause and the option or action that fixes it.
    ``left`` describes what a failed run could not undo, when anything.
    """

    def __init__(self, msg, left=None, **details):
        super().__init__(msg)
        self.msg = msg
        self.left = left or []
        self.details = details
