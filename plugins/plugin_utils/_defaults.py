# Copyright: flexVDI storage team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Controller side: the module_defaults a play sets for other modules of the collection. Private.

flexvdi.storage.storage converges the objects of the single-object modules; a play that sets
registry, fstab or qemu_user through module_defaults of those modules (or of their action group)
keeps working when the storage role runs them all in one module. ansible-core resolves
module_defaults for an action with a private helper whose name and signature changed in 2.19.
"""

from __future__ import annotations

from ansible.executor import module_common

# ansible-core 2.19 and later; None on 2.16 to 2.18, which have get_action_args_with_defaults.
_apply = getattr(module_common, "_apply_action_arg_defaults", None)


def module_defaults(action_plugin, fqcn):
    """The arguments module_defaults give ``fqcn`` in this task (its action group's, then its own), templated."""
    task = action_plugin._task
    if _apply is not None:
        return _apply(fqcn, task, {}, action_plugin._templar)
    return module_common.get_action_args_with_defaults(
        fqcn, {}, task.module_defaults, action_plugin._templar, action_groups=task._parent._play._action_groups
    )


def object_module_defaults(action_plugin, fqcns, options):
    """{option: {fqcn: value}} for each of ``options`` that module_defaults set for any of ``fqcns``."""
    found = {}
    for fqcn in fqcns:
        for option, value in module_defaults(action_plugin, fqcn).items():
            if option in options and value is not None:
                found.setdefault(option, {})[fqcn] = value
    return found
